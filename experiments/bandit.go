package experiments

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Kind is how an experiment allocates its units to arms.
type Kind string

const (
	// KindFixed splits units by the arms' weights for the whole phase
	// (the default; a canary is a fixed experiment with a ramp).
	KindFixed Kind = "fixed"
	// KindBandit re-weights the arms on a schedule by Thompson sampling on
	// the primary metric (Spec.Bandit); every assignment records the
	// weight in force as its propensity, and the analysis weights outcomes
	// by it (AnalyzeBandit), never the fixed-split statistics.
	KindBandit Kind = "bandit"
)

// Bandit is the adaptive allocation of a bandit experiment: its settings
// and the weights in force, which the re-weighting (Reweight) writes back
// through the control plane like any other change.
type Bandit struct {
	// Every is the re-weighting schedule; default one hour.
	Every Duration `json:"every,omitempty"`
	// MinShare is the least share of a stratum's units each arm keeps, so
	// every arm goes on learning and the logged propensities stay bounded
	// away from zero (inverse-propensity weights at most 1/MinShare);
	// default 0.05, at most 1/arms.
	MinShare float64 `json:"min_share,omitempty"`
	// BurnIn is the requests every arm of a stratum must have before its
	// weights move off the arms' own weights; default 100.
	BurnIn int `json:"burn_in,omitempty"`
	// Strata makes the bandit contextual: weights per stratum of these
	// request properties, "tier" and "group" (GroupOf). Empty: one set of
	// weights for all.
	Strata []string `json:"strata,omitempty"`

	// Weights are the weights in force per stratum key (StratumOf), one per
	// arm in arm order; a stratum without weights uses the arms' weights.
	Weights map[string][]float64 `json:"weights,omitempty"`
	// Epoch counts re-weightings; it salts the arm hash, so each epoch
	// draws units afresh with its weights.
	Epoch     int   `json:"epoch,omitempty"`
	UpdatedMS int64 `json:"updated_ms,omitempty"`
}

// Defaults of a bandit's settings.
const (
	DefaultBanditEvery    = time.Hour
	DefaultBanditMinShare = 0.05
	DefaultBanditBurnIn   = 100
	// thompsonDraws is the Monte Carlo draws behind each weight: the
	// weights' own noise (sd <= 0.5/sqrt(draws) ~ 0.011) stays well below
	// what a re-weighting moves.
	thompsonDraws = 2000
)

func (b *Bandit) normalize() {
	if b.Every == 0 {
		b.Every = Duration(DefaultBanditEvery)
	}
	if b.MinShare == 0 {
		b.MinShare = DefaultBanditMinShare
	}
	if b.BurnIn == 0 {
		b.BurnIn = DefaultBanditBurnIn
	}
}

func (b *Bandit) validate(arms int) error {
	if b.Every < Duration(time.Second) {
		return invalid("out_of_range", "bandit.every", "every must be at least 1s")
	}
	if !(b.MinShare >= 0.001 && b.MinShare <= 1/float64(arms)+1e-12) {
		return invalid("out_of_range", "bandit.min_share", "min_share must be in [0.001, 1/arms]")
	}
	if b.BurnIn < 1 {
		return invalid("out_of_range", "bandit.burn_in", "burn_in must be >= 1")
	}
	for i, s := range b.Strata {
		if s != "tier" && s != "group" {
			return invalid("invalid_value", fmt.Sprintf("bandit.strata[%d]", i), "stratum must be tier or group")
		}
	}
	for k, w := range b.Weights {
		if len(w) != arms {
			return invalid("invalid_value", "bandit.weights", "stratum %q has %d weights for %d arms", k, len(w), arms)
		}
		for _, x := range w {
			if !(x > 0) {
				return invalid("out_of_range", "bandit.weights", "weights must be > 0")
			}
		}
	}
	return nil
}

// banditMetric says how a primary metric is modelled: Beta-Bernoulli for a
// per-request success/failure (a user's thumbs up counts once per request),
// Gaussian for a continuous value; lower says smaller is better.
func banditMetric(metric string) (binary, lower, ok bool) {
	switch metric {
	case "success_rate", "qa_pass_rate", "thumbs_up_rate":
		return true, false, true
	case "qa_fail_rate", "error_rate", "escalation_rate", "thumbs_down_rate":
		return true, true, true
	case "cost_per_image", "latency_ms":
		return false, true, true
	}
	return false, false, false // quantiles have no per-request value
}

// GroupOf is the task-like feature group of a request: edit, text (the
// router's text_heavy feature) or image.
func GroupOf(s *Subject) string {
	switch {
	case s.Mode == "edit":
		return "edit"
	case s.TextHeavy:
		return "text"
	}
	return "image"
}

// StratumOf is the stratum key of a request for the given strata, e.g.
// "standard/text"; "" with no strata.
func StratumOf(strata []string, s *Subject) string {
	if len(strata) == 0 {
		return ""
	}
	parts := make([]string, len(strata))
	for i, k := range strata {
		if k == "tier" {
			parts[i] = s.Tier
		} else {
			parts[i] = GroupOf(s)
		}
	}
	return strings.Join(parts, "/")
}

