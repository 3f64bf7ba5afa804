package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/router"
)

// FeatureExprs maps the feature names a policy's reference distributions use
// to ClickHouse expressions over the decisions table. A reference feature
// missing here is reported as "unsupported" rather than silently skipped.
var FeatureExprs = map[string]string{
	// words as spaces + 1; on 18.16 splitByChar costs ~25% less server CPU
	// than length(prompt) - length(replaceAll(prompt, ' ', '')) + 1 at 10M
	// rows (0.9-1.1 s against 1.2-1.8 s)
	"prompt_words":     "if(prompt = '', 0, length(splitByChar(' ', prompt)))",
	"prompt_len":       "prompt_len",
	"ref_count":        "ref_count",
	"refs":             "ref_count",
	"edit_depth":       "edit_depth",
	"depth":            "edit_depth",
	"aspect":           "aspect",
	"latency_ms":       "latency_ms",
	"cost_usd":         "cost_usd",
	"mode":             "mode",
	"tier":             "if(tier = '', 'standard', tier)",
	"model":            "model",
	"route":            "model",
	"text_heavy":       "text_heavy",
	"preserve_subject": "preserve_subject",
	"rule":             "if(rule = '', 'classifier', rule)",
	"keyword":          "arrayJoin(keywords)",
	"keywords":         "arrayJoin(keywords)",
}

