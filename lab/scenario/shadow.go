package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// ShadowDescription says what `routelab lab scenario shadow` runs.
const ShadowDescription = "a shadow experiment mirrors a share of live traffic (served by the rules policy) to a candidate (a pin to sim-premium) " +
	"after each response; the live responses are compared with a run without the experiment, and live and candidate with each other on the pairs"

// ShadowConfig sizes the shadow scenario. Zero fields take the defaults.
type ShadowConfig struct {
	Seed      uint64  // default 1
	Requests  int     // live requests; default 600
	Share     float64 // share mirrored; default 1
	Candidate string  // the candidate's model pin; default sim-premium
	Policy    string  // the live policy (datasets.Policy); default rules
	// OCR and OCRSample turn on serve's legibility check in the scenario's
	// labs (lab.Config.OCR, OCRSample); nil: none.
	OCR       qa.OCR
	OCRSample float64
	Progress  func(format string, args ...any)
}

func (c *ShadowConfig) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Requests <= 0 {
		c.Requests = 600
	}
	if c.Share <= 0 {
		c.Share = 1
	}
	if c.Candidate == "" {
		c.Candidate = "sim-premium"
	}
	if c.Policy == "" {
		c.Policy = "rules"
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// ShadowReport is what `routelab lab scenario shadow --json` prints. The
// comparison reads the logs only (QA on both images of a pair, cost,
// latency); the truth fields are the world's hidden success of the same
// images, for the reader.
type ShadowReport struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	Seed        uint64 `json:"seed"`
	Requests    int    `json:"requests"`
	Candidate   string `json:"candidate"`
	Policy      string `json:"live_policy"`
	// LiveChanged counts live requests whose response (status, model, QA
	// verdict, the image's drawn quality, attempts) differs from the same
	// request in a run without the shadow experiment; ShadowReturned those
	// whose returned outcome came from a mirror. Both must be 0.
	LiveChanged    int `json:"live_changed"`
	ShadowReturned int `json:"shadow_returned"`
	// Pairs are the live requests that were mirrored, with their mirror's
	// events (shadow = true, live_request_id).
	Pairs int `json:"pairs"`
	// The blind pairwise review of the pairs (the review queue the pairs
	// feed): the lab's simulated reviewer sees both images unlabelled and
	// prefers the acceptable one (drawn quality a success) when exactly
	// one is; otherwise no preference. CandidateBetter when the share of
	// decided pairs preferring the candidate is above 1/2 at 95% (Wilson).
	ReviewDecided   int     `json:"review_decided"`
	ReviewCandidate int     `json:"review_prefer_candidate"`
	ReviewShare     float64 `json:"review_candidate_share"`
	ReviewShareLow  float64 `json:"review_share_ci_low"`
	ReviewShareHigh float64 `json:"review_share_ci_high"`
	CandidateBetter bool    `json:"candidate_better"`
	// On the pairs, from the events: QA pass of live and candidate and the
	// paired difference with its 95% interval (QA checks the bytes; it
	// sees defects, not how good an image is, so it separates less).
	LiveQAPass      float64         `json:"live_qa_pass"`
	CandidateQAPass float64         `json:"candidate_qa_pass"`
	Delta           float64         `json:"delta_qa_pass"`
	DeltaLow        float64         `json:"delta_ci_low"`
	DeltaHigh       float64         `json:"delta_ci_high"`
	LiveCostUSD     float64         `json:"live_cost_usd"`
	CandCostUSD     float64         `json:"candidate_cost_usd"`
	LiveLatencyMS   float64         `json:"live_latency_ms"`
	CandLatencyMS   float64         `json:"candidate_latency_ms"`
	Strata          []ShadowStratum `json:"strata"`
	// The hidden success of the pairs' images.
	TruthLive            float64 `json:"truth_live_success"`
	TruthCandidate       float64 `json:"truth_candidate_success"`
	TruthCandidateBetter bool    `json:"truth_candidate_better"`
	// TextQA says whether the labs ran serve's OCR legibility check
	// (ShadowConfig.OCR); Text has the live requests with target text,
	// success as QA observed it next to the hidden truth; OCR counts the
	// shadowed lab's checks (mirrors included), reads and failed readings.
	TextQA    bool            `json:"text_qa"`
	Text      lab.TextSummary `json:"text"`
	OCR       qa.TextStats    `json:"ocr"`
	ElapsedMS int64           `json:"elapsed_ms"`
}

// ShadowStratum is the live/candidate comparison of one feature group.
type ShadowStratum struct {
	Group           string  `json:"group"`
	Pairs           int     `json:"pairs"`
	LiveQAPass      float64 `json:"live_qa_pass"`
	CandidateQAPass float64 `json:"candidate_qa_pass"`
	LiveCostUSD     float64 `json:"live_cost_usd"`
	CandCostUSD     float64 `json:"candidate_cost_usd"`
	LiveLatencyMS   float64 `json:"live_latency_ms"`
	CandLatencyMS   float64 `json:"candidate_latency_ms"`
}

