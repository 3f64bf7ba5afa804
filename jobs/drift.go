package jobs

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/router"
)

// DriftConfig configures jobs drift.
type DriftConfig struct {
	Thresholds drift.Thresholds  `json:"thresholds"`
	CUSUM      drift.CUSUMConfig `json:"cusum"`
	// Step is the bucket the rate streams are aggregated by; default 1m.
	Step time.Duration `json:"step"`
	// BaselineFrac: when the live policy's training window holds no
	// outcomes, the first this fraction of the window's events is the
	// baseline rate for the streams; default 0.25.
	BaselineFrac float64 `json:"baseline_frac"`
}

func (c DriftConfig) defaults() DriftConfig {
	c.Thresholds = c.Thresholds.Defaults()
	c.CUSUM = c.CUSUM.Defaults()
	if c.Step <= 0 {
		c.Step = time.Minute
	}
	if c.BaselineFrac <= 0 || c.BaselineFrac >= 1 {
		c.BaselineFrac = 0.25
	}
	return c
}

// StreamResult is one rate stream's CUSUM over the window.
type StreamResult struct {
	Name     string  `json:"name"`
	Baseline float64 `json:"baseline"` // P0
	Target   float64 `json:"target"`   // P1, the rise the detector is tuned to
	Rate     float64 `json:"rate"`     // rate over the monitored part of the window
	Events   float64 `json:"events"`
	Stat     float64 `json:"stat"`
	H        float64 `json:"h"`
	Breached bool    `json:"breached"`
	// DetectedAfter is the number of monitored events until the first
	// alarm (0 when none).
	DetectedAfter int    `json:"detected_after_events"`
	DetectedAt    string `json:"detected_at,omitempty"`
	Status        string `json:"status"`
}

// DriftReport is the outcome of jobs drift.
type DriftReport struct {
	Job           string                  `json:"job"`
	PolicyVersion string                  `json:"policy_version"`
	Window        Window                  `json:"window"`
	Events        float64                 `json:"events"`
	Reference     string                  `json:"reference"` // what the features were compared with
	Features      map[string]drift.Check  `json:"features"`
	RouteShare    *drift.Check            `json:"route_share,omitempty"`
	Streams       map[string]StreamResult `json:"streams"`
	Unsupported   []string                `json:"unsupported,omitempty"`
	Breached      bool                    `json:"breached"`
	Breaches      []string                `json:"breaches"`
	Thresholds    drift.Thresholds        `json:"thresholds"`
	ElapsedMS     int64                   `json:"elapsed_ms"`
}

// RefCounts turns a reference histogram (fractions) into counts over the
// bins Bin(v, Edges[1:]) gives: bin 0 also takes values below Edges[0].
func RefCounts(h router.Histogram, events int) (inner, counts []float64) {
	if len(h.Edges) > 1 {
		inner = h.Edges[1:]
	}
	counts = make([]float64, len(inner)+1)
	for i, f := range h.Frac {
		if i < len(counts) {
			counts[i] += f * float64(events)
		}
	}
	return inner, counts
}

// foldFrom merges the bins whose lower edge is at or above limit into one:
// past the live policy's edit-depth limit the decision log only says "reset",
// not how deep the chain was.
func foldFrom(edges, counts []float64, limit float64) []float64 {
	out := make([]float64, 0, len(counts))
	for i, c := range counts {
		if i > 0 && i < len(edges) && edges[i] >= limit && len(out) > 0 && edges[i-1] >= limit {
			out[len(out)-1] += c
			continue
		}
		out = append(out, c)
	}
	return out
}

