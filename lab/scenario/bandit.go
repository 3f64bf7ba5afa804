package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// BanditDescription says what `routelab lab scenario bandit` runs.
const BanditDescription = "a bandit experiment of three arms (pins to sim-fast, sim-editor, sim-typo; sim-typo is better on text requests only) " +
	"allocated by Thompson sampling per feature group, against fixed equal splits and the oracle, over several seeds"

// banditArms are the scenario's arms: sim-typo succeeds at text (0.95 on
// short phrases, 0.79 on layouts, where the others reach 0.40 at most) and
// is the worst of the three at everything else.
var banditArms = []struct{ name, model string }{
	{"fast", "sim-fast"}, {"editor", "sim-editor"}, {"typo", "sim-typo"},
}

// BanditConfig sizes the bandit scenario. Zero fields take the defaults.
type BanditConfig struct {
	Seed     uint64 // the first seed; the runs use Seed, Seed+1, ...; default 1
	Seeds    int    // default 5
	Requests int    // served per seed; default 1500
	// Every is the re-weighting schedule in the lab's virtual time; default
	// 1 min (a lab request, served one at a time, takes a few seconds of
	// virtual time: some 15 requests).
	Every    time.Duration
	BurnIn   int     // requests per arm and stratum before its weights move; default 20
	MinShare float64 // default 0.03
	// OCR and OCRSample turn on serve's legibility check in the scenario's
	// labs (lab.Config.OCR, OCRSample); nil: none.
	OCR       qa.OCR
	OCRSample float64
	Progress  func(format string, args ...any)
}

