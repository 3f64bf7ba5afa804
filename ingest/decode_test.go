package ingest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingestbench"
)

func reason(err error) string {
	var de *events.DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// checkSame fails when ingest's fast decoder and events.Decode disagree on b.
func checkSame(t *testing.T, kind events.Kind, b []byte) {
	t.Helper()
	want, wantErr := events.Decode(kind, b)
	got, gotErr := ingest.DecodeEvent(kind, b)
	if reason(gotErr) != reason(wantErr) {
		t.Fatalf("decode %s %q: error %v, events.Decode says %v", kind, b, gotErr, wantErr)
	}
	if wantErr == nil {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decode %s %q (-events.Decode +ingest):\n%s", kind, b, diff)
		}
	}
}

func TestDecodeAgreesWithEventsDecode(t *testing.T) {
	d := ingestbench.Decision(7, 3, 1764000000000)
	good, _ := json.Marshal(d)
	audit, _ := json.Marshal(events.Audit{Header: events.Header{EventID: "a", SchemaVersion: 1, TS: 5, Tenant: "t"}, Action: "x"})
	tests := []struct {
		kind events.Kind
		give string
	}{
		{events.KindDecision, string(good)},
		{events.KindAudit, string(audit)},  // no request_id: fine for audit
		{events.KindSignal, string(audit)}, // ... but not for a signal
		{events.KindDecision, `{}`},
		{events.KindDecision, `null`},
		{events.KindDecision, `[]`},
		{events.KindDecision, `{"event_id":"e","schema_version":2,"ts":1,"tenant":"t","request_id":"r"}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":0,"tenant":"t","request_id":"r"}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"","request_id":"r"}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r","features":{"prompt_len":"x"}}`},
		{events.KindDecision, `{"EVENT_ID":"e","Schema_Version":1,"ts":1,"tenant":"t","request_id":"r"}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r","unknown":[1,2,{"a":null}]}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1.0,"ts":1,"tenant":"t","request_id":"r"}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r","arms":null,"candidates":[]}`},
		{events.KindDecision, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r"} trailing`},
		{events.KindDecision, `{"event_id":"\u00e9\n","schema_version":1,"ts":1,"tenant":"t","request_id":"r"}`},
		{events.KindQA, `{"event_id":"e","schema_version":1,"ts":1,"tenant":"t","request_id":"r","checks":[{"name":"blank","pass":true,"value":1e3}]}`},
		{events.Kind("nope"), `{}`},
	}
	for _, tt := range tests {
		checkSame(t, tt.kind, []byte(tt.give))
	}
	// Mutations of a real decision: truncations and flipped bytes.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := append([]byte(nil), good...)
		switch i % 3 {
		case 0:
			b = b[:r.IntN(len(b))]
		case 1:
			b[r.IntN(len(b))] = byte(r.IntN(128))
		case 2:
			b[r.IntN(len(b))] = "{}[]\":,0 "[r.IntN(9)]
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkSame(t, events.KindDecision, b) })
	}
}
