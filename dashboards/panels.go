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

// Panel is one chart. SQL uses placeholders filled per target:
//
//	$DB       the database
//	$BUCKET   the time bucket of the panel's time column
//	$WHERE    time range, tenant and experiment filters
//
// and must return columns (x, series, value) with x a DateTime for time
// series or a String for bars. Rollup panels read the hourly rollups that
// ingest's migrations 0002 and 0004 maintain (decisions_hourly, attempts_hourly,
// latency_timing;
// time column hour, experiments a comma-joined string) and merge their
// states, so a page costs the same with 10M decisions as with 10k; the
// others read small tables (signals, reviews) directly.
type Panel struct {
	ID    string
	Title string
	Kind  Kind
	Unit  string // axis label
	SQL   string
	// Rollup: the panel reads an hourly rollup (time column hour, hourly
	// resolution at best); else the table's ts and tenant columns, and no
	// experiment filter (ExpFilter false) unless it has arm_experiments.
	Rollup    bool
	ExpFilter bool
	// Normalize divides each value by the sum at its x (counts -> shares);
	// Grafana shows the same with percent stacking.
	Normalize bool
	// Fine is the rollup panel's query on the decisions table itself
	// (columns ts, tenant, arm_experiments): Run uses it when the range or
	// the data are too short for hourly buckets, e.g. fresh traffic of a
	// few minutes, which the rollup would show as a single point.
	Fine string
}

// Panels are the console's dashboard, in display order.
var Panels = []Panel{
	{ID: "route_share", Title: "Route share over time", Kind: TimeSeries, Unit: "share of requests", Normalize: true, Rollup: true, SQL: `
SELECT $BUCKET AS t, model, countMerge(requests) AS c FROM $DB.decisions_hourly WHERE $WHERE GROUP BY t, model ORDER BY t, model`, Fine: `
SELECT $BUCKET AS t, model, count() AS c FROM $DB.decisions WHERE $WHERE AND shadow = 0 GROUP BY t, model ORDER BY t, model`},
	// Percentiles from latency_timing's quantileTiming states (ingest
	// migration 0004): exact below 1 s, 16 ms steps up to 30 s, 30 s or more
	// reads as 30000.
	{ID: "latency", Title: "Latency p50 / p95 by model", Kind: Bars, Unit: "ms", Rollup: true, SQL: `
SELECT model, s, v FROM (
  SELECT model, quantilesTimingMerge(0.5, 0.95)(latency) AS q
  FROM $DB.latency_timing WHERE $WHERE AND status = 'ok' GROUP BY model
) ARRAY JOIN ['p50', 'p95'] AS s, q AS v ORDER BY model, s`},
	{ID: "cost", Title: "Cost per image by model", Kind: Bars, Unit: "USD per image", Rollup: true, SQL: `
SELECT model, 'cost per image' AS s, sumMerge(cost) / greatest(sumMerge(images), 1) AS v
FROM $DB.decisions_hourly WHERE $WHERE AND status = 'ok' GROUP BY model ORDER BY model`},
	{ID: "rates", Title: "Retry, escalation and fallback rates", Kind: TimeSeries, Unit: "share of requests", Rollup: true, SQL: `
SELECT t, s, v FROM (
  SELECT $BUCKET AS t, countMerge(requests) AS n, sumMerge(retried) / n AS retry, sumMerge(escalated) / n AS escalation, sumMerge(fallback) / n AS fb
  FROM $DB.decisions_hourly WHERE $WHERE GROUP BY t
) ARRAY JOIN ['retry', 'escalation', 'fallback'] AS s, [retry, escalation, fb] AS v ORDER BY t, s`, Fine: `
SELECT t, s, v FROM (
  SELECT $BUCKET AS t, count() AS n, sum(length(attempt_models) > 1) / n AS retry, sum(escalated) / n AS escalation, sum(fallback) / n AS fb
  FROM $DB.decisions WHERE $WHERE AND shadow = 0 GROUP BY t
) ARRAY JOIN ['retry', 'escalation', 'fallback'] AS s, [retry, escalation, fb] AS v ORDER BY t, s`},
	{ID: "qa_fail", Title: "QA fail rate by model", Kind: TimeSeries, Unit: "share failing QA", Rollup: true, SQL: `
SELECT $BUCKET AS t, model, sumMerge(qa_fail) / countMerge(requests) AS v
FROM $DB.decisions_hourly WHERE $WHERE AND status = 'ok' GROUP BY t, model ORDER BY t, model`, Fine: `
SELECT $BUCKET AS t, model, sum(qa_pass = 0) / count() AS v
FROM $DB.decisions WHERE $WHERE AND shadow = 0 AND status = 'ok' GROUP BY t, model ORDER BY t, model`},
	{ID: "satisfaction", Title: "User satisfaction (thumbs up share of thumbs)", Kind: TimeSeries, Unit: "thumbs up / (up + down)", SQL: `
SELECT $BUCKET AS t, 'satisfaction' AS s, countIf(signal = 'thumbs_up') / greatest(countIf(signal IN ('thumbs_up', 'thumbs_down')), 1) AS v
FROM $DB.signals WHERE $WHERE GROUP BY t ORDER BY t`},
	{ID: "review_scores", Title: "Human review scores by model (mean, 1-5)", Kind: Bars, Unit: "mean score", SQL: `
SELECT model, n AS s, avg(sv) AS v FROM $DB.reviews
ARRAY JOIN score_names AS n, score_values AS sv
WHERE $WHERE AND kind = 'score' AND n IN ('overall', 'adherence', 'legibility', 'subject')
GROUP BY model, n ORDER BY model, n`},
	{ID: "provider_errors", Title: "Provider error rate", Kind: TimeSeries, Unit: "share of attempts not ok", Rollup: true, SQL: `
SELECT $BUCKET AS t, provider AS s, sumMerge(failed) / countMerge(attempts) AS v
FROM $DB.attempts_hourly WHERE $WHERE GROUP BY t, s ORDER BY t, s`, Fine: `
SELECT $BUCKET AS t, p AS s, sum(st != 'ok') / count() AS v
FROM $DB.decisions ARRAY JOIN attempt_providers AS p, attempt_statuses AS st WHERE $WHERE AND shadow = 0 GROUP BY t, s ORDER BY t, s`},
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

// Step picks a bucket width giving at most ~120 points over the range;
// rollup panels never go below an hour.
func (f Filter) Step(rollup bool) time.Duration {
	span := f.To.Sub(f.From)
	for _, s := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if rollup && s < time.Hour {
			continue
		}
		if span/s <= 120 {
			return s
		}
	}
	return 7 * 24 * time.Hour
}

