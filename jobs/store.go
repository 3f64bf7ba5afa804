package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// Store reads the event tables in ClickHouse for the jobs and writes their
// audit rows. Every aggregate is computed by ClickHouse; Go receives bins,
// not rows, except where a job needs rows (OPE replays the candidate policy
// on a sample of logged requests).
type Store struct {
	Conn   driver.Conn
	DB     string
	Labels Labels
	// Final adds FINAL to reads of the decisions table so redelivered
	// events are collapsed at read time; off by default because the
	// aggregates the jobs compute move by at most the duplicate rate, and
	// FINAL on tens of millions of rows multiplies the query time.
	Final bool
}

func (s *Store) decisions() string {
	if s.Final {
		return s.DB + ".decisions FINAL"
	}
	return s.DB + ".decisions"
}

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// routedExpr is the model the policy routed to (the first attempt's), which
// the logged propensity and candidate P belong to; model is the one whose
// image came back, a fallback when the first attempt failed.
const routedExpr = "if(empty(attempt_models), model, attempt_models[1]) AS routed"

// labelledFirst keeps decisions whose first attempt says something about
// the routed model's quality: it returned an image (judged by QA) or ran
// out of time. Provider errors and rate limits say nothing and are left out.
const labelledFirst = "(empty(attempt_statuses) OR attempt_statuses[1] IN ('ok', 'qa_fail', 'timeout'))"

// routedY is the label of the routed model: the request's success when
// the routed model's own image came back, else a failure.
const routedY = "toUInt8(y = 1 AND routed = model)"

// HoldoutMod: rows with cityHash64(request_id) % HoldoutMod = 0 are held
// out from fitting and used for before/after metrics (20%).
const HoldoutMod = 5

// CalibrationBins aggregates the labelled decisions of policyVersion in the
// window into fine bins (100 per model) of the chosen model's logged
// calibrated P, inverse-propensity weighted.
func (s *Store) CalibrationBins(ctx context.Context, w Window, policyVersion string) ([]CalBin, error) {
	lab := s.Labels.SQL(s.DB, w, []string{
		"model", routedExpr,
		"1 / propensity AS w",
		"candidate_p[indexOf(candidate_models, routed)] AS p",
		fmt.Sprintf("toUInt8(cityHash64(request_id) %% %d = 0) AS holdout", HoldoutMod),
	}, "policy_version = "+quote(policyVersion)+" AND propensity > 0 AND indexOf(candidate_models, "+strings.TrimSuffix(routedExpr, " AS routed")+") > 0 AND "+labelledFirst)
	lab = strings.Replace(lab, "FROM "+s.DB+".decisions WHERE", "FROM "+s.decisions()+" WHERE", 1)
	q := `SELECT routed, toUInt32(least(floor(p * 100), 99)) AS bin, holdout,
  count() AS n, sum(w) AS sw, sum(w * yr) AS swy, sum(w * p) AS swp, sum(w * p * p) AS swpp, sum(w * yr * p) AS swyp
FROM (SELECT routed, p, w, holdout, ` + routedY + ` AS yr FROM (` + lab + `))
GROUP BY routed, bin, holdout ORDER BY routed, bin, holdout`
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("calibration bins: %w", err)
	}
	defer rows.Close()
	var out []CalBin
	for rows.Next() {
		var b CalBin
		var bin uint32
		var hold uint8
		var n uint64
		if err := rows.Scan(&b.Model, &bin, &hold, &n, &b.W, &b.WY, &b.WP, &b.WPP, &b.WYP); err != nil {
			return nil, fmt.Errorf("calibration bins: %w", err)
		}
		b.Bin, b.Holdout, b.N = int(bin), hold == 1, float64(n)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Count is the number of decisions in the window (optionally of one policy).
func (s *Store) Count(ctx context.Context, w Window, policyVersion string) (uint64, error) {
	q := "SELECT count() FROM " + s.decisions() + " WHERE " + w.where("ts_ms")
	if policyVersion != "" {
		q += " AND policy_version = " + quote(policyVersion)
	}
	var n uint64
	if err := s.Conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count decisions: %w", err)
	}
	return n, nil
}

