// Package ope is off-policy evaluation: it estimates, from decisions logged
// under one routing policy (with the propensity of each choice), the mean
// reward another policy would have earned on the same traffic. The offline
// jobs use it to gate a candidate policy before any user sees it.
//
// Three estimators are computed from the same samples:
//
//   - IPS: mean of w_i r_i with w_i = pi(a_i|x_i) / mu(a_i|x_i); unbiased
//     when mu > 0 wherever pi > 0, high variance when weights are large.
//   - SNIPS: sum(w_i r_i) / sum(w_i); slightly biased, far lower variance,
//     and bounded by the reward range.
//   - DR (doubly robust): sum_a pi(a|x_i) q(x_i,a) + w_i (r_i - q(x_i,a_i));
//     unbiased if either the propensities or the reward model q is right.
//
// Intervals are percentile bootstrap intervals from a seeded generator, so a
// report is reproducible. The package is pure: no I/O, no clock, no logging.
package ope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
)

// ActionProb is one action and the probability a policy gives it.
type ActionProb struct {
	Action string  `json:"action"`
	P      float64 `json:"p"`
}

// Sample is one logged decision. X is whatever context the reward model
// needs (for routelab, the request features).
type Sample[X any] struct {
	Context    X
	Action     string  // the action the logging policy took
	Propensity float64 // mu(Action | Context), as logged
	Reward     float64
	// Target is the target policy's distribution over actions for this
	// context; a deterministic policy has one entry with P = 1.
	Target []ActionProb
	// Logging, when known, is the logging policy's full distribution; it
	// lets Evaluate check support for actions that were never logged.
	Logging []ActionProb
}

// RewardModel predicts the reward of taking action in context x; DR uses it
// as its control variate. It must be fitted on data other than the samples
// evaluated, or at least not on their rewards alone, to keep DR honest.
type RewardModel[X any] func(x X, action string) float64

// Options tune the estimators. The zero value is usable: Defaults fills it.
type Options struct {
	Bootstrap int     // bootstrap resamples; default 500
	Level     float64 // interval coverage; default 0.95
	Seed      uint64  // bootstrap seed; the same seed gives the same intervals
	// MinSamples is the fewest samples worth estimating from; default 100.
	MinSamples int
	// MinESSFraction is the smallest effective sample size, as a fraction
	// of the samples, before the weights are judged too concentrated for
	// the logged data to say anything about the target; default 0.01.
	MinESSFraction float64
	// MinSupport is the smallest share of the target's probability mass
	// that must fall on logged-supported actions; default 0.95. Mass on an
	// action the logging policy never takes (mu = 0) cannot be estimated
	// by reweighting.
	MinSupport float64
	// MinMatched is the fewest samples where the target gives the logged
	// action positive probability; default 30.
	MinMatched int
}

// Defaults returns o with zero fields set to their documented defaults.
func (o Options) Defaults() Options {
	if o.Bootstrap <= 0 {
		o.Bootstrap = 500
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = 0.95
	}
	if o.MinSamples <= 0 {
		o.MinSamples = 100
	}
	if o.MinESSFraction <= 0 {
		o.MinESSFraction = 0.01
	}
	if o.MinSupport <= 0 {
		o.MinSupport = 0.95
	}
	if o.MinMatched <= 0 {
		o.MinMatched = 30
	}
	return o
}

