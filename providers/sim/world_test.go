package sim_test

import (
	"math"
	"sort"
	"strconv"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

func TestWorldDeterministic(t *testing.T) {
	cat := datasets.MustCatalog()
	a, b, other := sim.NewWorld(cat, 1), sim.NewWorld(cat, 1), sim.NewWorld(cat, 2)
	differ := 0
	for i := 0; i < 2000; i++ {
		c := sim.Call{RequestID: "r" + strconv.Itoa(i), Model: "sim-fast", Task: sim.TaskAvatar, Mode: "generate", Prompt: "x"}
		x, y, z := a.Call(c), b.Call(c), other.Call(c)
		if x != y {
			t.Fatalf("Call(%s) differs between two worlds with seed 1: %+v vs %+v", c.RequestID, x, y)
		}
		if x.Latency != z.Latency {
			differ++
		}
	}
	if differ < 1900 {
		t.Errorf("seed 2 reproduced seed 1's latency on %d of 2000 calls", 2000-differ)
	}
}

// Over many calls the world's rates match its truth and the catalog:
// success at TrueP (among answered calls), errors and 429s at the catalog
// rates, log-normal latency with the catalog median.
func TestWorldRates(t *testing.T) {
	cat := datasets.MustCatalog()
	w := sim.NewWorld(cat, 3)
	m, _ := cat.Model("sim-premium")
	const n = 60000
	var ok, succ, errs, limited int
	var lat []float64
	for i := 0; i < n; i++ {
		o := w.Call(sim.Call{RequestID: "r" + strconv.Itoa(i), Model: m.Name, Task: sim.TaskTextLayout, Mode: "generate"})
		switch o.ErrKind {
		case "":
			ok++
			lat = append(lat, float64(o.Latency.Milliseconds()))
			if o.Success {
				succ++
			}
			if o.Success != (o.Quality >= sim.SuccessQuality) {
				t.Fatalf("Success %v with quality %v", o.Success, o.Quality)
			}
		case providers.KindUnavailable:
			errs++
		case providers.KindRateLimited:
			limited++
		}
	}
	sort.Float64s(lat)
	tests := []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"success", float64(succ) / float64(ok), w.TrueP(m.Name, sim.TaskTextLayout, 0), 0.01},
		{"error rate", float64(errs) / n, m.ErrorRate, 0.003},
		{"429 rate", float64(limited) / n, m.RateLimitRate, 0.003},
		{"median latency", lat[len(lat)/2], m.LatencyP50MS, 0.02 * m.LatencyP50MS},
		{"p90 latency", lat[len(lat)*9/10], m.LatencyP90MS(), 0.03 * m.LatencyP90MS()},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > tt.tol {
			t.Errorf("%s = %v, want %v +- %v", tt.name, tt.got, tt.want, tt.tol)
		}
	}
}

// Edit chains decay slowly at first and sharply between ~5 and ~10 edits;
// the editing model holds up longest.
func TestEditDepthDecay(t *testing.T) {
	w := sim.NewWorld(datasets.MustCatalog(), 1)
	for _, m := range []string{"sim-fast", "sim-premium", "sim-editor"} {
		p1 := w.TrueP(m, sim.TaskSubjectEdit, 1)
		p3 := w.TrueP(m, sim.TaskSubjectEdit, 3)
		p12 := w.TrueP(m, sim.TaskSubjectEdit, 12)
		if p3 < 0.9*p1 || p12 > 0.2*p1 {
			t.Errorf("%s: P at depth 1/3/12 = %.3f/%.3f/%.3f, want little loss by 3 and most lost by 12", m, p1, p3, p12)
		}
	}
	if e, p := w.TrueP("sim-editor", sim.TaskSubjectEdit, 8), w.TrueP("sim-premium", sim.TaskSubjectEdit, 8); e <= p {
		t.Errorf("at depth 8 editor %.3f <= premium %.3f, want the editor to hold up longer", e, p)
	}
}

func TestDeadline(t *testing.T) {
	w := sim.NewWorld(datasets.MustCatalog(), 1)
	timeouts := 0
	for i := 0; i < 5000; i++ {
		o := w.Call(sim.Call{RequestID: "d" + strconv.Itoa(i), Model: "sim-premium", Task: sim.TaskAvatar, Mode: "generate", DeadlineMS: 12000})
		if o.ErrKind == providers.KindTimeout {
			timeouts++
			if o.CostUSD != 0 || o.Success {
				t.Fatalf("timeout with cost %v success %v", o.CostUSD, o.Success)
			}
		}
	}
	// deadline at the median: about half of the answered calls time out
	if r := float64(timeouts) / 5000; r < 0.44 || r > 0.52 {
		t.Errorf("timeout share at a deadline equal to the median = %.3f, want about 0.48", r)
	}
	if got, want := w.SuccessP("sim-premium", sim.TaskAvatar, 0, 12000), 0.5*w.TrueP("sim-premium", sim.TaskAvatar, 0); math.Abs(got-want) > 1e-9 {
		t.Errorf("SuccessP at the median deadline = %v, want %v", got, want)
	}
}

func TestInferTask(t *testing.T) {
	tests := []struct {
		mode, prompt string
		refs         int
		want         string
	}{
		{"generate", `A neon sign saying "OPEN"`, 0, sim.TaskTextRender},
		{"generate", "A restaurant menu with prices", 0, sim.TaskTextLayout},
		{"generate", "Abstract teal gradient background", 0, sim.TaskAbstract},
		{"generate", "Professional headshot of a doctor", 0, sim.TaskAvatar},
		{"generate", "Photo of a perfume bottle on slate", 0, sim.TaskPhotoreal},
		{"generate", "a fox reading a book", 0, sim.TaskIllustration},
		{"edit", "put her on a beach", 3, sim.TaskSubjectEdit},
		{"edit", "make it night time", 1, sim.TaskStyleEdit},
	}
	for _, tt := range tests {
		if got := sim.InferTask(tt.mode, tt.prompt, tt.refs); got != tt.want {
			t.Errorf("InferTask(%s, %q, %d) = %s, want %s", tt.mode, tt.prompt, tt.refs, got, tt.want)
		}
	}
}