// Span is the time range the decisions table covers.
func (s *Store) Span(ctx context.Context) (Window, uint64, error) {
	var lo, hi, n uint64
	if err := s.Conn.QueryRow(ctx, "SELECT min(ts_ms), max(ts_ms), count() FROM "+s.decisions()).Scan(&lo, &hi, &n); err != nil {
		return Window{}, 0, fmt.Errorf("decisions span: %w", err)
	}
	return Window{From: time.UnixMilli(int64(lo)), To: time.UnixMilli(int64(hi) + 1)}, n, nil
}

// Histograms counts several numeric expressions into their bins in one
// pass over the window: one GROUP BY over the tuple of bin indices (a few
// thousand groups at most), marginalised here.
func (s *Store) Histograms(ctx context.Context, w Window, exprs []string, edges [][]float64) ([][]float64, error) {
	if len(exprs) == 0 {
		return nil, nil
	}
	sel := make([]string, len(exprs))
	for i, e := range exprs {
		sel[i] = BinExpr(e, edges[i]) + fmt.Sprintf(" AS b%d", i)
	}
	group := make([]string, len(exprs))
	for i := range exprs {
		group[i] = fmt.Sprintf("b%d", i)
	}
	q := "SELECT " + strings.Join(sel, ", ") + ", count() FROM " + s.decisions() + " WHERE " + w.where("ts_ms") + " GROUP BY " + strings.Join(group, ", ")
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("histograms: %w", err)
	}
	defer rows.Close()
	out := make([][]float64, len(exprs))
	for i := range out {
		out[i] = make([]float64, len(edges[i])+1)
	}
	bins := make([]uint64, len(exprs))
	dest := make([]any, len(exprs)+1)
	for i := range bins {
		dest[i] = &bins[i]
	}
	var n uint64
	dest[len(exprs)] = &n
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("histograms: %w", err)
		}
		for i, b := range bins {
			if int(b) < len(out[i]) {
				out[i][b] += float64(n)
			}
		}
	}
	return out, rows.Err()
}

// Histogram counts the expression expr over the window into the bins the
// edges define: bin i holds edges[i-1] <= v < edges[i] (bin 0 everything
// below edges[0]... see BinExpr), computed in ClickHouse.
func (s *Store) Histogram(ctx context.Context, w Window, expr string, edges []float64) ([]float64, error) {
	q := "SELECT " + BinExpr(expr, edges) + " AS b, count() FROM " + s.decisions() + " WHERE " + w.where("ts_ms") + " GROUP BY b"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("histogram %s: %w", expr, err)
	}
	defer rows.Close()
	out := make([]float64, len(edges)+1)
	for rows.Next() {
		var b uint64
		var n uint64
		if err := rows.Scan(&b, &n); err != nil {
			return nil, fmt.Errorf("histogram %s: %w", expr, err)
		}
		if int(b) < len(out) {
			out[b] += float64(n)
		}
	}
	return out, rows.Err()
}

// BinExpr is the ClickHouse expression giving the bin of expr among edges:
// the number of edges at or below the value, so with edges e0 < e1 < ...
// bin 0 is v < e0, bin i is e(i-1) <= v < e(i).
func BinExpr(expr string, edges []float64) string {
	if len(edges) == 0 {
		return "toUInt64(0)"
	}
	// a sum of comparisons rather than arrayMap with a lambda: 18.16's
	// lambdas cannot see the row's columns
	parts := make([]string, len(edges))
	for i, e := range edges {
		parts[i] = fmt.Sprintf("(toFloat64(%s) >= %v)", expr, e)
	}
	return "toUInt64(" + strings.Join(parts, " + ") + ")"
}

// Counts counts the values of a categorical expression over the window.
func (s *Store) Counts(ctx context.Context, w Window, expr string) (map[string]float64, error) {
	return s.CountsWhere(ctx, w.where("ts_ms"), expr)
}

