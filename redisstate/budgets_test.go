package redisstate_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/redisstate/redislocal"
	"github.com/routelab/routelab/redisstate/redistest"
)

// spendCounters are tenant's day and month counters with budgets of day
// and month µ$ (0: none), alerting at 80%, forgotten a day from now.
func spendCounters(tenant string, period, day, month int64) []gateway.SpendCounter {
	exp := time.Now().Unix() + 86400
	return []gateway.SpendCounter{
		{Key: "month:" + tenant, Period: period, Limit: month, Alert: month * 8 / 10, Expires: exp},
		{Key: "day:" + tenant, Period: period, Limit: day, Alert: day * 8 / 10, Expires: exp},
	}
}

// TestBudgetBookAtomicAcrossClients: two stores (two replicas) booking
// $0.10 from many goroutines against a $1 budget book exactly ten; caps
// and spend are booked together or not at all.
func TestBudgetBookAtomicAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	today := time.Now().Unix() / 86400
	sc := spendCounters("probe", 1, 1_000_000, 0)
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
			idx, _, err := s.Book(ctx, today, nil, 1, sc, 100_000)
			if err != nil {
				t.Error(err)
				return
			}
			if idx < 0 {
				mu.Lock()
				booked++
				mu.Unlock()
			} else if idx != 1 {
				t.Errorf("refused by counter %d, want 1 (the daily budget)", idx)
			}
		}()
	}
	wg.Wait()
	if booked != 10 {
		t.Errorf("booked %d of 40 $0.10 requests against $1 from two clients, want 10", booked)
	}
	if got, err := b.Spent(ctx, sc); err != nil || got[0] != 1_000_000 || got[1] != 1_000_000 {
		t.Errorf("Spent = %v, %v; want $1 on the month and the day", got, err)
	}

	// A full cap books no spend; a full budget books no cap.
	other := spendCounters("other", 1, 100_000, 0)
	caps := []gateway.Counter{{Key: "tenant:other", Limit: 1}}
	if idx, _, err := a.Book(ctx, today, caps, 2, other, 50_000); err != nil || idx != 0 {
		t.Fatalf("Book past the cap = %d, %v; want 0", idx, err)
	}
	if got, _ := a.Spent(ctx, other); got[1] != 0 {
		t.Errorf("spend after a cap refusal = %d µ$, want 0", got[1])
	}
	if idx, _, err := a.Book(ctx, today, caps, 1, other, 150_000); err != nil || idx != 2 {
		t.Fatalf("Book past the budget = %d, %v; want 2 (caps first, then month, day)", idx, err)
	}
	if idx, _, err := a.Book(ctx, today, caps, 1, other, 100_000); err != nil || idx != -1 {
		t.Errorf("Book of the cap's one image and the whole budget = %d, %v; want -1 (nothing booked before)", idx, err)
	}
	// Reached exactly: even a free request is refused.
	if idx, _, err := a.Book(ctx, today, nil, 1, other, 0); err != nil || idx != 1 {
		t.Errorf("Book of $0 on a reached budget = %d, %v; want 1", idx, err)
	}
}