// RunShadow serves the same workload through two labs of the same seed:
// one without experiments, one with a shadow experiment running
// (gateway.ExperimentAssigner, the mirrors run after each live result as
// serve's pool runs them after the response). It counts live responses
// that differ between the two, and compares live with candidate on the
// mirrored pairs from what the gateway logged.
func RunShadow(ctx context.Context, cfg ShadowConfig) (ShadowReport, error) {
	start := time.Now()
	cfg.defaults()
	rep := ShadowReport{Scenario: "shadow", Description: ShadowDescription, Seed: cfg.Seed, Requests: cfg.Requests, Candidate: cfg.Candidate, Policy: cfg.Policy}
	cat, err := datasets.Catalog()
	if err != nil {
		return rep, err
	}
	policy, err := datasets.Policy(cfg.Policy)
	if err != nil {
		return rep, err
	}
	plain, err := lab.New(lab.Config{Catalog: cat, World: sim.NewWorld(cat, cfg.Seed), Seed: cfg.Seed, OCR: cfg.OCR, OCRSample: cfg.OCRSample}, policy)
	if err != nil {
		return rep, err
	}
	var shadowed *lab.Lab
	memlog := experiments.NewMemLog()
	reg := experiments.NewRegistry(memlog, nil, func() time.Time { return shadowed.Now() })
	memlog.Bind(reg.Apply)
	shadowed, err = lab.New(lab.Config{Catalog: cat, World: sim.NewWorld(cat, cfg.Seed), Seed: cfg.Seed,
		Assigner: gateway.NewExperimentAssigner(reg.Assigner, nil), OCR: cfg.OCR, OCRSample: cfg.OCRSample}, policy)
	if err != nil {
		return rep, err
	}
	spec, err := reg.Create(ctx, experiments.Spec{
		ID: fmt.Sprintf("lab-shadow-%d", cfg.Seed), Name: "lab shadow", Owner: "lab", Hypothesis: "the candidate passes QA more often",
		Layer: "shadow", Unit: experiments.UnitUser, PrimaryMetric: "qa_pass_rate", Kind: experiments.KindShadow,
		Shadow: &experiments.Shadow{Share: cfg.Share},
		Arms: []experiments.Arm{
			{Name: "live", Weight: 1},
			{Name: "candidate", Weight: 1, Overrides: experiments.Overrides{Model: cfg.Candidate}},
		},
	}, "lab")
	if err != nil {
		return rep, fmt.Errorf("create shadow experiment: %w", err)
	}
	if _, err := reg.Transition(ctx, spec.ID, experiments.StatusRunning, "lab", "scenario"); err != nil {
		return rep, fmt.Errorf("start shadow experiment: %w", err)
	}

	st := &stream{seed: cfg.Seed + 1, lw: &labWorld{}, batch: -1}
	var diffs []float64
	var truthLive, truthCand float64
	type acc struct {
		n, live, cand, lc, cc, ll, cl float64
	}
	strata := map[string]*acc{}
	var all acc
	var text lab.TextTally
	for i := range cfg.Requests {
		it, err := st.next()
		if err != nil {
			return rep, err
		}
		a := plain.Serve(ctx, it.Request)
		b := shadowed.Serve(ctx, it.Request)
		text.Add(&b)
		if liveKey(&a) != liveKey(&b) {
			rep.LiveChanged++
		}
		if b.Decision != nil && (b.Decision.Shadow || b.Decision.RequestID != a.Decision.RequestID) {
			rep.ShadowReturned++
		}
		if (i+1)%200 == 0 {
			cfg.Progress("shadow: %d live requests, %d mirrored, %d live responses changed", i+1, rep.Pairs, rep.LiveChanged)
		}
		if b.Shadow == nil || b.Decision == nil {
			continue
		}
		live, cand := b.Decision, b.Shadow.Decision
		if !cand.Shadow || cand.LiveRequestID != live.RequestID {
			return rep, fmt.Errorf("mirror %s of %s: shadow %v, live_request_id %q", cand.RequestID, live.RequestID, cand.Shadow, cand.LiveRequestID)
		}
		rep.Pairs++
		lp, cp := passed(live.Status, live.QAPass), passed(cand.Status, cand.QAPass)
		diffs = append(diffs, cp-lp)
		group := "image"
		switch {
		case live.Mode == "edit":
			group = "edit"
		case live.Features.TextHeavy:
			group = "text"
		}
		for _, x := range []*acc{&all, strataAcc(strata, group)} {
			x.n++
			x.live += lp
			x.cand += cp
			x.lc += live.CostUSD
			x.cc += cand.CostUSD
			x.ll += float64(live.LatencyMS)
			x.cl += float64(cand.LatencyMS)
		}
		lg := b.Succeeded()
		cg := cand.Status == "ok" && b.Shadow.Quality >= sim.SuccessQuality
		if lg {
			truthLive++
		}
		if cg {
			truthCand++
		}
		if lg != cg {
			rep.ReviewDecided++
			if cg {
				rep.ReviewCandidate++
			}
		}
	}
	if rep.Pairs > 0 {
		n := float64(rep.Pairs)
		rep.LiveQAPass, rep.CandidateQAPass = all.live/n, all.cand/n
		rep.LiveCostUSD, rep.CandCostUSD = all.lc/n, all.cc/n
		rep.LiveLatencyMS, rep.CandLatencyMS = all.ll/n, all.cl/n
		rep.TruthLive, rep.TruthCandidate = truthLive/n, truthCand/n
		rep.TruthCandidateBetter = rep.TruthCandidate > rep.TruthLive
		rep.Delta, rep.DeltaLow, rep.DeltaHigh = pairedCI(diffs)
	}
	if rep.ReviewDecided > 0 {
		rep.ReviewShare, rep.ReviewShareLow, rep.ReviewShareHigh = wilson(float64(rep.ReviewCandidate), float64(rep.ReviewDecided))
		rep.CandidateBetter = rep.ReviewShareLow > 0.5
	}
	groups := make([]string, 0, len(strata))
	for g := range strata {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		x := strata[g]
		rep.Strata = append(rep.Strata, ShadowStratum{Group: g, Pairs: int(x.n), LiveQAPass: x.live / x.n, CandidateQAPass: x.cand / x.n,
			LiveCostUSD: x.lc / x.n, CandCostUSD: x.cc / x.n, LiveLatencyMS: x.ll / x.n, CandLatencyMS: x.cl / x.n})
	}
	rep.TextQA, rep.Text, rep.OCR = shadowed.TextQA(), text.Summary(), shadowed.TextStats()
	rep.ElapsedMS = since(start)
	return rep, nil
}