// CountsMulti counts the values of several categorical expressions over the
// window in one pass (GROUP BY their tuple), marginalised here.
func (s *Store) CountsMulti(ctx context.Context, w Window, exprs []string) ([]map[string]float64, error) {
	if len(exprs) == 0 {
		return nil, nil
	}
	sel := make([]string, len(exprs))
	group := make([]string, len(exprs))
	for i, e := range exprs {
		sel[i] = fmt.Sprintf("toString(%s) AS c%d", e, i)
		group[i] = fmt.Sprintf("c%d", i)
	}
	q := "SELECT " + strings.Join(sel, ", ") + ", count() FROM " + s.decisions() + " WHERE " + w.where("ts_ms") + " GROUP BY " + strings.Join(group, ", ")
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	defer rows.Close()
	out := make([]map[string]float64, len(exprs))
	for i := range out {
		out[i] = map[string]float64{}
	}
	vals := make([]string, len(exprs))
	dest := make([]any, len(exprs)+1)
	for i := range vals {
		dest[i] = &vals[i]
	}
	var n uint64
	dest[len(exprs)] = &n
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
		for i, v := range vals {
			out[i][v] += float64(n)
		}
	}
	return out, rows.Err()
}

// CountsSplit counts a categorical expression over the window in one pass,
// split into the part before cut and the rest.
func (s *Store) CountsSplit(ctx context.Context, w Window, cut time.Time, expr string) (early, late map[string]float64, err error) {
	q := fmt.Sprintf("SELECT toString(%s) AS v, ts_ms < %d AS e, count() FROM %s WHERE %s GROUP BY v, e", expr, cut.UnixMilli(), s.decisions(), w.where("ts_ms"))
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("counts %s: %w", expr, err)
	}
	defer rows.Close()
	early, late = map[string]float64{}, map[string]float64{}
	for rows.Next() {
		var v string
		var e uint8
		var n uint64
		if err := rows.Scan(&v, &e, &n); err != nil {
			return nil, nil, fmt.Errorf("counts %s: %w", expr, err)
		}
		if e == 1 {
			early[v] += float64(n)
		} else {
			late[v] += float64(n)
		}
	}
	return early, late, rows.Err()
}

// CountsWhere counts the values of a categorical expression over the
// decisions matching where.
func (s *Store) CountsWhere(ctx context.Context, where, expr string) (map[string]float64, error) {
	q := "SELECT toString(" + expr + ") AS v, count() FROM " + s.decisions() + " WHERE " + where + " GROUP BY v"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("counts %s: %w", expr, err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var v string
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, fmt.Errorf("counts %s: %w", expr, err)
		}
		out[v] = float64(n)
	}
	return out, rows.Err()
}

// RateBucket is one time bucket of the outcome rates the streaming
// detectors watch.
type RateBucket struct {
	Start       time.Time
	N           float64
	QAFail      float64
	Escalated   float64
	SlowOver    float64 // latency above the slow threshold
	ThumbsDown  float64
	Regenerated float64
	Lat         []float64 // events per latency bin (LatBins)
}

// LatBins is the number of latency bins in a RateBucket: quarter octaves
// of milliseconds (bin = floor(4 log2(ms + 1)), about 19% wide), capped.
const LatBins = 80

// LatBinLow is the lowest latency (ms) of bin b.
func LatBinLow(b int) float64 { return math.Exp2(float64(b)/4) - 1 }

