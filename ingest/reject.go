package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ReasonRejected is the dead-letter reason (HeaderReason) of an event that
// decoded but that ClickHouse refused to insert for what it holds; the
// detail header carries ClickHouse's message.
const ReasonRejected = "clickhouse_rejected"

// Rejection is one event of a batch that ClickHouse refused.
type Rejection struct {
	// Index is the event's position in the order it was added to the batch.
	Index int
	Table string
	Err   error
}

// RejectedError is returned by Writer.Write when ClickHouse refused some
// events of a batch for what they hold; every other event of the batch was
// inserted. Writing the batch again would be refused again.
type RejectedError struct {
	Rejected []Rejection
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clickhouse refused %d events", len(e.Rejected))
	if len(e.Rejected) > 0 {
		fmt.Fprintf(&b, " (first: %s #%d: %v)", e.Rejected[0].Table, e.Rejected[0].Index, e.Rejected[0].Err)
	}
	return b.String()
}

// convertError is clickhouse-go failing to convert a value to its column's
// type on this side of the wire.
type convertError struct{ err error }

func (e *convertError) Error() string { return e.err.Error() }
func (e *convertError) Unwrap() error { return e.err }

// rowCaused reports whether err is an insert refused for what its rows
// hold, which inserting the same rows again repeats, as opposed to
// ClickHouse being down, overloaded or misconfigured, which a later attempt
// can get past. Only the latter may be retried as it is; the former is
// bisected down to the refused rows (table.write).
//
// The codes are an allowlist of errors about values: an unknown code is
// retried, so an error this list misses stalls the partitions (logged and
// counted in Stats.InsertErrors) instead of dead-lettering good events
// while, say, a permission or a migration is being fixed.
func rowCaused(err error) bool {
	if ce := (*convertError)(nil); errors.As(err, &ce) {
		return true
	}
	ex := (*clickhouse.Exception)(nil)
	if !errors.As(err, &ex) {
		return false // the connection, a timeout, the pool: try again
	}
	switch ex.Code {
	case 252: // TOO_MANY_PARTS: also "merges are slower than inserts", transient
		return strings.Contains(ex.Message, "partitions for single INSERT block")
	}
	return valueErrorCodes[ex.Code]
}

// valueErrorCodes are the ClickHouse error codes (src/Common/ErrorCodes.cpp)
// of an insert refused for its values.
var valueErrorCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	32:  true, // ATTEMPT_TO_READ_AFTER_EOF (a value cut short)
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	128: true, // TOO_LARGE_ARRAY_SIZE
	131: true, // TOO_LARGE_STRING_SIZE
	153: true, // ILLEGAL_DIVISION
	190: true, // SIZES_OF_ARRAYS_DOESNT_MATCH
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	395: true, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a view's throwIf)
	407: true, // DECIMAL_OVERFLOW
}
