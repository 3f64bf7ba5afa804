package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

func TestFallbackAndEscalation(t *testing.T) {
	tests := []struct {
		name          string
		fastFails     bool
		fastQAFails   bool
		strongQAFails bool
		budget        float64
		wantModel     string
		wantStatuses  []string
		wantEscalated bool
		wantFallback  bool
		wantQAPass    bool
	}{
		{name: "ok", wantModel: "fast", wantStatuses: []string{"ok"}, wantQAPass: true},
		{name: "provider down falls back", fastFails: true, wantModel: "strong", wantStatuses: []string{"error", "ok"}, wantFallback: true, wantQAPass: true},
		{name: "QA fail escalates", fastQAFails: true, wantModel: "strong", wantStatuses: []string{"qa_fail", "ok"}, wantEscalated: true, wantQAPass: true},
		{name: "QA fail without budget keeps best", fastQAFails: true, budget: 0.02, wantModel: "fast", wantStatuses: []string{"qa_fail"}},
		{name: "all QA fail keeps best", fastQAFails: true, strongQAFails: true, wantModel: "fast", wantStatuses: []string{"qa_fail", "qa_fail"}, wantEscalated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t, nil)
			if tt.fastFails {
				e.fast.Fail = func(providers.Request) error {
					return &providers.Error{Provider: "fake-fast", Kind: providers.KindUnavailable, Status: 503, Message: "down"}
				}
			}
			e.qa.Fail = map[string]bool{}
			if tt.fastQAFails {
				e.qa.Fail[gatewaytest.ColorKey(red)] = true
			}
			if tt.strongQAFails {
				e.qa.Fail[gatewaytest.ColorKey(blue)] = true
			}
			body := `{"prompt":"cat","size":"64x64"}`
			if tt.budget > 0 {
				body = `{"prompt":"cat","size":"64x64","constraints":{"max_cost_usd":0.02}}`
				e.router.Chain = []string{"strong"}
				e.router.Costs = map[string]float64{"fast": 0.01, "strong": 0.04}
			}
			r := e.post(t, "/v1/images", body)
			got := decodeNative(t, r)
			var statuses []string
			for _, a := range got.Attempts {
				statuses = append(statuses, a.Status)
			}
			if got.Model != tt.wantModel || strings.Join(statuses, ",") != strings.Join(tt.wantStatuses, ",") ||
				got.Escalated != tt.wantEscalated || got.Fallback != tt.wantFallback || got.QAPass != tt.wantQAPass {
				t.Errorf("got model %s attempts %v escalated %v fallback %v qa %v, want %s %v %v %v %v",
					got.Model, statuses, got.Escalated, got.Fallback, got.QAPass,
					tt.wantModel, tt.wantStatuses, tt.wantEscalated, tt.wantFallback, tt.wantQAPass)
			}
			if h := r.header.Get("x-routelab-escalated"); h != map[bool]string{true: "true", false: "false"}[tt.wantEscalated] {
				t.Errorf("x-routelab-escalated = %q", h)
			}
		})
	}
}

