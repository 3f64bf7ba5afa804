package server_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
)

// TestOpenAIOptions: background, moderation, input_fidelity, style and user
// reach the provider; a transparent background routes only to models that
// can make one, and is a 400 unsupported_option when the pinned model (or
// every model) cannot; input_fidelity high is preserve_subject to routing.
func TestOpenAIOptions(t *testing.T) {
	var seen atomic.Pointer[providers.Request]
	e := mustStart(t, func(s *setup) {
		s.deps.Catalog = []server.Model{{Name: "fast", Provider: "fakeco"}, {Name: "strong", Provider: "bigco", Transparent: true}}
	})
	record := func(req providers.Request) error { seen.Store(&req); return nil }
	e.fast.Fail, e.strong.Fail = record, record

	r := e.post(t, "/v1/images/generations", `{"prompt":"a logo","model":"strong","background":"transparent","moderation":"low","style":"vivid","user":"u-7"}`)
	if r.status != 200 {
		t.Fatalf("transparent on strong = %d %s", r.status, r.body)
	}
	if p := seen.Load(); p.Background != "transparent" || p.Moderation != "low" || p.Style != "vivid" || p.User != "u-7" {
		t.Errorf("provider got background %q moderation %q style %q user %q", p.Background, p.Moderation, p.Style, p.User)
	}
	if rr := e.router.Seen.Load(); !rr.Transparent {
		t.Errorf("router request %+v, want Transparent", rr)
	}
	r = e.post(t, "/v1/images/generations", `{"prompt":"keep the face","input_fidelity":"high"}`)
	if rr := e.router.Seen.Load(); r.status != 200 || !rr.Constraints.PreserveSubject {
		t.Errorf("input_fidelity high = %d, routed with preserve_subject %v, want true", r.status, rr.Constraints.PreserveSubject)
	}

	tests := []struct {
		give, wantCode, wantField string
	}{
		{`{"prompt":"x","model":"fast","background":"transparent"}`, "unsupported_option", "background"},
		{`{"prompt":"x","background":"transparent","output_format":"jpeg"}`, "invalid_field", "background"},
		{`{"prompt":"x","background":"green"}`, "invalid_field", "background"},
		{`{"prompt":"x","moderation":"off"}`, "invalid_field", "moderation"},
		{`{"prompt":"x","input_fidelity":"max"}`, "invalid_field", "input_fidelity"},
		{`{"prompt":"x","style":"oil"}`, "invalid_field", "style"},
	}
	for _, tt := range tests {
		r := e.post(t, "/v1/images/generations", tt.give)
		var body struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		_ = json.Unmarshal(r.body, &body)
		if r.status != 400 || body.Error.Code != tt.wantCode || body.Error.Field != tt.wantField {
			t.Errorf("POST %s = %d %s, want 400 %s on %s", tt.give, r.status, r.body, tt.wantCode, tt.wantField)
		}
	}

	none := mustStart(t, nil) // no model of its catalog can
	if r := none.post(t, "/v1/images/generations", `{"prompt":"x","background":"transparent"}`); r.status != 400 {
		t.Errorf("transparent with no capable model = %d %s, want 400 unsupported_option", r.status, r.body)
	}
}

// TestImageCountLimits: n over a model's max_images is a 400
// unsupported_option on n when the pinned model, or every model, cannot
// make that many in one request; unpinned, the router is told n and
// leaves the limited models out.
func TestImageCountLimits(t *testing.T) {
	e := mustStart(t, func(s *setup) {
		s.deps.Catalog = []server.Model{{Name: "fast", Provider: "fakeco", MaxImages: 1}, {Name: "strong", Provider: "bigco", MaxImages: 4}}
	})
	if r := e.post(t, "/v1/images/generations", `{"prompt":"x","n":3}`); r.status != 200 {
		t.Errorf("n=3 unpinned = %d %s, want 200 (strong makes 4)", r.status, r.body)
	}
	if rr := e.router.Seen.Load(); rr.N != 3 {
		t.Errorf("router request n = %d, want 3", rr.N)
	}
	if r := e.post(t, "/v1/images/generations", `{"prompt":"x","model":"strong","n":4}`); r.status != 200 {
		t.Errorf("n=4 on strong = %d %s, want 200", r.status, r.body)
	}
	for _, give := range []string{`{"prompt":"x","model":"fast","n":2}`, `{"prompt":"x","model":"strong","n":5}`, `{"prompt":"x","n":5}`} {
		r := e.post(t, "/v1/images/generations", give)
		var body struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		_ = json.Unmarshal(r.body, &body)
		if r.status != 400 || body.Error.Code != "unsupported_option" || body.Error.Field != "n" {
			t.Errorf("POST %s = %d %s, want 400 unsupported_option on n", give, r.status, r.body)
		}
	}
}
