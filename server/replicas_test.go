package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/redisstate/redislocal"
	"github.com/routelab/routelab/redisstate/redistest"
	"github.com/routelab/routelab/server"
)

// mustStartReplica starts a server whose state is shared through srv, as
// one of two replicas; edit adjusts the setup as in mustStart. Replicas
// started with the same keys see the same key ids, as replicas following
// the keys topic do.
func mustStartReplica(t *testing.T, srv *redislocal.Server, keys *server.MemKeys, edit func(*setup)) *env {
	t.Helper()
	return mustStart(t, func(s *setup) {
		if keys != nil {
			s.deps.Keys = keys
		}
		st, err := redisstate.Open(context.Background(), redisstate.Options{URL: srv.URL(), Registry: s.deps.Registry, PingEvery: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		s.gwDeps.Caps, s.gwDeps.Chains, s.gwDeps.Limits = st, st, st
		s.deps.Rates, s.deps.Idempotency, s.deps.State = st, st, st
		s.cfg.Replicas, s.gw.Replicas = 2, 2
		if edit != nil {
			edit(s)
		}
	})
}

func (e *env) postKey(t *testing.T, key, body string, header map[string]string) response {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	for k, v := range header {
		h[k] = v
	}
	return do(t, "POST", e.url+"/v1/images", h, strings.NewReader(body))
}

// TestReplicasShareState: two replicas over one redis-server share the
// tenant's daily cap, the key's rate, edit chains (a reset finds the
// cleanest image across both) and Idempotency-Keys, one of them in flight
// on the other replica.
func TestReplicasShareState(t *testing.T) {
	t.Run("daily cap", func(t *testing.T) {
		srv := redistest.Start(t)
		edit := func(s *setup) { s.gw.DailyCaps = map[string]int{"acme": 3} }
		rs := []*env{mustStartReplica(t, srv, nil, edit), mustStartReplica(t, srv, nil, edit)}
		var got []int
		for i := range 6 {
			got = append(got, rs[i%2].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`).status)
		}
		if want := []int{200, 200, 200, 429, 429, 429}; !slices.Equal(got, want) {
			t.Errorf("statuses alternating replicas = %v, want %v", got, want)
		}
	})
	t.Run("per-user and high-resolution caps", func(t *testing.T) {
		srv := redistest.Start(t)
		edit := func(s *setup) { s.gw.DailyCapUser, s.gw.DailyCapHiRes, s.gw.HiResPixels = 2, 1, 10_000 }
		rs := []*env{mustStartReplica(t, srv, nil, edit), mustStartReplica(t, srv, nil, edit)}
		tests := []struct {
			replica int
			body    string
			want    int
		}{
			{0, `{"prompt":"x","size":"128x128","user":"ann"}`, 200}, // high-res (16,384 px): ann's one
			{1, `{"prompt":"x","size":"128x128","user":"ann"}`, 429}, // her high-res cap, on the other replica
			{1, `{"prompt":"x","size":"64x64","user":"ann"}`, 200},   // standard: her second image
			{0, `{"prompt":"x","size":"64x64","user":"ann"}`, 429},   // her daily cap
			{0, `{"prompt":"x","size":"64x64","user":"bob"}`, 200},   // another user
			{1, `{"prompt":"x","size":"64x64"}`, 200},                // no user: no user caps
		}
		for i, tt := range tests {
			r := rs[tt.replica].post(t, "/v1/images", tt.body)
			if r.status != tt.want || (tt.want == 429 && r.errorCode() != "daily_cap_reached") {
				t.Errorf("request %d on replica %d %s = %d %s, want %d", i, tt.replica+1, tt.body, r.status, r.errorCode(), tt.want)
			}
		}
	})
	t.Run("rate", func(t *testing.T) {
		srv := redistest.Start(t)
		edit := func(s *setup) { s.cfg.RatePerSec, s.cfg.RateBurst = 0.001, 3 }
		keys := server.NewMemKeys()
		if _, err := keys.Insert(context.Background(), "acme", "test", "rl_testkey"); err != nil {
			t.Fatal(err)
		}
		rs := []*env{mustStartReplica(t, srv, keys, edit), mustStartReplica(t, srv, keys, edit)}
		var got []int
		for i := range 4 {
			got = append(got, rs[i%2].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`).status)
		}
		if want := []int{200, 200, 200, 429}; !slices.Equal(got, want) {
			t.Errorf("statuses alternating replicas with a burst of 3 = %v, want %v", got, want)
		}
	})
	t.Run("edit chain", func(t *testing.T) {
		srv := redistest.Start(t)
		rs := []*env{mustStartReplica(t, srv, nil, nil), mustStartReplica(t, srv, nil, nil)}
		for _, e := range rs {
			e.router.EditDepthMax = 3
		}
		parent := decodeNative(t, rs[0].post(t, "/v1/images", `{"prompt":"a cat","size":"64x64"}`)).ID
		var resets []bool
		for i := range 4 {
			e := rs[(i+1)%2] // each edit on the replica that did not make its parent
			got := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"make it blue","mode":"edit","size":"64x64","parent_id":"`+parent+`"}`))
			resets = append(resets, got.Reset)
			parent = got.ID
		}
		if want := []bool{false, false, true, false}; strings.Join(boolStrings(resets), ",") != strings.Join(boolStrings(want), ",") {
			t.Errorf("resets = %v, want %v", resets, want)
		}
		other := mustStart(t, nil) // not sharing: the parent is unknown there
		if r := other.post(t, "/v1/images", `{"prompt":"x","mode":"edit","parent_id":"`+parent+`"}`); r.status != 400 || r.errorCode() != "parent_not_found" {
			t.Errorf("parent on a server outside the store = %d %s", r.status, r.errorCode())
		}
	})
	t.Run("edit chain asked of the other replicas", func(t *testing.T) {
		srv := redistest.Start(t)
		dir, err := redisstate.Open(context.Background(), redisstate.Options{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dir.Close() })
		var rs []*env
		for range 2 {
			peers := &server.ChainPeers{}
			e := mustStartReplica(t, srv, nil, func(s *setup) {
				s.gwDeps.Chains = &server.PeerChains{Peers: peers, Directory: s.gwDeps.Limits.(*redisstate.Store)}
			})
			peers.SelfURL, peers.Token = e.adminURL, e.admin
			if err := dir.Announce(context.Background(), e.adminURL, time.Minute); err != nil {
				t.Fatal(err)
			}
			rs = append(rs, e)
		}
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = rc.Close() })
		chainKeys := func() int {
			ks, err := rc.Keys(context.Background(), "*chain*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return len(ks)
		}
		parent := decodeNative(t, rs[0].post(t, "/v1/images", `{"prompt":"a cat","size":"64x64"}`)).ID
		refs := make(chan int, 2)
		for _, e := range rs {
			e.fast.Fail = func(req providers.Request) error { refs <- len(req.References); return nil }
		}
		// each edit on the replica that did not make its parent, twice
		for i := range 2 {
			got := decodeNative(t, rs[(i+1)%2].post(t, "/v1/images", `{"prompt":"blue","mode":"edit","size":"64x64","parent_id":"`+parent+`"}`))
			if n := <-refs; n != 1 {
				t.Errorf("edit %d's provider call had %d references, want 1: the parent's image from its replica", i, n)
			}
			parent = got.ID
		}
		// Public port: no chain nodes.
		if r := do(t, "GET", rs[0].url+"/admin/chains/"+parent+"/image", map[string]string{"Authorization": "Bearer " + rs[0].admin}, nil); r.status == 200 {
			t.Errorf("chain node on the public port = %d, want refused", r.status)
		}
		if n := chainKeys(); n != 0 {
			t.Errorf("%d chain keys in the store, want none: nodes stay on their replica", n)
		}
		if r := rs[0].post(t, "/v1/images", `{"prompt":"blue","mode":"edit","size":"64x64","parent_id":"req_nowhere"}`); r.status != 400 || r.errorCode() != "parent_not_found" {
			t.Errorf("edit of a parent no replica holds = %d %s, want 400 parent_not_found", r.status, r.errorCode())
		}
	})
	t.Run("idempotency", func(t *testing.T) {
		srv := redistest.Start(t)
		rs := []*env{mustStartReplica(t, srv, nil, nil), mustStartReplica(t, srv, nil, nil)}
		ik := map[string]string{"Idempotency-Key": "k1"}
		body := `{"prompt":"a kite","size":"64x64"}`
		block := make(chan struct{})
		rs[0].fast.Block = block
		first := make(chan response, 1)
		go func() { first <- rs[0].postKey(t, rs[0].key, body, ik) }()
		waitMetric(t, rs[0], `routelab_serve_provider_in_flight{provider="fakeco"} 1`)
		second := make(chan response, 1)
		go func() { second <- rs[1].postKey(t, rs[1].key, body, ik) }()
		close(block)
		r1, r2 := <-first, <-second
		id1, id2 := r1.header.Get("x-routelab-request-id"), r2.header.Get("x-routelab-request-id")
		if r1.status != 200 || r2.status != 200 || id1 != id2 || r2.header.Get("x-routelab-idempotent-replay") != "true" {
			t.Errorf("same key on two replicas: %d %s, %d %s (replay %q); want one request id, the second a replay",
				r1.status, id1, r2.status, id2, r2.header.Get("x-routelab-idempotent-replay"))
		}
		if calls := rs[0].fast.Calls.Load() + rs[1].fast.Calls.Load(); calls != 1 {
			t.Errorf("provider calls = %d, want 1", calls)
		}
		if r := rs[1].postKey(t, rs[1].key, `{"prompt":"another","size":"64x64"}`, ik); r.status != 409 || r.errorCode() != "idempotency_key_reused" {
			t.Errorf("key reused with another body on the other replica = %d %s, want 409", r.status, r.errorCode())
		}
	})
}

// TestReplicasStoreDown: with the shared store stopped, each part takes
// its chosen fallback: rates this replica's share, daily caps 503
// state_unavailable, idempotency and edit chains this replica only; the
// replica stays ready and says the store is degraded; each fallback is
// counted.
func TestReplicasStoreDown(t *testing.T) {
	start := func(t *testing.T, edit func(*setup)) []*env {
		srv := redistest.Start(t)
		rs := []*env{mustStartReplica(t, srv, nil, edit), mustStartReplica(t, srv, nil, edit)}
		if err := srv.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, e := range rs {
			waitReady(t, e, `"degraded":["state_store"]`)
		}
		return rs
	}
	t.Run("readiness", func(t *testing.T) {
		rs := start(t, nil)
		r := do(t, "GET", rs[0].adminURL+"/readyz", nil, nil)
		var body struct {
			Status   string
			Degraded map[string]map[string]string
		}
		_ = json.Unmarshal(r.body, &body)
		if r.status != 200 || body.Status != "ready" || body.Degraded["state_store"]["daily_cap"] == "" {
			t.Errorf("admin /readyz with the store down = %d %s, want ready with the state store's fallbacks", r.status, r.body)
		}
	})
	t.Run("daily cap fails closed", func(t *testing.T) {
		rs := start(t, func(s *setup) { s.gw.DailyCaps = map[string]int{"acme": 100} })
		r := rs[0].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
		if r.status != 503 || r.errorCode() != "state_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("capped tenant with the store down = %d %s, want 503 state_unavailable with Retry-After", r.status, r.errorCode())
		}
		if _, err := rs[0].keys.Insert(context.Background(), "free", "test", "rl_freekey"); err != nil {
			t.Fatal(err)
		}
		if r := rs[0].postKey(t, "rl_freekey", `{"prompt":"x","size":"64x64"}`, nil); r.status != 200 {
			t.Errorf("tenant without a cap with the store down = %d %s, want 200", r.status, r.errorCode())
		}
		waitMetric(t, rs[0], `routelab_state_fallback_total{part="daily_cap"} 1`)
	})
	t.Run("rate falls back to the replica's share", func(t *testing.T) {
		rs := start(t, func(s *setup) { s.cfg.RatePerSec, s.cfg.RateBurst = 0.001, 4 })
		var got []int
		for range 3 {
			got = append(got, rs[0].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`).status)
		}
		if want := []int{200, 200, 429}; !slices.Equal(got, want) {
			t.Errorf("statuses on one replica of two with a burst of 4 and the store down = %v, want %v", got, want)
		}
		waitMetric(t, rs[0], `routelab_state_fallback_total{part="rate"} 3`)
	})
	t.Run("idempotency fails open", func(t *testing.T) {
		rs := start(t, nil)
		ik := map[string]string{"Idempotency-Key": "k"}
		for i := range 2 {
			r := rs[0].postKey(t, rs[0].key, `{"prompt":"x","size":"64x64"}`, ik)
			if r.status != 200 || r.header.Get("x-routelab-idempotent-replay") != "" {
				t.Errorf("request %d with a key and the store down = %d (replay %q), want 200 run again", i, r.status, r.header.Get("x-routelab-idempotent-replay"))
			}
		}
		waitMetric(t, rs[0], `routelab_state_fallback_total{part="idempotency"} 2`)
	})
	t.Run("edit chains fail open to the replica", func(t *testing.T) {
		rs := start(t, nil)
		parent := decodeNative(t, rs[0].post(t, "/v1/images", `{"prompt":"a cat","size":"64x64"}`)).ID
		if r := rs[0].post(t, "/v1/images", `{"prompt":"blue","mode":"edit","size":"64x64","parent_id":"`+parent+`"}`); r.status != 200 {
			t.Errorf("edit on the replica that made the parent, store down = %d %s, want 200", r.status, r.errorCode())
		}
		if r := rs[1].post(t, "/v1/images", `{"prompt":"blue","mode":"edit","size":"64x64","parent_id":"`+parent+`"}`); r.status != 400 || r.errorCode() != "parent_not_found" {
			t.Errorf("edit on the other replica, store down = %d %s, want 400 parent_not_found", r.status, r.errorCode())
		}
		waitMetric(t, rs[1], `routelab_state_fallback_total{part="chain"} 1`)
	})
}

// waitReady polls the public /readyz until its body has want.
func waitReady(t *testing.T, e *env, want string) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for time.Now().Before(deadline) {
		if r := do(t, "GET", e.url+"/readyz", nil, nil); strings.Contains(string(r.body), want) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("/readyz never showed %s", want)
}
