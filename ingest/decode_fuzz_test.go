package ingest_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest/ingestbench"
)

var fuzzKinds = []events.Kind{events.KindDecision, events.KindQA, events.KindSignal, events.KindReview, events.KindAudit, "nope"}

// FuzzDecodeEvent: every message on the event topics is outside bytes to
// ingest. Its fast decoder must not panic and must agree with
// events.Decode, the reference, on every input: the same event, or the same
// dead-letter reason.
func FuzzDecodeEvent(f *testing.F) {
	h := events.Header{EventID: "e", SchemaVersion: events.SchemaVersion, TS: 1764000000000, Tenant: "t", RequestID: "r"}
	seeds := []any{
		ingestbench.Decision(7, 3, 1764000000000),
		events.QAResult{Header: h, Model: "m", Pass: true, Checks: []events.QACheck{{Name: "blank", Pass: true, Value: 0.5}}},
		events.Signal{Header: h, Signal: "thumbs_up", Value: 1},
		events.Review{Header: h, Kind: "score", Scores: []events.Score{{Name: "fidelity", Value: 4}}},
		events.Audit{Header: events.Header{EventID: "a", SchemaVersion: events.SchemaVersion, TS: 5, Tenant: "t"}, Action: "x"},
	}
	for i, s := range seeds {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte(`{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r"} trailing`))
	f.Add(uint8(0), []byte(`{"EVENT_ID":"e","Schema_Version":1,"ts":1,"tenant":"t","request_id":"r"}`))
	f.Add(uint8(5), []byte(`{}`))
	f.Fuzz(func(t *testing.T, k uint8, b []byte) {
		checkSame(t, fuzzKinds[int(k)%len(fuzzKinds)], b)
	})
}