func TestProviderFailures(t *testing.T) {
	tests := []struct {
		name     string
		kind     providers.ErrorKind
		wantHTTP int
		wantCode string
	}{
		{"all down", providers.KindUnavailable, 502, "provider_failed"},
		{"content policy is final", providers.KindContentPolicy, 400, "content_policy"},
		{"all time out", providers.KindTimeout, 504, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t, nil)
			fail := func(providers.Request) error { return &providers.Error{Provider: "x", Kind: tt.kind, Message: "no"} }
			e.fast.Fail, e.strong.Fail = fail, fail
			r := e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64"}`)
			if r.status != tt.wantHTTP || r.errorCode() != tt.wantCode {
				t.Errorf("status = %d %s, want %d %s", r.status, r.errorCode(), tt.wantHTTP, tt.wantCode)
			}
			if tt.kind == providers.KindContentPolicy && e.strong.Calls.Load() != 0 {
				t.Errorf("content policy refusal fell back to another model")
			}
			ctx, cancel := context.WithTimeout(context.Background(), eventWait)
			defer cancel()
			ev, ok := e.events.Next(ctx, events.TopicDecisions)
			if !ok || ev.Value.(*events.Decision).Status != "error" || ev.Value.(*events.Decision).ErrorCode != tt.wantCode {
				t.Errorf("decision event = %+v, want status error code %s", ev.Value, tt.wantCode)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	e := mustStart(t, nil)
	post := func(key, body string) response {
		return do(t, "POST", e.url+"/v1/images", map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": "application/json", "Idempotency-Key": key}, strings.NewReader(body))
	}
	first := post("k1", `{"prompt":"cat","size":"64x64"}`)
	second := post("k1", `{"prompt":"cat","size":"64x64"}`)
	if first.status != 200 || second.status != 200 || string(first.body) != string(second.body) {
		t.Fatalf("replay = %d/%d, bodies equal %v", first.status, second.status, string(first.body) == string(second.body))
	}
	if a, b := first.header.Get("x-routelab-request-id"), second.header.Get("x-routelab-request-id"); a != b {
		t.Errorf("replayed request id %s, want %s", b, a)
	}
	if n := e.fast.Calls.Load(); n != 1 {
		t.Errorf("provider calls = %d, want 1", n)
	}
	if r := post("k1", `{"prompt":"dog","size":"64x64"}`); r.status != 409 || r.errorCode() != "idempotency_key_reused" {
		t.Errorf("same key, other body = %d %s, want 409", r.status, r.errorCode())
	}
	// Concurrent duplicates: one model call.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := post("k2", `{"prompt":"bird","size":"64x64"}`); r.status != 200 {
				t.Errorf("concurrent = %d", r.status)
			}
		}()
	}
	wg.Wait()
	if n := e.fast.Calls.Load(); n != 2 {
		t.Errorf("provider calls = %d after concurrent duplicates, want 2", n)
	}
}

// TestIdempotencyAfterPanic: a request that panics mid-serve does not
// leave its Idempotency-Key in flight; the next request with the key runs
// (as after any failed first request) instead of waiting forever.
func TestIdempotencyAfterPanic(t *testing.T) {
	e := mustStart(t, nil)
	var panicked atomic.Bool
	e.fast.Fail = func(providers.Request) error {
		if !panicked.Swap(true) {
			panic("provider bug")
		}
		return nil
	}
	post := func() response {
		return do(t, "POST", e.url+"/v1/images", map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": "application/json", "Idempotency-Key": "kp"}, strings.NewReader(`{"prompt":"cat","size":"64x64"}`))
	}
	if r := post(); r.status != 500 {
		t.Fatalf("panicking request = %d, want 500", r.status)
	}
	got := make(chan response, 1)
	go func() { got <- post() }()
	select {
	case r := <-got:
		if r.status != 200 {
			t.Errorf("retry after the panic = %d %s, want 200", r.status, r.errorCode())
		}
	case <-time.After(time.Minute):
		t.Fatal("the retry waited a minute on a key the panicked request left in flight")
	}
}

func TestLimits(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		// Refill is slow enough that no token comes back within the test.
		e := mustStart(t, func(s *setup) { s.cfg.RatePerSec, s.cfg.RateBurst = 0.001, 2 })
		for i := range 2 {
			if r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`); r.status != 200 {
				t.Fatalf("request %d = %d", i, r.status)
			}
		}
		r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
		if r.status != 429 || r.errorCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
			t.Errorf("third = %d %s Retry-After %q, want 429 rate_limited with Retry-After", r.status, r.errorCode(), r.header.Get("Retry-After"))
		}
		// Feedback shares the key's bucket: it is no free channel.
		r = e.post(t, "/v1/feedback", `{"request_id":"req_00000000000000000000000000000000","signal":"thumbs_up"}`)
		if r.status != 429 || r.errorCode() != "rate_limited" {
			t.Errorf("feedback past the rate = %d %s, want 429 rate_limited", r.status, r.errorCode())
		}
	})
	t.Run("daily cap", func(t *testing.T) {
		e := mustStart(t, func(s *setup) { s.gw.DailyCap = 3 })
		if r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64","n":2}`); r.status != 200 {
			t.Fatalf("first = %d", r.status)
		}
		r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64","n":2}`)
		if r.status != 429 || r.errorCode() != "daily_cap_reached" || r.header.Get("Retry-After") == "" {
			t.Errorf("over cap = %d %s, want 429 daily_cap_reached", r.status, r.errorCode())
		}
		if r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64","n":1}`); r.status != 200 {
			t.Errorf("within cap = %d, want 200", r.status)
		}
		// Over the cap, the references are never fetched or decoded: the
		// cap answers first (a reference that does not decode would be 400).
		bad := base64.StdEncoding.EncodeToString([]byte("not an image at all"))
		r = e.post(t, "/v1/images", `{"prompt":"x","size":"64x64","mode":"edit","references":["`+bad+`"]}`)
		if r.status != 429 || r.errorCode() != "daily_cap_reached" {
			t.Errorf("over cap with an undecodable reference = %d %s, want 429 daily_cap_reached before any decoding", r.status, r.errorCode())
		}
	})
	t.Run("per-tenant daily cap", func(t *testing.T) {
		cases := []struct {
			name      string
			def, acme int
			allowed   int // images of n=1 requests served before the cap
		}{
			{"override below default", 10, 1, 1},
			{"override lifts the default", 1, 3, 3},
			{"zero override is unlimited", 1, 0, 5},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := mustStart(t, func(s *setup) {
					s.gw.DailyCap, s.gw.DailyCaps = tc.def, map[string]int{"acme": tc.acme}
				})
				for i := range 5 {
					r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
					want := 200
					if i >= tc.allowed {
						want = 429
					}
					if r.status != want {
						t.Fatalf("request %d = %d %s, want %d", i+1, r.status, r.errorCode(), want)
					}
				}
			})
		}
	})
	t.Run("shed", func(t *testing.T) {
		block := make(chan struct{})
		e := mustStart(t, func(s *setup) {
			s.gw.ProviderConcurrency, s.gw.ProviderQueue, s.gw.QueueWait = 1, 1, time.Minute
		})
		e.fast.Block = block
		e.router.Chain = nil
		results := make(chan response, 2)
		go func() { results <- e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`) }()
		waitMetric(t, e, `routelab_serve_provider_in_flight{provider="fakeco"} 1`)
		go func() { results <- e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`) }()
		waitMetric(t, e, `routelab_serve_provider_queued{provider="fakeco"} 1`)
		r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
		if r.status != 503 || r.errorCode() != "overloaded" || r.header.Get("Retry-After") == "" {
			t.Errorf("over queue = %d %s, want 503 overloaded with Retry-After", r.status, r.errorCode())
		}
		close(block)
		for range 2 {
			if r := <-results; r.status != 200 {
				t.Errorf("admitted = %d, want 200", r.status)
			}
		}
	})
}

