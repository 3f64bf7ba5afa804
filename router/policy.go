package router

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// MaxModels bounds the catalog a policy routes between, so Decide can keep
// its per-model scratch on the stack.
const MaxModels = 16

// FeatureVersion identifies the feature layout classifier weights are for.
const FeatureVersion = 1

// ResetDepth is the edit depth a reset decision restarts from: one edit on
// the cleanest prior image.
const ResetDepth = 1

// Policy is the versioned routing artifact: rules, the classifier and its
// calibration, thresholds, exploration and the edit-chain limit, plus what it
// was trained on. It is JSON; Checksum covers everything else in it.
type Policy struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Checksum string `json:"checksum"`
	// Models is the catalog snapshot the policy routes between.
	Models       []Model `json:"models"`
	DefaultModel string  `json:"default_model"`
	Rules        []Rule  `json:"rules,omitempty"`
	// Classifier and Calibration are absent in a rules-only policy.
	Classifier  *Classifier           `json:"classifier,omitempty"`
	Calibration map[string]Calibrator `json:"calibration,omitempty"`
	// Thresholds: the calibrated P(success) a model must reach, per tier,
	// for the cheapest such model to be chosen.
	Thresholds map[Tier]float64 `json:"thresholds,omitempty"`
	// Epsilon is the exploration rate: with this probability a uniformly
	// drawn eligible model replaces the greedy choice.
	Epsilon float64 `json:"epsilon"`
	// EditDepthLimit: edits at or past this depth restart from the cleanest
	// prior image. 0 disables resets.
	EditDepthLimit int             `json:"edit_depth_limit"`
	TrainingWindow *TrainingWindow `json:"training_window,omitempty"`
	Reference      *Reference      `json:"reference,omitempty"`
	Metrics        *Metrics        `json:"metrics,omitempty"`

	c *compiled
}

// Rule routes matching requests to one model, ahead of the classifier.
type Rule struct {
	Name  string `json:"name"`
	Match Match  `json:"match"`
	Model string `json:"model"`
}

// Match is a conjunction; empty fields match everything.
type Match struct {
	Mode            Mode     `json:"mode,omitempty"`
	MinRefs         int      `json:"min_refs,omitempty"`
	TextHeavy       *bool    `json:"text_heavy,omitempty"`
	PreserveSubject *bool    `json:"preserve_subject,omitempty"`
	Quoted          *bool    `json:"quoted,omitempty"`   // prompt has quoted text
	Keywords        []string `json:"keywords,omitempty"` // any of these keyword groups
	Tiers           []Tier   `json:"tiers,omitempty"`
}

// Classifier holds one logistic-regression weight vector per model over the
// feature layout FeatureVersion.
type Classifier struct {
	FeatureVersion int                  `json:"feature_version"`
	GramBuckets    int                  `json:"gram_buckets"`
	Weights        map[string][]float64 `json:"weights"`
}

// Calibrator maps a raw classifier score (the logit) to a calibrated
// probability.
type Calibrator struct {
	Kind string  `json:"kind"` // platt | isotonic
	A    float64 `json:"a,omitempty"`
	B    float64 `json:"b,omitempty"`
	// Isotonic knots: increasing raw scores X with non-decreasing
	// probabilities Y, linearly interpolated, clamped at the ends.
	X []float64 `json:"x,omitempty"`
	Y []float64 `json:"y,omitempty"`
}

