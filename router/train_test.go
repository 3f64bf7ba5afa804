package router_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/routelab/routelab/datasets"
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
