package server

import "testing"

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
