package console

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
)

func (c *Console) experimentsPage(ctx *fiber.Ctx) error {
	var list struct {
		Experiments []experiments.Spec `json:"experiments"`
	}
	err := c.controlCall(ctx.UserContext(), "GET", "/admin/experiments", "", nil, &list)
	data := fiber.Map{"Experiments": list.Experiments, "Example": exampleSpec, "Metrics": metricOptions()}
	if err != nil {
		data["Error"] = err.Error()
	}
	sort.Slice(list.Experiments, func(i, j int) bool { return list.Experiments[i].UpdatedMS > list.Experiments[j].UpdatedMS })
	return c.render(ctx, "experiments", "Experiments", data)
}

// experimentCreate takes a spec as JSON (a form field "spec" or a JSON
// body) and creates it through the admin API.
func (c *Console) experimentCreate(ctx *fiber.Ctx) error {
	body := []byte(ctx.FormValue("spec"))
	if strings.HasPrefix(ctx.Get("Content-Type"), "application/json") {
		body = append([]byte(nil), ctx.Body()...)
	}
	if !json.Valid(body) {
		return &FieldError{Code: "invalid_json", Field: "spec", Message: "the spec is not valid JSON"}
	}
	var s experiments.Spec
	if err := c.controlCall(ctx.UserContext(), "POST", "/admin/experiments", currentUser(ctx).Name, body, &s); err != nil {
		return err
	}
	if wantsJSON(ctx) {
		return ctx.Status(fiber.StatusCreated).JSON(s)
	}
	return ctx.Redirect("/experiments/"+escapePath(s.ID), fiber.StatusSeeOther)
}

// experimentAction forwards start, pause, stop, ramp and rollback.
func (c *Console) experimentAction(ctx *fiber.Ctx) error {
	action := ctx.Params("action")
	switch action {
	case "start", "pause", "stop", "ramp", "rollback":
	default:
		return &FieldError{Code: "bad_action", Field: "action", Message: "one of start, pause, stop, ramp, rollback", Status: fiber.StatusNotFound}
	}
	req := map[string]any{"reason": strings.TrimSpace(ctx.FormValue("reason"))}
	if t := strings.TrimSpace(ctx.FormValue("traffic")); t != "" {
		var v float64
		if _, err := fmt.Sscanf(t, "%g", &v); err != nil {
			return &FieldError{Code: "bad_traffic", Field: "traffic", Message: "a number in (0, 1]"}
		}
		req["traffic"] = v
	}
	body, _ := json.Marshal(req)
	id := ctx.Params("id")
	if err := c.controlCall(ctx.UserContext(), "POST", "/admin/experiments/"+escapePath(id)+"/"+action, currentUser(ctx).Name, body, nil); err != nil {
		return err
	}
	return ctx.Redirect("/experiments/"+escapePath(id), fiber.StatusSeeOther)
}

func (c *Console) experimentSpec(ctx context.Context, id string) (experiments.Spec, error) {
	var s experiments.Spec
	err := c.controlCall(ctx, "GET", "/admin/experiments/"+escapePath(id), "", nil, &s)
	return s, err
}

func (c *Console) experimentPage(ctx *fiber.Ctx) error {
	s, err := c.experimentSpec(ctx.UserContext(), ctx.Params("id"))
	if err != nil {
		return err
	}
	data := fiber.Map{"Spec": s}
	if raw, err := json.MarshalIndent(s, "", "  "); err == nil {
		data["JSON"] = string(raw)
	}
	if c.deps.Data != nil && s.Kind == experiments.KindBandit {
		// a bandit's shares move: its analysis weights by the logged
		// propensities, never the fixed-split statistics
		groups, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).BanditGroups(ctx.UserContext(), s)
		if err != nil {
			c.log.Warn("bandit results", "experiment", s.ID, "err", err)
			data["ResultsError"] = "results query failed: see the console log"
		} else {
			data["Bandit"] = experiments.AnalyzeBandit(s, groups, 0.05)
		}
	} else if c.deps.Data != nil && s.Kind == experiments.KindHoldout {
		h, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).Holdout(ctx.UserContext(), s, 0.05)
		if err != nil {
			c.log.Warn("holdout report", "experiment", s.ID, "err", err)
			data["ResultsError"] = "results query failed: see the console log"
		} else {
			data["Holdout"] = h
		}
	} else if c.deps.Data != nil && s.Kind == experiments.KindShadow {
		cmp, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).ShadowComparison(ctx.UserContext(), s)
		if err != nil {
			c.log.Warn("shadow comparison", "experiment", s.ID, "err", err)
			data["ResultsError"] = "results query failed: see the console log"
		} else {
			data["Shadow"] = cmp
		}
	} else if c.deps.Data != nil {
		arms, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).Arms(ctx.UserContext(), s)
		if err != nil {
			c.log.Warn("experiment results", "experiment", s.ID, "err", err)
			data["ResultsError"] = "results query failed: see the console log"
		} else {
			data["Report"] = experiments.Analyze(s, arms, 0.05)
			if cs, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).CostSpeed(ctx.UserContext(), s, s.LatencyBudgets()); err != nil {
				c.log.Warn("experiment cost and speed", "experiment", s.ID, "err", err)
			} else {
				data["CostSpeed"] = experiments.AnalyzeCostSpeed(s, cs, 0.05)
				data["LatencyBudgets"] = s.LatencyBudgets().String()
			}
		}
	}
	return c.render(ctx, "experiment", s.Name, data)
}

