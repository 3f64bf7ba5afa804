-- Event tables, one per event type. Portable across ClickHouse 18.16 and
-- current releases: no DateTime64, Map, LowCardinality, TTL or window
-- functions; time is ts (DateTime, seconds) plus ts_ms (UInt64, Unix ms);
-- booleans are UInt8; lists are parallel arrays so analysis can ARRAY JOIN.
-- ReplacingMergeTree keyed with event_id last: a redelivered event collapses
-- into one row at merge time, and queries that must be exact use FINAL.
-- ${db} is replaced by the target database name.

CREATE TABLE IF NOT EXISTS ${db}.decisions (
    event_id String,
    schema_version UInt16,
    request_id String,
    tenant String,
    ts DateTime,
    ts_ms UInt64,
    unit String,
    mode String,
    tier String,
    prompt String,
    parent_id String,
    model String,
    provider String,
    policy_version String,
    rule String,
    propensity Float64,
    explored UInt8,
    reset UInt8,
    escalated UInt8,
    fallback UInt8,
    status String,
    error_code String,
    qa_pass UInt8,
    latency_ms Int64,
    cost_usd Float64,
    images UInt16,
    sampled UInt8,
    blob_key String,
    prompt_len UInt32,
    ref_count UInt16,
    edit_depth UInt16,
    aspect Float64,
    text_heavy UInt8,
    preserve_subject UInt8,
    keywords Array(String),
    max_latency_ms Int64,
    max_cost_usd Float64,
    hashed_grams Array(UInt32),
    candidate_models Array(String),
    candidate_p Array(Float64),
    candidate_cost_usd Array(Float64),
    candidate_eligible Array(UInt8),
    candidate_reasons Array(String),
    arm_experiments Array(String),
    arm_names Array(String),
    arm_layers Array(String),
    arm_phases Array(Int32),
    arm_units Array(String),
    arm_buckets Array(Int32),
    attempt_models Array(String),
    attempt_providers Array(String),
    attempt_statuses Array(String),
    attempt_latency_ms Array(Int64),
    attempt_cost_usd Array(Float64),
    attempt_errors Array(String),
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), model, ts, event_id);

CREATE TABLE IF NOT EXISTS ${db}.qa_results (
    event_id String,
    schema_version UInt16,
    request_id String,
    tenant String,
    ts DateTime,
    ts_ms UInt64,
    model String,
    attempt Int32,
    pass UInt8,
    score Float64,
    check_names Array(String),
    check_pass Array(UInt8),
    check_values Array(Float64),
    reason String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), model, ts, event_id);

CREATE TABLE IF NOT EXISTS ${db}.signals (
    event_id String,
    schema_version UInt16,
    request_id String,
    tenant String,
    ts DateTime,
    ts_ms UInt64,
    signal String,
    value Float64,
    comment String,
    user String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), signal, ts, event_id);

CREATE TABLE IF NOT EXISTS ${db}.reviews (
    event_id String,
    schema_version UInt16,
    request_id String,
    tenant String,
    ts DateTime,
    ts_ms UInt64,
    kind String,
    reviewer String,
    rubric String,
    model String,
    arm String,
    score_names Array(String),
    score_values Array(Float64),
    overlap UInt8,
    other_request_id String,
    other_model String,
    preference String,
    comment String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), model, ts, event_id);

CREATE TABLE IF NOT EXISTS ${db}.audit (
    event_id String,
    schema_version UInt16,
    request_id String,
    tenant String,
    ts DateTime,
    ts_ms UInt64,
    action String,
    subject String,
    actor String,
    body String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), action, ts, event_id);