// Rates aggregates the window into buckets of step, in time order: counts
// of QA failures and escalations and a latency histogram from one pass over
// the decisions, and the thumbs-down and regenerate signals received in
// each bucket from the (much smaller) signals table. Signals are bucketed by
// their own time, not joined to their request: the join hashed every
// decision's request id, the costliest part of the drift job at 10M
// decisions, and a feedback signal trails its request by seconds. The
// latency histogram lets the caller pick the slowness threshold from a
// baseline without a second scan.
func (s *Store) Rates(ctx context.Context, w Window, step time.Duration) ([]RateBucket, error) {
	stepMS := max(step.Milliseconds(), 1)
	q := fmt.Sprintf(`SELECT intDiv(ts_ms, %[1]d) AS b, toUInt8(least(floor(4 * log2(toFloat64(greatest(latency_ms, 0)) + 1)), %[4]d)) AS lb,
  count(), sum(qa_pass = 0), sum(escalated)
FROM %[2]s WHERE %[3]s
GROUP BY b, lb ORDER BY b`, stepMS, s.decisions(), w.where("ts_ms"), LatBins-1)
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("rates: %w", err)
	}
	defer rows.Close()
	var out []RateBucket
	at := map[uint64]int{}
	for rows.Next() {
		var b, n, qf, esc uint64
		var lb uint8
		if err := rows.Scan(&b, &lb, &n, &qf, &esc); err != nil {
			return nil, fmt.Errorf("rates: %w", err)
		}
		start := time.UnixMilli(int64(b) * stepMS)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			at[b] = len(out)
			out = append(out, RateBucket{Start: start, Lat: make([]float64, LatBins)})
		}
		r := &out[len(out)-1]
		r.N += float64(n)
		r.QAFail += float64(qf)
		r.Escalated += float64(esc)
		r.Lat[min(int(lb), LatBins-1)] += float64(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rates: %w", err)
	}
	rows.Close()
	sq := fmt.Sprintf(`SELECT intDiv(ts_ms, %[1]d) AS b, countIf(signal = 'thumbs_down'), countIf(signal = 'regenerate')
FROM %[2]s.signals WHERE %[3]s AND signal IN ('thumbs_down', 'regenerate') GROUP BY b`, stepMS, s.DB, w.where("ts_ms"))
	srows, err := s.Conn.Query(ctx, sq)
	if err != nil {
		return nil, fmt.Errorf("rates: signals: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var b, td, rg uint64
		if err := srows.Scan(&b, &td, &rg); err != nil {
			return nil, fmt.Errorf("rates: signals: %w", err)
		}
		// a bucket without decisions has no rate to add its signals to
		if i, ok := at[b]; ok {
			// a rate is at most one per decision
			out[i].ThumbsDown = min(out[i].ThumbsDown+float64(td), out[i].N)
			out[i].Regenerated = min(out[i].Regenerated+float64(rg), out[i].N)
		}
	}
	return out, srows.Err()
}

// SlowFrom sets SlowOver of every bucket to its events in latency bins
// at or above bin from.
func SlowFrom(bs []RateBucket, from int) {
	for i := range bs {
		bs[i].SlowOver = 0
		for b := from; b < len(bs[i].Lat); b++ {
			bs[i].SlowOver += bs[i].Lat[b]
		}
	}
}

// P90Bin is the first latency bin above the 90th percentile of the
// buckets' events: at most 10% of them fall at or above it.
func P90Bin(bs []RateBucket) int {
	lat := make([]float64, LatBins)
	var n float64
	for _, b := range bs {
		for i, c := range b.Lat {
			lat[i] += c
			n += c
		}
	}
	acc := 0.0
	for i, c := range lat {
		acc += c
		if acc >= 0.9*n {
			return i + 1
		}
	}
	return LatBins
}

// Logged is one labelled decision, as OPE replays it.
type Logged struct {
	RequestID  string
	TS         int64
	Tenant     string
	Mode       string
	Tier       string
	Prompt     string
	RefCount   int
	EditDepth  int
	Aspect     float64
	TextHeavy  bool
	Preserve   bool
	MaxLatency int64
	MaxCost    float64
	Model      string
	Propensity float64
	PolicyP    float64 // the logging policy's calibrated P of the chosen model
	Y          float64
	CandModels []string  // the logged candidates, for replaying the request's size
	CandCosts  []float64 // their logged prices
	Holdout    bool      // in the held-out fifth
}