// alignShares puts reference shares and current counts over one sorted
// category list.
func alignShares(ref map[string]float64, events int, cur map[string]float64) (cats []string, r, c []float64) {
	seen := map[string]bool{}
	for k := range ref {
		seen[k] = true
	}
	for k := range cur {
		seen[k] = true
	}
	for k := range seen {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	r = make([]float64, len(cats))
	c = make([]float64, len(cats))
	for i, k := range cats {
		r[i] = ref[k] * float64(events)
		c[i] = cur[k]
	}
	return cats, r, c
}

// Drift runs every check of the live policy's reference against the window,
// with the histograms and counts computed by the source, and the rate
// streams' CUSUMs over time buckets. A policy without reference
// distributions is compared with the window's first part.
func Drift(ctx context.Context, s DriftSource, live *router.Policy, w Window, cfg DriftConfig, progress func(string, ...any)) (DriftReport, error) {
	start := time.Now()
	cfg = cfg.defaults()
	rep := DriftReport{Job: "drift", PolicyVersion: live.Version, Window: w, Features: map[string]drift.Check{},
		Streams: map[string]StreamResult{}, Thresholds: cfg.Thresholds, Breaches: []string{}}
	n, err := s.Count(ctx, w, "")
	if err != nil {
		return rep, err
	}
	rep.Events = float64(n)
	progress("drift: %d decisions in window (%s)", n, time.Since(start).Round(time.Millisecond))
	ref := live.Reference
	noRef := ref == nil || len(ref.Hist)+len(ref.Share) == 0

	// what to count: numeric features binned, categorical ones by value,
	// the route share and keyword groups among them; all in one Profile
	spec := ProfileSpec{ResetDepth: max(live.EditDepthLimit, 1)}
	var numNames, catNames []string // the reference's names, aligned with spec
	routeAt, kwAt := -1, -1
	addCat := func(name, canonical string) {
		switch canonical {
		case FeatureModel:
			routeAt = len(catNames)
		case FeatureKeyword:
			kwAt = len(catNames)
		}
		catNames, spec.Cat = append(catNames, name), append(spec.Cat, canonical)
	}
	if noRef {
		edges := router.ReferenceEdges()
		for _, name := range sortedKeys(edges) {
			numNames, spec.Num, spec.Edges = append(numNames, name), append(spec.Num, name), append(spec.Edges, edges[name][1:])
		}
		for _, name := range []string{FeatureMode, FeatureTier, "route", FeatureKeyword} {
			c, _, _ := CanonicalFeature(name)
			addCat(name, c)
		}
	} else {
		for _, name := range sortedKeys(ref.Hist) {
			c, numeric, ok := CanonicalFeature(name)
			if !ok || !numeric {
				rep.Unsupported = append(rep.Unsupported, name)
				continue
			}
			inner, _ := RefCounts(ref.Hist[name], ref.Events)
			numNames, spec.Num, spec.Edges = append(numNames, name), append(spec.Num, c), append(spec.Edges, inner)
		}
		for _, name := range sortedKeys(ref.Share) {
			c, _, ok := CanonicalFeature(name)
			switch {
			case !ok:
				rep.Unsupported = append(rep.Unsupported, name)
			case c == FeatureModel && routeAt >= 0, c == FeatureKeyword && kwAt >= 0:
				// one route share and one keyword check (aliases)
			default:
				addCat(name, c)
			}
		}
	}
	// The route share's baseline is the live policy's own decisions before
	// the window (the reference's route share is the logging policy's on
	// the training data; the live policy routes differently by design),
	// else the window's first part against the rest.
	var base map[string]float64
	splitRoute := false
	if routeAt >= 0 {
		b, err := s.RouteCounts(ctx, live.Version, w.From)
		if err != nil {
			return rep, err
		}
		base, splitRoute = b, sumMap(b) < cfg.Thresholds.MinCount
	}
	var cut time.Time
	if noRef || splitRoute {
		c, err := s.EventCut(ctx, w, cfg.BaselineFrac)
		if err != nil {
			return rep, err
		}
		cut = c
	}
	early, late, err := s.Profile(ctx, w, spec, cut)
	if err != nil {
		return rep, err
	}
	progress("drift: histograms and counts in %s", time.Since(start).Round(time.Millisecond))

	// the current side of the features: after the cut when the window's
	// first part is the reference, else the whole window
	all := late.plus(early)
	cur := all
	if noRef {
		cur = late
		ref = early.reference(numNames, catNames)
		rep.Reference = fmt.Sprintf("window baseline %s .. %s (%d decisions): the policy carries no reference distributions", w.From.UTC().Format(time.RFC3339), cut.UTC().Format(time.RFC3339), ref.Events)
		progress("drift: %s", rep.Reference)
	} else {
		rep.Reference = "policy " + live.Version
	}
	for i, name := range numNames {
		_, refCounts := RefCounts(ref.Hist[name], ref.Events)
		c := cur.Hist[i]
		if spec.Num[i] == FeatureEditDepth && live.EditDepthLimit > 0 {
			refCounts = foldFrom(ref.Hist[name].Edges, refCounts, float64(live.EditDepthLimit))
			c = foldFrom(ref.Hist[name].Edges, c, float64(live.EditDepthLimit))
		}
		rep.Features[name] = cfg.Thresholds.Binned(name, refCounts, c)
		progress("drift: %s psi=%.4f ks=%.4f", name, rep.Features[name].PSI, rep.Features[name].KS)
	}
	for i, name := range catNames {
		if i == routeAt {
			continue
		}
		_, r, cc := alignShares(ref.Share[name], ref.Events, cur.Cats[i])
		chk := cfg.Thresholds.Categorical(name, r, cc)
		if chk.Status != drift.StatusInsufficient {
			chk.KS = drift.KSBinned(r, cc).D
		}
		rep.Features[name] = chk
		progress("drift: %s psi=%.4f v=%.4f", name, chk.PSI, chk.CramersV)
	}
	if routeAt >= 0 {
		name := catNames[routeAt]
		refShare, refEvents := ref.Share[name], ref.Events
		routeCur := all.Cats[routeAt]
		if splitRoute {
			base, routeCur = early.Cats[routeAt], late.Cats[routeAt]
		}
		if n := sumMap(base); n > 0 {
			refShare, refEvents = norm(base), int(n)
		}
		_, r, c := alignShares(refShare, refEvents, routeCur)
		chk := cfg.Thresholds.RouteShare(r, c)
		chk.Name = name
		rep.RouteShare = &chk
		progress("drift: route share tv=%.4f", chk.TV)
	}
	streams, err := driftStreams(ctx, s, live, w, cfg)
	if err != nil {
		return rep, err
	}
	rep.Streams = streams
	for _, name := range sortedKeys(rep.Features) {
		if rep.Features[name].Breached {
			rep.Breaches = append(rep.Breaches, "feature:"+name)
		}
	}
	if rep.RouteShare != nil && rep.RouteShare.Breached {
		rep.Breaches = append(rep.Breaches, "route_share")
	}
	for _, name := range sortedKeys(rep.Streams) {
		if rep.Streams[name].Breached {
			rep.Breaches = append(rep.Breaches, "stream:"+name)
		}
	}
	rep.Breached = len(rep.Breaches) > 0
	rep.ElapsedMS = since(start)
	return rep, nil
}

// streamNames are the outcome rates watched, with how to read each from a
// bucket.
var streamNames = []struct {
	name string
	bad  func(RateBucket) float64
}{
	{"qa_fail", func(b RateBucket) float64 { return b.QAFail }},
	{"escalation", func(b RateBucket) float64 { return b.Escalated }},
	{"latency_slow", func(b RateBucket) float64 { return b.SlowOver }},
	{"thumbs_down", func(b RateBucket) float64 { return b.ThumbsDown }},
}

// driftStreams runs a Bernoulli CUSUM per outcome rate. Latency is watched
// as the share of events slower than the baseline's p90 (10% by
// construction), so one detector shape serves every stream.
func driftStreams(ctx context.Context, s DriftSource, live *router.Policy, w Window, cfg DriftConfig) (map[string]StreamResult, error) {
	out := map[string]StreamResult{}
	// Baseline: the live policy's training window when it holds events
	// (it is what the policy was fitted on), else the window's start.
	var base []RateBucket
	if tw := live.TrainingWindow; tw != nil && tw.ToTS > tw.FromTS && tw.ToTS <= w.From.UnixMilli() {
		bw := Window{From: time.UnixMilli(tw.FromTS), To: time.UnixMilli(tw.ToTS)}
		b, err := s.Rates(ctx, bw, bw.To.Sub(bw.From)+time.Millisecond)
		if err != nil {
			return nil, err
		}
		base = b
	}
	buckets, err := s.Rates(ctx, w, cfg.Step)
	if err != nil {
		return nil, err
	}
	if total(base).N < float64(cfg.CUSUM.MinRef) {
		all := total(buckets)
		cut, acc := 0, 0.0
		for cut < len(buckets) && acc < cfg.BaselineFrac*all.N {
			acc += buckets[cut].N
			cut++
		}
		base, buckets = buckets[:cut], buckets[cut:]
	}
	// slow: at or above the baseline's p90 latency bin
	from := P90Bin(base)
	SlowFrom(base, from)
	SlowFrom(buckets, from)
	b := total(base)
	for _, st := range streamNames {
		r := StreamResult{Name: st.name, H: cfg.CUSUM.H}
		if b.N < float64(cfg.CUSUM.MinRef) {
			r.Status = drift.StatusInsufficient
			out[st.name] = r
			continue
		}
		r.Baseline = st.bad(b) / b.N
		d := cfg.CUSUM.NewCUSUM(r.Baseline)
		r.Target = d.P1
		var bad float64
		for _, bk := range buckets {
			r.Events += bk.N
			bad += st.bad(bk)
			if d.AddBatch(bk.N, st.bad(bk)) && r.DetectedAfter == 0 {
				r.DetectedAfter = d.AlarmAt()
				r.DetectedAt = bk.Start.UTC().Format(time.RFC3339)
			}
		}
		if r.Events > 0 {
			r.Rate = bad / r.Events
		}
		r.Stat = d.Stat()
		r.Breached = r.DetectedAfter > 0
		r.Status = drift.StatusOK
		if r.Breached {
			r.Status = drift.StatusBreached
		}
		out[st.name] = r
	}
	return out, nil
}

func total(bs []RateBucket) RateBucket {
	var t RateBucket
	for _, b := range bs {
		t.N += b.N
		t.QAFail += b.QAFail
		t.Escalated += b.Escalated
		t.SlowOver += b.SlowOver
		t.ThumbsDown += b.ThumbsDown
		t.Regenerated += b.Regenerated
	}
	return t
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// norm scales counts to shares.
func norm(m map[string]float64) map[string]float64 {
	t := sumMap(m)
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v / math.Max(t, 1)
	}
	return out
}

func sumMap(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}