func (c *BanditConfig) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Seeds <= 0 {
		c.Seeds = 5
	}
	if c.Requests <= 0 {
		c.Requests = 1500
	}
	if c.Every <= 0 {
		c.Every = time.Minute
	}
	if c.BurnIn <= 0 {
		c.BurnIn = 20
	}
	if c.MinShare <= 0 {
		c.MinShare = 0.03
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// BanditSeed is one seed's run. Regrets are pseudo-regrets against the
// hidden truth, summed over the requests served: for each request, the
// success probability of the best arm for its task minus that of the arm
// the allocation gave it (for the fixed split, the mean over the arms,
// its expectation under equal random assignment). The oracle serves every
// request by its best arm: its regret is 0 by definition.
type BanditSeed struct {
	Seed uint64 `json:"seed"`
	// Text has the requests with target text, success as QA observed it
	// (with the legibility check when BanditConfig.OCR is set) next to the
	// hidden truth; OCR counts the lab's checks, reads and failed readings.
	Text          lab.TextSummary `json:"text"`
	OCR           qa.TextStats    `json:"ocr"`
	Requests      int             `json:"requests"`
	RegretBandit  float64         `json:"regret_bandit"`
	RegretFixed   float64         `json:"regret_fixed"`
	RegretOracle  float64         `json:"regret_oracle"`
	SuccessBandit float64         `json:"success_bandit"` // hidden success of what the bandit served
	SuccessFixed  float64         `json:"success_fixed"`  // expected, equal split
	SuccessOracle float64         `json:"success_oracle"` // expected, best arm per request
	// The OPE check: the value of the equal split (what a fixed A/B of the
	// same arms would have scored on these requests) estimated from the
	// bandit's own logs (experiments.AnalyzeBandit, doubly robust with the
	// logged propensities), against its true value.
	OPEUniform     float64 `json:"ope_uniform"`
	OPELow         float64 `json:"ope_ci_low"`
	OPEHigh        float64 `json:"ope_ci_high"`
	TruthUniform   float64 `json:"truth_uniform"`
	OPECoversTruth bool    `json:"ope_covers_truth"`
	// Per arm, the doubly robust value against the truth (information).
	Arms []BanditSeedArm `json:"arms"`
	// Reweights counts the scheduled re-weightings; Weights are the
	// weights in force at the end, per stratum.
	Reweights int                  `json:"reweights"`
	Weights   map[string][]float64 `json:"weights"`
	// Outcomes are the logged outcomes per stratum and arm the last
	// re-weighting read.
	Outcomes map[string][]experiments.ArmOutcomes `json:"outcomes"`
	// LabelAgreement is the share of requests whose logged outcome (the
	// user's thumbs up) is the hidden success of the image served.
	LabelAgreement float64 `json:"label_agreement"`
	ElapsedMS      int64   `json:"elapsed_ms"`
}

// BanditSeedArm is one arm's estimated and true value in one seed.
type BanditSeedArm struct {
	Arm      string  `json:"arm"`
	Model    string  `json:"model"`
	Share    float64 `json:"share"` // of the requests the bandit served
	DR       float64 `json:"dr"`
	DRLow    float64 `json:"dr_ci_low"`
	DRHigh   float64 `json:"dr_ci_high"`
	Truth    float64 `json:"truth"`
	Covers   bool    `json:"covers"`
	TextTrue float64 `json:"truth_text"` // true success on the text group
}

// BanditReport is what `routelab lab scenario bandit --json` prints.
type BanditReport struct {
	Scenario         string       `json:"scenario"`
	Description      string       `json:"description"`
	Seeds            []BanditSeed `json:"seeds"`
	MeanRegretBandit float64      `json:"mean_regret_bandit"`
	MeanRegretFixed  float64      `json:"mean_regret_fixed"`
	RegretRatio      float64      `json:"regret_ratio"` // bandit / fixed
	OPECovers        int          `json:"ope_covers"`
	TextQA           bool         `json:"text_qa"` // the labs ran serve's OCR legibility check
	ElapsedMS        int64        `json:"elapsed_ms"`
}

// RunBandit runs the bandit scenario once per seed: a bandit experiment
// (experiments.KindBandit, contextual on the feature group) is created and
// started in a registry, the lab's gateway assigns every request through
// it (gateway.ExperimentAssigner, the serving path's), and the loop
// re-weights it on schedule (Registry.Reweight) from the outcomes the
// gateway logged: each decision's arm, propensity and stratum, and the
// user's thumbs up or down on the image. Nothing in the loop reads the
// truth; the regrets and the OPE check do, for the report.
func RunBandit(ctx context.Context, cfg BanditConfig) (BanditReport, error) {
	start := time.Now()
	cfg.defaults()
	rep := BanditReport{Scenario: "bandit", Description: BanditDescription, TextQA: cfg.OCR != nil}
	for i := range cfg.Seeds {
		s, err := runBanditSeed(ctx, cfg, cfg.Seed+uint64(i))
		if err != nil {
			return rep, fmt.Errorf("seed %d: %w", cfg.Seed+uint64(i), err)
		}
		cfg.Progress("bandit seed %d: regret bandit %.1f, fixed %.1f; OPE %.4f [%.4f, %.4f], truth %.4f",
			s.Seed, s.RegretBandit, s.RegretFixed, s.OPEUniform, s.OPELow, s.OPEHigh, s.TruthUniform)
		rep.Seeds = append(rep.Seeds, s)
		rep.MeanRegretBandit += s.RegretBandit / float64(cfg.Seeds)
		rep.MeanRegretFixed += s.RegretFixed / float64(cfg.Seeds)
		if s.OPECoversTruth {
			rep.OPECovers++
		}
	}
	if rep.MeanRegretFixed > 0 {
		rep.RegretRatio = rep.MeanRegretBandit / rep.MeanRegretFixed
	}
	rep.ElapsedMS = since(start)
	return rep, nil
}

// banditCatalog is the catalog without provider errors: an arm's outcome
// is then its model's image, so the truth of a request is its model's
// success probability at the request's task.
func banditCatalog() (router.Catalog, error) {
	cat, err := datasets.Catalog()
	if err != nil {
		return cat, err
	}
	models := make([]router.Model, len(cat.Models))
	copy(models, cat.Models)
	for i := range models {
		models[i].ErrorRate, models[i].RateLimitRate, models[i].RefusalRate = 0, 0, 0
	}
	cat.Models = models
	return cat, nil
}

func banditSpec(cfg BanditConfig, seed uint64) experiments.Spec {
	s := experiments.Spec{
		// a fixed id: it salts the arm hash, so a run is a function of its seed
		ID: fmt.Sprintf("lab-bandit-%d", seed), Name: "lab bandit", Owner: "lab", Hypothesis: "one model is better at text, another elsewhere",
		Layer: "bandit", Unit: experiments.UnitRequest, PrimaryMetric: "thumbs_up_rate",
		Kind: experiments.KindBandit, Bandit: &experiments.Bandit{
			Every: experiments.Duration(cfg.Every), MinShare: cfg.MinShare, BurnIn: cfg.BurnIn, Strata: []string{"group"},
		},
	}
	for _, a := range banditArms {
		s.Arms = append(s.Arms, experiments.Arm{Name: a.name, Weight: 1, Overrides: experiments.Overrides{Model: a.model}})
	}
	return s
}

func runBanditSeed(ctx context.Context, cfg BanditConfig, seed uint64) (BanditSeed, error) {
	start := time.Now()
	out := BanditSeed{Seed: seed}
	cat, err := banditCatalog()
	if err != nil {
		return out, err
	}
	world := sim.NewWorld(cat, seed)
	var lb *lab.Lab
	memlog := experiments.NewMemLog()
	reg := experiments.NewRegistry(memlog, nil, func() time.Time { return lb.Now() })
	memlog.Bind(reg.Apply)
	policy, err := datasets.Policy("explore")
	if err != nil {
		return out, err
	}
	lb, err = lab.New(lab.Config{
		Catalog: cat, World: world, Seed: seed, Feedback: 1,
		// the arm's model answers alone: no escalation to another model
		Gateway:  gateway.Config{SampleRate: -1, MaxEscalations: -1},
		Assigner: gateway.NewExperimentAssigner(reg.Assigner, nil),
		OCR:      cfg.OCR, OCRSample: cfg.OCRSample,
	}, policy)
	if err != nil {
		return out, err
	}
	spec, err := reg.Create(ctx, banditSpec(cfg, seed), "lab")
	if err != nil {
		return out, fmt.Errorf("create bandit: %w", err)
	}
	if spec, err = reg.Transition(ctx, spec.ID, experiments.StatusRunning, "lab", "scenario"); err != nil {
		return out, fmt.Errorf("start bandit: %w", err)
	}
	models := make([]string, len(banditArms))
	for i, a := range banditArms {
		models[i] = a.model
	}
	agg := map[string][]experiments.ArmOutcomes{}
	var rows []experiments.LoggedOutcome
	var truthArm = make([]float64, len(models))
	var truthText = make([]float64, len(models))
	var nText, agree float64
	var text lab.TextTally
	gen := &generations{seed: seed}
	for range cfg.Requests {
		it, err := gen.next()
		if err != nil {
			return out, err
		}
		res := lb.Serve(ctx, it.Request)
		text.Add(&res)
		arm := findArm(res.Decision, spec.ID)
		if arm == nil {
			return out, fmt.Errorf("request %s: not assigned to %s", it.Request.ID, spec.ID)
		}
		idx := armIndex(arm.Arm)
		y := 0.0
		if res.Signal != nil && res.Signal.Signal == "thumbs_up" {
			y = 1
		}
		rows = append(rows, experiments.LoggedOutcome{Arm: idx, Propensity: arm.Propensity, Stratum: arm.Stratum, Y: y})
		a := agg[arm.Stratum]
		if a == nil {
			a = make([]experiments.ArmOutcomes, len(models))
			agg[arm.Stratum] = a
		}
		a[idx].N++
		a[idx].Sum += y
		a[idx].SumSq += y * y
		if _, done, err := reg.Reweight(ctx, spec.ID, agg, "lab"); err != nil {
			return out, fmt.Errorf("reweight: %w", err)
		} else if done {
			out.Reweights++
		}

		// the truth, for the report only
		task := sim.InferTask(string(it.Request.Mode), it.Request.Prompt, it.Request.RefCount)
		p := make([]float64, len(models))
		best, mean := 0.0, 0.0
		for i, m := range models {
			p[i] = world.TrueP(m, task, 1)
			best = math.Max(best, p[i])
			mean += p[i] / float64(len(models))
			truthArm[i] += p[i]
			if isText(task) {
				truthText[i] += p[i]
			}
		}
		if isText(task) {
			nText++
		}
		out.RegretBandit += best - p[idx]
		out.RegretFixed += best - mean
		out.SuccessFixed += mean
		out.SuccessOracle += best
		hidden := res.Succeeded()
		if hidden {
			out.SuccessBandit++
		}
		if hidden == (y == 1) {
			agree++
		}
	}
	n := float64(cfg.Requests)
	out.Requests = cfg.Requests
	out.SuccessBandit /= n
	out.SuccessFixed /= n
	out.SuccessOracle /= n
	out.TruthUniform = out.SuccessFixed
	out.LabelAgreement = agree / n
	out.Text, out.OCR = text.Summary(), lb.TextStats()
	final, err := reg.Get(spec.ID)
	if err != nil {
		return out, err
	}
	out.Weights, out.Outcomes = final.Bandit.Weights, agg
	an := experiments.AnalyzeBandit(final, experiments.Groups(rows), 0.05)
	out.OPEUniform = an.Uniform.Value
	out.OPELow, out.OPEHigh = deref0(an.Uniform.CILow), deref0(an.Uniform.CIHigh)
	out.OPECoversTruth = out.OPELow <= out.TruthUniform && out.TruthUniform <= out.OPEHigh
	for i, a := range an.Arms {
		sa := BanditSeedArm{Arm: a.Arm, Model: models[i], Share: a.Share, DR: a.DR.Value,
			DRLow: deref0(a.DR.CILow), DRHigh: deref0(a.DR.CIHigh), Truth: truthArm[i] / n}
		if nText > 0 {
			sa.TextTrue = truthText[i] / nText
		}
		sa.Covers = sa.DRLow <= sa.Truth && sa.Truth <= sa.DRHigh
		out.Arms = append(out.Arms, sa)
	}
	out.ElapsedMS = since(start)
	return out, nil
}

func findArm(d *events.Decision, exp string) *events.Arm {
	if d == nil {
		return nil
	}
	for i := range d.Arms {
		if d.Arms[i].Experiment == exp {
			return &d.Arms[i]
		}
	}
	return nil
}

func armIndex(name string) int {
	for i, a := range banditArms {
		if a.name == name {
			return i
		}
	}
	return -1
}

func isText(task string) bool { return strings.HasPrefix(task, "text_") }

func deref0(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// generations is the scenario's endless workload: the generator's new
// generations (no edits, no pins, no latency or cost budget, so an arm's
// model always answers), each flagged text_heavy exactly when it asks for
// text, as a product app that knows it is asking for a poster or a menu
// does. The feature group of the bandit's strata is then the task group.
type generations struct {
	seed  uint64
	items []datasets.WorkItem
	pos   int
	batch int
}

func (g *generations) next() (datasets.WorkItem, error) {
	for {
		if g.pos >= len(g.items) {
			g.batch++
			items, err := datasets.Generate(g.seed*1000+uint64(g.batch), 5000)
			if err != nil {
				return datasets.WorkItem{}, err
			}
			g.items, g.pos = items, 0
		}
		it := g.items[g.pos]
		g.pos++
		r := &it.Request
		if r.Mode != router.ModeGenerate || r.Parent != "" {
			continue
		}
		r.ID = fmt.Sprintf("g%d-%s", g.batch, r.ID)
		r.Pin = ""
		r.Constraints = router.Constraints{
			TextHeavy:       isText(sim.InferTask(string(r.Mode), r.Prompt, r.RefCount)),
			PreserveSubject: r.Constraints.PreserveSubject,
		}
		return it, nil
	}
}

// WriteText prints the report for a terminal.
func (r *BanditReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario bandit: %s\n", r.Description)
	for _, s := range r.Seeds {
		fmt.Fprintf(w, "  seed %d: regret bandit %.1f, fixed %.1f, oracle %.1f; OPE of the equal split %.4f [%.4f, %.4f], truth %.4f\n",
			s.Seed, s.RegretBandit, s.RegretFixed, s.RegretOracle, s.OPEUniform, s.OPELow, s.OPEHigh, s.TruthUniform)
	}
	fmt.Fprintf(w, "mean regret bandit %.1f vs fixed %.1f (%.0f%%); OPE covers the truth in %d of %d seeds\n",
		r.MeanRegretBandit, r.MeanRegretFixed, 100*r.RegretRatio, r.OPECovers, len(r.Seeds))
	for _, s := range r.Seeds {
		fmt.Fprintf(w, "  seed %d: %s; OCR reads %d of %d checks\n", s.Seed, s.Text.Line(r.TextQA), s.OCR.Reads, s.OCR.Checks)
	}
}
