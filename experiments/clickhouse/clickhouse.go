// Package clickhouse reads experiment aggregates from routelab's ClickHouse
// tables (decisions, signals; see ingest/migrations) for the analysis in
// package experiments. The heavy lifting stays in ClickHouse: one query
// groups the phase's decision rows by unit and then by arm, so Go only sees
// one row per arm whatever the traffic; a second one computes latency
// quantiles per arm.
//
// Written for ClickHouse 18.16 as much as for current releases. Two things
// keep it fast there: the (unit, arm) grouping key is one UInt64 (the unit's
// cityHash64 with its low byte replaced by the arm's index; 56 bits leave
// collisions between units negligible), because composite keys aggregate
// several times slower; and arm names map to indices with transform(), not
// indexOf() over a constant array, which is slow on 18.16.
package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/experiments"
)

// Querier is the part of a clickhouse-go connection the reader uses.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Reader computes per-arm aggregates for experiments.
type Reader struct {
	conn Querier
	db   string
	// PrePeriod is how far before the phase start CUPED's covariate looks.
	PrePeriod time.Duration
	// Exact makes the query read decisions with FINAL, collapsing duplicate
	// deliveries of one event before aggregating (slower on large tables).
	Exact bool
}

// NewReader reads from database db through conn.
func NewReader(conn Querier, db string) *Reader {
	return &Reader{conn: conn, db: db, PrePeriod: 14 * 24 * time.Hour}
}

// per-request expressions of every counted metric numerator.
var numerators = []struct{ metric, col, expr string }{
	{"success_rate", "succ", "status = 'ok' AND qa_pass = 1"},
	{"qa_pass_rate", "qap", "qa_pass = 1"},
	{"qa_fail_rate", "qaf", "status = 'ok' AND qa_pass = 0"},
	{"error_rate", "err", "status != 'ok'"},
	{"escalation_rate", "esc", "escalated = 1"},
	{"latency_ms", "lat", "latency_ms"},
	{"thumbs_up_rate", "up", "up"},
	{"thumbs_down_rate", "down", "down"},
}

const unitMask = "0xFFFFFFFFFFFFFF00"

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// phaseFilter is the FROM/WHERE reading the phase's decision rows with the
// arm index (1-based, 0 = unknown arm) as column a.
type phaseQuery struct {
	armIndex, from, unitCol string
	args                    []any
}

func (r *Reader) phase(s experiments.Spec, since time.Time) phaseQuery {
	final := ""
	if r.Exact {
		final = "FINAL"
	}
	unitCol := "unit"
	switch s.Unit {
	case experiments.UnitTenant:
		unitCol = "tenant"
	case experiments.UnitRequest:
		unitCol = "request_id"
	}
	return phaseQuery{
		armIndex: armIndexExpr("arm_names[indexOf(arm_experiments, ?) AS idx]", s),
		from: fmt.Sprintf("%s.decisions %s PREWHERE has(arm_experiments, ?) WHERE ts >= toDateTime(?) AND arm_phases[idx] = ?",
			r.db, final),
		unitCol: unitCol,
		args:    []any{s.ID, s.ID, since.Unix(), int32(s.Phase)},
	}
}

// Arms returns the aggregates of every arm of s's current phase: from the
// per-unit aggregate tables (migration 0050) when they exist, else (or with
// Exact) from the decisions themselves.
func (r *Reader) Arms(ctx context.Context, s experiments.Spec) ([]experiments.ArmData, error) {
	if !r.Exact {
		ok, err := r.hasAggregates(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			return r.armsAggregated(ctx, s)
		}
	}
	return r.armsRaw(ctx, s)
}

