package gateway

import (
	"hash/fnv"
	"testing"
)

// TestDrawnRate: review sampling draws its rate from consecutive request
// ids (as one replica issues them), spread out rather than in runs.
func TestDrawnRate(t *testing.T) {
	for range 4 {
		ids := NewIDs()
		const n, rate = 50000, 0.05
		hits, run, longest := 0, 0, 0
		for range n {
			if drawn(ids.Next(), rate) {
				hits++
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		// Binomial(50,000, 0.05): standard deviation 49 draws, 0.1%.
		if got := float64(hits) / n; got < 0.045 || got > 0.055 || longest > 8 {
			t.Errorf("drew %.4f (want 0.05), longest run of draws %d", got, longest)
		}
	}
}

// TestFNV1a: the inlined hash is hash/fnv's FNV-1a, so sampling draws the
// same requests as before it was inlined; and the draw does not allocate.
func TestFNV1a(t *testing.T) {
	ids := NewIDs()
	for _, id := range []string{"", "a", ids.Next(), ids.Next(), "req_\u00e9\xff"} {
		f := fnv.New64a()
		_, _ = f.Write([]byte(id))
		if got, want := fnv1a(id), f.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %x, hash/fnv %x", id, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { drawn("req_0123456789abcdef", 0.05) }); n != 0 {
		t.Errorf("drawn allocates %.0f times", n)
	}
}

// TestIDsUnguessable: ids are unique and consecutive ones share no prefix
// beyond "req_", so one id tells nothing about the next (feedback names
// requests by id).
func TestIDsUnguessable(t *testing.T) {
	ids := NewIDs()
	seen := map[string]bool{}
	prev := ids.Next()
	shared := 0
	for range 10000 {
		id := ids.Next()
		if seen[id] || len(id) != 36 {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
		n := 4
		for n < len(id) && id[n] == prev[n] {
			n++
		}
		shared = max(shared, n-4)
		prev = id
	}
	// 10,000 pairs of random hex: a common prefix of 6 digits has odds 1e-3.
	if shared > 6 {
		t.Errorf("consecutive ids share up to %d hex digits after req_", shared)
	}
}
