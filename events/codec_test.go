package events_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/events"
)

func TestDecodeRoundTrip(t *testing.T) {
	want := &events.Decision{
		Header:     events.NewHeader("acme", "req-1"),
		Mode:       "edit",
		Model:      "sim-typo",
		Propensity: 0.9,
		Candidates: []events.Candidate{{Model: "sim-typo", P: 0.93, CostUSD: 0.04, Eligible: true}},
		Features:   events.Features{PromptLen: 12, Keywords: []string{"text"}},
	}
	b, err := events.Encode(want)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := events.Decode(events.KindDecision, b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode(Encode(d)) mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		kind events.Kind
		give string
		want string
	}{
		{"not json", events.KindDecision, `{"event_id":`, events.ReasonMalformedJSON},
		{"wrong type", events.KindSignal, `{"event_id":1}`, events.ReasonMalformedJSON},
		{"unknown kind", events.Kind("nope"), `{}`, events.ReasonUnknownKind},
		{"no version", events.KindQA, `{"event_id":"e","tenant":"t","request_id":"r","ts":1}`, events.ReasonUnknownVersion},
		{"future version", events.KindQA, `{"event_id":"e","schema_version":99,"tenant":"t","request_id":"r","ts":1}`, events.ReasonUnknownVersion},
		{"no event id", events.KindSignal, `{"schema_version":1,"tenant":"t","request_id":"r","ts":1}`, events.ReasonMissingEventID},
		{"no tenant", events.KindReview, `{"event_id":"e","schema_version":1,"request_id":"r","ts":1}`, events.ReasonMissingTenant},
		{"no request id", events.KindDecision, `{"event_id":"e","schema_version":1,"tenant":"t","ts":1}`, events.ReasonMissingRequestID},
		{"no ts", events.KindDecision, `{"event_id":"e","schema_version":1,"tenant":"t","request_id":"r"}`, events.ReasonMissingTS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.Decode(tt.kind, []byte(tt.give))
			var de *events.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%s) error = %v, want *DecodeError", tt.give, err)
			}
			if de.Reason != tt.want {
				t.Errorf("Decode(%s) reason = %q, want %q", tt.give, de.Reason, tt.want)
			}
		})
	}
}

func TestDecodeAuditNeedsNoRequestID(t *testing.T) {
	b := []byte(`{"event_id":"e","schema_version":1,"tenant":"t","ts":1,"action":"policy.push"}`)
	ev, err := events.Decode(events.KindAudit, b)
	if err != nil {
		t.Fatalf("Decode(audit) = %v, want nil", err)
	}
	if a := ev.(*events.Audit); a.Action != "policy.push" {
		t.Errorf("Decode(audit).Action = %q, want policy.push", a.Action)
	}
}

func TestNewID(t *testing.T) {
	uuidV7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := make(map[string]bool, 100000)
	for range 100000 {
		id := events.NewID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("NewID() = %q, not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = events.NewID()
	}
}

func BenchmarkEncodeDecision(b *testing.B) {
	d := events.Decision{Header: events.NewHeader("acme", "req-1"), Model: "m", Prompt: "a poster that says hello world",
		Candidates: []events.Candidate{{Model: "a", P: .9}, {Model: "b", P: .8}, {Model: "c", P: .7}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Encode(&d); err != nil {
			b.Fatal(err)
		}
	}
}
