package experiments

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/routelab/routelab/router"
)

// Buckets is the number of hash buckets in a layer and in an experiment.
const Buckets = 10000

// Bucket maps (salt, unit id) to [0, Buckets): the first 8 bytes of
// SHA-256(salt ":" unit), read big-endian as an unsigned 64-bit integer,
// modulo Buckets. Strings are hashed as their UTF-8 bytes. docs/assignment.md
// gives test vectors.
func Bucket(salt, unit string) int {
	var buf [192]byte
	n := len(salt) + 1 + len(unit)
	var b []byte
	if n <= len(buf) {
		b = buf[:0]
	} else {
		b = make([]byte, 0, n)
	}
	b = append(b, salt...)
	b = append(b, ':')
	b = append(b, unit...)
	sum := sha256.Sum256(b)
	return int(binary.BigEndian.Uint64(sum[:8]) % Buckets)
}

// LayerSalt is the salt a layer hashes units with.
func LayerSalt(layer string) string { return "layer." + layer }

// Subject is what assignment looks at in one request.
type Subject struct {
	RequestID string
	User      string
	Tenant    string
	Mode      string
	Tier      string
	// features usable in targeting predicates
	PromptLen    int
	RefCount     int
	EditDepth    int
	Aspect       float64
	TextHeavy    bool
	Preserve     bool
	MaxLatencyMS int64
	MaxCostUSD   float64
}

// SubjectOf builds the subject of a router request; the request's Unit is the
// user id.
func SubjectOf(r *router.Request) Subject {
	aspect := 1.0
	if r.Width > 0 && r.Height > 0 {
		aspect = float64(r.Width) / float64(r.Height)
	}
	tier := string(r.Tier)
	if tier == "" {
		tier = string(router.TierStandard)
	}
	return Subject{
		RequestID: r.ID, User: r.Unit, Tenant: r.Tenant, Mode: string(r.Mode), Tier: tier,
		PromptLen: len([]rune(r.Prompt)), RefCount: r.RefCount, EditDepth: r.EditDepth, Aspect: aspect,
		TextHeavy: r.Constraints.TextHeavy, Preserve: r.Constraints.PreserveSubject,
		MaxLatencyMS: r.Constraints.MaxLatencyMS, MaxCostUSD: r.Constraints.MaxCostUSD,
	}
}

var featureIndex = map[string]int{
	"prompt_len": 0, "ref_count": 1, "edit_depth": 2, "aspect": 3, "text_heavy": 4,
	"preserve_subject": 5, "max_latency_ms": 6, "max_cost_usd": 7,
}

