-- Hourly rollups of decisions for the console's dashboards (dashboards/):
-- with millions of decisions a dashboard must not scan them on every page.
-- Materialized views fill the rollups as ingest inserts; the dashboards
-- merge the aggregate states. Keys use experiments as a sorted,
-- comma-joined string (no Array in the sorting key on 18.16). Rollups count
-- a redelivered decision twice (ingest is at-least-once), so they are
-- approximate under redelivery; exact figures read decisions FINAL.
-- Portable across ClickHouse 18.16 and current releases.

CREATE TABLE IF NOT EXISTS ${db}.decisions_hourly (
    hour DateTime,
    tenant String,
    model String,
    experiments String,
    status String,
    requests AggregateFunction(count),
    qa_fail AggregateFunction(sum, UInt64),
    retried AggregateFunction(sum, UInt64),
    escalated AggregateFunction(sum, UInt64),
    fallback AggregateFunction(sum, UInt64),
    cost AggregateFunction(sum, Float64),
    images AggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95), Int64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, tenant, model, experiments, status);

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
GROUP BY hour, tenant, model, experiments, status;

CREATE TABLE IF NOT EXISTS ${db}.attempts_hourly (
    hour DateTime,
    tenant String,
    provider String,
    experiments String,
    attempts AggregateFunction(count),
    failed AggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, tenant, provider, experiments);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.attempts_hourly_mv TO ${db}.attempts_hourly AS
SELECT toStartOfHour(ts) AS hour, tenant, p AS provider, arrayStringConcat(arraySort(arm_experiments), ',') AS experiments,
    countState() AS attempts,
    sumState(toUInt64(st != 'ok')) AS failed
FROM ${db}.decisions
ARRAY JOIN attempt_providers AS p, attempt_statuses AS st
GROUP BY hour, tenant, provider, experiments;