func strataAcc[T any](m map[string]*T, k string) *T {
	x := m[k]
	if x == nil {
		x = new(T)
		m[k] = x
	}
	return x
}

func passed(status string, qa bool) float64 {
	if status == "ok" && qa {
		return 1
	}
	return 0
}

// liveKey is what the user got for a request: the outcome, the model, the
// QA verdict, the image's drawn quality and how the attempts went.
func liveKey(r *lab.Result) string {
	if r.Decision == nil {
		return "no decision"
	}
	d := r.Decision
	k := fmt.Sprintf("%s|%s|%s|%v|%.6f|%v", d.Status, d.ErrorCode, d.Model, d.QAPass, r.Quality, r.Restarted)
	for _, a := range d.Attempts {
		k += "|" + a.Model + ":" + a.Status
	}
	return k
}

// wilson is the share k/n with its 95% Wilson score interval.
func wilson(k, n float64) (p, lo, hi float64) {
	z := distuv.UnitNormal.Quantile(0.975)
	p = k / n
	c := (p + z*z/(2*n)) / (1 + z*z/n)
	h := z / (1 + z*z/n) * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
	return p, c - h, c + h
}

// pairedCI is the mean of the paired differences with a normal 95%
// interval.
func pairedCI(d []float64) (mean, lo, hi float64) {
	n := float64(len(d))
	if n < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	mean, sd := stat.MeanStdDev(d, nil)
	se := sd / math.Sqrt(n)
	z := distuv.UnitNormal.Quantile(0.975)
	return mean, mean - z*se, mean + z*se
}

// WriteText prints the report for a terminal.
func (r *ShadowReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario shadow: %s\n", r.Description)
	fmt.Fprintf(w, "%d live requests, %d mirrored; live responses changed: %d; mirrors returned: %d\n", r.Requests, r.Pairs, r.LiveChanged, r.ShadowReturned)
	fmt.Fprintf(w, "blind pairwise review: %d of %d decided pairs prefer the candidate (%.3f [%.3f, %.3f]); candidate better: %v\n",
		r.ReviewCandidate, r.ReviewDecided, r.ReviewShare, r.ReviewShareLow, r.ReviewShareHigh, r.CandidateBetter)
	fmt.Fprintf(w, "QA pass live %.4f, candidate %.4f: difference %+.4f [%.4f, %.4f]; hidden success %.4f vs %.4f\n",
		r.LiveQAPass, r.CandidateQAPass, r.Delta, r.DeltaLow, r.DeltaHigh, r.TruthLive, r.TruthCandidate)
	for _, s := range r.Strata {
		fmt.Fprintf(w, "  %-6s %4d pairs: QA pass %.3f vs %.3f, cost $%.4f vs $%.4f, latency %.0f vs %.0f ms\n",
			s.Group, s.Pairs, s.LiveQAPass, s.CandidateQAPass, s.LiveCostUSD, s.CandCostUSD, s.LiveLatencyMS, s.CandLatencyMS)
	}
	fmt.Fprintf(w, "live %s; OCR reads %d of %d checks\n", r.Text.Line(r.TextQA), r.OCR.Reads, r.OCR.Checks)
}
