package server

import (
	"hash/fnv"
	"testing"
)

// TestDrawnRate: review sampling draws its rate from consecutive request
// ids (as one replica issues them), spread out rather than in runs.
func TestDrawnRate(t *testing.T) {
	for range 4 {
		ids := newIDGen()
		const n, rate = 50000, 0.05
		hits, run, longest := 0, 0, 0
		for range n {
			if drawn(ids.next(), rate) {
				hits++
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		// Binomial(50,000, 0.05): standard deviation 49 draws, 0.1%.
		if got := float64(hits) / n; got < 0.045 || got > 0.055 || longest > 8 {
			t.Errorf("prefix %s: drew %.4f (want 0.05), longest run of draws %d", ids.prefix, got, longest)
		}
	}
}

// TestFNV1a: the inlined hash is hash/fnv's FNV-1a, so sampling draws the
// same requests as before it was inlined; and the draw does not allocate.
func TestFNV1a(t *testing.T) {
	ids := newIDGen()
	for _, id := range []string{"", "a", ids.next(), ids.next(), "req_\u00e9\xff"} {
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