// Logged reads up to limit labelled decisions of policyVersion in the
// window, in a deterministic hash sample when there are more.
func (s *Store) Logged(ctx context.Context, w Window, policyVersion string, limit int, holdoutOnly bool) ([]Logged, error) {
	where := "policy_version = " + quote(policyVersion) + " AND propensity > 0 AND " + labelledFirst
	key, err := s.sample(ctx, w, policyVersion, limit, holdoutOnly)
	if err != nil {
		return nil, err
	}
	lab := s.Labels.SampleSQL(s.DB, w, []string{"request_id", "ts_ms", "tenant", "mode", "tier", "prompt", "ref_count", "edit_depth", "aspect",
		"text_heavy", "preserve_subject", "max_latency_ms", "max_cost_usd", "model", routedExpr, "propensity",
		"if(indexOf(candidate_models, routed) > 0, candidate_p[indexOf(candidate_models, routed)], 0) AS policy_p",
		"candidate_models", "candidate_cost_usd", fmt.Sprintf("toUInt8(cityHash64(request_id) %% %d = 0) AS holdout", HoldoutMod)}, where, key)
	lab = strings.Replace(lab, "FROM "+s.DB+".decisions WHERE", "FROM "+s.decisions()+" WHERE", 1)
	q := "SELECT request_id, ts_ms, tenant, mode, tier, prompt, ref_count, edit_depth, aspect, text_heavy, preserve_subject, max_latency_ms, max_cost_usd, routed, propensity, policy_p, " + routedY + ", candidate_models, candidate_cost_usd, holdout FROM (" + lab + ") ORDER BY ts_ms"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("logged decisions: %w", err)
	}
	defer rows.Close()
	var out []Logged
	for rows.Next() {
		var l Logged
		var ts uint64
		var refs, depth uint16
		var th, ps, y, hold uint8
		if err := rows.Scan(&l.RequestID, &ts, &l.Tenant, &l.Mode, &l.Tier, &l.Prompt, &refs, &depth, &l.Aspect, &th, &ps,
			&l.MaxLatency, &l.MaxCost, &l.Model, &l.Propensity, &l.PolicyP, &y, &l.CandModels, &l.CandCosts, &hold); err != nil {
			return nil, fmt.Errorf("logged decisions: %w", err)
		}
		l.TS, l.RefCount, l.EditDepth, l.TextHeavy, l.Preserve, l.Y = int64(ts), int(refs), int(depth), th == 1, ps == 1, float64(y)
		l.Holdout = hold == 1
		out = append(out, l)
	}
	return out, rows.Err()
}

// SuccessRate is the labelled success rate of the window (all policies).
func (s *Store) SuccessRate(ctx context.Context, w Window) (rate float64, n uint64, err error) {
	lab := s.Labels.SQL(s.DB, w, []string{"request_id"}, "")
	if err := s.Conn.QueryRow(ctx, "SELECT avg(y), count() FROM ("+lab+")").Scan(&rate, &n); err != nil {
		return 0, 0, fmt.Errorf("success rate: %w", err)
	}
	return rate, n, nil
}

// Audit writes one audit row (the job's report as its body) into the audit
// table, for history and the console.
func (s *Store) Audit(ctx context.Context, a events.Audit) error {
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+".audit (event_id, schema_version, request_id, tenant, ts, ts_ms, action, subject, actor, body)")
	if err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	if err := b.Append(a.EventID, uint16(a.SchemaVersion), a.RequestID, a.Tenant, time.UnixMilli(a.TS), uint64(a.TS), a.Action, a.Subject, a.Actor, a.Body); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

// AuditRows reads the audit rows of action prefix, newest first.
func (s *Store) AuditRows(ctx context.Context, actionPrefix string, limit int) ([]events.Audit, error) {
	q := fmt.Sprintf("SELECT event_id, ts_ms, action, subject, actor, body FROM %s.audit WHERE startsWith(action, %s) ORDER BY ts_ms DESC LIMIT %d", s.DB, quote(actionPrefix), limit)
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit rows: %w", err)
	}
	defer rows.Close()
	var out []events.Audit
	for rows.Next() {
		var a events.Audit
		var ts uint64
		if err := rows.Scan(&a.EventID, &ts, &a.Action, &a.Subject, &a.Actor, &a.Body); err != nil {
			return nil, fmt.Errorf("audit rows: %w", err)
		}
		a.TS = int64(ts)
		out = append(out, a)
	}
	return out, rows.Err()
}

// NewAudit builds the audit event for a job's report.
func NewAudit(now time.Time, action, subject string, body any) (events.Audit, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return events.Audit{}, fmt.Errorf("encode %s report: %w", action, err)
	}
	return events.Audit{
		Header: events.Header{EventID: fmt.Sprintf("%s-%d-%s", action, now.UnixNano(), shortHash(string(b))), SchemaVersion: events.SchemaVersion, TS: now.UnixMilli(), Tenant: "_system", RequestID: ""},
		Action: action, Subject: subject, Actor: "routelab-jobs", Body: string(b),
	}, nil
}

