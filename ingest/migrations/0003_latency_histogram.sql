-- Latency percentiles for the dashboards from an hourly log histogram:
-- merging t-digest states (0002's latency column) over a week of hours is
-- too slow for a page at 10M decisions; summing sparse histograms is not.
-- Bucket b holds latencies in [2^(b/8), 2^((b+1)/8)) ms, about 9% wide, so
-- a percentile read at the bucket's geometric middle is within ~4.5%.
-- Portable across ClickHouse 18.16 and current releases.

CREATE TABLE IF NOT EXISTS ${db}.latency_hourly (
    hour DateTime,
    tenant String,
    model String,
    experiments String,
    status String,
    hist AggregateFunction(sumMap, Array(UInt16), Array(UInt64))
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, tenant, model, experiments, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.latency_hourly_mv TO ${db}.latency_hourly AS
SELECT toStartOfHour(ts) AS hour, tenant, model, arrayStringConcat(arraySort(arm_experiments), ',') AS experiments, status,
    sumMapState([toUInt16(floor(log2(greatest(latency_ms, 1)) * 8))], [toUInt64(1)]) AS hist
FROM ${db}.decisions
GROUP BY hour, tenant, model, experiments, status;