func TestURLResponseAndFeedback(t *testing.T) {
	e := mustStart(t, func(s *setup) { s.deps.Blobs = mustBlobs(t) })
	got := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64","response_format":"url"}`))
	if len(got.Images) != 1 || got.Images[0].URL == "" || got.Images[0].B64JSON != "" {
		t.Fatalf("images = %+v, want one url", got.Images)
	}
	r := do(t, "GET", got.Images[0].URL, nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "image/png" {
		t.Errorf("GET link = %d %s", r.status, r.header.Get("Content-Type"))
	}
	tampered := strings.Replace(got.Images[0].URL, "sig=", "sig=0", 1)
	if r := do(t, "GET", tampered, nil, nil); r.status != 403 {
		t.Errorf("tampered link = %d, want 403", r.status)
	}
	fb := e.post(t, "/v1/feedback", `{"request_id":"`+got.ID+`","signal":"thumbs_up","comment":"nice"}`)
	if fb.status != 202 {
		t.Fatalf("feedback = %d %s", fb.status, fb.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	ev, ok := e.events.Next(ctx, events.TopicSignals)
	if !ok {
		t.Fatal("no signal event")
	}
	s := ev.Value.(*events.Signal)
	if s.RequestID != got.ID || s.Signal != "thumbs_up" || s.Value != 1 || s.Tenant != "acme" || ev.Key != got.ID {
		t.Errorf("signal = %+v", s)
	}
	m := do(t, "GET", e.url+"/v1/models", map[string]string{"Authorization": "Bearer " + e.key}, nil)
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	_ = json.Unmarshal(m.body, &models)
	if m.status != 200 || len(models.Data) != 3 || models.Data[0].ID != "auto" {
		t.Errorf("models = %d %s", m.status, m.body)
	}
}

func TestSampling(t *testing.T) {
	blobs := mustBlobs(t)
	e := mustStart(t, func(s *setup) {
		s.deps.Blobs = blobs
		s.gw.SampleRate = 0
		s.gw.SampleRates = map[string]float64{"fast|standard": 1, "fast|premium": 0}
	})
	for _, q := range []string{"standard", "premium"} {
		got := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64","quality":"`+q+`"}`))
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		ev, ok := e.events.Next(ctx, events.TopicDecisions)
		cancel()
		if !ok {
			t.Fatal("no decision")
		}
		d := ev.Value.(*events.Decision)
		want := q == "standard"
		if d.Sampled != want || (d.BlobKey != "") != want {
			t.Errorf("%s: sampled %v blob %q, want sampled %v", q, d.Sampled, d.BlobKey, want)
		}
		if want {
			b, err := blobs.Get(context.Background(), d.BlobKey)
			img, _ := base64.StdEncoding.DecodeString(got.Images[0].B64JSON)
			if err != nil || string(b) != string(img) {
				t.Errorf("blob %s: %v, equal to response image %v", d.BlobKey, err, string(b) == string(img))
			}
		}
	}
}

func TestEditChainReset(t *testing.T) {
	e := mustStart(t, nil)
	e.router.EditDepthMax = 3
	e.qa.Fail = map[string]bool{}
	parent := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"a cat","size":"64x64"}`)).ID
	var resets []bool
	wantDepth := []int{1, 2, 3, 2} // the third edit resets to depth 1
	for i := range 4 {
		got := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"make it blue","mode":"edit","size":"64x64","parent_id":"`+parent+`"}`))
		seen := e.router.Seen.Load()
		if seen.EditDepth != wantDepth[i] {
			t.Errorf("edit %d routed at depth %d, want %d", i, seen.EditDepth, wantDepth[i])
		}
		resets = append(resets, got.Reset)
		parent = got.ID
	}
	if want := []bool{false, false, true, false}; strings.Join(boolStrings(resets), ",") != strings.Join(boolStrings(want), ",") {
		t.Errorf("resets = %v, want %v", resets, want)
	}
	other := mustStart(t, nil)
	if r := other.post(t, "/v1/images", `{"prompt":"x","mode":"edit","parent_id":"`+parent+`"}`); r.status != 400 || r.errorCode() != "parent_not_found" {
		t.Errorf("parent on another server = %d %s", r.status, r.errorCode())
	}
}

