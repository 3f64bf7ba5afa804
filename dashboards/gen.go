package dashboards

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// GenConfig sizes synthetic decision rows for benchmarks.
type GenConfig struct {
	Rows         int           // decision rows to insert
	Span         time.Duration // spread evenly over [End-Span, End)
	End          time.Time
	SampledEvery int    // every Nth row is sampled for review (0: none)
	BlobKey      string // blob key written on sampled rows
	Seed         int    // varies the hashes
	Chunk        int    // rows per INSERT ... SELECT; default 1,000,000
}

// Generate inserts synthetic decisions server-side (INSERT ... SELECT from
// system.numbers), so 10M rows take seconds, not a client round trip per
// batch. Distributions: 5 models, 20 tenants, 3% errors, 8% QA failures,
// 30% of rows in experiment exp-bench, retries and escalations. It runs on
// ClickHouse 18.16 and current releases.
func Generate(ctx context.Context, conn driver.Conn, db string, g GenConfig) error {
	if g.Chunk <= 0 {
		g.Chunk = 1_000_000
	}
	if g.Span <= 0 {
		g.Span = 7 * 24 * time.Hour
	}
	if g.End.IsZero() {
		g.End = time.Now()
	}
	start := g.End.Add(-g.Span).Unix()
	spanSec := int64(g.Span / time.Second)
	every := g.SampledEvery
	if every <= 0 {
		every = 1 << 62
	}
	for off := 0; off < g.Rows; off += g.Chunk {
		n := min(g.Chunk, g.Rows-off)
		q := fmt.Sprintf(`INSERT INTO %[1]s.decisions (event_id, schema_version, request_id, tenant, ts, ts_ms, unit, mode, tier, prompt,
  model, provider, policy_version, status, qa_pass, latency_ms, cost_usd, images, sampled, blob_key, escalated, fallback, text_heavy,
  arm_experiments, arm_names, arm_phases, arm_layers, arm_units, arm_buckets, attempt_models, attempt_providers, attempt_statuses, attempt_latency_ms)
SELECT concat('gen-', toString(k)) AS event_id, 1, concat('req-', toString(k)),
  concat('tenant-', toString(h %% 20)) AS tenant,
  toDateTime(%[2]d + intDiv(k * %[3]d, %[4]d)) AS ts, toUInt64(%[2]d + intDiv(k * %[3]d, %[4]d)) * 1000 + (h %% 1000),
  concat('user-', toString(h %% 50000)), if(h %% 10 < 2, 'edit', 'generate'), arrayElement(['draft', 'standard', 'premium'], (h %% 3) + 1),
  concat('prompt number ', toString(intDiv(h, 7) %% 100000)),
  arrayElement(['sim-lite', 'sim-fast', 'sim-premium', 'sim-editor', 'sim-typo'], (intDiv(h, 11) %% 5) + 1) AS model,
  'sim', 'p-bench', if(h %% 100 < 3, 'error', 'ok') AS status, toUInt8(intDiv(h, 13) %% 100 >= 8),
  toInt64(400 + intDiv(h, 17) %% 9000) AS lat, 0.01 * (1 + intDiv(h, 11) %% 5), toUInt16(1),
  toUInt8(k %% %[5]d = 0) AS smp, if(smp = 1, '%[6]s', ''),
  toUInt8(intDiv(h, 19) %% 100 < 4), toUInt8(intDiv(h, 23) %% 100 < 2), toUInt8(intDiv(h, 29) %% 3 = 0),
  if(intDiv(h, 31) %% 10 < 3, ['exp-bench'], emptyArrayString()),
  if(intDiv(h, 31) %% 10 < 3, [if(h %% 2 = 0, 'control', 'treatment')], emptyArrayString()),
  if(intDiv(h, 31) %% 10 < 3, [toInt32(1)], emptyArrayInt32()),
  if(intDiv(h, 31) %% 10 < 3, ['routing'], emptyArrayString()),
  if(intDiv(h, 31) %% 10 < 3, [concat('user-', toString(h %% 50000))], emptyArrayString()),
  if(intDiv(h, 31) %% 10 < 3, [toInt32(h %% 10000)], emptyArrayInt32()),
  if(intDiv(h, 37) %% 100 < 5, [model, model], [model]),
  if(intDiv(h, 37) %% 100 < 5, ['sim', 'sim'], ['sim']),
  if(intDiv(h, 37) %% 100 < 5, ['error', status], [status]),
  if(intDiv(h, 37) %% 100 < 5, [toInt64(300), lat], [lat])
FROM (SELECT number + %[7]d AS k, cityHash64(number + %[7]d, %[8]d) AS h FROM system.numbers LIMIT %[9]d)`,
			db, start, spanSec, g.Rows, every, g.BlobKey, off, g.Seed, n)
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("generate rows %d..%d: %w", off, off+n, err)
		}
	}
	return nil
}