var opIndex = map[string]int{"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5}

func (s *Subject) feature(i int) float64 {
	switch i {
	case 0:
		return float64(s.PromptLen)
	case 1:
		return float64(s.RefCount)
	case 2:
		return float64(s.EditDepth)
	case 3:
		return s.Aspect
	case 4:
		return b2f(s.TextHeavy)
	case 5:
		return b2f(s.Preserve)
	case 6:
		return float64(s.MaxLatencyMS)
	default:
		return s.MaxCostUSD
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Assignment is one experiment arm a request falls into, with the inputs
// that re-derive it: Unit hashed with the experiment's arm salt gives Bucket;
// hashed with LayerSalt(Layer) it gives LayerBucket.
type Assignment struct {
	Experiment  string
	Arm         string
	Layer       string
	Phase       int
	Unit        string
	Bucket      int
	LayerBucket int
	Overrides   *Overrides
	// Propensity is the probability the unit had of this arm when it was
	// assigned, given it entered the experiment: for a bandit, the arm's
	// weight in force in the unit's stratum (0 for fixed splits, whose
	// shares are the spec's). Stratum is the bandit's stratum key.
	Propensity float64
	Stratum    string
	// Shadow: the request is served live as if in no experiment and
	// mirrored, after its response, to this arm's overrides (KindShadow),
	// with the candidate's spend capped at ShadowCapUSD a day (0: none).
	Shadow       bool
	ShadowCapUSD float64
}

type compiledPred struct {
	feature, op int
	value       float64
}

type compiledArm struct {
	name       string
	start, end int // experiment buckets [start, end)
	overrides  *Overrides
	p          float64 // bandit: (end - start) / Buckets
}

// compiledBandit lays a bandit's arms out per stratum with the weights in
// force; units enter by the experiment hash (traffic) and draw their arm by
// a hash salted with the epoch.
type compiledBandit struct {
	strata    []string
	epochSalt string
	traffic   int // experiment buckets below this enter
	byStratum map[string][]compiledArm
	def       []compiledArm
}

type compiled struct {
	id, salt, layer string
	phase           int
	unit            UnitKind
	rng             Range
	tenants         []string
	modes, tiers    []string
	preds           []compiledPred
	arms            []compiledArm
	bandit          *compiledBandit
	shadow          *compiledShadow
}

type layer struct {
	name, salt string
	exps       []*compiled // sorted by rng.Start, disjoint
}

// Assigner assigns units to the arms of running experiments. It is
// immutable once built and safe for concurrent use; the control plane builds
// a new one on every change and swaps it in atomically.
type Assigner struct {
	layers []layer
	n      int
}

// NewAssigner compiles the running experiments among specs. Specs that are
// not running or have no bucket range are skipped; within a layer, an
// experiment whose range overlaps one already taken (which the control plane
// never allows) is skipped too, so the assigner never puts a unit in two
// experiments of one layer.
func NewAssigner(specs []Spec) *Assigner {
	byLayer := map[string]*layer{}
	var names []string
	sorted := slices.Clone(specs)
	sort.Slice(sorted, func(i, j int) bool {
		return sorted[i].CreatedMS < sorted[j].CreatedMS || (sorted[i].CreatedMS == sorted[j].CreatedMS && sorted[i].ID < sorted[j].ID)
	})
	a := &Assigner{}
	for i := range sorted {
		s := &sorted[i]
		if s.Status != StatusRunning || s.Buckets == nil || s.Traffic <= 0 {
			continue
		}
		l := byLayer[s.Layer]
		if l == nil {
			l = &layer{name: s.Layer, salt: LayerSalt(s.Layer)}
			byLayer[s.Layer] = l
			names = append(names, s.Layer)
		}
		c := compile(s)
		if slices.ContainsFunc(l.exps, func(o *compiled) bool { return o.rng.overlaps(c.rng) }) {
			continue
		}
		l.exps = append(l.exps, c)
		a.n++
	}
	sort.Strings(names)
	for _, n := range names {
		l := byLayer[n]
		sort.Slice(l.exps, func(i, j int) bool { return l.exps[i].rng.Start < l.exps[j].rng.Start })
		a.layers = append(a.layers, *l)
	}
	return a
}

// Len is the number of experiments the assigner serves.
func (a *Assigner) Len() int { return a.n }

func compile(s *Spec) *compiled {
	c := &compiled{
		id: s.ID, salt: s.ArmSalt(), layer: s.Layer, phase: s.Phase, unit: s.Unit, rng: *s.Buckets,
		tenants: s.Targeting.Tenants, modes: s.Targeting.Modes, tiers: s.Targeting.Tiers,
	}
	for _, p := range s.Targeting.Features {
		c.preds = append(c.preds, compiledPred{feature: featureIndex[p.Feature], op: opIndex[p.Op], value: float64(p.Value)})
	}
	c.arms = ArmRanges(s.Arms, s.Traffic, func(a Arm, start, end int) compiledArm {
		var o *Overrides
		if !a.Overrides.IsZero() {
			ov := a.Overrides
			o = &ov
		}
		return compiledArm{name: a.Name, start: start, end: end, overrides: o}
	})
	if s.Kind == KindBandit && s.Bandit != nil {
		c.bandit = compileBandit(s, c.arms)
	}
	if s.Kind == KindShadow && s.Shadow != nil {
		c.shadow = compileShadow(s)
	}
	return c
}

func compileBandit(s *Spec, fixed []compiledArm) *compiledBandit {
	b := &compiledBandit{
		strata:    s.Bandit.Strata,
		epochSalt: fmt.Sprintf("%s.e%d", s.ArmSalt(), s.Bandit.Epoch),
		traffic:   int(math.Round(s.Traffic * Buckets)),
		byStratum: map[string][]compiledArm{},
	}
	// Arms tile the buckets: each ends where the next starts, so every
	// unit that enters gets an arm and a propensity of exactly its width.
	layout := func(w []float64) []compiledArm {
		arms := slices.Clone(s.Arms)
		for i := range arms {
			arms[i].Weight = w[i]
		}
		out := ArmRanges(arms, 1, func(a Arm, start, end int) compiledArm {
			return compiledArm{name: a.Name, start: start}
		})
		for i := range out {
			out[i].end = Buckets
			if i+1 < len(out) {
				out[i].end = out[i+1].start
			}
			out[i].overrides = fixed[i].overrides
			out[i].p = float64(out[i].end-out[i].start) / Buckets
		}
		return out
	}
	b.def = layout(s.armWeights())
	for k, w := range s.Bandit.Weights {
		if len(w) == len(s.Arms) {
			b.byStratum[k] = layout(w)
		}
	}
	return b
}

// assign draws the unit's arm among the weights of its stratum.
func (b *compiledBandit) assign(c *compiled, s *Subject, unit string, layerBucket int, layerName string) (Assignment, bool) {
	if Bucket(c.salt, unit) >= b.traffic {
		return Assignment{}, false
	}
	key := StratumOf(b.strata, s)
	arms, ok := b.byStratum[key]
	if !ok {
		arms = b.def
	}
	ab := Bucket(b.epochSalt, unit)
	for i := range arms {
		arm := &arms[i]
		if ab >= arm.start && ab < arm.end {
			return Assignment{
				Experiment: c.id, Arm: arm.name, Layer: layerName, Phase: c.phase,
				Unit: unit, Bucket: ab, LayerBucket: layerBucket, Overrides: arm.overrides,
				Propensity: arm.p, Stratum: key,
			}, true
		}
	}
	return Assignment{}, false
}

// ArmRanges lays the arms out on the experiment's buckets: arm i starts at
// the cumulative weight of the arms before it (whatever the traffic) and
// covers traffic × its share, so raising traffic only adds units.
func ArmRanges[T any](arms []Arm, traffic float64, mk func(a Arm, start, end int) T) []T {
	var total float64
	for _, a := range arms {
		total += a.Weight
	}
	out := make([]T, 0, len(arms))
	var cum float64
	for _, a := range arms {
		start := int(math.Round(cum / total * Buckets))
		width := int(math.Round(traffic * a.Weight / total * Buckets))
		out = append(out, mk(a, start, start+width))
		cum += a.Weight
	}
	return out
}

func (c *compiled) unitID(s *Subject) string {
	switch c.unit {
	case UnitTenant:
		return s.Tenant
	case UnitRequest:
		return s.RequestID
	default:
		return s.User
	}
}

func (c *compiled) targets(s *Subject) bool {
	if len(c.tenants) > 0 && !slices.Contains(c.tenants, s.Tenant) {
		return false
	}
	if len(c.modes) > 0 && !slices.Contains(c.modes, s.Mode) {
		return false
	}
	if len(c.tiers) > 0 && !slices.Contains(c.tiers, s.Tier) {
		return false
	}
	for _, p := range c.preds {
		v := s.feature(p.feature)
		var ok bool
		switch p.op {
		case 0:
			ok = v == p.value
		case 1:
			ok = v != p.value
		case 2:
			ok = v < p.value
		case 3:
			ok = v <= p.value
		case 4:
			ok = v > p.value
		default:
			ok = v >= p.value
		}
		if !ok {
			return false
		}
	}
	return true
}

// Assign appends to dst the arms s falls into, at most one per layer, in
// layer-name order. A unit's layer bucket picks the experiment whose range
// holds it; the experiment's own hash picks the arm (or none when the
// bucket is beyond the arm's traffic-scaled range).
func (a *Assigner) Assign(dst []Assignment, s Subject) []Assignment {
	for li := range a.layers {
		l := &a.layers[li]
		// Experiments of a layer may hash different unit kinds; hash each
		// distinct unit id at most once per layer.
		var lastUnit string
		lastBucket := -1
		for _, c := range l.exps {
			unit := c.unitID(&s)
			if unit == "" {
				continue
			}
			if lastBucket < 0 || unit != lastUnit {
				lastUnit, lastBucket = unit, Bucket(l.salt, unit)
			}
			if lastBucket < c.rng.Start || lastBucket >= c.rng.End {
				continue
			}
			if !c.targets(&s) {
				break
			}
			if c.shadow != nil {
				if a, ok := c.shadow.assign(c, &s, unit, lastBucket, l.name); ok {
					dst = append(dst, a)
				}
				break
			}
			if c.bandit != nil {
				if a, ok := c.bandit.assign(c, &s, unit, lastBucket, l.name); ok {
					dst = append(dst, a)
				}
				break
			}
			b := Bucket(c.salt, unit)
			for i := range c.arms {
				arm := &c.arms[i]
				if b >= arm.start && b < arm.end {
					dst = append(dst, Assignment{
						Experiment: c.id, Arm: arm.name, Layer: l.name, Phase: c.phase,
						Unit: unit, Bucket: b, LayerBucket: lastBucket, Overrides: arm.overrides,
					})
					break
				}
			}
			break
		}
	}
	return dst
}
