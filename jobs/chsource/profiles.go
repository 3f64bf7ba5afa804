package chsource

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/routelab/routelab/jobs"
)

// FeatureExprs are the jobs' features (canonical names) as ClickHouse
// expressions over the decisions table.
var FeatureExprs = map[string]string{
	// words as spaces + 1; on 18.16 splitByChar costs ~25% less server CPU
	// than length(prompt) - length(replaceAll(prompt, ' ', '')) + 1 at 10M
	// rows (0.9-1.1 s against 1.2-1.8 s)
	jobs.FeaturePromptWords: "if(prompt = '', 0, length(splitByChar(' ', prompt)))",
	jobs.FeaturePromptLen:   "prompt_len",
	jobs.FeatureRefCount:    "ref_count",
	jobs.FeatureEditDepth:   "edit_depth",
	jobs.FeatureAspect:      "aspect",
	jobs.FeatureLatencyMS:   "latency_ms",
	jobs.FeatureCostUSD:     "cost_usd",
	jobs.FeatureMode:        "mode",
	jobs.FeatureTier:        "if(tier = '', 'standard', tier)",
	jobs.FeatureModel:       "model",
	jobs.FeatureTextHeavy:   "text_heavy",
	jobs.FeaturePreserve:    "preserve_subject",
	jobs.FeatureRule:        "if(rule = '', 'classifier', rule)",
	jobs.FeatureKeyword:     "arrayJoin(keywords)",
}

func featureExpr(name string, resetDepth int) (string, error) {
	if name == jobs.FeatureEditDepth {
		// a reset request is logged at the reset depth; count it at the
		// live policy's limit (its raw depth is at least that)
		return fmt.Sprintf("if(reset = 1, %d, edit_depth)", resetDepth), nil
	}
	e, ok := FeatureExprs[name]
	if !ok {
		return "", fmt.Errorf("profile: no feature %q", name)
	}
	return e, nil
}

// BinExpr is the ClickHouse expression giving the bin of expr among edges:
// the number of edges at or below the value, so with edges e0 < e1 < ...
// bin 0 is v < e0, bin i is e(i-1) <= v < e(i) (jobs.Bin).
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

// Profile bins the numeric features (BinExpr with their edges) and counts
// the values of the categorical ones over the window in one pass, split
// into the decisions before cut and the rest (with a zero cut everything
// is in late), marginalised here. The group key is two integers, cheap to
// hash at 10M rows: the bins and the split packed into one (mixed radix),
// and a 64-bit hash of the categorical values, whose strings come back
// through any() (a collision between the handful of distinct value tuples
// is negligible). The keyword groups take a second pass: arrayJoin
// multiplies rows.
func (s *Store) Profile(ctx context.Context, w jobs.Window, spec jobs.ProfileSpec, cut time.Time) (early, late jobs.ProfileCounts, err error) {
	early, late = jobs.NewProfileCounts(spec), jobs.NewProfileCounts(spec)
	key := make([]string, 0, len(spec.Num)+1)
	stride := uint64(1)
	strides := make([]uint64, len(spec.Num))
	for i, name := range spec.Num {
		e, err := featureExpr(name, spec.ResetDepth)
		if err != nil {
			return early, late, err
		}
		strides[i] = stride
		key = append(key, fmt.Sprintf("%d * %s", stride, BinExpr(e, spec.Edges[i])))
		stride *= uint64(len(spec.Edges[i]) + 1)
	}
	if !cut.IsZero() {
		key = append(key, fmt.Sprintf("%d * toUInt64(ts_ms < %d)", stride, cut.UnixMilli()))
	}
	if len(key) == 0 {
		key = append(key, "toUInt64(0)")
	}
	var cats []string
	var catAt []int // index in spec.Cat of each of cats
	kw := -1
	for i, name := range spec.Cat {
		if name == jobs.FeatureKeyword {
			kw = i
			continue
		}
		e, err := featureExpr(name, spec.ResetDepth)
		if err != nil {
			return early, late, err
		}
		cats, catAt = append(cats, e), append(catAt, i)
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
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + s.decisions() + " WHERE " + where(w, "ts_ms") + " GROUP BY " + strings.Join(group, ", ")
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return early, late, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
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
		side.N += float64(n)
		for i := range spec.Num {
			b := (k / strides[i]) % uint64(len(spec.Edges[i])+1)
			side.Hist[i][b] += float64(n)
		}
		for i, v := range vals {
			side.Cats[catAt[i]][v] += float64(n)
		}
	}
	if err := rows.Err(); err != nil {
		return early, late, fmt.Errorf("profile: %w", err)
	}
	if kw < 0 {
		return early, late, nil
	}
	if cut.IsZero() {
		c, err := s.countsWhere(ctx, where(w, "ts_ms"), FeatureExprs[jobs.FeatureKeyword])
		if err != nil {
			return early, late, err
		}
		late.Cats[kw] = c
		return early, late, nil
	}
	e, l, err := s.countsSplit(ctx, w, cut, FeatureExprs[jobs.FeatureKeyword])
	if err != nil {
		return early, late, err
	}
	early.Cats[kw], late.Cats[kw] = e, l
	return early, late, nil
}

// countsSplit counts a categorical expression over the window in one pass,
// split into the part before cut and the rest.
func (s *Store) countsSplit(ctx context.Context, w jobs.Window, cut time.Time, expr string) (early, late map[string]float64, err error) {
	q := fmt.Sprintf("SELECT toString(%s) AS v, ts_ms < %d AS e, count() FROM %s WHERE %s GROUP BY v, e", expr, cut.UnixMilli(), s.decisions(), where(w, "ts_ms"))
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