// routeFeatures are the share features treated as route shares.
var routeFeatures = map[string]bool{"model": true, "route": true}

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
// bins BinExpr(expr, Edges[1:]) produces: bin 0 also takes values below
// Edges[0].
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
// with the histograms and counts computed in ClickHouse, and the rate
// streams' CUSUMs over time buckets. A policy without reference
// distributions gets the stream checks only.
func Drift(ctx context.Context, s *Store, live *router.Policy, w Window, cfg DriftConfig, progress func(string, ...any)) (DriftReport, error) {
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
	routeName := ""
	if noRef {
		routeName = "route"
	} else {
		for _, name := range sortedKeys(ref.Share) {
			if _, ok := FeatureExprs[name]; ok && routeFeatures[name] {
				routeName = name
			}
		}
	}
	// The route share's baseline is the live policy's own decisions before
	// the window (the reference's route share is the logging policy's on
	// the training data; the live policy routes differently by design),
	// else the window's first part against the rest.
	var base map[string]float64
	splitRoute := false
	if routeName != "" {
		b, err := s.CountsWhere(ctx, fmt.Sprintf("policy_version = %s AND ts_ms < %d", quote(live.Version), w.From.UnixMilli()), FeatureExprs[routeName])
		if err != nil {
			return rep, err
		}
		base, splitRoute = b, sumMap(b) < cfg.Thresholds.MinCount
	}
	var cut time.Time
	if noRef || splitRoute {
		c, err := s.eventCut(ctx, w, cfg.BaselineFrac)
		if err != nil {
			return rep, err
		}
		cut = c
	}

	// numeric features, binned; categorical ones but keywords (arrayJoin)
	// and the route, counted; all in one pass over the window, split at
	// cut when there is one
	var numNames, numExprs, catNames, catExprs []string
	var edges [][]float64
	depthExpr := fmt.Sprintf("if(reset = 1, %d, edit_depth)", max(live.EditDepthLimit, 1))
	if noRef {
		// a reset request is logged at the reset depth; count it at the
		// live policy's limit (its raw depth is at least that)
		for _, name := range sortedKeys(DefaultEdges) {
			expr := FeatureExprs[name]
			if name == "edit_depth" {
				expr = depthExpr
			}
			numNames, numExprs, edges = append(numNames, name), append(numExprs, expr), append(edges, DefaultEdges[name][1:])
		}
		catNames, catExprs = []string{"mode", "tier"}, []string{FeatureExprs["mode"], FeatureExprs["tier"]}
	} else {
		for _, name := range sortedKeys(ref.Hist) {
			expr, ok := FeatureExprs[name]
			if !ok {
				rep.Unsupported = append(rep.Unsupported, name)
				continue
			}
			if name == "edit_depth" || name == "depth" {
				expr = depthExpr
			}
			inner, _ := RefCounts(ref.Hist[name], ref.Events)
			numNames, numExprs, edges = append(numNames, name), append(numExprs, expr), append(edges, inner)
		}
		for _, name := range sortedKeys(ref.Share) {
			expr, ok := FeatureExprs[name]
			switch {
			case !ok:
				rep.Unsupported = append(rep.Unsupported, name)
			case routeFeatures[name] || strings.Contains(expr, "arrayJoin"):
			default:
				catNames, catExprs = append(catNames, name), append(catExprs, expr)
			}
		}
	}
	cats := catExprs
	if routeName != "" {
		cats = append(cats[:len(cats):len(cats)], FeatureExprs[routeName])
	}
	early, late, err := s.Profile(ctx, w, numExprs, edges, cats, cut)
	if err != nil {
		return rep, err
	}
	// the keyword shares: one more pass (arrayJoin multiplies rows)
	kwName := ""
	if noRef {
		kwName = "keyword"
	} else {
		for _, name := range sortedKeys(ref.Share) {
			if expr, ok := FeatureExprs[name]; ok && strings.Contains(expr, "arrayJoin") && !routeFeatures[name] {
				kwName = name
			}
		}
	}
	var kwEarly, kwLate map[string]float64
	if kwName != "" {
		if cut.IsZero() {
			kwLate, err = s.Counts(ctx, w, FeatureExprs[kwName])
		} else {
			kwEarly, kwLate, err = s.CountsSplit(ctx, w, cut, FeatureExprs[kwName])
		}
		if err != nil {
			return rep, err
		}
	}
	progress("drift: histograms and counts in %s", time.Since(start).Round(time.Millisecond))

	// the current side of the features: after the cut when the window's
	// first part is the reference, else the whole window
	cur := late
	if !noRef {
		cur = late.plus(early)
	}
	if noRef {
		ref = early.reference(numNames, catNames, routeName, kwName, kwEarly)
		rep.Reference = fmt.Sprintf("window baseline %s .. %s (%d decisions): the policy carries no reference distributions", w.From.UTC().Format(time.RFC3339), cut.UTC().Format(time.RFC3339), ref.Events)
		progress("drift: %s", rep.Reference)
	} else {
		rep.Reference = "policy " + live.Version
		if kwLate != nil && kwEarly != nil {
			for k, v := range kwEarly {
				kwLate[k] += v
			}
		}
	}
	for i, name := range numNames {
		_, refCounts := RefCounts(ref.Hist[name], ref.Events)
		c := cur.hist[i]
		if (name == "edit_depth" || name == "depth") && live.EditDepthLimit > 0 {
			refCounts = foldFrom(ref.Hist[name].Edges, refCounts, float64(live.EditDepthLimit))
			c = foldFrom(ref.Hist[name].Edges, c, float64(live.EditDepthLimit))
		}
		rep.Features[name] = cfg.Thresholds.Binned(name, refCounts, c)
		progress("drift: %s psi=%.4f ks=%.4f", name, rep.Features[name].PSI, rep.Features[name].KS)
	}
	categorical := func(name string, c map[string]float64) {
		_, r, cc := alignShares(ref.Share[name], ref.Events, c)
		chk := cfg.Thresholds.Categorical(name, r, cc)
		if chk.Status != drift.StatusInsufficient {
			chk.KS = drift.KSBinned(r, cc).D
		}
		rep.Features[name] = chk
		progress("drift: %s psi=%.4f v=%.4f", name, chk.PSI, chk.CramersV)
	}
	for i, name := range catNames {
		categorical(name, cur.cats[i])
	}
	if kwName != "" {
		categorical(kwName, kwLate)
	}
	if routeName != "" {
		ri := len(catNames)
		refShare, refEvents := ref.Share[routeName], ref.Events
		routeCur := late.plus(early).cats[ri]
		if splitRoute {
			base, routeCur = early.cats[ri], late.cats[ri]
		}
		if n := sumMap(base); n > 0 {
			refShare, refEvents = norm(base), int(n)
		}
		_, r, c := alignShares(refShare, refEvents, routeCur)
		chk := cfg.Thresholds.RouteShare(r, c)
		chk.Name = routeName
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
func driftStreams(ctx context.Context, s *Store, live *router.Policy, w Window, cfg DriftConfig) (map[string]StreamResult, error) {
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

// DefaultEdges are the bins of the numeric features when the reference is
// built from the window: the router's reference bins.
var DefaultEdges = router.ReferenceEdges()

// eventCut is the time before which the first frac of the window's
// decisions fall (so a baseline holds events even when traffic is bursty).
func (s *Store) eventCut(ctx context.Context, w Window, frac float64) (time.Time, error) {
	var q float64
	var n uint64
	if err := s.Conn.QueryRow(ctx, fmt.Sprintf("SELECT toFloat64(quantile(%v)(ts_ms)), count() FROM %s WHERE %s", frac, s.decisions(), w.where("ts_ms"))).Scan(&q, &n); err != nil {
		return time.Time{}, fmt.Errorf("window cut: %w", err)
	}
	if n == 0 || q != q {
		return w.From.Add(time.Duration(frac * float64(w.To.Sub(w.From)))), nil
	}
	return time.UnixMilli(int64(q)), nil
}
