package events_test

import (
	"encoding/json"
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

// TestEncodeMatchesEncodingJSON: Encode uses a faster encoder, which must
// write byte for byte what encoding/json writes (HTML escaping, float
// formatting, omitempty, embedded headers, odd strings) for every event.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	h := events.NewHeader("acme <&>", "req-\u2028-1")
	odd := "quote \" backslash \\ tab \t nl \n <b>&amp;</b> \u2029 é 日本 \x01 \xff"
	cases := map[string]any{
		"decision": &events.Decision{Header: h, Unit: "u1", Mode: "edit", Tier: "premium", Prompt: odd, ParentID: "req-0",
			Model: "m", Provider: "sim", PolicyVersion: "p-7", Rule: "text_heavy", Propensity: 0.1 + 0.2, Explored: true,
			Candidates: []events.Candidate{{Model: "a", P: 1e-7, CostUSD: 0.04}, {Model: "b", P: 0.3333333333333333, CostUSD: 123456789.125}},
			Features: events.Features{PromptLen: 42, RefCount: 2, EditDepth: 3, Aspect: 1.7777777777777777, TextHeavy: true,
				Keywords: []string{"poster", "<text>"}, MaxLatency: 8000, MaxCostUSD: 0.5, HashedGrams: []uint32{0, 7, 4294967295}},
			Arms:      []events.Arm{{Experiment: "exp-1", Arm: "treatment", Layer: "routing"}},
			Attempts:  []events.Attempt{{Model: "a", Provider: "sim", Status: "qa_fail", LatencyMS: 12, CostUSD: 0.02}},
			Escalated: true, Status: "ok", QAPass: true, LatencyMS: 1234, CostUSD: 1e21, Images: 2, Sampled: true,
			BlobKey: "ab12", RefKeys: []string{"cd34"}},
		"empty decision": &events.Decision{},
		"qa": &events.QAResult{Header: h, Model: "m", Attempt: 1, Pass: false, Score: -0.0,
			Checks: []events.QACheck{{Name: "sharpness", Pass: false, Value: 2.5e-5}}, Reason: odd},
		"signal": &events.Signal{Header: h, Signal: "thumbs_down", Value: -1},
		"review": &events.Review{Header: h, Kind: "pairwise", Reviewer: "r@x"},
		"audit":  &events.Audit{Header: h, Action: "policy.push", Subject: "p-8", Actor: "cli", Body: `{"version":"p-8","x":"<>"}`},
		"map":    map[string]any{"z": 1, "a": []int{3}, "m": map[string]float64{"b": 2, "a": 1}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("Encode differs from encoding/json:\n got %s\nwant %s", got, want)
			}
		})
	}
}