// fine is the panel reading the decisions table at any step.
func (p Panel) fine() Panel {
	p.SQL, p.Rollup, p.ExpFilter, p.Fine = p.Fine, false, true, ""
	return p
}

func (p Panel) timeCol() string {
	if p.Rollup {
		return "hour"
	}
	return "ts"
}

// SQLFor is the panel's query for the console: concrete time range and
// filters. The filter must have passed Validate.
func (p Panel) SQLFor(db string, f Filter) string {
	step := int64(f.Step(p.Rollup) / time.Second)
	col := p.timeCol()
	from := f.From
	if p.Rollup {
		from = from.Truncate(time.Hour) // the hour holding From
	}
	where := fmt.Sprintf("%s >= toDateTime(%d) AND %s < toDateTime(%d)", col, from.Unix(), col, f.To.Unix())
	if f.Tenant != "" {
		where += " AND tenant = '" + f.Tenant + "'"
	}
	if f.Experiment != "" {
		switch {
		case p.Rollup:
			where += " AND has(splitByChar(',', experiments), '" + f.Experiment + "')"
		case p.ExpFilter:
			where += " AND has(arm_experiments, '" + f.Experiment + "')"
		}
	}
	return strings.NewReplacer(
		"$DB", db,
		"$BUCKET", fmt.Sprintf("toDateTime(intDiv(toUInt32(%s), %d) * %d)", col, step, step),
		"$WHERE", where,
	).Replace(p.SQL)
}

// GrafanaSQL is the panel's query with the Grafana ClickHouse data source's
// macros and the dashboard's tenant/experiment variables.
func (p Panel) GrafanaSQL(db string) string {
	col := p.timeCol()
	where := "$__timeFilter(" + col + ") AND ('${tenant}' = 'All' OR tenant = '${tenant}')"
	switch {
	case p.Rollup:
		where += " AND ('${experiment}' = 'All' OR has(splitByChar(',', experiments), '${experiment}'))"
	case p.ExpFilter:
		where += " AND ('${experiment}' = 'All' OR has(arm_experiments, '${experiment}'))"
	}
	return strings.NewReplacer(
		"$DB", db,
		"$BUCKET", "$__timeInterval("+col+")",
		"$WHERE", where,
	).Replace(p.SQL)
}
