package experiments

import "fmt"

// KindShadow mirrors a sampled share of live requests to a candidate after
// the live response is sent: the candidate's image never reaches the user,
// so the experiment changes no live response; its events carry shadow and
// the live request's id, pairing live and candidate on real traffic.
const KindShadow Kind = "shadow"

// Shadow is a shadow experiment's sampling and budget. Its arms are the
// live one (the control, no overrides) and the candidate (the other arm,
// whose overrides say what is mirrored to).
type Shadow struct {
	// Share is the share of the experiment's requests mirrored; ByGroup
	// overrides it per feature group (GroupOf: text, image, edit), e.g. to
	// mirror more of the rare group the candidate is meant for.
	Share   float64            `json:"share"`
	ByGroup map[string]float64 `json:"by_group,omitempty"`
	// DailyCapUSD caps the candidate's spend per UTC day, per replica; 0:
	// no cap.
	DailyCapUSD float64 `json:"daily_cap_usd,omitempty"`
}

func (s *Spec) validateShadow() error {
	if s.Ramp != nil {
		return invalid("invalid_value", "ramp", "a shadow experiment has no ramp: it changes no live response")
	}
	if s.Shadow == nil {
		return invalid("missing_field", "shadow", "a shadow experiment needs shadow.share")
	}
	if len(s.Arms) != 2 {
		return invalid("invalid_value", "arms", "a shadow experiment has two arms: the live one (control) and the candidate")
	}
	for i, a := range s.Arms {
		if a.Name == s.Control && !a.Overrides.IsZero() {
			return invalid("invalid_value", fmt.Sprintf("arms[%d].overrides", i), "the live arm (control) serves as live does: no overrides")
		}
		if a.Name != s.Control && a.Overrides.IsZero() {
			return invalid("missing_field", fmt.Sprintf("arms[%d].overrides", i), "the candidate arm must override the model or the policy")
		}
	}
	if !(s.Shadow.Share >= 0 && s.Shadow.Share <= 1) {
		return invalid("out_of_range", "shadow.share", "share must be in [0, 1]")
	}
	for g, v := range s.Shadow.ByGroup {
		if g != "text" && g != "image" && g != "edit" {
			return invalid("invalid_value", "shadow.by_group", "group must be text, image or edit, not %q", g)
		}
		if !(v >= 0 && v <= 1) {
			return invalid("out_of_range", "shadow.by_group."+g, "share must be in [0, 1]")
		}
	}
	if s.Shadow.DailyCapUSD < 0 {
		return invalid("out_of_range", "shadow.daily_cap_usd", "daily_cap_usd must be >= 0")
	}
	return nil
}

// compiledShadow mirrors a request when its unit's draw falls below the
// share of its group.
type compiledShadow struct {
	share     float64
	byGroup   map[string]float64
	capUSD    float64
	candidate compiledArm
}

func compileShadow(s *Spec) *compiledShadow {
	cs := &compiledShadow{share: s.Shadow.Share, byGroup: s.Shadow.ByGroup, capUSD: s.Shadow.DailyCapUSD}
	for _, a := range s.Arms {
		if a.Name != s.Control {
			ov := a.Overrides
			cs.candidate = compiledArm{name: a.Name, overrides: &ov}
		}
	}
	return cs
}

func (cs *compiledShadow) assign(c *compiled, s *Subject, unit string, layerBucket int, layerName string) (Assignment, bool) {
	share := cs.share
	group := GroupOf(s)
	if v, ok := cs.byGroup[group]; ok {
		share = v
	}
	// the request's own draw, so a user's requests are sampled apart
	b := Bucket(c.salt+".shadow", s.RequestID+"\x00"+unit)
	if float64(b) >= share*Buckets {
		return Assignment{}, false
	}
	return Assignment{
		Experiment: c.id, Arm: cs.candidate.name, Layer: layerName, Phase: c.phase, Unit: unit,
		Bucket: b, LayerBucket: layerBucket, Overrides: cs.candidate.overrides,
		Propensity: share, Stratum: group, Shadow: true, ShadowCapUSD: cs.capUSD,
	}, true
}
