package router

import "sort"

// ReferenceEdges are the bins of the numeric features in a policy's
// reference distributions (training), and of the drift job's baseline when
// a policy carries none: bin i holds Edges[i] <= v < Edges[i+1], the last
// is open-ended.
func ReferenceEdges() map[string][]float64 {
	return map[string][]float64{
		"prompt_words": {0, 5, 13, 26, 51},
		"ref_count":    {0, 1, 2, 3, 4},
		"edit_depth":   {0, 1, 2, 3, 5, 7, 9, 11},
		"aspect":       {0, 0.87, 1.15},
	}
}

// window is the time range and size of the training examples.
func window(ex []Example, source string) *TrainingWindow {
	w := &TrainingWindow{Events: len(ex), Source: source}
	for i := range ex {
		ts := ex[i].TS
		if ts == 0 {
			continue
		}
		if w.FromTS == 0 || ts < w.FromTS {
			w.FromTS = ts
		}
		if ts > w.ToTS {
			w.ToTS = ts
		}
	}
	return w
}

// reference summarises the training requests' feature distributions for
// drift checks.
func reference(ex []Example) *Reference {
	r := &Reference{Events: len(ex), Hist: map[string]Histogram{}, Share: map[string]map[string]float64{
		"mode": {}, "tier": {}, "keyword": {}, "route": {},
	}}
	for name, e := range ReferenceEdges() {
		r.Hist[name] = Histogram{Edges: e, Frac: make([]float64, len(e))}
	}
	if len(ex) == 0 {
		return r
	}
	var f Features
	n := float64(len(ex))
	bin := func(name string, v float64) {
		h := r.Hist[name]
		k := sort.SearchFloat64s(h.Edges, v+1e-12) - 1
		if k < 0 {
			k = 0
		}
		h.Frac[k] += 1 / n
	}
	for i := range ex {
		e := &ex[i]
		Extract(&e.Req, e.Req.EditDepth, &f)
		bin("prompt_words", float64(f.Words))
		bin("ref_count", float64(e.Req.RefCount))
		bin("edit_depth", float64(e.Req.EditDepth))
		bin("aspect", f.Aspect)
		r.Share["mode"][string(e.Req.Mode)] += 1 / n
		tier := e.Req.Tier
		if tier == "" {
			tier = TierStandard
		}
		r.Share["tier"][string(tier)] += 1 / n
		r.Share["route"][e.Model] += 1 / n
		for k := 0; k < numKW; k++ {
			if f.Has(k) {
				r.Share["keyword"][KeywordNames[k]] += 1 / n
			}
		}
	}
	return r
}
