package gateway_test

import (
	"context"
	"errors"
	"image/color"
	"strings"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// mustGateway is a gateway routing to "fast" then "strong" (test doubles),
// recording its events.
func mustGateway(t *testing.T, fail func(providers.Request) error) (*gateway.Gateway, *gatewaytest.Producer) {
	t.Helper()
	sink := gatewaytest.NewProducer(64)
	g := gateway.New(gateway.Config{SampleRate: -1}, gateway.Deps{
		Policy: &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
		Providers: map[string]providers.Provider{
			"fast":   &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}, Fail: fail},
			"strong": &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, Fail: fail},
		},
		QA:     &gatewaytest.Inspector{},
		Events: sink,
	})
	return g, sink
}

func request(id, tenant string) gateway.Request {
	return gateway.Request{ID: id, Tenant: tenant, Mode: router.ModeGenerate, Prompt: "a red fox", N: 1, Width: 32, Height: 32, Format: "png", Tier: router.TierStandard}
}

// TestProviderErrorTextHidden: a vendor's error text (which can hold a key
// prefix or an internal host) reaches neither the outcome's attempts, nor
// the decision event, nor the error the caller sees: they carry the kind.
func TestProviderErrorTextHidden(t *testing.T) {
	const secret = "invalid key sk-live-4f3a... at http://10.0.3.7:8443/v1"
	tests := []struct {
		name     string
		kind     providers.ErrorKind
		wantCode string
	}{
		{"unavailable", providers.KindUnavailable, gateway.CodeProviderFailed},
		{"bad request", providers.KindBadRequest, gateway.CodeInvalidRequest},
		{"auth", providers.KindAuth, gateway.CodeProviderFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, sink := mustGateway(t, func(providers.Request) error {
				return &providers.Error{Provider: "vendor", Kind: tt.kind, Status: 400, Message: secret}
			})
			_, err := g.Serve(context.Background(), request(gateway.NewIDs().Next(), "acme"))
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != tt.wantCode {
				t.Fatalf("Serve error = %v, want code %s", err, tt.wantCode)
			}
			if strings.Contains(ge.Error(), "sk-live") || strings.Contains(ge.Error(), "10.0.3.7") {
				t.Errorf("error shown to the caller %q holds the vendor's text", ge.Error())
			}
			d := sink.Events()[len(sink.Events())-1].Value.(*events.Decision)
			for _, a := range d.Attempts {
				if strings.Contains(a.Error, "sk-live") || strings.Contains(a.Error, "10.0.3.7") || a.Error != string(tt.kind) {
					t.Errorf("attempt error = %q, want the kind %q", a.Error, tt.kind)
				}
			}
		})
	}
}