func boolStrings(b []bool) []string {
	out := make([]string, len(b))
	for i, v := range b {
		out[i] = map[bool]string{true: "t", false: "f"}[v]
	}
	return out
}

func TestReferenceURL(t *testing.T) {
	img := pngBytes(t, 3000, 20)
	var hits sync.Map
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		switch r.URL.Path {
		case "/a.png":
			w.Write(img)
		case "/redirect":
			http.Redirect(w, r, "http://169.254.169.254/latest", http.StatusFound)
		case "/big":
			w.Write(make([]byte, 2<<20))
		case "/404":
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	e := mustStart(t, func(s *setup) {
		s.cfg.RefAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		s.cfg.RefMaxSide = 512
	})
	got := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"cat","mode":"edit","size":"64x64","references":["`+ts.URL+`/a.png"]}`))
	if got.Model != "fast" {
		t.Errorf("model = %s", got.Model)
	}
	tests := []struct {
		path, code string
		status     int
	}{
		{"/redirect", "reference_fetch_failed", 400}, // one answer for every fetch failure (edge_test.go)
		{"/big", "reference_fetch_failed", 400},
		{"/404", "reference_fetch_failed", 400},
	}
	for _, tt := range tests {
		r := e.post(t, "/v1/images", `{"prompt":"cat","references":[{"url":"`+ts.URL+tt.path+`"}]}`)
		if r.status != tt.status || r.errorCode() != tt.code {
			t.Errorf("%s = %d %s, want %d %s", tt.path, r.status, r.errorCode(), tt.status, tt.code)
		}
	}
	// Not allow-listed: loopback refused before any request is made.
	strict := mustStart(t, nil)
	hits.Delete("/a.png")
	r := strict.post(t, "/v1/images", `{"prompt":"cat","references":["`+ts.URL+`/a.png"]}`)
	if _, hit := hits.Load("/a.png"); r.status != 400 || r.errorCode() != "reference_url_forbidden" || hit {
		t.Errorf("loopback without allow-list = %d %s (server hit %v)", r.status, r.errorCode(), hit)
	}
}

// waitMetric polls /metrics until it has line.
func waitMetric(t *testing.T, e *env, line string) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for time.Now().Before(deadline) {
		if r := do(t, "GET", e.adminURL+"/metrics", nil, nil); strings.Contains(string(r.body), line) {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("metrics never showed %s", line)
}