func shortHash(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%012x", h&0xffffffffffff)
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

// Rows reads up to limit labelled decisions of policyVersion in the window
// with the candidates they were chosen among, in a deterministic hash
// sample when there are more: the rule audit and the threshold search
// replay these.
func (s *Store) Rows(ctx context.Context, w Window, policyVersion string, limit int) ([]Row, error) {
	where := "policy_version = " + quote(policyVersion) + " AND propensity > 0 AND " + labelledFirst
	key, err := s.sample(ctx, w, policyVersion, limit, false)
	if err != nil {
		return nil, err
	}
	lab := s.Labels.SampleSQL(s.DB, w, []string{"request_id", "tier", "rule", "model", routedExpr, "propensity", "candidate_models", "candidate_p",
		"candidate_cost_usd", "candidate_eligible", "if(empty(attempt_latency_ms), toInt64(0), attempt_latency_ms[1]) AS lat",
		fmt.Sprintf("toUInt8(cityHash64(request_id) %% %d = 0) AS holdout", HoldoutMod)}, where, key)
	lab = strings.Replace(lab, "FROM "+s.DB+".decisions WHERE", "FROM "+s.decisions()+" WHERE", 1)
	q := "SELECT request_id, tier, rule, routed, propensity, candidate_models, candidate_p, candidate_cost_usd, candidate_eligible, lat, holdout, " + routedY + " FROM (" + lab + ")"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("decision rows: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var tier string
		var models []string
		var ps, costs []float64
		var elig []uint8
		var lat int64
		var hold, y uint8
		if err := rows.Scan(&r.ID, &tier, &r.Rule, &r.Model, &r.Propensity, &models, &ps, &costs, &elig, &lat, &hold, &y); err != nil {
			return nil, fmt.Errorf("decision rows: %w", err)
		}
		r.Tier, r.Y, r.LatencyMS = router.Tier(tier), float64(y), float64(lat)
		r.HoldoutSet, r.HoldoutVal = true, hold == 1
		for i, m := range models {
			c := Cand{Model: m}
			if i < len(ps) {
				c.P = ps[i]
			}
			if i < len(costs) {
				c.Cost = costs[i]
			}
			if i < len(elig) {
				c.Eligible = elig[i] == 1
			}
			r.Cands = append(r.Cands, c)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sample returns a condition on request_id keeping about limit of the
// policy's decisions in the window (a cityHash64 fraction, so the sample is
// reproducible and the joined tables can be cut by the same condition);
// holdoutOnly keeps only the held-out fifth.
func (s *Store) sample(ctx context.Context, w Window, policyVersion string, limit int, holdoutOnly bool) (string, error) {
	var conds []string
	frac := 1.0
	if holdoutOnly {
		conds = append(conds, fmt.Sprintf("cityHash64(request_id) %% %d = 0", HoldoutMod))
		frac = 1.0 / HoldoutMod
	}
	if limit > 0 {
		n, err := s.Count(ctx, w, policyVersion)
		if err != nil {
			return "", err
		}
		if float64(n)*frac > float64(limit) {
			// a second, independent hash so it does not interact with the split
			keep := uint64(float64(limit) / (float64(n) * frac) * 1e6)
			conds = append(conds, fmt.Sprintf("cityHash64(request_id, 'sample') %% 1000000 < %d", keep))
		}
	}
	return strings.Join(conds, " AND "), nil
}

// ProfileCounts is one side of a Profile: per numeric expression its bin
// counts, per categorical expression its value counts, and the events.
type ProfileCounts struct {
	hist [][]float64
	cats []map[string]float64
	n    float64
}

func newProfileCounts(edges [][]float64, ncat int) ProfileCounts {
	p := ProfileCounts{hist: make([][]float64, len(edges)), cats: make([]map[string]float64, ncat)}
	for i := range edges {
		p.hist[i] = make([]float64, len(edges[i])+1)
	}
	for i := range p.cats {
		p.cats[i] = map[string]float64{}
	}
	return p
}

// plus is the sum of two sides of one profile.
func (p ProfileCounts) plus(o ProfileCounts) ProfileCounts {
	out := ProfileCounts{hist: make([][]float64, len(p.hist)), cats: make([]map[string]float64, len(p.cats)), n: p.n + o.n}
	for i := range p.hist {
		out.hist[i] = make([]float64, len(p.hist[i]))
		for k := range p.hist[i] {
			out.hist[i][k] = p.hist[i][k] + o.hist[i][k]
		}
	}
	for i := range p.cats {
		out.cats[i] = map[string]float64{}
		for k, v := range p.cats[i] {
			out.cats[i][k] += v
		}
		for k, v := range o.cats[i] {
			out.cats[i][k] += v
		}
	}
	return out
}

// reference turns a side binned with DefaultEdges into reference
// distributions in the shape a trained policy carries them; the route is
// the categorical expression after cats, kw the keyword counts.
func (p ProfileCounts) reference(num, cats []string, route, kwName string, kw map[string]float64) *router.Reference {
	ref := &router.Reference{Hist: map[string]router.Histogram{}, Share: map[string]map[string]float64{}, Events: int(p.n)}
	frac := func(c float64) float64 {
		if p.n > 0 {
			return c / p.n
		}
		return 0
	}
	for i, name := range num {
		f := make([]float64, len(p.hist[i]))
		for k, c := range p.hist[i] {
			f[k] = frac(c)
		}
		ref.Hist[name] = router.Histogram{Edges: DefaultEdges[name], Frac: f}
	}
	for i, name := range cats {
		ref.Share[name] = norm(p.cats[i])
	}
	if route != "" {
		ref.Share[route] = norm(p.cats[len(cats)])
	}
	if kwName != "" {
		ref.Share[kwName] = map[string]float64{}
		for k, v := range kw {
			ref.Share[kwName][k] = frac(v)
		}
	}
	return ref
}

// Profile bins the numeric expressions (BinExpr with edges) and counts the
// values of the categorical ones over the window in one pass, split into
// the decisions before cut and the rest (with a zero cut everything is in
// late), marginalised here. The group key is two integers, cheap to hash at
// 10M rows: the bins and the split packed into one (mixed radix), and a
// 64-bit hash of the categorical values, whose strings come back through
// any() (a collision between the handful of distinct value tuples is
// negligible).
func (s *Store) Profile(ctx context.Context, w Window, num []string, edges [][]float64, cats []string, cut time.Time) (early, late ProfileCounts, err error) {
	key := make([]string, 0, len(num)+1)
	stride := uint64(1)
	strides := make([]uint64, len(num))
	for i, e := range num {
		strides[i] = stride
		key = append(key, fmt.Sprintf("%d * %s", stride, BinExpr(e, edges[i])))
		stride *= uint64(len(edges[i]) + 1)
	}
	if !cut.IsZero() {
		key = append(key, fmt.Sprintf("%d * toUInt64(ts_ms < %d)", stride, cut.UnixMilli()))
	}
	if len(key) == 0 {
		key = append(key, "toUInt64(0)")
	}
	sel := []string{"toUInt64(" + strings.Join(key, " + ") + ") AS k"}
	group := []string{"k"}
	if len(cats) > 0 {
		sel = append(sel, "cityHash64("+strings.Join(cats, ", ")+") AS h")
		group = append(group, "h")
		for _, e := range cats {
			sel = append(sel, fmt.Sprintf("any(toString(%s))", e))
		}
	}
	sel = append(sel, "count()")
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + s.decisions() + " WHERE " + w.where("ts_ms") + " GROUP BY " + strings.Join(group, ", ")
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return early, late, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	early, late = newProfileCounts(edges, len(cats)), newProfileCounts(edges, len(cats))
	var k, h, n uint64
	vals := make([]string, len(cats))
	dest := []any{&k}
	if len(cats) > 0 {
		dest = append(dest, &h)
	}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	dest = append(dest, &n)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return early, late, fmt.Errorf("profile: %w", err)
		}
		side := &late
		if !cut.IsZero() && k/stride == 1 {
			side = &early
		}
		side.n += float64(n)
		for i := range num {
			b := (k / strides[i]) % uint64(len(edges[i])+1)
			side.hist[i][b] += float64(n)
		}
		for i, v := range vals {
			side.cats[i][v] += float64(n)
		}
	}
	return early, late, rows.Err()
}
