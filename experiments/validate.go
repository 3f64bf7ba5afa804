package experiments

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// ValidationConfig sizes the validation-by-simulation run.
type ValidationConfig struct {
	Seed         uint64
	Sims         int     // simulated experiments per scenario (A/A, known effect, peeking)
	Alpha        float64 // test level
	BaseRate     float64 // control success rate
	AAUnits      int     // units per arm in the A/A scenario
	Effect       float64 // absolute lift in the known-effect scenario
	TargetPower  float64 // the known-effect scenario is sized by the calculator for this power
	PeekEvery    int     // units per arm between looks
	PeekMaxUnits int     // units per arm at the last look
	SRMUnits     int     // units in the SRM scenario
	SRMBug       float64 // share of all units recorded in the wrong arm
}

// DefaultValidation is what `routelab experiments validate` runs.
func DefaultValidation() ValidationConfig {
	return ValidationConfig{
		Seed: 20240601, Sims: 2000, Alpha: 0.05, BaseRate: 0.2, AAUnits: 2000,
		Effect: 0.02, TargetPower: 0.8, PeekEvery: 100, PeekMaxUnits: 5000,
		SRMUnits: 100000, SRMBug: 0.01,
	}
}

// ValidationReport is what the simulations measured.
type ValidationReport struct {
	Seed                   uint64  `json:"seed"`
	Sims                   int     `json:"sims"`
	Alpha                  float64 `json:"alpha"`
	AAUnitsPerArm          int     `json:"aa_units_per_arm"`
	AATests                int     `json:"aa_tests"` // sims × metrics
	AAFalsePositiveRate    float64 `json:"aa_false_positive_rate"`
	AACICoverage           float64 `json:"aa_ci_coverage"`
	CICoverage             float64 `json:"ci_coverage"` // intervals covering the true effect, known-effect scenario
	CoverageIntervals      int     `json:"coverage_intervals"`
	PeekEvery              int     `json:"peek_every"`
	PeekMaxUnits           int     `json:"peek_max_units"`
	PeekingFixedHorizonFPR float64 `json:"peeking_fixed_horizon_fpr"`
	PeekingMSPRTFPR        float64 `json:"peeking_msprt_fpr"`
	KnownEffect            float64 `json:"known_effect"`
	KnownEffectUnits       int     `json:"known_effect_units_per_arm"`
	CalculatorPower        float64 `json:"calculator_power"`
	KnownEffectPower       float64 `json:"known_effect_power"`
	MSPRTPower             float64 `json:"msprt_power"` // always-valid test at the same horizon
	SRMUnits               int     `json:"srm_units"`
	SRMCleanPValue         float64 `json:"srm_clean_p_value"`
	SRMBugPValue           float64 `json:"srm_bug_p_value"`
	SRMDetected            bool    `json:"srm_detected"`
	SRMFalseAlarm          bool    `json:"srm_false_alarm"`
}

// SRMAlpha is the p-value below which a sample-ratio mismatch is flagged.
const SRMAlpha = 0.001

// Tau2 is the mSPRT mixing variance used for a metric whose control value
// is base: the prior on the difference has a standard deviation of 10% of
// the control's level, the scale of effects routing changes have.
func Tau2(base float64) float64 {
	s := 0.1 * math.Abs(base)
	if s < 1e-6 {
		s = 1e-6
	}
	return s * s
}

