// Package dashboards is the engineers' view of routelab in numbers: every
// panel's SQL in one place (this file), run against the ClickHouse tables
// ingest writes, rendered server-side as SVG with gonum.org/v1/plot, and
// exported as a Grafana dashboard with a ClickHouse data source so the same
// panels live where operators already look. The SQL runs on ClickHouse 18.16
// and current releases: no window functions, percentiles by quantileTDigest.
package dashboards

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind is how a panel is drawn.
type Kind string

const (
	TimeSeries Kind = "timeseries" // rows (t, series, value)
	Bars       Kind = "bars"       // rows (category, series, value)
)

// Panel is one chart. SQL uses three placeholders filled per target:
//
//	$DB      the database
//	$BUCKET  the time bucket of column ts (a DateTime)
//	$WHERE   the time range plus tenant/experiment filters on a decisions-
//	         shaped table ($WHERE_SIMPLE: time and tenant only, for tables
//	         without experiment arms)
//
// and must return columns (x, series, value) with x a DateTime for time
// series or a String for bars.
type Panel struct {
	ID    string
	Title string
	Kind  Kind
	Unit  string // axis label
	SQL   string
	// Normalize divides each value by the sum at its x (counts -> shares);
	// Grafana shows the same with percent stacking.
	Normalize bool
}

// Panels are the console's dashboard, in display order.
var Panels = []Panel{
	{ID: "route_share", Title: "Route share over time", Kind: TimeSeries, Unit: "share of requests", Normalize: true, SQL: `
SELECT $BUCKET AS t, model, count() AS c FROM $DB.decisions WHERE $WHERE GROUP BY t, model ORDER BY t, model`},
	{ID: "latency", Title: "Latency p50 / p95 by model", Kind: Bars, Unit: "ms", SQL: `
SELECT model, 'p50' AS s, quantileTDigest(0.5)(latency_ms) AS v FROM $DB.decisions WHERE $WHERE AND status = 'ok' GROUP BY model
UNION ALL
SELECT model, 'p95' AS s, quantileTDigest(0.95)(latency_ms) AS v FROM $DB.decisions WHERE $WHERE AND status = 'ok' GROUP BY model`},
	{ID: "cost", Title: "Cost per image by model", Kind: Bars, Unit: "USD per image", SQL: `
SELECT model, 'cost per image' AS s, sum(cost_usd) / greatest(sum(images), 1) AS v
FROM $DB.decisions WHERE $WHERE AND status = 'ok' GROUP BY model ORDER BY model`},
	{ID: "rates", Title: "Retry, escalation and fallback rates", Kind: TimeSeries, Unit: "share of requests", SQL: `
SELECT t, s, v FROM (
  SELECT $BUCKET AS t, avg(length(attempt_models) > 1) AS retry, avg(escalated) AS escalation, avg(fallback) AS fb
  FROM $DB.decisions WHERE $WHERE GROUP BY t
) ARRAY JOIN ['retry', 'escalation', 'fallback'] AS s, [retry, escalation, fb] AS v ORDER BY t, s`},
	{ID: "qa_fail", Title: "QA fail rate by model", Kind: TimeSeries, Unit: "share failing QA", SQL: `
SELECT $BUCKET AS t, model, 1 - avg(qa_pass) AS v
FROM $DB.decisions WHERE $WHERE AND status = 'ok' GROUP BY t, model ORDER BY t, model`},
	{ID: "satisfaction", Title: "User satisfaction (thumbs up share of thumbs)", Kind: TimeSeries, Unit: "thumbs up / (up + down)", SQL: `
SELECT $BUCKET AS t, 'satisfaction' AS s, countIf(signal = 'thumbs_up') / greatest(countIf(signal IN ('thumbs_up', 'thumbs_down')), 1) AS v
FROM $DB.signals WHERE $WHERE_SIMPLE GROUP BY t ORDER BY t`},
	{ID: "review_scores", Title: "Human review scores by model (mean, 1-5)", Kind: Bars, Unit: "mean score", SQL: `
SELECT model, n AS s, avg(sv) AS v FROM $DB.reviews
ARRAY JOIN score_names AS n, score_values AS sv
WHERE $WHERE_SIMPLE AND kind = 'score' AND n IN ('overall', 'adherence', 'legibility', 'subject')
GROUP BY model, n ORDER BY model, n`},
	{ID: "provider_errors", Title: "Provider error rate", Kind: TimeSeries, Unit: "share of attempts not ok", SQL: `
SELECT $BUCKET AS t, p AS s, avg(st != 'ok') AS v FROM $DB.decisions
ARRAY JOIN attempt_providers AS p, attempt_statuses AS st
WHERE $WHERE GROUP BY t, s ORDER BY t, s`},
}

