-- Per-unit experiment aggregates, kept up to date by materialized views on
-- decisions, so an experiment's analysis reads one row per (arm, unit, day)
-- instead of every decision (experiments/clickhouse reads them). The views
-- see rows as they are inserted: a decision delivered twice is counted
-- twice here (the analysis's --exact mode reads decisions with FINAL
-- instead), and decisions inserted before this migration are not included.
-- The quantile levels must match experiments.LatencyLevels().

CREATE TABLE IF NOT EXISTS ${db}.experiment_units (
    experiment String,
    phase Int32,
    arm String,
    unit_hash UInt64,
    day Date,
    requests UInt64,
    succ UInt64,
    qap UInt64,
    qaf UInt64,
    err UInt64,
    esc UInt64,
    latency_ms Int64,
    cost_usd Float64,
    images UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (experiment, phase, arm, unit_hash, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.experiment_units_mv TO ${db}.experiment_units AS
SELECT
    experiment, phase, arm, cityHash64(arm_unit) AS unit_hash, toDate(ts) AS day,
    count() AS requests,
    sum(status = 'ok' AND qa_pass = 1) AS succ,
    sum(qa_pass = 1) AS qap,
    sum(status = 'ok' AND qa_pass = 0) AS qaf,
    sum(status != 'ok') AS err,
    sum(escalated = 1) AS esc,
    sum(latency_ms) AS latency_ms,
    sum(cost_usd) AS cost_usd,
    sum(toUInt64(images)) AS images
FROM ${db}.decisions
ARRAY JOIN arm_experiments AS experiment, arm_phases AS phase, arm_names AS arm, arm_units AS arm_unit
GROUP BY experiment, phase, arm, unit_hash, day;

CREATE TABLE IF NOT EXISTS ${db}.experiment_latency (
    experiment String,
    phase Int32,
    arm String,
    day Date,
    q AggregateFunction(quantilesTDigest(0.3, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.38, 0.39, 0.4, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57, 0.58, 0.59, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7, 0.85, 0.855, 0.86, 0.865, 0.87, 0.875, 0.88, 0.885, 0.89, 0.895, 0.9, 0.905, 0.91, 0.915, 0.92, 0.925, 0.93, 0.935, 0.94, 0.945, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995), Float64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (experiment, phase, arm, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.experiment_latency_mv TO ${db}.experiment_latency AS
SELECT experiment, phase, arm, toDate(ts) AS day,
    quantilesTDigestState(0.3, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.38, 0.39, 0.4, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57, 0.58, 0.59, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7, 0.85, 0.855, 0.86, 0.865, 0.87, 0.875, 0.88, 0.885, 0.89, 0.895, 0.9, 0.905, 0.91, 0.915, 0.92, 0.925, 0.93, 0.935, 0.94, 0.945, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995)(toFloat64(latency_ms)) AS q
FROM ${db}.decisions
ARRAY JOIN arm_experiments AS experiment, arm_phases AS phase, arm_names AS arm
GROUP BY experiment, phase, arm, day;
