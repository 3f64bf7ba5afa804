package lab_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/lab/labtest"
)

// Two labs serving the same workload under the same policy give the same
// results: the lab's figures are a function of its seed.
func TestLabSameWorkloadSameResults(t *testing.T) {
	labtest.Heavy(t)
	run := func() []int64 {
		l, items := mustLab(t, "rules")
		var lat []int64
		for _, it := range items[:80] {
			res := l.Serve(context.Background(), it.Request)
			if res.Decision == nil {
				t.Fatalf("%s: no decision event", it.Request.ID)
			}
			lat = append(lat, res.Decision.LatencyMS, int64(len(res.Decision.Attempts)))
		}
		return lat
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: latency_ms/attempts %d vs %d between two runs of the same workload", i/2, a[i], b[i])
		}
	}
}
