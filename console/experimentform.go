package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/experiments"
)

// The experiment form (templates/experiments.html, assets/experimentform.js)
// builds a spec as the engineer types and asks /experiments/check after
// each change: the spec's first problem, with the admin API's own code,
// field and message (both run experiments.ParseSpec), and a sample-size
// estimate from the power calculator before anything is started.

// checkRequest is what the form sends: the spec and the power inputs.
type checkRequest struct {
	Spec     json.RawMessage `json:"spec"`
	Baseline float64         `json:"baseline"` // control rate of a rate metric; 0 = the last week's
	SD       float64         `json:"sd"`       // per-request standard deviation of a mean metric
	MDE      float64         `json:"mde"`      // absolute difference to detect
	Alpha    float64         `json:"alpha"`    // default 0.05
	Power    float64         `json:"power"`    // default 0.8
}

// checkError is a spec problem as the admin API would answer it.
type checkError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// sampleSize is the estimate shown under the form.
type sampleSize struct {
	Metric   string  `json:"metric"`
	Kind     string  `json:"kind"` // proportion | mean
	Baseline float64 `json:"baseline,omitempty"`
	// BaselineFrom says where the baseline came from: "form", or "last 7
	// days" of live traffic.
	BaselineFrom string  `json:"baseline_from,omitempty"`
	SD           float64 `json:"sd,omitempty"`
	MDE          float64 `json:"mde"`
	Alpha        float64 `json:"alpha"` // per comparison: Bonferroni over the treatments
	Power        float64 `json:"power"`
	PerArm       float64 `json:"units_per_arm"`
	Arms         int     `json:"arms"`
	Total        float64 `json:"units_total"`
	// PerDay is the requests a day the experiment would see at the last
	// week's traffic (layer share x traffic); Days how long it needs at
	// that rate (requests stand in for units: fewer users than requests
	// make it longer).
	PerDay float64 `json:"requests_per_day,omitempty"`
	Days   float64 `json:"days,omitempty"`
	Note   string  `json:"note,omitempty"`
}

type checkResponse struct {
	Valid  bool              `json:"valid"`
	Error  *checkError       `json:"error,omitempty"`
	Spec   *experiments.Spec `json:"spec,omitempty"` // normalised, as it would be created
	Sample *sampleSize       `json:"sample_size,omitempty"`
}

// experimentCheck validates a spec and estimates its sample size; it
// changes nothing.
func (c *Console) experimentCheck(ctx *fiber.Ctx) error {
	var req checkRequest
	if err := json.Unmarshal(ctx.Body(), &req); err != nil {
		return &FieldError{Code: "invalid_json", Field: "body", Message: "want {\"spec\": {...}, \"mde\": 0.02, ...}"}
	}
	if req.Alpha == 0 {
		req.Alpha = 0.05
	}
	if req.Power == 0 {
		req.Power = 0.8
	}
	if !(req.Alpha > 0 && req.Alpha < 0.5) || !(req.Power > 0 && req.Power < 1) {
		return &FieldError{Code: "out_of_range", Field: "alpha", Message: "alpha must be in (0, 0.5) and power in (0, 1)"}
	}
	s, err := experiments.ParseSpec(req.Spec)
	if err != nil {
		var ve *experiments.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		return ctx.JSON(checkResponse{Error: &checkError{Code: ve.Code, Field: ve.Field, Message: ve.Message}})
	}
	out := checkResponse{Valid: true, Spec: &s}
	out.Sample = c.sampleSize(ctx.UserContext(), s, req)
	return ctx.JSON(out)
}

// rateMetrics are the primary metrics measured as a share of requests,
// with the decisions-table expression of their numerator (for a baseline
// from live traffic; nil: no baseline from decisions alone).
var rateMetrics = map[string]string{
	"success_rate":     "status = 'ok' AND qa_pass = 1",
	"qa_pass_rate":     "qa_pass = 1",
	"qa_fail_rate":     "status = 'ok' AND qa_pass = 0",
	"error_rate":       "status = 'error'",
	"escalation_rate":  "escalated = 1",
	"thumbs_up_rate":   "",
	"thumbs_down_rate": "",
}