// Apply maps raw score z to a probability.
func (c *Calibrator) Apply(z float64) float64 {
	switch c.Kind {
	case "platt":
		return sigmoid(c.A*z + c.B)
	case "isotonic":
		n := len(c.X)
		if n == 0 {
			return sigmoid(z)
		}
		if z <= c.X[0] {
			return c.Y[0]
		}
		if z >= c.X[n-1] {
			return c.Y[n-1]
		}
		i := sort.SearchFloat64s(c.X, z) // c.X[i-1] < z <= c.X[i]
		x0, x1 := c.X[i-1], c.X[i]
		t := (z - x0) / (x1 - x0)
		return c.Y[i-1] + t*(c.Y[i]-c.Y[i-1])
	}
	return sigmoid(z)
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// TrainingWindow says what a policy was trained on.
type TrainingWindow struct {
	FromTS int64  `json:"from_ts"`
	ToTS   int64  `json:"to_ts"`
	Events int    `json:"events"`
	Source string `json:"source,omitempty"`
}

// Reference holds the training data's feature distributions, for drift
// checks against live traffic (PSI/KS).
type Reference struct {
	Events int                           `json:"events"`
	Hist   map[string]Histogram          `json:"hist"`
	Share  map[string]map[string]float64 `json:"share"`
}

// Histogram is a binned distribution: Frac[i] is the share of values in
// [Edges[i], Edges[i+1]); the last bin is open-ended.
type Histogram struct {
	Edges []float64 `json:"edges"`
	Frac  []float64 `json:"frac"`
}

// Metrics are the training report figures kept with the policy.
type Metrics struct {
	ECE         float64                  `json:"ece"`
	Brier       float64                  `json:"brier"`
	Holdout     int                      `json:"holdout"`
	Reliability []ReliabilityPoint       `json:"reliability"`
	PerModel    []ModelMetrics           `json:"per_model"`
	Frontier    map[Tier][]FrontierPoint `json:"frontier"`
	RuleAudit   []RuleAudit              `json:"rule_audit,omitempty"`
}

// ModelMetrics is one model's calibration on held-out data.
type ModelMetrics struct {
	Model      string  `json:"model"`
	Train      int     `json:"train"`
	Holdout    int     `json:"holdout"`
	Calibrator string  `json:"calibrator"`
	Lambda     float64 `json:"lambda"`
	ECEPlatt   float64 `json:"ece_platt"`
	ECEIso     float64 `json:"ece_isotonic"`
	Brier      float64 `json:"brier"`
}

// ReliabilityPoint is one bin of a reliability curve.
type ReliabilityPoint struct {
	MeanP float64 `json:"mean_p"`
	Rate  float64 `json:"rate"`
	N     float64 `json:"n"` // weight in the bin
}

// FrontierPoint is one threshold on the cost/success frontier, with the
// success and cost the calibrated model expects at it.
type FrontierPoint struct {
	Threshold float64 `json:"threshold"`
	Success   float64 `json:"success"`
	CostUSD   float64 `json:"cost_usd"`
	Chosen    bool    `json:"chosen,omitempty"`
}

// RuleAudit compares a rule's model with the classifier's own choice on the
// held-out requests the rule matches.
type RuleAudit struct {
	Rule      string  `json:"rule"`
	Matched   int     `json:"matched"`
	RuleP     float64 `json:"rule_p"`
	RuleCost  float64 `json:"rule_cost_usd"`
	ClassP    float64 `json:"classifier_p"`
	ClassCost float64 `json:"classifier_cost_usd"`
	Kept      bool    `json:"kept"`
}

// ErrChecksum means a policy's content does not match its checksum.
var ErrChecksum = errors.New("policy checksum mismatch")

// ParsePolicy decodes, verifies and compiles a policy. A policy with an
// empty checksum is accepted (hand-written) and sealed.
func ParsePolicy(b []byte) (*Policy, error) {
	var p Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode policy: %w", err)
	}
	if p.Checksum == "" {
		if err := p.Seal(); err != nil {
			return nil, err
		}
	} else {
		sum, err := p.contentSum()
		if err != nil {
			return nil, err
		}
		if sum != p.Checksum {
			return nil, fmt.Errorf("%w: have %s, content is %s", ErrChecksum, p.Checksum, sum)
		}
	}
	if err := p.Compile(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Seal sets the version (when empty, from the content) and the checksum.
// Call it after the last change to a policy.
func (p *Policy) Seal() error {
	if p.Version == "" {
		p.Checksum = ""
		sum, err := p.contentSum()
		if err != nil {
			return err
		}
		p.Version = p.Name + "-" + sum[:10]
	}
	p.Checksum = ""
	sum, err := p.contentSum()
	if err != nil {
		return err
	}
	p.Checksum = sum
	return p.Compile()
}

// contentSum is the SHA-256 of the policy's JSON with an empty checksum.
// encoding/json sorts map keys and writes floats in their shortest exact
// form, so the encoding is canonical.
func (p *Policy) contentSum() (string, error) {
	q := *p
	q.Checksum = ""
	q.c = nil
	b, err := json.Marshal(&q)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// JSON encodes the policy, indented.
func (p *Policy) JSON() ([]byte, error) {
	return json.MarshalIndent(p, "", "  ")
}

// compiled is the policy in the shape Decide reads: indices instead of
// names, arrays instead of maps.
type compiled struct {
	models     []Model
	p90        []float64
	sizes      [][]sizeCost
	weights    [][]float64 // nil without a classifier
	cal        []Calibrator
	rules      []compiledRule
	thresholds [3]float64
	def        int // default model index, -1 when none
}

type sizeCost struct {
	w, h int
	cost [3]float64 // draft, standard, premium
}

type compiledRule struct {
	name            string
	model           int
	mode            Mode
	minRefs         int
	textHeavy       int8 // -1 any, 0 false, 1 true
	preserveSubject int8
	quoted          int8
	keywords        uint16
	tiers           uint8 // bit per tier index; 0 = any
}

func tierIndex(t Tier) int {
	switch t {
	case TierDraft:
		return 0
	case TierPremium:
		return 2
	}
	return 1
}

// Compile validates the policy and prepares it for Decide. ParsePolicy and
// Seal call it; call it yourself after building a Policy in code.
func (p *Policy) Compile() error {
	cat := Catalog{DefaultModel: p.DefaultModel, Models: p.Models}
	if err := cat.Validate(); err != nil {
		return fmt.Errorf("policy %s: %w", p.Name, err)
	}
	if p.Epsilon < 0 || p.Epsilon > 1 {
		return fmt.Errorf("policy %s: epsilon %v outside [0,1]", p.Name, p.Epsilon)
	}
	if p.EditDepthLimit < 0 {
		return fmt.Errorf("policy %s: negative edit_depth_limit", p.Name)
	}
	c := &compiled{def: -1}
	c.models = p.Models
	idx := map[string]int{}
	for i, m := range p.Models {
		idx[m.Name] = i
		c.p90 = append(c.p90, m.LatencyP90MS())
		var sc []sizeCost
		for _, s := range m.Sizes {
			w, h, _ := ParseSize(s)
			t := m.CostUSD[s]
			sc = append(sc, sizeCost{w: w, h: h, cost: [3]float64{t[TierDraft], t[TierStandard], t[TierPremium]}})
		}
		c.sizes = append(c.sizes, sc)
	}
	if p.DefaultModel != "" {
		c.def = idx[p.DefaultModel]
	}
	if p.Classifier != nil {
		if p.Classifier.FeatureVersion != FeatureVersion || p.Classifier.GramBuckets != GramBuckets {
			return fmt.Errorf("policy %s: classifier is for feature version %d with %d buckets, this build has %d with %d",
				p.Name, p.Classifier.FeatureVersion, p.Classifier.GramBuckets, FeatureVersion, GramBuckets)
		}
		c.weights = make([][]float64, len(p.Models))
		c.cal = make([]Calibrator, len(p.Models))
		for i, m := range p.Models {
			w, ok := p.Classifier.Weights[m.Name]
			if !ok {
				return fmt.Errorf("policy %s: no classifier weights for model %s", p.Name, m.Name)
			}
			if len(w) != Dim {
				return fmt.Errorf("policy %s: model %s has %d weights, want %d", p.Name, m.Name, len(w), Dim)
			}
			c.weights[i] = w
			cal := p.Calibration[m.Name]
			if cal.Kind == "isotonic" && (len(cal.X) != len(cal.Y) || !sort.Float64sAreSorted(cal.X)) {
				return fmt.Errorf("policy %s: bad isotonic map for %s", p.Name, m.Name)
			}
			c.cal[i] = cal
		}
	}
	c.thresholds = [3]float64{0.8, 0.85, 0.9}
	for t, v := range p.Thresholds {
		if v < 0 || v > 1 {
			return fmt.Errorf("policy %s: threshold %v for tier %s outside [0,1]", p.Name, v, t)
		}
		c.thresholds[tierIndex(t)] = v
	}
	for _, r := range p.Rules {
		cr, err := compileRule(r, idx)
		if err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
		c.rules = append(c.rules, cr)
	}
	p.c = c
	return nil
}

func tri(b *bool) int8 {
	switch {
	case b == nil:
		return -1
	case *b:
		return 1
	}
	return 0
}

func compileRule(r Rule, idx map[string]int) (compiledRule, error) {
	m, ok := idx[r.Model]
	if !ok {
		return compiledRule{}, fmt.Errorf("rule %q routes to unknown model %q", r.Name, r.Model)
	}
	cr := compiledRule{
		name: r.Name, model: m, mode: r.Match.Mode, minRefs: r.Match.MinRefs,
		textHeavy: tri(r.Match.TextHeavy), preserveSubject: tri(r.Match.PreserveSubject), quoted: tri(r.Match.Quoted),
	}
	for _, k := range r.Match.Keywords {
		found := false
		for i, n := range KeywordNames {
			if n == k {
				cr.keywords |= 1 << i
				found = true
			}
		}
		if !found {
			return compiledRule{}, fmt.Errorf("rule %q: unknown keyword group %q", r.Name, k)
		}
	}
	for _, t := range r.Match.Tiers {
		cr.tiers |= 1 << tierIndex(t)
	}
	return cr, nil
}

func (r *compiledRule) matches(req *Request, f *Features) bool {
	if r.mode != "" && req.Mode != r.mode {
		return false
	}
	if req.RefCount < r.minRefs {
		return false
	}
	if !triOK(r.textHeavy, req.Constraints.TextHeavy) || !triOK(r.preserveSubject, req.Constraints.PreserveSubject) ||
		!triOK(r.quoted, f.Quoted > 0) {
		return false
	}
	if r.keywords != 0 && f.Keywords&r.keywords == 0 {
		return false
	}
	if r.tiers != 0 && r.tiers&(1<<tierIndex(req.Tier)) == 0 {
		return false
	}
	return true
}

func triOK(want int8, have bool) bool {
	return want < 0 || (want == 1) == have
}