// effectExpr is the per-request value of a primary metric for the
// effect-over-time chart; metrics not listed are charted by success rate.
var effectExpr = map[string]string{
	"success_rate":    "toFloat64(status = 'ok' AND qa_pass = 1)",
	"qa_pass_rate":    "toFloat64(qa_pass = 1)",
	"qa_fail_rate":    "toFloat64(status = 'ok' AND qa_pass = 0)",
	"error_rate":      "toFloat64(status != 'ok')",
	"escalation_rate": "toFloat64(escalated = 1)",
	"latency_ms":      "toFloat64(latency_ms)",
	"cost_per_image":  "cost_usd / greatest(images, 1)",
}

func quoteCH(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// effectOverTime is the cumulative difference treatment - control of the
// primary metric per request at the end of each hour (day for long
// experiments), with a normal 95% interval. It is request-level: the
// results table above it is the unit-level analysis.
func (c *Console) effectOverTime(ctx context.Context, s experiments.Spec, treatment string) ([]dashboards.BandPoint, string, error) {
	metric := s.PrimaryMetric
	expr, ok := effectExpr[metric]
	if !ok {
		metric, expr = "success_rate", effectExpr["success_rate"]
	}
	control := s.Control
	if control == "" && len(s.Arms) > 0 {
		control = s.Arms[0].Name
	}
	if treatment == "" {
		for _, a := range s.Arms {
			if a.Name != control {
				treatment = a.Name
				break
			}
		}
	}
	since := time.UnixMilli(s.PhaseStarted)
	bucket := "toStartOfHour(ts)"
	if time.Since(since) > 5*24*time.Hour {
		bucket = "toStartOfDay(ts)"
	}
	id := quoteCH(s.ID)
	q := fmt.Sprintf(`SELECT %s AS t, arm_names[indexOf(arm_experiments, %s)] AS arm, count() AS n, sum(v) AS sv, sum(v * v) AS svv
FROM (SELECT ts, arm_names, arm_experiments, %s AS v FROM %s.decisions PREWHERE has(arm_experiments, %s)
      WHERE ts >= toDateTime(%d) AND arm_phases[indexOf(arm_experiments, %s)] = %d)
WHERE arm IN (%s, %s)
GROUP BY t, arm ORDER BY t`, bucket, id, expr, c.deps.Data.Database(), id, since.Unix(), id, s.Phase, quoteCH(control), quoteCH(treatment))
	rows, err := c.deps.Data.Conn().Query(ctx, q)
	if err != nil {
		return nil, metric, fmt.Errorf("effect over time: %w", err)
	}
	defer rows.Close()
	type acc struct{ n, s, ss float64 }
	cum := map[string]*acc{control: {}, treatment: {}}
	var out []dashboards.BandPoint
	var cur time.Time
	flush := func() {
		a, b := cum[control], cum[treatment]
		if cur.IsZero() || a.n < 2 || b.n < 2 {
			return
		}
		ma, mb := a.s/a.n, b.s/b.n
		va, vb := math.Max(a.ss/a.n-ma*ma, 0), math.Max(b.ss/b.n-mb*mb, 0)
		se := math.Sqrt(va/a.n + vb/b.n)
		d := mb - ma
		out = append(out, dashboards.BandPoint{T: cur, V: d, Lo: d - 1.96*se, Hi: d + 1.96*se})
	}
	for rows.Next() {
		var t time.Time
		var arm string
		var n uint64
		var sv, svv float64
		if err := rows.Scan(&t, &arm, &n, &sv, &svv); err != nil {
			return nil, metric, fmt.Errorf("effect over time: %w", err)
		}
		if !t.Equal(cur) {
			flush()
			cur = t
		}
		a := cum[arm]
		a.n, a.s, a.ss = a.n+float64(n), a.s+sv, a.ss+svv
	}
	flush()
	return out, metric, rows.Err()
}

func (c *Console) experimentEffectSVG(ctx *fiber.Ctx) error {
	if c.deps.Data == nil {
		return errNoData
	}
	s, err := c.experimentSpec(ctx.UserContext(), ctx.Params("id"))
	if err != nil {
		return err
	}
	pts, metric, err := c.effectOverTime(ctx.UserContext(), s, ctx.Query("arm"))
	if err != nil {
		return err
	}
	svg, err := dashboards.BandSVG("Effect over time (treatment − control), cumulative", metric, pts)
	if err != nil {
		return err
	}
	ctx.Set("Content-Type", "image/svg+xml")
	ctx.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return ctx.Send(svg)
}

// experimentWeightsSVG charts a bandit's weights in force over time, per
// stratum and arm, from its audited re-weightings.
func (c *Console) experimentWeightsSVG(ctx *fiber.Ctx) error {
	if c.deps.Data == nil {
		return errNoData
	}
	s, err := c.experimentSpec(ctx.UserContext(), ctx.Params("id"))
	if err != nil {
		return err
	}
	hist, err := chexp.NewReader(c.deps.Data.Conn(), c.deps.Data.Database()).BanditWeights(ctx.UserContext(), s)
	if err != nil {
		return err
	}
	svg, err := dashboards.SVG(weightsFrame(s, hist, c.deps.Now()))
	if err != nil {
		return err
	}
	ctx.Set("Content-Type", "image/svg+xml")
	ctx.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return ctx.Send(svg)
}

// weightsFrame is one series per stratum and arm: the weight from each
// re-weighting on, drawn as steps (a weight holds until the next
// re-weighting; a slope between two would show shares never in force),
// and the weights in force now.
func weightsFrame(s experiments.Spec, hist []chexp.WeightsAt, now time.Time) dashboards.Frame {
	fr := dashboards.Frame{Panel: dashboards.Panel{ID: "bandit-weights", Title: "Bandit weights in force", Kind: dashboards.TimeSeries, Unit: "weight"}}
	var stepped []chexp.WeightsAt
	for i, h := range hist {
		if i > 0 {
			stepped = append(stepped, chexp.WeightsAt{At: h.At, Weights: hist[i-1].Weights})
		}
		stepped = append(stepped, h)
	}
	if len(hist) > 0 && now.After(hist[len(hist)-1].At) {
		stepped = append(stepped, chexp.WeightsAt{At: now, Weights: hist[len(hist)-1].Weights})
	}
	hist = stepped
	byName := map[string]int{}
	for _, h := range hist {
		for st, w := range h.Weights {
			for i, x := range w {
				if i >= len(s.Arms) {
					break
				}
				name := s.Arms[i].Name
				if st != "" {
					name = st + " " + name
				}
				k, ok := byName[name]
				if !ok {
					k = len(fr.Series)
					byName[name] = k
					fr.Series = append(fr.Series, dashboards.Series{Name: name})
				}
				fr.Series[k].Points = append(fr.Series[k].Points, dashboards.Point{T: h.At, V: x})
				fr.Rows++
			}
		}
	}
	sort.Slice(fr.Series, func(i, j int) bool { return fr.Series[i].Name < fr.Series[j].Name })
	return fr
}

const exampleSpec = `{
  "name": "typography model for text-heavy prompts",
  "owner": "you",
  "hypothesis": "routing text-heavy prompts to sim-typo raises success",
  "layer": "routing",
  "layer_share": 0.2,
  "traffic": 0.1,
  "unit": "user",
  "arms": [
    {"name": "control", "weight": 0.5},
    {"name": "treatment", "weight": 0.5, "overrides": {"model": "sim-typo"}}
  ],
  "primary_metric": "success_rate",
  "min_sample": 200
}`
