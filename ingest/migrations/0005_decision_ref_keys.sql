-- The blob keys of a sampled edit's reference images (events.Decision
-- RefKeys), so the review UI shows the reference next to the output.
-- Re-running is harmless: a duplicate column is "already done" (18.16 has
-- no ADD COLUMN IF NOT EXISTS). Portable across 18.16 and current releases.

ALTER TABLE ${db}.decisions ADD COLUMN ref_keys Array(String) AFTER blob_key