// Validate runs the simulations: A/A tests, known-effect tests sized by the
// power calculator, continuous peeking with the fixed-horizon test and with
// mSPRT, and an SRM case with a real assigner. Deterministic for a seed.
func Validate(cfg ValidationConfig) ValidationReport {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	r := ValidationReport{Seed: cfg.Seed, Sims: cfg.Sims, Alpha: cfg.Alpha, AAUnitsPerArm: cfg.AAUnits,
		PeekEvery: cfg.PeekEvery, PeekMaxUnits: cfg.PeekMaxUnits, KnownEffect: cfg.Effect, SRMUnits: cfg.SRMUnits}
	binom := func(n int, p float64) float64 {
		return distuv.Binomial{N: float64(n), P: p, Src: rng}.Rand()
	}

	// A/A: both arms identical; every simulated experiment tests three
	// metrics, as a real A/A check does: a success rate, a rarer thumbs-up
	// rate (two-proportion) and mean latency (Welch on log-normal units).
	fp, cov, tests := 0, 0, 0
	for range cfg.Sims {
		for _, e := range simulateArms(rng, cfg, cfg.AAUnits, metricEffects{}) {
			tests++
			if e.est.PValue < cfg.Alpha {
				fp++
			}
			if e.est.CILow <= 0 && 0 <= e.est.CIHigh {
				cov++
			}
		}
	}
	r.AATests = tests
	r.AAFalsePositiveRate = float64(fp) / float64(tests)
	r.AACICoverage = float64(cov) / float64(tests)

	// Known effect: sized by the calculator for the target power on the
	// success rate; every metric has a known true difference.
	p2 := cfg.BaseRate + cfg.Effect
	nKE := int(math.Ceil(SampleSizeProportions(cfg.BaseRate, p2, cfg.Alpha, cfg.TargetPower)))
	r.KnownEffectUnits = nKE
	r.CalculatorPower = PowerProportions(cfg.BaseRate, p2, float64(nKE), cfg.Alpha)
	hits, cov, avHits, tests := 0, 0, 0, 0
	eff := metricEffects{success: cfg.Effect, thumbs: 0.005, latencyMS: 60}
	for range cfg.Sims {
		for i, e := range simulateArms(rng, cfg, nKE, eff) {
			tests++
			if e.est.CILow <= e.truth && e.truth <= e.est.CIHigh {
				cov++
			}
			if i != 0 {
				continue
			}
			if e.est.PValue < cfg.Alpha {
				hits++
			}
			if p, _ := MSPRT(e.est.Delta, e.est.SE*e.est.SE, Tau2(cfg.BaseRate), cfg.Alpha); p < cfg.Alpha {
				avHits++
			}
		}
	}
	r.KnownEffectPower = float64(hits) / float64(cfg.Sims)
	r.CICoverage = float64(cov) / float64(tests)
	r.CoverageIntervals = tests
	r.MSPRTPower = float64(avHits) / float64(cfg.Sims)

	// Peeking on A/A data after every PeekEvery units per arm.
	fixedFP, avFP := 0, 0
	for range cfg.Sims {
		var x1, x2, n float64
		fixedHit, avHit := false, false
		for n < float64(cfg.PeekMaxUnits) {
			x1 += binom(cfg.PeekEvery, cfg.BaseRate)
			x2 += binom(cfg.PeekEvery, cfg.BaseRate)
			n += float64(cfg.PeekEvery)
			e := TwoProportion(x1, n, x2, n, cfg.Alpha)
			if e.PValue < cfg.Alpha {
				fixedHit = true
			}
			// the pooled rate stands in for the control's level, as the analysis does
			if p, _ := MSPRT(e.Delta, e.SE*e.SE, Tau2(x1/n), cfg.Alpha); p < cfg.Alpha {
				avHit = true
			}
		}
		if fixedHit {
			fixedFP++
		}
		if avHit {
			avFP++
		}
	}
	r.PeekingFixedHorizonFPR = float64(fixedFP) / float64(cfg.Sims)
	r.PeekingMSPRTFPR = float64(avFP) / float64(cfg.Sims)

	r.SRMCleanPValue, r.SRMBugPValue = srmScenario(cfg, rng)
	r.SRMDetected = r.SRMBugPValue < SRMAlpha
	r.SRMFalseAlarm = r.SRMCleanPValue < SRMAlpha
	return r
}

// srmScenario assigns SRMUnits users with a real 50/50 assigner and counts
// arms; then replays the same units with an allocation bug that records
// SRMBug of all units (taken from control) in treatment, and tests both.
func srmScenario(cfg ValidationConfig, rng *rand.Rand) (clean, bug float64) {
	s := Spec{ID: "srm-check", Name: "srm", Owner: "validate", Layer: "srm", LayerShare: 1, Traffic: 1,
		Arms: []Arm{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, PrimaryMetric: "success_rate",
		Status: StatusRunning}
	s.Normalize()
	s.Buckets = &Range{Start: 0, End: Buckets}
	a := NewAssigner([]Spec{s})
	var counts, bugged [2]float64
	var dst []Assignment
	moveShare := 2 * cfg.SRMBug // of control units, to move SRMBug of all units
	for i := range cfg.SRMUnits {
		dst = a.Assign(dst[:0], Subject{User: fmt.Sprintf("user-%d", i)})
		arm := 0
		if len(dst) == 1 && dst[0].Arm == "treatment" {
			arm = 1
		}
		counts[arm]++
		if arm == 0 && rng.Float64() < moveShare {
			arm = 1
		}
		bugged[arm]++
	}
	_, clean = SRM(counts[:], []float64{1, 1})
	_, bug = SRM(bugged[:], []float64{1, 1})
	return clean, bug
}

type metricEffects struct {
	success, thumbs, latencyMS float64
}

type simResult struct {
	est   Estimate
	truth float64
}

// Latency of a unit's request in the simulations: log-normal around 3 s.
var simLatency = distuv.LogNormal{Mu: math.Log(3000), Sigma: 0.5}

const simThumbsRate = 0.05

// simulateArms draws n units per arm and compares success rate, thumbs-up
// rate and mean latency between them; the treatment arm gets eff.
func simulateArms(rng *rand.Rand, cfg ValidationConfig, n int, eff metricEffects) [3]simResult {
	binom := func(p float64) float64 { return distuv.Binomial{N: float64(n), P: p, Src: rng}.Rand() }
	nf := float64(n)
	var out [3]simResult
	out[0] = simResult{TwoProportion(binom(cfg.BaseRate), nf, binom(cfg.BaseRate+eff.success), nf, cfg.Alpha), eff.success}
	out[1] = simResult{TwoProportion(binom(simThumbsRate), nf, binom(simThumbsRate+eff.thumbs), nf, cfg.Alpha), eff.thumbs}
	lat := simLatency
	lat.Src = rng
	var a, b Moments
	for range n {
		a.Add(lat.Rand())
		b.Add(lat.Rand() + eff.latencyMS)
	}
	out[2] = simResult{Welch(a, b, cfg.Alpha), eff.latencyMS}
	return out
}
