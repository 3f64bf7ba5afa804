package review_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/evaluator/review"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func mustQueue(t *testing.T, n int, strata ...string) (*review.Queue, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	q := review.NewQueue(review.QueueConfig{LeaseTTL: time.Minute, OverlapRaters: 2, Seed: 42, Now: c.now})
	if len(strata) == 0 {
		strata = []string{"s"}
	}
	for i := 0; i < n; i++ {
		q.Add(review.Item{ID: fmt.Sprintf("item-%03d", i), Stratum: strata[i%len(strata)]})
	}
	return q, c
}

func TestQueueLeaseExclusive(t *testing.T) {
	q, _ := mustQueue(t, 2)
	a, err := q.Next("alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Next("bob")
	if err != nil {
		t.Fatal(err)
	}
	if a.Item.ID == b.Item.ID {
		t.Fatalf("alice and bob both leased %s", a.Item.ID)
	}
	if _, err := q.Next("carol"); !errors.Is(err, review.ErrEmpty) {
		t.Errorf("Next(carol) with every item leased = %v, want ErrEmpty", err)
	}
	// A reload gives alice the same item.
	again, _ := q.Next("alice")
	if again.Item.ID != a.Item.ID {
		t.Errorf("Next(alice) again = %s, want %s", again.Item.ID, a.Item.ID)
	}
}

func TestQueueLeaseExpiry(t *testing.T) {
	q, c := mustQueue(t, 1)
	a, _ := q.Next("alice")
	c.t = c.t.Add(2 * time.Minute)
	b, err := q.Next("bob")
	if err != nil || b.Item.ID != a.Item.ID {
		t.Fatalf("Next(bob) after alice's lease expired = %v, %v, want %s", b.Item.ID, err, a.Item.ID)
	}
	if err := q.Submit("alice", a.Item.ID); !errors.Is(err, review.ErrNoLease) {
		t.Errorf("Submit(alice) after bob took the item = %v, want ErrNoLease", err)
	}
	if err := q.Submit("bob", b.Item.ID); err != nil {
		t.Errorf("Submit(bob) = %v", err)
	}
}

func TestQueueNeverTwice(t *testing.T) {
	q, _ := mustQueue(t, 3)
	if n := q.Add(review.Item{ID: "item-000"}, review.Item{ID: "item-001"}); n != 0 {
		t.Errorf("Add(duplicates) added %d, want 0", n)
	}
	if q.Len() != 3 {
		t.Errorf("Len = %d, want 3", q.Len())
	}
	seen := map[string]bool{}
	for _, r := range []string{"alice", "bob", "alice", "bob", "carol"} {
		l, err := q.Next(r)
		if errors.Is(err, review.ErrEmpty) {
			continue
		}
		if seen[l.Item.ID] {
			t.Errorf("%s got %s a second time", r, l.Item.ID)
		}
		seen[l.Item.ID] = true
		if err := q.Submit(r, l.Item.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 3 {
		t.Errorf("reviewed %d distinct items, want 3", len(seen))
	}
	if err := q.Submit("alice", "item-000"); err == nil {
		t.Errorf("a second Submit of a done item succeeded")
	}
}

func TestQueueOverlap(t *testing.T) {
	q, _ := mustQueue(t, 0)
	q.Add(review.Item{ID: "ov", Overlap: true})
	got := 0
	for _, r := range []string{"alice", "bob", "carol"} {
		l, err := q.Next(r)
		if errors.Is(err, review.ErrEmpty) {
			continue
		}
		got++
		q.Submit(r, l.Item.ID)
		if _, err := q.Next(r); !errors.Is(err, review.ErrEmpty) {
			t.Errorf("%s got the overlap item twice", r)
		}
	}
	if got != 2 {
		t.Errorf("overlap item given to %d reviewers, want 2", got)
	}
}

func TestQueueSkip(t *testing.T) {
	q, _ := mustQueue(t, 2)
	a, _ := q.Next("alice")
	if err := q.Skip("alice", a.Item.ID); err != nil {
		t.Fatal(err)
	}
	b, _ := q.Next("alice")
	if b.Item.ID == a.Item.ID {
		t.Errorf("skipped item came back")
	}
	c, err := q.Next("bob")
	if err != nil || c.Item.ID != a.Item.ID {
		t.Errorf("Next(bob) = %v, %v, want the item alice skipped", c.Item.ID, err)
	}
	if p := q.Progress("alice"); p.Skipped != 1 || p.Remaining != 1 {
		t.Errorf("Progress(alice) = %+v", p)
	}
}

func TestQueueOrderRandomPerReviewerAndStratified(t *testing.T) {
	strata := []string{"edit|premium", "generate|draft", "generate|standard"}
	order := func(r string) []review.Item {
		q, _ := mustQueue(t, 30, strata...)
		var out []review.Item
		for {
			l, err := q.Next(r)
			if err != nil {
				return out
			}
			q.Submit(r, l.Item.ID)
			out = append(out, l.Item)
		}
	}
	a, b := order("alice"), order("bob")
	if len(a) != 30 || len(b) != 30 {
		t.Fatalf("drained %d and %d items, want 30", len(a), len(b))
	}
	same := 0
	for i := range a {
		if a[i].ID == b[i].ID {
			same++
		}
	}
	if same > 5 {
		t.Errorf("alice and bob share %d of 30 positions; orders should differ", same)
	}
	// Every consecutive run of len(strata) covers every stratum.
	for i := 0; i+3 <= len(a); i += 3 {
		got := map[string]bool{}
		for _, it := range a[i : i+3] {
			got[it.Stratum] = true
		}
		if len(got) != 3 {
			t.Errorf("items %d..%d cover strata %v, want all 3", i, i+2, got)
		}
	}
}

func TestQueueConcurrentReviewers(t *testing.T) {
	c := &clock{t: time.Now()}
	q := review.NewQueue(review.QueueConfig{OverlapRaters: 3, Seed: 1, Now: c.now})
	for i := 0; i < 500; i++ {
		q.Add(review.Item{ID: fmt.Sprint(i), Stratum: fmt.Sprint(i % 4), Overlap: i%10 == 0})
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func(r string) {
			defer wg.Done()
			for {
				l, err := q.Next(r)
				if err != nil {
					return
				}
				if err := q.Submit(r, l.Item.ID); err != nil {
					t.Errorf("Submit(%s, %s) = %v", r, l.Item.ID, err)
					return
				}
				mu.Lock()
				count[l.Item.ID]++
				mu.Unlock()
			}
		}(fmt.Sprint("r", r))
	}
	wg.Wait()
	for i := 0; i < 500; i++ {
		want := 1
		if i%10 == 0 {
			want = 3
		}
		if got := count[fmt.Sprint(i)]; got != want {
			t.Errorf("item %d reviewed %d times, want %d", i, got, want)
		}
	}
}

func BenchmarkQueueNext(b *testing.B) {
	q := review.NewQueue(review.QueueConfig{Seed: 1})
	for i := 0; i < 100_000; i++ {
		q.Add(review.Item{ID: fmt.Sprint(i), Stratum: fmt.Sprint(i % 12)})
	}
	q.Next("warm")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := q.Next("r")
		if err != nil {
			b.Fatal(err)
		}
		q.Submit("r", l.Item.ID)
	}
}

// TestQueueProgressRemaining counts what alice can still be given: not
// an item she skipped or scored, not items others finished or hold under a
// live lease; yes untouched items, an item whose other lease expired, an
// overlap item with a slot left and the item she holds.
func TestQueueProgressRemaining(t *testing.T) {
	q, c := mustQueue(t, 0)
	for _, id := range []string{"u1", "u2", "u3", "u4", "scored", "bob-done", "carol-live", "bob-expired"} {
		q.Add(review.Item{ID: id})
	}
	q.Add(review.Item{ID: "overlap", Overlap: true})
	q.Record("alice", "scored")
	q.Record("bob", "bob-done")
	q.Record("bob", "overlap") // one of its two slots taken
	// leaseFor walks r's (random) order, skipping, until r holds want;
	// r's skips do not change what alice may get.
	leaseFor := func(r, want string) {
		t.Helper()
		for {
			l, err := q.Next(r)
			if err != nil {
				t.Fatalf("%s never got %s: %v", r, want, err)
			}
			if l.Item.ID == want {
				return
			}
			if err := q.Skip(r, l.Item.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	leaseFor("bob", "bob-expired")
	c.t = c.t.Add(2 * time.Minute) // bob's lease expires
	leaseFor("carol", "carol-live")
	// Free for alice: u1-u4, bob-expired, overlap (6). She skips one and
	// holds another: 5 remain, her held item included.
	first, err := q.Next("alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Skip("alice", first.Item.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Next("alice"); err != nil {
		t.Fatal(err)
	}
	want := review.Progress{Done: 1, Remaining: 5, Skipped: 1}
	if got := q.Progress("alice"); got != want {
		t.Errorf("Progress(alice) = %+v, want %+v", got, want)
	}
}
