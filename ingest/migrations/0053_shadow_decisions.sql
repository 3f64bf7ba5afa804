-- Shadow traffic (experiments.KindShadow): a mirror of a live request,
-- served after the live response and never returned, is a decision (and QA
-- results) with shadow = 1 and the live request's id. The dashboards'
-- rollups count live traffic only, so their views are re-created with
-- shadow = 0 (18.16 cannot alter a view's query; inserts between the drop
-- and the create would miss the rollups, so run ingest's migrations before
-- it consumes). Re-running is harmless: a duplicate column is "already
-- done", and the views are dropped before they are created.
-- Portable across 18.16 and current releases.

ALTER TABLE ${db}.decisions ADD COLUMN shadow UInt8 AFTER attempt_errors;
ALTER TABLE ${db}.decisions ADD COLUMN live_request_id String AFTER shadow;
ALTER TABLE ${db}.qa_results ADD COLUMN shadow UInt8 AFTER reason;
ALTER TABLE ${db}.qa_results ADD COLUMN live_request_id String AFTER shadow;

DROP TABLE IF EXISTS ${db}.decisions_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.decisions_hourly_mv TO ${db}.decisions_hourly AS
SELECT toStartOfHour(ts) AS hour, tenant, model, arrayStringConcat(arraySort(arm_experiments), ',') AS experiments, status,
    countState() AS requests,
    sumState(toUInt64(qa_pass = 0)) AS qa_fail,
    sumState(toUInt64(length(attempt_models) > 1)) AS retried,
    sumState(toUInt64(escalated)) AS escalated,
    sumState(toUInt64(fallback)) AS fallback,
    sumState(cost_usd) AS cost,
    sumState(toUInt64(images)) AS images,
    quantilesTDigestState(0.5, 0.95)(latency_ms) AS latency
FROM ${db}.decisions
WHERE shadow = 0
GROUP BY hour, tenant, model, experiments, status;

DROP TABLE IF EXISTS ${db}.attempts_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.attempts_hourly_mv TO ${db}.attempts_hourly AS
SELECT toStartOfHour(ts) AS hour, tenant, p AS provider, arrayStringConcat(arraySort(arm_experiments), ',') AS experiments,
    countState() AS attempts,
    sumState(toUInt64(st != 'ok')) AS failed
FROM ${db}.decisions
ARRAY JOIN attempt_providers AS p, attempt_statuses AS st
WHERE shadow = 0
GROUP BY hour, tenant, provider, experiments;

DROP TABLE IF EXISTS ${db}.latency_timing_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.latency_timing_mv TO ${db}.latency_timing AS
SELECT toStartOfHour(ts) AS hour, tenant, model, arrayStringConcat(arraySort(arm_experiments), ',') AS experiments, status,
    quantilesTimingState(0.5, 0.95)(latency_ms) AS latency
FROM ${db}.decisions
WHERE shadow = 0
GROUP BY hour, tenant, model, experiments, status
