-- The propensity of each experiment arm a decision was assigned to (the
-- bandit's weight in force, events.Arm Propensity; 0 for fixed splits) and
-- the bandit's stratum, so a bandit experiment is analysed by inverse
-- propensity (experiments.AnalyzeBandit). Re-running is harmless: a
-- duplicate column is "already done" (18.16 has no ADD COLUMN IF NOT
-- EXISTS). Portable across 18.16 and current releases.

ALTER TABLE ${db}.decisions ADD COLUMN arm_propensities Array(Float64) AFTER arm_buckets;
ALTER TABLE ${db}.decisions ADD COLUMN arm_strata Array(String) AFTER arm_propensities