// ArmOutcomes are one arm's aggregates of the primary metric in one
// stratum, over requests: count, sum and sum of squares (a success rate's
// sum is its successes).
type ArmOutcomes struct {
	N     float64 `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

// ThompsonWeights are the arms' probabilities of being best under their
// posteriors, estimated from thompsonDraws joint draws, floored at
// minShare: w = minShare + (1 - arms × minShare) × P(best). Binary metrics
// have a Beta(1 + successes, 1 + failures) posterior; continuous ones a
// Normal around the mean with the standard error (sd floored so that a
// constant arm still has some doubt).
func ThompsonWeights(metric string, arms []ArmOutcomes, minShare float64, rng *rand.Rand) ([]float64, error) {
	binary, lower, ok := banditMetric(metric)
	if !ok {
		return nil, fmt.Errorf("metric %q has no per-request value to sample", metric)
	}
	draw := make([]func() float64, len(arms))
	for i, a := range arms {
		if binary {
			succ := math.Max(0, math.Min(a.Sum, a.N))
			draw[i] = distuv.Beta{Alpha: 1 + succ, Beta: 1 + a.N - succ, Src: rng}.Rand
			continue
		}
		mean, sd := 0.0, 1e6 // no data: any value
		if a.N > 0 {
			mean = a.Sum / a.N
		}
		if a.N > 1 {
			v := math.Max(0, (a.SumSq-a.N*mean*mean)/(a.N-1))
			sd = math.Max(math.Sqrt(v/a.N), 1e-9+1e-3*math.Abs(mean)/math.Sqrt(a.N))
		}
		draw[i] = distuv.Normal{Mu: mean, Sigma: sd, Src: rng}.Rand
	}
	wins := make([]float64, len(arms))
	for range thompsonDraws {
		best, bv := 0, math.Inf(-1)
		for i, d := range draw {
			v := d()
			if lower {
				v = -v
			}
			if v > bv {
				best, bv = i, v
			}
		}
		wins[best]++
	}
	out := make([]float64, len(arms))
	for i, w := range wins {
		out[i] = minShare + (1-float64(len(arms))*minShare)*w/thompsonDraws
	}
	return out, nil
}

// Reweight is the bandit's scheduled step: when Every has passed since the
// last re-weighting (or the start), each stratum of agg whose arms all have
// BurnIn requests gets Thompson weights; the others keep theirs. It starts
// a new epoch and a new revision, never a new phase: the analysis reads
// the propensities logged with each assignment, so changing weights
// biases nothing. It returns false when it is not time yet. agg holds, per
// stratum key, the outcomes of the arms in arm order since the phase
// started. The draws are seeded by the experiment and the epoch, so a
// re-weighting is reproducible.
func Reweight(s Spec, agg map[string][]ArmOutcomes, now time.Time) (Spec, bool, error) {
	if s.Kind != KindBandit || s.Bandit == nil || s.Status != StatusRunning {
		return s, false, nil
	}
	b := s.Bandit
	last := b.UpdatedMS
	if last == 0 {
		last = s.PhaseStarted
	}
	if now.Sub(time.UnixMilli(last)) < time.Duration(b.Every) {
		return s, false, nil
	}
	next := s.Clone()
	nb := next.Bandit
	if nb.Weights == nil {
		nb.Weights = map[string][]float64{}
	}
	keys := make([]string, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%d", s.ArmSalt(), s.Phase, b.Epoch+1)
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x6a09e667f3bcc908))
	for _, k := range keys {
		arms := agg[k]
		if len(arms) != len(s.Arms) || slices.ContainsFunc(arms, func(a ArmOutcomes) bool { return a.N < float64(b.BurnIn) }) {
			continue
		}
		w, err := ThompsonWeights(s.PrimaryMetric, arms, b.MinShare, rng)
		if err != nil {
			return s, false, err
		}
		nb.Weights[k] = w
	}
	nb.Epoch++
	nb.UpdatedMS = now.UnixMilli()
	next.UpdatedMS = now.UnixMilli()
	next.Revision++
	return next, true, nil
}

// StratumWeights are the weights in force for a stratum key: the
// re-weighted ones, else the arms' own.
func (s *Spec) StratumWeights(key string) []float64 {
	if s.Bandit != nil {
		if w, ok := s.Bandit.Weights[key]; ok && len(w) == len(s.Arms) {
			return w
		}
	}
	return s.armWeights()
}

func (s *Spec) armWeights() []float64 {
	w := make([]float64, len(s.Arms))
	for i, a := range s.Arms {
		w[i] = a.Weight
	}
	return w
}

// Outcomes sums (stratum, arm, propensity) groups over propensities: per stratum, the arms' outcomes
// in arm order, as Reweight reads them.
func Outcomes(groups []LoggedGroup, arms int) map[string][]ArmOutcomes {
	out := map[string][]ArmOutcomes{}
	for _, g := range groups {
		if g.Arm < 0 || g.Arm >= arms {
			continue
		}
		o := out[g.Stratum]
		if o == nil {
			o = make([]ArmOutcomes, arms)
			out[g.Stratum] = o
		}
		o[g.Arm].N += g.N
		o[g.Arm].Sum += g.Sum
		o[g.Arm].SumSq += g.SumSq
	}
	return out
}
