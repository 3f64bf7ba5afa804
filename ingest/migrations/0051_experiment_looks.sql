-- Looks at experiment results: the always-valid (mSPRT) p-value and
-- interval of every treatment metric each time an analysis is read
-- (routelab experiments results). The p-value reported at a look is the
-- running minimum over the phase's looks, the interval the running
-- intersection (experiments.Report.ApplyLooks); experiments/clickhouse
-- reads and appends these rows. alpha is kept because the interval depends
-- on it: looks at another alpha are not combined.

CREATE TABLE IF NOT EXISTS ${db}.experiment_looks (
    experiment String,
    phase Int32,
    arm String,
    metric String,
    alpha Float64,
    ts_ms UInt64,
    p_value Float64,
    ci_low Float64,
    ci_high Float64
) ENGINE = MergeTree()
PARTITION BY tuple()
ORDER BY (experiment, phase, arm, metric, ts_ms);