// TestFeedbackOwnRequestsOnce: feedback counts only for the caller's own
// requests, and once per (request, signal kind).
func TestFeedbackOwnRequestsOnce(t *testing.T) {
	g, sink := mustGateway(t, nil)
	ids := gateway.NewIDs()
	id := ids.Next()
	if _, err := g.Serve(context.Background(), request(id, "acme")); err != nil {
		t.Fatal(err)
	}
	signals := func() int {
		n := 0
		for _, e := range sink.Events() {
			if e.Topic == events.TopicSignals {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name      string
		give      gateway.Signal
		wantCode  string
		wantDup   bool
		wantCount int
	}{
		{"other tenant", gateway.Signal{RequestID: id, Tenant: "rival", Kind: "thumbs_down"}, gateway.CodeRequestNotFound, false, 0},
		{"guessable id", gateway.Signal{RequestID: "req_1", Tenant: "rival", Kind: "thumbs_down"}, gateway.CodeRequestNotFound, false, 0},
		{"owner", gateway.Signal{RequestID: id, Tenant: "acme", Kind: "thumbs_down"}, "", false, 1},
		{"owner again", gateway.Signal{RequestID: id, Tenant: "acme", Kind: "thumbs_down"}, "", true, 1},
		{"owner, other kind", gateway.Signal{RequestID: id, Tenant: "acme", Kind: "download"}, "", false, 2},
		{"served elsewhere", gateway.Signal{RequestID: ids.Next(), Tenant: "acme", Kind: "thumbs_up"}, "", false, 3},
	}
	for _, tt := range tests {
		dup, err := g.Feedback(tt.give)
		var ge *gateway.Error
		if tt.wantCode != "" {
			if !errors.As(err, &ge) || ge.Code != tt.wantCode {
				t.Errorf("%s: Feedback = %v, want %s", tt.name, err, tt.wantCode)
			}
		} else if err != nil || dup != tt.wantDup {
			t.Errorf("%s: Feedback = %v, %v; want duplicate %v", tt.name, dup, err, tt.wantDup)
		}
		if got := signals(); got != tt.wantCount {
			t.Errorf("%s: %d signal events, want %d", tt.name, got, tt.wantCount)
		}
	}
}

// TestBackloggedRefused: while the event sink is backlogged, requests and
// feedback are refused with a retry hint and emit nothing; once it has room
// they are served again.
func TestBackloggedRefused(t *testing.T) {
	g, sink := mustGateway(t, nil)
	ids := gateway.NewIDs()
	served := ids.Next()
	if _, err := g.Serve(context.Background(), request(served, "acme")); err != nil {
		t.Fatal(err)
	}
	before := len(sink.Events())
	sink.Full.Store(true)
	_, err := g.Serve(context.Background(), request(ids.Next(), "acme"))
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeEventsBacklogged || ge.RetryAfter <= 0 {
		t.Fatalf("Serve while backlogged = %v, want %s with a Retry-After", err, gateway.CodeEventsBacklogged)
	}
	if _, err := g.Feedback(gateway.Signal{RequestID: served, Tenant: "acme", Kind: "thumbs_up"}); !errors.As(err, &ge) || ge.Code != gateway.CodeEventsBacklogged {
		t.Fatalf("Feedback while backlogged = %v, want %s", err, gateway.CodeEventsBacklogged)
	}
	if got := len(sink.Events()); got != before {
		t.Errorf("%d events emitted while backlogged, want none", got-before)
	}
	sink.Full.Store(false)
	if _, err := g.Serve(context.Background(), request(ids.Next(), "acme")); err != nil {
		t.Errorf("Serve once the sink has room = %v, want served", err)
	}
	// The refused feedback was not counted: sent again, it is not a duplicate.
	if dup, err := g.Feedback(gateway.Signal{RequestID: served, Tenant: "acme", Kind: "thumbs_up"}); err != nil || dup {
		t.Errorf("Feedback once the sink has room = %v, %v; want recorded", dup, err)
	}
}

// TestContentPolicyRefusal: a refusal ends the request with content_policy
// and the vendor's coded reason (never its free text), unless the tenant
// opted in to having it tried on the next model.
func TestContentPolicyRefusal(t *testing.T) {
	tests := []struct {
		name     string
		optedIn  []string
		wantCode string
		calls    int64 // of the next model
	}{
		{"not opted in", nil, gateway.CodeContentPolicy, 0},
		{"another tenant opted in", []string{"globex"}, gateway.CodeContentPolicy, 0},
		{"opted in", []string{"acme"}, "", 1},
		{"every tenant", []string{"*"}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refuse := func(providers.Request) error {
				return &providers.Error{Provider: "openai", Kind: providers.KindContentPolicy, Status: 400,
					Message: "Your request was rejected by the safety system. request id req_8f2 at 10.0.3.7", Reason: "moderation_blocked"}
			}
			strong := &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}}
			g := gateway.New(gateway.Config{SampleRate: -1, ContentPolicyFallback: tt.optedIn}, gateway.Deps{
				Policy: &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
				Providers: map[string]providers.Provider{
					"fast":   &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}, Fail: refuse},
					"strong": strong,
				},
				QA:     &gatewaytest.Inspector{},
				Events: gatewaytest.NewProducer(64),
			})
			o, err := g.Serve(context.Background(), request(gateway.NewIDs().Next(), "acme"))
			var ge *gateway.Error
			switch {
			case tt.wantCode == "" && (err != nil || o.Model != "strong"):
				t.Errorf("Serve = %v, %v; want the next model's image", o, err)
			case tt.wantCode != "" && (!errors.As(err, &ge) || ge.Code != tt.wantCode):
				t.Errorf("Serve error = %v, want %s", err, tt.wantCode)
			case tt.wantCode != "" && (!strings.Contains(ge.Message, "openai: moderation_blocked") || strings.Contains(ge.Message, "10.0.3.7")):
				t.Errorf("message %q, want the coded reason and none of the vendor's text", ge.Message)
			}
			if c := strong.Calls.Load(); c != tt.calls {
				t.Errorf("next model called %d times, want %d", c, tt.calls)
			}
		})
	}
}

// TestModelLimitMovesOn: a model refusing what it cannot do (unsupported:
// dall-e-3 asked for two images) hands the request to the next model in
// the chain, where a bad request ends it; when every model refuses, the
// caller gets invalid_request, not a provider failure to retry.
func TestModelLimitMovesOn(t *testing.T) {
	tests := []struct {
		name      string
		refuses   map[string]providers.ErrorKind // by model
		wantModel string
		wantCode  string
	}{
		{"first model's limit", map[string]providers.ErrorKind{"fast": providers.KindUnsupported}, "strong", ""},
		{"every model's limit", map[string]providers.ErrorKind{"fast": providers.KindUnsupported, "strong": providers.KindUnsupported}, "", gateway.CodeInvalidRequest},
		{"bad request ends it", map[string]providers.ErrorKind{"fast": providers.KindBadRequest}, "", gateway.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, sink := mustGateway(t, func(req providers.Request) error {
				if k, ok := tt.refuses[req.Model]; ok {
					return &providers.Error{Provider: "vendor", Kind: k, Status: 400, Message: "You must provide n=1 for this model."}
				}
				return nil
			})
			o, err := g.Serve(context.Background(), request(gateway.NewIDs().Next(), "acme"))
			if tt.wantCode != "" {
				var ge *gateway.Error
				if !errors.As(err, &ge) || ge.Code != tt.wantCode {
					t.Fatalf("Serve = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil || o.Model != tt.wantModel || !o.Fallback {
				t.Fatalf("Serve = %+v, %v; want served by %s after a fallback", o, err, tt.wantModel)
			}
			d := sink.Events()[len(sink.Events())-1].Value.(*events.Decision)
			if len(d.Attempts) != 2 || d.Attempts[0].Error != string(providers.KindUnsupported) || d.Attempts[1].Status != "ok" {
				t.Errorf("attempts %+v, want fast unsupported then strong ok", d.Attempts)
			}
		})
	}
}