// Estimate is one estimator's point value and bootstrap interval.
type Estimate struct {
	Value  float64 `json:"value"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	StdErr float64 `json:"std_err"` // bootstrap standard deviation
}

// Report is the outcome of one evaluation.
type Report struct {
	N         int      `json:"n"`
	Matched   int      `json:"matched"` // samples where pi(a_i|x_i) > 0
	ESS       float64  `json:"ess"`     // (sum w)^2 / sum w^2
	MeanW     float64  `json:"mean_weight"`
	MaxW      float64  `json:"max_weight"`
	Support   float64  `json:"support"` // target mass on supported actions (1 when logging unknown)
	Logged    float64  `json:"logged"`  // mean logged reward: the logging policy's own value
	IPS       Estimate `json:"ips"`
	SNIPS     Estimate `json:"snips"`
	DR        Estimate `json:"dr"`
	Level     float64  `json:"level"`
	Bootstrap int      `json:"bootstrap"`
}

// Refusal codes, stable for reports and APIs.
const (
	CodeNoSamples         = "no_samples"
	CodeMissingPropensity = "missing_propensity"
	CodeBadTarget         = "bad_target"
	CodeNoSupport         = "insufficient_support"
	CodeLowESS            = "low_effective_sample_size"
)

// ErrRefused is matched by every refusal (errors.Is).
var ErrRefused = errors.New("off-policy evaluation refused")

// RefusalError says why the logged data cannot support an estimate.
type RefusalError struct {
	Code   string
	Reason string
}

func (e *RefusalError) Error() string { return fmt.Sprintf("ope refused (%s): %s", e.Code, e.Reason) }

// Is makes errors.Is(err, ErrRefused) true for every refusal.
func (e *RefusalError) Is(target error) bool { return target == ErrRefused }

func refuse(code, format string, args ...any) error {
	return &RefusalError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// terms are the per-sample quantities every estimator is a function of.
type terms struct {
	w, wr, dr []float64
}

// Evaluate estimates the target policy's value from samples. q may be nil,
// in which case DR uses q = 0 and equals IPS. It refuses, with a
// *RefusalError, when a propensity is missing, zero or out of range, when the
// target distribution is malformed, or when the logged data does not support
// the target (too little target mass on logged actions, too few matches, too
// small an effective sample size).
func Evaluate[X any](samples []Sample[X], q RewardModel[X], opt Options) (Report, error) {
	opt = opt.Defaults()
	n := len(samples)
	if n < opt.MinSamples {
		return Report{}, refuse(CodeNoSamples, "%d samples, need at least %d", n, opt.MinSamples)
	}
	t := terms{w: make([]float64, n), wr: make([]float64, n), dr: make([]float64, n)}
	var supported, matched int
	var supportMass, logged float64
	for i, s := range samples {
		if math.IsNaN(s.Propensity) || s.Propensity <= 0 || s.Propensity > 1 {
			return Report{}, refuse(CodeMissingPropensity, "sample %d: propensity %v is missing or out of (0,1]", i, s.Propensity)
		}
		if math.IsNaN(s.Reward) || math.IsInf(s.Reward, 0) {
			return Report{}, refuse(CodeBadTarget, "sample %d: reward %v", i, s.Reward)
		}
		pi, total := 0.0, 0.0
		for _, ap := range s.Target {
			if math.IsNaN(ap.P) || ap.P < 0 {
				return Report{}, refuse(CodeBadTarget, "sample %d: target probability %v for %q", i, ap.P, ap.Action)
			}
			total += ap.P
			if ap.Action == s.Action {
				pi += ap.P
			}
		}
		if math.Abs(total-1) > 1e-6 {
			return Report{}, refuse(CodeBadTarget, "sample %d: target probabilities sum to %v, not 1", i, total)
		}
		if s.Logging != nil {
			supported++
			supportMass += supportedMass(s.Target, s.Logging)
		}
		if pi > 0 {
			matched++
		}
		w := pi / s.Propensity
		t.w[i] = w
		t.wr[i] = w * s.Reward
		logged += s.Reward
		if q == nil {
			t.dr[i] = t.wr[i]
			continue
		}
		direct := 0.0
		for _, ap := range s.Target {
			if ap.P > 0 {
				direct += ap.P * q(s.Context, ap.Action)
			}
		}
		t.dr[i] = direct + w*(s.Reward-q(s.Context, s.Action))
	}
	r := Report{N: n, Matched: matched, Support: 1, Logged: logged / float64(n), Level: opt.Level, Bootstrap: opt.Bootstrap}
	if supported > 0 {
		r.Support = supportMass / float64(supported)
		if r.Support < opt.MinSupport {
			return r, refuse(CodeNoSupport, "only %.1f%% of the target's probability mass falls on actions the logging policy takes (need %.1f%%)", 100*r.Support, 100*opt.MinSupport)
		}
	}
	if matched < opt.MinMatched {
		return r, refuse(CodeNoSupport, "the target agrees with the logged action on %d samples, need at least %d", matched, opt.MinMatched)
	}
	var sw, sw2 float64
	for _, w := range t.w {
		sw += w
		sw2 += w * w
		r.MaxW = math.Max(r.MaxW, w)
	}
	r.MeanW = sw / float64(n)
	r.ESS = sw * sw / sw2
	if r.ESS < opt.MinESSFraction*float64(n) {
		return r, refuse(CodeLowESS, "effective sample size %.1f is below %.1f%% of %d samples", r.ESS, 100*opt.MinESSFraction, n)
	}
	r.IPS.Value, r.SNIPS.Value, r.DR.Value = t.point(nil)
	r.IPS, r.SNIPS, r.DR = t.bootstrap(r.IPS.Value, r.SNIPS.Value, r.DR.Value, opt)
	return r, nil
}

// supportedMass is the target probability on actions the logging policy
// takes with positive probability.
func supportedMass(target, logging []ActionProb) float64 {
	m := 0.0
	for _, tp := range target {
		for _, lp := range logging {
			if lp.Action == tp.Action && lp.P > 0 {
				m += tp.P
				break
			}
		}
	}
	return m
}

// point computes IPS, SNIPS and DR over the indices idx (all samples when
// idx is nil).
func (t terms) point(idx []int) (ips, snips, dr float64) {
	var sw, swr, sdr float64
	n := len(t.w)
	if idx == nil {
		for i := range t.w {
			sw += t.w[i]
			swr += t.wr[i]
			sdr += t.dr[i]
		}
	} else {
		n = len(idx)
		for _, i := range idx {
			sw += t.w[i]
			swr += t.wr[i]
			sdr += t.dr[i]
		}
	}
	ips = swr / float64(n)
	if sw > 0 {
		snips = swr / sw
	}
	dr = sdr / float64(n)
	return ips, snips, dr
}

func (t terms) bootstrap(ips, snips, dr float64, opt Options) (Estimate, Estimate, Estimate) {
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6f7065))
	n := len(t.w)
	idx := make([]int, n)
	bi := make([]float64, opt.Bootstrap)
	bs := make([]float64, opt.Bootstrap)
	bd := make([]float64, opt.Bootstrap)
	for b := range opt.Bootstrap {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		bi[b], bs[b], bd[b] = t.point(idx)
	}
	return interval(ips, bi, opt.Level), interval(snips, bs, opt.Level), interval(dr, bd, opt.Level)
}

// interval is the percentile bootstrap interval around the point value.
func interval(v float64, boot []float64, level float64) Estimate {
	sort.Float64s(boot)
	a := (1 - level) / 2
	return Estimate{Value: v, CILow: Quantile(boot, a), CIHigh: Quantile(boot, 1-a), StdErr: stddev(boot)}
}

// Quantile is the linearly interpolated q-quantile of sorted xs (numpy's
// default "linear", R's type 7: position q*(n-1)), by gonum's LinInterp
// with the first value weighted 0, which puts the empirical CDF's steps at
// i/(n-1) instead of LinInterp's i/n. NaN for no values.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	w := make([]float64, len(sorted))
	for i := 1; i < len(w); i++ {
		w[i] = 1
	}
	if len(w) == 1 {
		return sorted[0]
	}
	return stat.Quantile(q, stat.LinInterp, sorted, w)
}

func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	return stat.StdDev(xs, nil)
}

// ESS is the effective sample size of importance weights, (sum w)^2 / sum w^2
// (Kish): n when all weights are equal, 1 when one weight dominates.
func ESS(w []float64) float64 {
	var s, s2 float64
	for _, x := range w {
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 0
	}
	return s * s / s2
}