// TestBudgetSettle: a settle moves the counters by the difference between
// actual and estimate (never below zero), and exactly one settle per
// budget and period, from any client, reports the alert.
func TestBudgetSettle(t *testing.T) {
	srv := redistest.Start(t)
	a, b := mustOpen(t, srv, redisstate.Options{}), mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	sc := spendCounters("acme", 7, 1_000_000, 100_000_000)
	if idx, due, err := a.Book(ctx, 0, nil, 1, sc, 500_000); err != nil || idx != -1 || due {
		t.Fatalf("Book of $0.50 = %d, due %v, %v; want booked, no alert due", idx, due, err)
	}
	alerts, err := a.Settle(ctx, sc, 250_000) // actual $0.75 for an estimate of $0.50
	if err != nil || alerts[0] || alerts[1] {
		t.Fatalf("Settle to $0.75 = %v, %v; want no alert", alerts, err)
	}
	var fired []int
	for i := range 6 {
		s := []*redisstate.Store{a, b}[i%2]
		alerts, err := s.Settle(ctx, sc, 10_000) // $0.76 ... $0.81
		if err != nil {
			t.Fatal(err)
		}
		if alerts[0] {
			t.Errorf("settle %d alerted the monthly budget at 0.8%%", i)
		}
		if alerts[1] {
			fired = append(fired, i)
		}
	}
	if len(fired) != 1 || fired[0] != 4 {
		t.Errorf("daily alerts on settles %v, want once, on settle 4 (reaching $0.80)", fired)
	}
	if got, _ := b.Spent(ctx, sc); got[1] != 810_000 {
		t.Errorf("Spent = %v µ$, want 810000", got)
	}
	// The alert has fired: a booking past 80% has none due.
	if idx, due, err := b.Book(ctx, 0, nil, 1, sc, 10_000); err != nil || idx != -1 || due {
		t.Errorf("Book past 80%% after the alert = %d, due %v, %v; want booked, none due", idx, due, err)
	}
	if _, err := a.Settle(ctx, sc, -2_000_000); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Spent(ctx, sc); got[0] != 0 || got[1] != 0 {
		t.Errorf("Spent after refunding more than booked = %v, want 0 (never below)", got)
	}
	// The next period alerts again: a booking that reaches 80% says the
	// alert is due, and the settle fires it even with nothing to add.
	next := spendCounters("acme", 8, 1_000_000, 0)
	if idx, due, err := a.Book(ctx, 0, nil, 1, next, 900_000); err != nil || idx != -1 || !due {
		t.Errorf("Book to 90%% in the next period = %d, due %v, %v; want booked with the alert due", idx, due, err)
	}
	if alerts, err := b.Settle(ctx, next, 0); err != nil || !alerts[1] || alerts[0] {
		t.Errorf("Settle past 80%% in the next period = %v, %v; want the daily alert only (no monthly budget)", alerts, err)
	}
}

// TestSpendBatched: spend without a budget is seen at once by the store
// that added it and by the others once written; the last of it is written
// when the store closes.
func TestSpendBatched(t *testing.T) {
	srv := redistest.Start(t)
	a := mustOpen(t, srv, redisstate.Options{SpendFlushEvery: time.Hour})
	b := mustOpen(t, srv, redisstate.Options{})
	ctx := context.Background()
	sc := spendCounters("free", 3, 0, 0)
	for range 3 {
		if err := a.AddSpend(ctx, sc, 40_000); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := a.Spent(ctx, sc); err != nil || got[0] != 120_000 || got[1] != 120_000 {
		t.Errorf("Spent where it was added = %v, %v; want 120000 µ$ at once", got, err)
	}
	if got, _ := b.Spent(ctx, sc); got[1] != 0 {
		t.Errorf("Spent on the other store before a flush = %v, want 0 (batched)", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Spent(ctx, sc); got[0] != 120_000 || got[1] != 120_000 {
		t.Errorf("Spent on the other store after the first closed = %v, want 120000 µ$ (written at close)", got)
	}
}

// TestSpendKeptWhileDown: budgets fail closed while the server is down
// (Book, Settle, Spent fail with ErrStateUnavailable); spend without a
// budget is kept and written once the server is back.
func TestSpendKeptWhileDown(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := redislocal.Start(ctx, redislocal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, srv, redisstate.Options{PingEvery: 20 * time.Millisecond, SpendFlushEvery: 20 * time.Millisecond})
	sc := spendCounters("acme", 9, 1_000_000, 0)
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"Book":   func() error { _, _, err := s.Book(ctx, 0, nil, 1, sc, 1); return err },
		"Settle": func() error { _, err := s.Settle(ctx, sc, 1); return err },
		"Spent":  func() error { _, err := s.Spent(ctx, sc); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, gateway.ErrStateUnavailable) {
			t.Errorf("%s with the server stopped = %v, want ErrStateUnavailable", name, err)
		}
	}
	if err := s.AddSpend(ctx, sc, 70_000); err != nil {
		t.Fatalf("AddSpend with the server stopped = %v, want kept", err)
	}
	p, err := strconv.Atoi(srv.Addr[len("127.0.0.1:"):])
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := redislocal.Start(ctx, redislocal.Config{Dir: dir, Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	other := mustOpen(t, srv2, redisstate.Options{})
	deadline := time.Now().Add(eventWait)
	for {
		got, err := other.Spent(ctx, sc)
		if err == nil && got[1] == 70_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spend added while down never reached the store: %v, %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
