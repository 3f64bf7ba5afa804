package router_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// twoModels is the default catalog cut to sim-lite and sim-fast.
func twoModels(t *testing.T) []router.Model {
	t.Helper()
	c := datasets.MustCatalog()
	var out []router.Model
	for _, m := range c.Models {
		if m.Name == "sim-lite" || m.Name == "sim-fast" {
			out = append(out, m)
		}
	}
	return out
}

// A logging policy that sends "pro" tenants (easy requests) to sim-lite 90%
// of the time and "hobby" tenants (hard ones) 10% of the time skews what
// sim-lite is seen on. The router cannot see tenants (identical features),
// so the best it can learn is sim-lite's population success rate:
// 0.5*0.9 + 0.5*0.3 = 0.6. Weighting by inverse propensity recovers it;
// unweighted training learns sim-lite's rate on its skewed sample,
// (0.45*0.9 + 0.05*0.3)/0.5 = 0.84.
func TestIPSRemovesLoggingBias(t *testing.T) {
	models := twoModels(t)
	r := rand.New(rand.NewPCG(7, 7))
	var ex []router.Example
	for i := 0; i < 40000; i++ {
		pro := i%2 == 0
		pLite := 0.1
		if pro {
			pLite = 0.9
		}
		model, prop := "sim-fast", 1-pLite
		if r.Float64() < pLite {
			model, prop = "sim-lite", pLite
		}
		success := r.Float64() < 0.7
		if model == "sim-lite" {
			success = r.Float64() < map[bool]float64{true: 0.9, false: 0.3}[pro]
		}
		ex = append(ex, router.Example{
			Req:   router.Request{ID: "ips-" + strconv.Itoa(i), Mode: router.ModeGenerate, Prompt: "a picture", Tier: router.TierStandard},
			Model: model, Propensity: prop, Success: success,
		})
	}
	liteP := func(unweighted bool) float64 {
		p, err := router.Train(ex, router.TrainConfig{Models: models, DefaultModel: "sim-fast", Unweighted: unweighted})
		if err != nil {
			t.Fatal(err)
		}
		d := router.Decide(router.Request{ID: "q", Mode: router.ModeGenerate, Prompt: "a picture", Tier: router.TierStandard}, p, nil)
		for _, c := range d.Candidates {
			if c.Model == "sim-lite" {
				return c.P
			}
		}
		t.Fatal("no sim-lite candidate")
		return 0
	}
	ips, raw := liteP(false), liteP(true)
	if math.Abs(ips-0.6) > 0.03 {
		t.Errorf("IPS-weighted P(sim-lite) = %.3f, want 0.6 +- 0.03", ips)
	}
	if math.Abs(raw-0.6) < 0.15 {
		t.Errorf("unweighted P(sim-lite) = %.3f, want it biased towards 0.84 (off by > 0.15)", raw)
	}
	t.Logf("population rate 0.600: IPS %.3f, unweighted %.3f", ips, raw)
}

func TestTrainNeedsData(t *testing.T) {
	_, err := router.Train(nil, router.TrainConfig{Models: twoModels(t)})
	if err == nil {
		t.Fatal("Train(no examples) = nil error")
	}
}

func TestTrainDeterministic(t *testing.T) {
	models := twoModels(t)
	r := rand.New(rand.NewPCG(3, 3))
	var ex []router.Example
	prompts := []string{`a poster that says "HELLO"`, "abstract teal gradient background", "photo of a watch on slate", "a fox reading a book"}
	for i := 0; i < 8000; i++ {
		m, prop := "sim-lite", 0.5
		if r.IntN(2) == 0 {
			m = "sim-fast"
		}
		ex = append(ex, router.Example{
			Req:   router.Request{ID: "d-" + strconv.Itoa(i), Mode: router.ModeGenerate, Prompt: prompts[i%len(prompts)], Tier: router.TierStandard},
			Model: m, Propensity: prop, Success: r.Float64() < 0.3+0.15*float64(i%len(prompts)),
		})
	}
	cfg := router.TrainConfig{Models: models, DefaultModel: "sim-fast", Workers: 2}
	a, err := router.Train(ex, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := router.Train(ex, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Checksum != b.Checksum || a.Version != b.Version {
		t.Errorf("Train twice on the same data: %s/%s vs %s/%s", a.Version, a.Checksum, b.Version, b.Checksum)
	}
}

func TestExampleFromDecision(t *testing.T) {
	base := events.Decision{
		Header: events.Header{RequestID: "r1", TS: 5}, Mode: "edit", Tier: "premium", Prompt: "make it blue",
		Propensity: 0.25, Status: "ok", Model: "sim-editor", QAPass: true,
		Features: events.Features{RefCount: 2, EditDepth: 3, Aspect: 1.5, Preserve: true, MaxLatency: 9000},
	}
	at := func(s ...string) []events.Attempt {
		var out []events.Attempt
		models := []string{"sim-editor", "sim-premium"}
		for i, st := range s {
			out = append(out, events.Attempt{Model: models[i], Status: st})
		}
		return out
	}
	tests := []struct {
		name        string
		give        func(d *events.Decision)
		wantOK      bool
		wantSuccess bool
	}{
		{"first attempt served and passed", func(d *events.Decision) { d.Attempts = at("ok") }, true, true},
		{"first attempt served, QA failed", func(d *events.Decision) { d.Attempts = at("ok"); d.QAPass = false }, true, false},
		{"QA failed then escalated", func(d *events.Decision) { d.Attempts = at("qa_fail", "ok"); d.Model = "sim-premium" }, true, false},
		{"timeout is a failure of the model", func(d *events.Decision) { d.Attempts = at("timeout", "ok"); d.Model = "sim-premium" }, true, false},
		{"provider error says nothing", func(d *events.Decision) { d.Attempts = at("error", "ok"); d.Model = "sim-premium" }, false, false},
		{"429 says nothing", func(d *events.Decision) { d.Attempts = at("rate_limited", "ok") }, false, false},
		{"no propensity", func(d *events.Decision) { d.Attempts = at("ok"); d.Propensity = 0 }, false, false},
	}
	for _, tt := range tests {
		d := base
		tt.give(&d)
		x, ok := router.ExampleFromDecision(&d, 0, 0)
		if ok != tt.wantOK || (ok && x.Success != tt.wantSuccess) {
			t.Errorf("%s: ExampleFromDecision = ok %v success %v, want %v %v", tt.name, ok, x.Success, tt.wantOK, tt.wantSuccess)
			continue
		}
		if !ok {
			continue
		}
		want := router.Request{ID: "r1", Mode: router.ModeEdit, Prompt: "make it blue", RefCount: 2, Width: 1536, Height: 1024,
			Tier: router.TierPremium, EditDepth: 3, Constraints: router.Constraints{PreserveSubject: true, MaxLatencyMS: 9000}}
		if x.Req != want || x.Model != "sim-editor" || x.Propensity != 0.25 || x.TS != 5 {
			t.Errorf("%s: example = %+v, want request %+v from sim-editor at 0.25", tt.name, x, want)
		}
	}
}
