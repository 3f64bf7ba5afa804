-- Where each attempt's cost came from (events.Attempt CostSource): "usage"
-- when the vendor reported token usage and the cost was computed from it,
-- "catalog" when from the catalog's price per image. Parallel to
-- attempt_cost_usd; empty on rows from before this column.
-- Re-running is harmless: a duplicate column is "already done" (18.16 has
-- no ADD COLUMN IF NOT EXISTS). Portable across 18.16 and current releases.

ALTER TABLE ${db}.decisions ADD COLUMN attempt_cost_sources Array(String) AFTER sample_rate
