package redisstate_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/redisstate/redislocal"
	"github.com/routelab/routelab/redisstate/redistest"
)

// eventWait bounds waits for an event only so a hang fails.
const eventWait = time.Minute

func mustOpen(t testing.TB, srv *redislocal.Server, o redisstate.Options) *redisstate.Store {
	t.Helper()
	o.URL = srv.URL()
	s, err := redisstate.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestCapsAtomicAcrossClients: two stores (two replicas) booking against
// the same counters from many goroutines book exactly the limit, and a
// request over any one counter books none of them.
func TestCapsAtomicAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	// Counters expire an hour after their day: today's.
	today := time.Now().Unix() / 86400
	cs := []gateway.Counter{{Key: "tenant:probe", Limit: 10}}
	var mu sync.Mutex
	booked := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			idx, err := s.Reserve(ctx, today, cs, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if idx < 0 {
				mu.Lock()
				booked++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if booked != 10 {
		t.Errorf("booked %d of 40 against a cap of 10 from two clients, want 10", booked)
	}
	// Two counters: the second is full, so the first gains nothing.
	two := []gateway.Counter{{Key: "user:probe:u", Limit: 5}, {Key: "tenant:probe", Limit: 10}}
	if idx, err := a.Reserve(ctx, today, two, 1); err != nil || idx != 1 {
		t.Fatalf("Reserve over the second counter = %d, %v; want 1", idx, err)
	}
	for i := range 5 {
		if idx, err := a.Reserve(ctx, today+1, two[:1], 1); err != nil || idx != -1 {
			t.Fatalf("user counter booking %d = %d, %v; want -1 (nothing booked before)", i, idx, err)
		}
	}
	// Release gives back; a new day starts at zero.
	if err := b.Release(ctx, today, cs, 3); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{-1, -1, -1, 0} {
		if idx, _ := a.Reserve(ctx, today, cs, 1); idx != want {
			t.Errorf("after releasing 3, booking %d = %d, want %d", i, idx, want)
		}
	}
}

// TestRateSharedByClients: the burst is shared by both clients, and the
// refusal says how long to wait.
func TestRateSharedByClients(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	r := gateway.Rate{PerSec: 0.01, Burst: 4} // no refill within the test
	admitted := 0
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		ok, wait, err := s.Allow(ctx, "key:k1", r)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			admitted++
		} else if wait < 10*time.Second {
			t.Errorf("refusal %d says wait %v; want about 100 s (1/rate)", i, wait)
		}
	}
	if admitted != 4 {
		t.Errorf("admitted %d of 8 with a burst of 4 over two clients, want 4", admitted)
	}
	if ok, _, _ := a.Allow(ctx, "key:k2", r); !ok {
		t.Error("another key shares the first key's limit")
	}
	// A block (gateway's leases) takes n admissions at once, or none.
	var got []bool
	for _, n := range []int{2, 2, 2, 1} {
		ok, _, err := b.AllowN(ctx, "key:k3", r, n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ok)
	}
	if want := []bool{true, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("AllowN 2, 2, 2, 1 with a burst of 4 = %v, want %v", got, want)
	}
}

// TestChainsShared: a node written by one client is read whole by the
// other; an unknown id is not found.
func TestChainsShared(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	want := gateway.ChainNode{ID: "req_1", Tenant: "acme", Parent: "req_0", Depth: 2, Score: 0.75, Model: "m", Root: true, Image: bytes.Repeat([]byte{1, 2, 3}, 1000)}
	if err := a.PutChain(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.Chain(ctx, "req_1")
	if err != nil || !ok {
		t.Fatalf("Chain(req_1) = %v, %v", ok, err)
	}
	if got.Tenant != want.Tenant || got.Parent != want.Parent || got.Depth != 2 || got.Score != 0.75 || got.Model != "m" || !got.Root || !bytes.Equal(got.Image, want.Image) {
		t.Errorf("Chain(req_1) = %+v, want %+v", got, want)
	}
	if _, ok, err := b.Chain(ctx, "req_unknown"); ok || err != nil {
		t.Errorf("Chain(unknown) = %v, %v; want not found", ok, err)
	}
}

// TestIdempotencyShared: the first claim owns the key; a second client
// with the same request waits for it and gets its response; another body
// gets the first sum; a failure frees the key for the next claim.
func TestIdempotencyShared(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	sum, other := [32]byte{1}, [32]byte{2}
	c1, err := a.Begin(ctx, "acme\x00k", sum)
	if err != nil || !c1.Owner {
		t.Fatalf("first Begin = %+v, %v; want owner", c1, err)
	}
	got := make(chan error, 1)
	go func() {
		c2, err := b.Begin(ctx, "acme\x00k", sum)
		switch {
		case err != nil:
			got <- err
		case c2.Owner || string(c2.Resp) != "response":
			got <- errors.New("second Begin did not get the first response: " + string(c2.Resp))
		default:
			got <- nil
		}
	}()
	if c, err := b.Begin(ctx, "acme\x00k", other); err != nil || c.Owner || c.Sum != sum {
		t.Errorf("Begin with another body = %+v, %v; want the first sum", c, err)
	}
	if err := a.Finish(ctx, "acme\x00k", c1, []byte("response")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(eventWait):
		t.Fatal("the waiting Begin never returned")
	}
	f, _ := a.Begin(ctx, "acme\x00f", sum)
	if err := a.Finish(ctx, "acme\x00f", f, nil); err != nil {
		t.Fatal(err)
	}
	if c, err := b.Begin(ctx, "acme\x00f", sum); err != nil || !c.Owner {
		t.Errorf("Begin after a failure = %+v, %v; want a new owner", c, err)
	}
}

// TestStoreDownAndBack: with the server stopped every operation fails with
// gateway.ErrStateUnavailable and Healthy says so; once a server answers
// on the address again the store is healthy and works.
func TestStoreDownAndBack(t *testing.T) {
	dir := t.TempDir()
	srv, err := redislocal.Start(context.Background(), redislocal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, srv, redisstate.Options{PingEvery: 50 * time.Millisecond})
	ctx := context.Background()
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy with the server up: %v", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cs := []gateway.Counter{{Key: "tenant:t", Limit: 1}}
	ops := map[string]func() error{
		"Reserve": func() error { _, err := s.Reserve(ctx, time.Now().Unix()/86400, cs, 1); return err },
		"Allow":   func() error { _, _, err := s.Allow(ctx, "k", gateway.Rate{PerSec: 1, Burst: 1}); return err },
		"PutChain": func() error {
			return s.PutChain(ctx, gateway.ChainNode{ID: "x", Image: []byte{1}})
		},
		"Chain": func() error { _, _, err := s.Chain(ctx, "x"); return err },
		"Begin": func() error { _, err := s.Begin(ctx, "k", [32]byte{}); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, gateway.ErrStateUnavailable) {
			t.Errorf("%s with the server stopped = %v, want ErrStateUnavailable", name, err)
		}
	}
	if s.Healthy() == nil {
		t.Error("Healthy with the server stopped = nil")
	}
	port := srv.Addr[len("127.0.0.1:"):]
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	srv2, err := redislocal.Start(ctx, redislocal.Config{Dir: dir, Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	deadline := time.Now().Add(eventWait)
	for s.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatal("store not healthy again after the server came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if idx, err := s.Reserve(ctx, time.Now().Unix()/86400, cs, 1); err != nil || idx != -1 {
		t.Errorf("Reserve after the server came back = %d, %v", idx, err)
	}
}