// PanelByID finds a panel.
func PanelByID(id string) (Panel, bool) {
	for _, p := range Panels {
		if p.ID == id {
			return p, true
		}
	}
	return Panel{}, false
}

// Filter selects the rows a dashboard shows.
type Filter struct {
	From, To   time.Time
	Tenant     string // empty: all
	Experiment string // empty: all
}

var ident = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// FilterError is a filter value the dashboards refuse.
type FilterError struct{ Field, Message string }

func (e *FilterError) Error() string { return e.Field + ": " + e.Message }

// Validate checks the filter; tenant and experiment must be plain ids so
// they can be placed in SQL literals safely.
func (f Filter) Validate() error {
	if f.Tenant != "" && !ident.MatchString(f.Tenant) {
		return &FilterError{"tenant", "letters, digits and . _ : @ - only"}
	}
	if f.Experiment != "" && !ident.MatchString(f.Experiment) {
		return &FilterError{"experiment", "letters, digits and . _ : @ - only"}
	}
	if !f.To.After(f.From) {
		return &FilterError{"to", "must be after from"}
	}
	if f.To.Sub(f.From) > 366*24*time.Hour {
		return &FilterError{"from", "range longer than a year"}
	}
	return nil
}

// Step picks a bucket width giving at most ~120 points over the range.
func (f Filter) Step() time.Duration {
	span := f.To.Sub(f.From)
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if span/s <= 120 {
			return s
		}
	}
	return 7 * 24 * time.Hour
}

// SQL is the panel's query for the console: concrete time range and
// filters. The filter must have passed Validate.
func (p Panel) SQLFor(db string, f Filter) string {
	step := int64(f.Step() / time.Second)
	simple := fmt.Sprintf("ts >= toDateTime(%d) AND ts < toDateTime(%d)", f.From.Unix(), f.To.Unix())
	if f.Tenant != "" {
		simple += " AND tenant = '" + f.Tenant + "'"
	}
	where := simple
	if f.Experiment != "" {
		where += " AND has(arm_experiments, '" + f.Experiment + "')"
	}
	return strings.NewReplacer(
		"$DB", db,
		"$BUCKET", fmt.Sprintf("toDateTime(intDiv(toUInt32(ts), %d) * %d)", step, step),
		"$WHERE_SIMPLE", simple,
		"$WHERE", where,
	).Replace(p.SQL)
}

// GrafanaSQL is the panel's query with the Grafana ClickHouse data source's
// macros and the dashboard's tenant/experiment variables.
func (p Panel) GrafanaSQL(db string) string {
	simple := "$__timeFilter(ts) AND ('${tenant}' = 'All' OR tenant = '${tenant}')"
	where := simple + " AND ('${experiment}' = 'All' OR has(arm_experiments, '${experiment}'))"
	return strings.NewReplacer(
		"$DB", db,
		"$BUCKET", "$__timeInterval(ts)",
		"$WHERE_SIMPLE", simple,
		"$WHERE", where,
	).Replace(p.SQL)
}