func (r *Reader) hasAggregates(ctx context.Context) (bool, error) {
	n, err := r.count(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('experiment_units', 'experiment_latency')", r.db)
	return n == 2, err
}

// armsRaw aggregates the phase's decision rows.
func (r *Reader) armsRaw(ctx context.Context, s experiments.Spec) ([]experiments.ArmData, error) {
	ps, err := r.setup(ctx, s)
	if err != nil {
		return nil, err
	}
	since, signals, cuped, preStart, preExprStr := ps.since, ps.signals, ps.cuped, ps.preStart, ps.preExpr
	pq := r.phase(s, since)

	var inner, outer []string
	for _, n := range numerators {
		expr := n.expr
		if (n.col == "up" || n.col == "down") && signals == 0 {
			expr = "0"
		}
		inner = append(inner, fmt.Sprintf("toFloat64(sum(%s)) AS %s", expr, n.col))
		outer = append(outer, fmt.Sprintf("sum(%[1]s), sum(%[1]s * %[1]s), sum(%[1]s * r)", n.col))
	}
	inner = append(inner, "toFloat64(sum(cost_usd)) AS cost", "toFloat64(sum(images)) AS img")
	outer = append(outer, "sum(cost), sum(cost * cost), sum(cost * img), sum(img), sum(img * img)")

	args := append([]any{}, pq.args...)
	sigJoin := ""
	if signals > 0 {
		sigJoin = fmt.Sprintf(`ANY LEFT JOIN (
			SELECT cityHash64(request_id) AS rid, countIf(signal = 'thumbs_up') AS up, countIf(signal = 'thumbs_down') AS down
			FROM %s.signals WHERE ts >= toDateTime(?) GROUP BY rid
		) USING rid`, r.db)
		args = append(args, since.Unix())
	}
	cupedY, cupedX, preCols, preJoin := "toFloat64(0)", "toFloat64(0)", "toFloat64(0) AS pre, toUInt8(0) AS pre_n", ""
	if cuped {
		cupedY, cupedX, preCols = colOf(s.PrimaryMetric), "pre", "pre, pre_n"
		preJoin = fmt.Sprintf(`ANY LEFT JOIN (
			SELECT bitAnd(cityHash64(%s), %s) AS uh, toFloat64(sum(%s)) AS pre, toUInt8(1) AS pre_n
			FROM %s.decisions WHERE ts >= toDateTime(?) AND ts < toDateTime(?) GROUP BY uh
		) USING uh`, pq.unitCol, unitMask, preExprStr, r.db)
		args = append(args, preStart.Unix(), since.Unix())
	}
	q := fmt.Sprintf(`
SELECT bitAnd(k, 255) AS a, count() AS units, sum(r), sum(r * r), %[1]s,
	sum(%[2]s), sum(%[3]s), sum(%[2]s * %[2]s), sum(%[3]s * %[3]s), sum(%[2]s * %[3]s), countIf(pre_n > 0)
FROM (
	SELECT k, r, %[4]s, %[5]s
	FROM (
		SELECT k, bitAnd(k, %[6]s) AS uh, toFloat64(count()) AS r, %[7]s
		FROM (
			SELECT bitOr(bitAnd(cityHash64(%[8]s), %[6]s), %[9]s) AS k, cityHash64(request_id) AS rid,
				status, qa_pass, escalated, latency_ms, cost_usd, images
			FROM %[10]s
		)
		%[11]s
		GROUP BY k
	)
	%[12]s
)
GROUP BY a
ORDER BY a`,
		strings.Join(outer, ", "), cupedY, cupedX, strings.Join(innerCols(), ", "), preCols,
		unitMask, strings.Join(inner, ", "), pq.unitCol, pq.armIndex, pq.from, sigJoin, preJoin)
	out, byIndex, err := r.queryArms(ctx, s, q, args)
	if err != nil {
		return nil, err
	}
	return out, r.latency(ctx, pq, out, byIndex)
}

// latency fills the latency quantile grid of every arm.
func (r *Reader) latency(ctx context.Context, pq phaseQuery, out []experiments.ArmData, byIndex map[int]int) error {
	levels, lv := latencyLevels()
	q := fmt.Sprintf(`SELECT toUInt8(%s) AS a, quantilesTDigest(%s)(toFloat64(latency_ms)) FROM %s GROUP BY a`,
		pq.armIndex, lv, pq.from)
	return r.queryLatency(ctx, q, pq.args, levels, out, byIndex)
}

func (r *Reader) count(ctx context.Context, q string, args ...any) (uint64, error) {
	var n uint64
	if err := r.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

func innerCols() []string {
	cols := make([]string, 0, len(numerators)+2)
	for _, n := range numerators {
		cols = append(cols, n.col)
	}
	return append(cols, "cost", "img")
}

func colOf(metric string) string {
	for _, n := range numerators {
		if n.metric == metric {
			return n.col
		}
	}
	return "cost"
}

// preExpr is the per-request expression of the metric's numerator for the
// pre-period covariate (none for thumbs, which need the signals join).
func preExpr(metric string) (string, bool) {
	if metric == "cost_per_image" {
		return "cost_usd", true
	}
	for _, n := range numerators {
		if n.metric == metric && n.col != "up" && n.col != "down" {
			return n.expr, true
		}
	}
	return "", false
}

func scanArm(rows driver.Rows) (experiments.ArmData, int, error) {
	var (
		a                     uint64
		units                 uint64
		r, rr                 float64
		sums                  = make([]float64, 3*len(numerators))
		c, cc, ci, i, ii      float64
		cy, cx, cyy, cxx, cxy float64
		preN                  uint64
	)
	dest := []any{&a, &units, &r, &rr}
	for k := range sums {
		dest = append(dest, &sums[k])
	}
	dest = append(dest, &c, &cc, &ci, &i, &ii, &cy, &cx, &cyy, &cxx, &cxy, &preN)
	if err := rows.Scan(dest...); err != nil {
		return experiments.ArmData{}, 0, err
	}
	n := float64(units)
	d := experiments.ArmData{Units: n, Requests: r, Ratios: map[string]experiments.RatioMoments{}, Latency: map[float64]float64{}}
	for k, m := range numerators {
		x, xx, xr := sums[3*k], sums[3*k+1], sums[3*k+2]
		d.Ratios[m.metric] = experiments.RatioMoments{N: n, SumX: x, SumY: r, SumXX: xx, SumYY: rr, SumXY: xr}
	}
	d.Ratios["cost_per_image"] = experiments.RatioMoments{N: n, SumX: c, SumY: i, SumXX: cc, SumYY: ii, SumXY: ci}
	if preN > 0 {
		d.CUPED = experiments.CovMoments{N: n, SumY: cy, SumX: cx, SumYY: cyy, SumXX: cxx, SumXY: cxy}
	}
	return d, int(a), nil
}

// armIndexExpr maps an arm-name column to the arm's 1-based index in s.
func armIndexExpr(col string, s experiments.Spec) string {
	names := make([]string, len(s.Arms))
	idx := make([]string, len(s.Arms))
	for i, a := range s.Arms {
		names[i], idx[i] = quote(a.Name), strconv.Itoa(i+1)
	}
	return fmt.Sprintf("transform(%s, [%s], [%s], 0)", col, strings.Join(names, ", "), strings.Join(idx, ", "))
}

// aggCols are experiment_units' summed columns, in numerators order, with
// cost and images last.
var aggCols = map[string]string{
	"succ": "succ", "qap": "qap", "qaf": "qaf", "err": "err", "esc": "esc", "lat": "latency_ms",
}

// armsAggregated reads experiment_units and experiment_latency; thumbs
// come from the signals joined to the phase's decisions that have one.
func (r *Reader) armsAggregated(ctx context.Context, s experiments.Spec) ([]experiments.ArmData, error) {
	ps, err := r.setup(ctx, s)
	if err != nil {
		return nil, err
	}
	since, signals, cuped, preStart, preExprStr := ps.since, ps.signals, ps.cuped, ps.preStart, ps.preExpr
	var inner, outer []string
	for _, n := range numerators {
		switch n.col {
		case "up", "down":
			if signals == 0 {
				inner = append(inner, "toFloat64(0) AS "+n.col)
			}
		default:
			inner = append(inner, fmt.Sprintf("toFloat64(sum(%s)) AS %s", aggCols[n.col], n.col))
		}
		outer = append(outer, fmt.Sprintf("sum(%[1]s), sum(%[1]s * %[1]s), sum(%[1]s * r)", n.col))
	}
	inner = append(inner, "toFloat64(sum(cost_usd)) AS cost", "toFloat64(sum(images)) AS img")
	outer = append(outer, "sum(cost), sum(cost * cost), sum(cost * img), sum(img), sum(img * img)")

	args := []any{s.ID, int32(s.Phase)}
	sigJoin := ""
	if signals > 0 {
		// per-unit thumbs: the signals' requests, found among the phase's
		// decisions by request id (a small set), keyed like the units
		sigJoin = fmt.Sprintf(`ANY LEFT JOIN (
			SELECT k, toFloat64(sum(up)) AS up, toFloat64(sum(down)) AS down
			FROM (
				SELECT bitOr(bitAnd(cityHash64(arm_units[idx]), %[1]s), %[2]s) AS k, request_id
				FROM %[3]s.decisions PREWHERE request_id IN (SELECT request_id FROM %[3]s.signals WHERE ts >= toDateTime(?))
				WHERE has(arm_experiments, ?) AND ts >= toDateTime(?) AND arm_phases[indexOf(arm_experiments, ?) AS idx] = ?
			) ALL INNER JOIN (
				SELECT request_id, countIf(signal = 'thumbs_up') AS up, countIf(signal = 'thumbs_down') AS down
				FROM %[3]s.signals WHERE ts >= toDateTime(?) GROUP BY request_id
			) USING request_id
			GROUP BY k
		) USING k`, unitMask, armIndexExpr("arm_names[idx]", s), r.db)
		args = append(args, since.Unix(), s.ID, since.Unix(), s.ID, int32(s.Phase), since.Unix())
	}
	cupedY, cupedX, preCols, preJoin := "toFloat64(0)", "toFloat64(0)", "toFloat64(0) AS pre, toUInt8(0) AS pre_n", ""
	if cuped {
		cupedY, cupedX, preCols = colOf(s.PrimaryMetric), "pre", "pre, pre_n"
		unitCol := "unit"
		if s.Unit == experiments.UnitTenant {
			unitCol = "tenant"
		}
		preJoin = fmt.Sprintf(`ANY LEFT JOIN (
			SELECT bitAnd(cityHash64(%s), %s) AS uh, toFloat64(sum(%s)) AS pre, toUInt8(1) AS pre_n
			FROM %s.decisions WHERE ts >= toDateTime(?) AND ts < toDateTime(?) GROUP BY uh
		) USING uh`, unitCol, unitMask, preExprStr, r.db)
		args = append(args, preStart.Unix(), since.Unix())
	}
	q := fmt.Sprintf(`
SELECT bitAnd(k, 255) AS a, count() AS units, sum(r), sum(r * r), %[1]s,
	sum(%[2]s), sum(%[3]s), sum(%[2]s * %[2]s), sum(%[3]s * %[3]s), sum(%[2]s * %[3]s), countIf(pre_n > 0)
FROM (
	SELECT k, r, %[5]s, %[6]s
	FROM (
		SELECT k, bitAnd(k, %[4]s) AS uh, r, %[5]s
		FROM (
			SELECT k, toFloat64(sum(requests)) AS r, %[7]s
			FROM (
				SELECT bitOr(bitAnd(unit_hash, %[4]s), %[8]s) AS k, requests, succ, qap, qaf, err, esc, latency_ms, cost_usd, images
				FROM %[9]s.experiment_units
				WHERE experiment = ? AND phase = ?
			)
			GROUP BY k
		)
		%[10]s
	)
	%[11]s
)
GROUP BY a
ORDER BY a`,
		strings.Join(outer, ", "), cupedY, cupedX, unitMask, strings.Join(innerCols(), ", "), preCols,
		strings.Join(inner, ", "), armIndexExpr("arm", s), r.db, sigJoin, preJoin)
	out, byIndex, err := r.queryArms(ctx, s, q, args)
	if err != nil {
		return nil, err
	}
	return out, r.latencyAggregated(ctx, s, out, byIndex)
}

func (r *Reader) latencyAggregated(ctx context.Context, s experiments.Spec, out []experiments.ArmData, byIndex map[int]int) error {
	levels, lv := latencyLevels()
	q := fmt.Sprintf(`SELECT toUInt8(%s) AS a, quantilesTDigestMerge(%s)(q) FROM %s.experiment_latency WHERE experiment = ? AND phase = ? GROUP BY a`,
		armIndexExpr("arm", s), lv, r.db)
	return r.queryLatency(ctx, q, []any{s.ID, int32(s.Phase)}, levels, out, byIndex)
}

// latencyLevels returns the quantile levels of the latency grid and their
// list as a ClickHouse argument list.
func latencyLevels() ([]float64, string) {
	levels := experiments.LatencyLevels()
	lv := make([]string, len(levels))
	for i, l := range levels {
		lv[i] = strconv.FormatFloat(l, 'f', -1, 64)
	}
	return levels, strings.Join(lv, ", ")
}

// phaseSetup is what both arm queries need to know first: where the phase
// starts, whether there are signals to join, and whether CUPED has a
// pre-period to read.
type phaseSetup struct {
	since, preStart time.Time
	signals         uint64
	cuped           bool
	preExpr         string
}

func (r *Reader) setup(ctx context.Context, s experiments.Spec) (phaseSetup, error) {
	ps := phaseSetup{since: time.UnixMilli(s.PhaseStarted).UTC()}
	if s.PhaseStarted == 0 {
		ps.since = time.Unix(0, 0).UTC()
	}
	var err error
	if ps.signals, err = r.count(ctx, fmt.Sprintf("SELECT count() FROM %s.signals WHERE ts >= toDateTime(?)", r.db), ps.since.Unix()); err != nil {
		return ps, err
	}
	ps.preExpr, ps.cuped = preExpr(s.PrimaryMetric)
	ps.cuped = ps.cuped && s.Unit != experiments.UnitRequest && r.PrePeriod > 0
	ps.preStart = ps.since.Add(-r.PrePeriod)
	if ps.cuped {
		n, err := r.count(ctx, fmt.Sprintf("SELECT count() FROM %s.decisions WHERE ts >= toDateTime(?) AND ts < toDateTime(?)", r.db), ps.preStart.Unix(), ps.since.Unix())
		if err != nil {
			return ps, err
		}
		ps.cuped = n > 0
	}
	return ps, nil
}

// queryArms runs an arm query (rows as scanArm reads them) and names the
// arms; byIndex maps an arm's 1-based index to its place in out. Rows of
// arms the spec no longer has are skipped.
func (r *Reader) queryArms(ctx context.Context, s experiments.Spec, q string, args []any) ([]experiments.ArmData, map[int]int, error) {
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("query experiment %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []experiments.ArmData
	byIndex := map[int]int{}
	for rows.Next() {
		d, a, err := scanArm(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("scan experiment %s: %w", s.ID, err)
		}
		if a < 1 || a > len(s.Arms) {
			continue
		}
		d.Arm = s.Arms[a-1].Name
		byIndex[a] = len(out)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read experiment %s: %w", s.ID, err)
	}
	return out, byIndex, nil
}

// queryLatency runs a latency query (arm index, quantiles at levels) and
// fills the arms' quantile grids.
func (r *Reader) queryLatency(ctx context.Context, q string, args []any, levels []float64, out []experiments.ArmData, byIndex map[int]int) error {
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query latency quantiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a uint8
		var qs []float64
		if err := rows.Scan(&a, &qs); err != nil {
			return fmt.Errorf("scan latency quantiles: %w", err)
		}
		i, ok := byIndex[int(a)]
		if !ok {
			continue
		}
		for k, l := range levels {
			if k < len(qs) {
				out[i].Latency[l] = qs[k]
			}
		}
	}
	return rows.Err()
}
