package jobs

import (
	"github.com/routelab/routelab/router"
)

// Features a source can count, by canonical name. Numeric ones are binned
// (ProfileSpec.Num); any feature can be counted by value
// (ProfileSpec.Cat), a numeric one by its value as a string.
const (
	FeaturePromptWords = "prompt_words" // words in the prompt (spaces + 1, 0 when empty)
	FeaturePromptLen   = "prompt_len"
	FeatureRefCount    = "ref_count"
	FeatureEditDepth   = "edit_depth" // a reset counts at ProfileSpec.ResetDepth
	FeatureAspect      = "aspect"
	FeatureLatencyMS   = "latency_ms"
	FeatureCostUSD     = "cost_usd"
	FeatureMode        = "mode"
	FeatureTier        = "tier"             // "" counts as standard
	FeatureModel       = "model"            // the model that served the request
	FeatureTextHeavy   = "text_heavy"       // "1" or "0"
	FeaturePreserve    = "preserve_subject" // "1" or "0"
	FeatureRule        = "rule"             // "" counts as "classifier"
	FeatureKeyword     = "keyword"          // each keyword group a decision matched counts once
)

var numericFeatures = map[string]bool{
	FeaturePromptWords: true, FeaturePromptLen: true, FeatureRefCount: true, FeatureEditDepth: true,
	FeatureAspect: true, FeatureLatencyMS: true, FeatureCostUSD: true,
}

var categoricalFeatures = map[string]bool{
	FeatureMode: true, FeatureTier: true, FeatureModel: true, FeatureTextHeavy: true,
	FeaturePreserve: true, FeatureRule: true, FeatureKeyword: true,
}

// featureAliases are the other names a policy's reference may use.
var featureAliases = map[string]string{"refs": FeatureRefCount, "depth": FeatureEditDepth, "route": FeatureModel, "keywords": FeatureKeyword}

// CanonicalFeature resolves a reference's feature name; ok is false for a
// name no source counts.
func CanonicalFeature(name string) (canonical string, numeric, ok bool) {
	if a, found := featureAliases[name]; found {
		name = a
	}
	switch {
	case numericFeatures[name]:
		return name, true, true
	case categoricalFeatures[name]:
		return name, false, true
	}
	return "", false, false
}

// ProfileSpec says what Profile counts.
type ProfileSpec struct {
	// Num are numeric features (canonical names), each binned by its
	// Edges: bin 0 holds v < Edges[i][0], bin k holds Edges[i][k-1] <= v <
	// Edges[i][k], the last bin everything from the last edge up.
	Num   []string
	Edges [][]float64
	// Cat are features counted by value (canonical names).
	Cat []string
	// ResetDepth is the edit depth a reset decision counts at: the log
	// keeps the depth a reset restarted from, while the request's own was
	// at least the live policy's limit.
	ResetDepth int
}

// Bin is the bin of v among edges, as ProfileSpec defines it: the number
// of edges at or below v.
func Bin(v float64, edges []float64) int {
	b := 0
	for _, e := range edges {
		if v >= e {
			b++
		}
	}
	return b
}

// ProfileCounts is one side of a Profile: per numeric feature its bin
// counts, per categorical feature its value counts, and the decisions.
type ProfileCounts struct {
	Hist [][]float64
	Cats []map[string]float64
	N    float64
}

// NewProfileCounts is an empty side shaped for spec.
func NewProfileCounts(spec ProfileSpec) ProfileCounts {
	p := ProfileCounts{Hist: make([][]float64, len(spec.Num)), Cats: make([]map[string]float64, len(spec.Cat))}
	for i := range spec.Num {
		p.Hist[i] = make([]float64, len(spec.Edges[i])+1)
	}
	for i := range p.Cats {
		p.Cats[i] = map[string]float64{}
	}
	return p
}

// plus is the sum of two sides of one profile.
func (p ProfileCounts) plus(o ProfileCounts) ProfileCounts {
	out := ProfileCounts{Hist: make([][]float64, len(p.Hist)), Cats: make([]map[string]float64, len(p.Cats)), N: p.N + o.N}
	for i := range p.Hist {
		out.Hist[i] = make([]float64, len(p.Hist[i]))
		for k := range p.Hist[i] {
			out.Hist[i][k] = p.Hist[i][k] + o.Hist[i][k]
		}
	}
	for i := range p.Cats {
		out.Cats[i] = map[string]float64{}
		for k, v := range p.Cats[i] {
			out.Cats[i][k] += v
		}
		for k, v := range o.Cats[i] {
			out.Cats[i][k] += v
		}
	}
	return out
}

// reference turns a side binned with router.ReferenceEdges into reference
// distributions in the shape a trained policy carries them: num and cats
// name the numeric and categorical features in the order they were
// counted; the keyword shares are fractions of decisions, not of keywords.
func (p ProfileCounts) reference(num, cats []string) *router.Reference {
	ref := &router.Reference{Hist: map[string]router.Histogram{}, Share: map[string]map[string]float64{}, Events: int(p.N)}
	edges := router.ReferenceEdges()
	frac := func(c float64) float64 {
		if p.N > 0 {
			return c / p.N
		}
		return 0
	}
	for i, name := range num {
		f := make([]float64, len(p.Hist[i]))
		for k, c := range p.Hist[i] {
			f[k] = frac(c)
		}
		ref.Hist[name] = router.Histogram{Edges: edges[name], Frac: f}
	}
	for i, name := range cats {
		if c, _, _ := CanonicalFeature(name); c == FeatureKeyword {
			ref.Share[name] = map[string]float64{}
			for k, v := range p.Cats[i] {
				ref.Share[name][k] = frac(v)
			}
			continue
		}
		ref.Share[name] = norm(p.Cats[i])
	}
	return ref
}
