package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
)

// TestPolicyHotSwap pushes and rolls back policies through the admin API
// while requests run: every response is served under one whole policy
// (its header and its decision event agree), and a push is visible to the
// next request (read-your-writes).
func TestPolicyHotSwap(t *testing.T) {
	rules, explore := shippedPolicies(t)
	cat := datasets.MustCatalog()
	live, _, store := seededPolicyStore(t, rules)
	rulesV := live.Policy().Version
	e := mustStart(t, func(s *setup) {
		s.cfg.RatePerSec, s.cfg.RateBurst = 1e9, 1<<30 // load, not the rate limit, is under test
		s.gwDeps.Policy, s.deps.Policy, s.gwDeps.QA = live, store, nil
		s.gwDeps.Providers, s.gwDeps.ProviderOf = map[string]providers.Provider{}, map[string]string{}
		s.deps.Catalog = nil
		for _, m := range cat.Models {
			s.gwDeps.Providers[m.Name] = &gatewaytest.Provider{Model: m.Name, Color: red}
			s.gwDeps.ProviderOf[m.Name] = m.Provider
			s.deps.Catalog = append(s.deps.Catalog, server.Model{Name: m.Name, Provider: m.Provider, Sizes: m.Sizes})
		}
	})
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}
	r := do(t, "POST", e.adminURL+"/admin/policy", admin, strings.NewReader(string(explore)))
	if r.status != 200 {
		t.Fatalf("push = %d %s", r.status, r.body)
	}
	var pushed struct{ Version string }
	_ = json.Unmarshal(r.body, &pushed)
	exploreV := pushed.Version
	if got := e.post(t, "/v1/images", `{"prompt":"x"}`).header.Get("x-routelab-policy"); got != exploreV {
		t.Errorf("request after push served by %q, want %q", got, exploreV)
	}

	stop := make(chan struct{})
	var served atomic.Int64
	var wg sync.WaitGroup
	bodies := sync.Map{} // request id -> policy header
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", e.url+"/v1/images", strings.NewReader(`{"prompt":"a poster that says \"SALE\""}`))
				req.Header.Set("Authorization", "Bearer "+e.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				v := resp.Header.Get("x-routelab-policy")
				if resp.StatusCode != 200 || (v != rulesV && v != exploreV) {
					t.Errorf("status %d policy %q", resp.StatusCode, v)
				}
				bodies.Store(resp.Header.Get("x-routelab-request-id"), v)
				served.Add(1)
			}
		}()
	}
	for i := range 20 {
		path, want := "/admin/policy/rollback", rulesV
		body := "{}"
		if i%2 == 1 {
			path, want, body = "/admin/policy", exploreV, string(explore)
		}
		r := do(t, "POST", e.adminURL+path, admin, strings.NewReader(body))
		if r.status != 200 {
			t.Fatalf("%s = %d %s", path, r.status, r.body)
		}
		g := do(t, "GET", e.adminURL+"/admin/policy", admin, nil)
		var got struct{ Version string }
		_ = json.Unmarshal(g.body, &got)
		if got.Version != want {
			t.Errorf("after %s live = %s, want %s", path, got.Version, want)
		}
	}
	close(stop)
	wg.Wait()
	if served.Load() == 0 {
		t.Fatal("no request served during the swaps")
	}
	// Each decision event names the policy its response header named.
	n := 0
	for _, ev := range e.events.Events() {
		d, ok := ev.Value.(*events.Decision)
		if !ok {
			continue
		}
		if v, ok := bodies.Load(d.RequestID); ok {
			n++
			if v != d.PolicyVersion {
				t.Errorf("request %s: header policy %s, decision %s", d.RequestID, v, d.PolicyVersion)
			}
		}
	}
	if n == 0 {
		t.Error("no decision matched a response")
	}
}

// TestDrain shuts the server down with requests in flight: they finish
// with 200, new work is refused, Shutdown returns once they are done.
func TestDrain(t *testing.T) {
	e := mustStart(t, nil)
	block := make(chan struct{})
	e.fast.Block = block
	const inflight = 8
	results := make(chan int, inflight)
	for range inflight {
		go func() { results <- e.post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`).status }()
	}
	waitMetric(t, e, `routelab_serve_provider_in_flight{provider="fakeco"} 8`)
	// The autoscaler's signal (deploy/serve.yaml) counts them too.
	waitMetric(t, e, `routelab_serve_in_flight_requests 8`)
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	// New connections are refused once the listener closes.
	deadline := time.Now().Add(eventWait)
	for {
		req, _ := http.NewRequest("GET", e.url+"/readyz", nil)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepting connections while draining")
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	default:
	}
	close(block)
	for range inflight {
		if s := <-results; s != 200 {
			t.Errorf("in-flight request = %d, want 200", s)
		}
	}
	if err := <-shut; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v", err)
	}
}

// shippedPolicies returns the rules and explore policy documents datasets ships.
func shippedPolicies(t *testing.T) (rules, explore []byte) {
	t.Helper()
	var err error
	if rules, err = datasets.PolicyFile("rules"); err != nil {
		t.Fatal(err)
	}
	if explore, err = datasets.PolicyFile("explore"); err != nil {
		t.Fatal(err)
	}
	return rules, explore
}

// seededPolicyStore is a policy store on an in-memory log with the shipped
// rules policy live, as serve seeds it on first start.
func seededPolicyStore(t *testing.T, rules []byte) (*gateway.LivePolicy, *server.MemLog, *server.PolicyStore) {
	t.Helper()
	live, log := gateway.NewLivePolicy(nil, nil), server.NewMemLog()
	store := server.NewPolicyStore(live, log)
	if err := store.Seed(context.Background(), rules); err != nil {
		t.Fatal(err)
	}
	return live, log, store
}

// TestShutdownBeforeServe: Shutdown before Serve, or racing with it, still
// ends Serve, which returns nil. The racing rounds cover the window where
// fasthttp has not registered the listener yet and its own shutdown finds
// nothing to stop.
func TestShutdownBeforeServe(t *testing.T) {
	for round := range 40 {
		srv := server.New(slog.New(slog.DiscardHandler), server.Config{}, server.Deps{Registry: prometheus.NewRegistry()})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		served, shut := make(chan error, 1), make(chan error, 1)
		if round == 0 {
			shut <- srv.Shutdown(ctx)
			go func() { served <- srv.Serve(ln) }()
		} else {
			go func() { served <- srv.Serve(ln) }()
			go func() { shut <- srv.Shutdown(ctx) }()
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("round %d: Serve = %v, want nil after Shutdown", round, err)
			}
		case <-time.After(eventWait): // a guard against hanging, not a sync
			t.Fatalf("round %d: Serve still running %v after Shutdown", round, eventWait)
		}
		if err := <-shut; err != nil {
			t.Errorf("round %d: Shutdown = %v", round, err)
		}
		cancel()
	}
}
