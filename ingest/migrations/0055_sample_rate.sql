-- The probability a sampled output was drawn for review with (events.Decision
-- SampleRate): its stratum's rate, raised for failure audits (QA failures,
-- escalations, resets). Review estimates weight an output by its inverse; 0
-- on rows from before this column (read as the stratum's unboosted rate).
-- Re-running is harmless: a duplicate column is "already done" (18.16 has
-- no ADD COLUMN IF NOT EXISTS). Portable across 18.16 and current releases.

ALTER TABLE ${db}.decisions ADD COLUMN sample_rate Float64 AFTER live_request_id