func (c *Console) sampleSize(ctx context.Context, s experiments.Spec, req checkRequest) *sampleSize {
	treatments := max(len(s.Arms)-1, 1)
	z := &sampleSize{Metric: s.PrimaryMetric, MDE: req.MDE, Alpha: req.Alpha / float64(treatments), Power: req.Power, Arms: len(s.Arms)}
	expr, isRate := rateMetrics[s.PrimaryMetric]
	perDay, rates := c.lastWeekCached(ctx)
	switch {
	case s.Kind == experiments.KindBandit || s.Kind == experiments.KindShadow:
		z.Note = "a " + string(s.Kind) + " experiment has no fixed sample size: its shares move or it changes no response"
		return z
	case req.MDE == 0:
		z.Note = "give the smallest difference worth detecting (absolute) for a sample size"
		return z
	case isRate:
		z.Kind, z.Baseline, z.BaselineFrom = "proportion", req.Baseline, "form"
		if z.Baseline == 0 && expr != "" && rates != nil {
			z.Baseline, z.BaselineFrom = rates[s.PrimaryMetric], "last 7 days"
		}
		if !(z.Baseline > 0 && z.Baseline < 1) || !(z.Baseline+req.MDE > 0 && z.Baseline+req.MDE < 1) {
			z.Note = "give the control's current rate (baseline in (0, 1), and baseline + difference in (0, 1))"
			return z
		}
		z.PerArm = math.Ceil(experiments.SampleSizeProportions(z.Baseline, z.Baseline+req.MDE, z.Alpha, z.Power))
	default:
		z.Kind, z.SD = "mean", req.SD
		if !(req.SD > 0) {
			z.Note = "give the metric's per-request standard deviation for a sample size"
			return z
		}
		n, err := experiments.SampleSizeMeans(req.MDE, req.SD, z.Alpha, z.Power)
		if err != nil {
			z.Note = err.Error()
			return z
		}
		z.PerArm = math.Ceil(n)
	}
	z.Total = z.PerArm * float64(len(s.Arms))
	if perDay > 0 {
		z.PerDay = perDay * s.LayerShare * s.Traffic
		if z.PerDay > 0 {
			z.Days = math.Ceil(10*z.Total/z.PerDay) / 10
		}
	}
	return z
}

// weekTraffic is lastWeek's answer.
type weekTraffic struct {
	perDay float64
	rates  map[string]float64
}

// lastWeekCached is lastWeek, read at most once a minute; a failed read is
// not kept.
func (c *Console) lastWeekCached(ctx context.Context) (float64, map[string]float64) {
	if w, ok := c.week.Get(struct{}{}); ok {
		return w.perDay, w.rates
	}
	perDay, rates := c.lastWeek(ctx)
	if rates != nil {
		c.week.Add(struct{}{}, weekTraffic{perDay, rates})
	}
	return perDay, rates
}

// lastWeek reads the live requests a day and the decision-derived rates
// over the last 7 days (a day's rate over the time traffic has been
// logged, when that is shorter, and at least an hour); zero and nil
// without ClickHouse or traffic.
func (c *Console) lastWeek(ctx context.Context) (float64, map[string]float64) {
	if c.deps.Data == nil {
		return 0, nil
	}
	names := make([]string, 0, len(rateMetrics))
	for m, expr := range rateMetrics {
		if expr != "" {
			names = append(names, m)
		}
	}
	sort.Strings(names)
	q := "SELECT count(), min(ts_ms)"
	for _, m := range names {
		q += ", countIf(" + rateMetrics[m] + ")"
	}
	q += fmt.Sprintf(" FROM %s.decisions WHERE ts_ms >= ? AND shadow = 0", c.deps.Data.Database())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	counts := make([]uint64, len(names)+2)
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	now := c.deps.Now()
	since := uint64(now.Add(-7 * 24 * time.Hour).UnixMilli())
	if err := c.deps.Data.Conn().QueryRow(ctx, q, since).Scan(dest...); err != nil {
		c.log.Warn("experiment form: last week's traffic", "err", err)
		return 0, nil
	}
	if counts[0] == 0 {
		return 0, nil
	}
	rates := make(map[string]float64, len(names))
	for i, m := range names {
		rates[m] = float64(counts[i+2]) / float64(counts[0])
	}
	span := max(now.Sub(time.UnixMilli(int64(counts[1]))), time.Hour)
	return float64(counts[0]) / span.Hours() * 24, rates
}

type metricOption struct{ Name, Help string }

// metricOptions are the analysed metrics, for the form's selects.
func metricOptions() []metricOption {
	out := make([]metricOption, 0, len(experiments.Metrics))
	for n, h := range experiments.Metrics {
		out = append(out, metricOption{n, h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
