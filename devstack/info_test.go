package devstack_test

import (
	"testing"

	"github.com/routelab/routelab/devstack"
)

func TestInfoClickHouseDSN(t *testing.T) {
	tests := []struct {
		give devstack.Info
		want string
	}{
		{devstack.Info{}, ""},
		{devstack.Info{Database: "routelab"}, ""},
		{devstack.Info{ClickHouse: "127.0.0.1:19000"}, "clickhouse://127.0.0.1:19000"},
		{devstack.Info{ClickHouse: "127.0.0.1:19000", Database: "routelab"}, "clickhouse://127.0.0.1:19000/routelab"},
		{devstack.Info{ClickHouse: "clickhouse://127.0.0.1:19000", Database: "routelab"}, "clickhouse://127.0.0.1:19000/routelab"},
		{devstack.Info{ClickHouse: "clickhouse://h:9000/other", Database: "routelab"}, "clickhouse://h:9000/other"},
	}
	for _, tt := range tests {
		if got := tt.give.ClickHouseDSN(); got != tt.want {
			t.Errorf("%+v.ClickHouseDSN() = %q, want %q", tt.give, got, tt.want)
		}
	}
}
