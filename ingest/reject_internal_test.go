package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestRowCaused(t *testing.T) {
	ex := func(code int32, msg string) error { return &clickhouse.Exception{Code: code, Message: msg} }
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"throwIf in a view", fmt.Errorf("insert 1 rows into decisions: %w", ex(395, "Value passed to 'throwIf' function is non zero")), true},
		{"unparsable value", ex(6, "Cannot parse string 'x' as UInt8"), true},
		{"too many partitions in one block", ex(252, "Too many partitions for single INSERT block (more than 100)"), true},
		{"value the driver cannot convert", fmt.Errorf("append decisions.status: %w", &convertError{errors.New("unknown element")}), true},
		{"too many parts: merges behind", ex(252, "Too many parts (300). Merges are processing significantly slower than inserts"), false},
		{"memory limit", ex(241, "Memory limit (for query) exceeded"), false},
		{"table missing", ex(60, "Table routelab.decisions doesn't exist"), false},
		{"read only", ex(164, "Cannot insert into table in readonly mode"), false},
		{"unknown code", ex(9999, "something new"), false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
		{"connection dropped", fmt.Errorf("insert 5 rows into decisions: %w", io.EOF), false},
		{"timeout", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rowCaused(tt.give); got != tt.want {
				t.Errorf("rowCaused(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}
