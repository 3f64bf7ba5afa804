package router

// chooseDepthLimit returns the first edit depth at which the best eligible
// model's mean calibrated success on held-out edits falls DepthDrop below
// what a reset (ResetDepth) would give; 0 when it never does.
func chooseDepthLimit(pol *Policy, reqs []*Request, drop float64) int {
	var edits []Request
	for _, r := range reqs {
		if r.Mode == ModeEdit {
			edits = append(edits, *r)
		}
	}
	if len(edits) == 0 {
		return 0
	}
	mean := func(depth int) float64 {
		ptrs := make([]*Request, len(edits))
		for i := range edits {
			e := edits[i]
			e.EditDepth = depth
			ptrs[i] = &e
		}
		cs := choices(pol, ptrs)
		tot := 0.0
		for k := range cs {
			tot += cs[k].P[cs[k].Pick(2)] // 2: nothing clears it, so the most likely model
		}
		return tot / float64(max(len(cs), 1))
	}
	base := mean(ResetDepth)
	for depth := 2; depth <= 16; depth++ {
		if mean(depth) < base-drop {
			return depth
		}
	}
	return 0
}
