// Package jobs is routelab's offline jobs process: it closes the loop from
// logged outcomes back to the routing policy. Every job reads through the
// source interfaces of source.go, in the jobs' terms (calibration bins,
// sampled rows, counts, profiles, rates); jobs/chsource implements them on
// ClickHouse (aggregations pushed into ClickHouse; Go receives bins and
// samples), jobs/memsource on events held in memory (the lab, tests). A job
// writes a JSON report and an audit event, and can run once or on a
// schedule (cmd/routelab jobs NAME [--every D]). The policy math (isotonic
// fit, threshold search, rule audit, the pick rule they replay) is
// router's; the jobs call it.
//
//   - labels (labels.go): the one configurable definition of success,
//     joined in ClickHouse by chsource, evaluated per request by memsource;
//   - recalibrate (recalibrate.go, candidate.go): per-model isotonic maps
//     on the live policy's calibrated P, inverse-propensity weighted, with
//     ECE/Brier before and after on held-out rows, the rule audit and tier
//     thresholds re-chosen on the cost/success frontier; writes a candidate
//     policy carrying its parent version, window and metrics;
//   - ope (ope.go): the candidate replayed on the live policy's logged
//     decisions, IPS/SNIPS/DR with bootstrap intervals (experiments/ope);
//   - drift (drift.go): the live policy's reference distributions against
//     the window (PSI, KS, chi-square, route share) and CUSUMs on outcome
//     rates (evaluator/drift);
//   - pipeline: recalibrate -> OPE gate -> drift check -> canary -> push
//     (RunPipeline, on any Source);
//   - canary (canary.go): the pipeline's canary through the admin API
//     (ExperimentControl: stage, experiment, ramp, rollback) and ClickHouse
//     (CanaryReader), never making the candidate live itself;
//   - analyze (monitor.go): the guardrail monitor, also run by routelab dev;
//   - policy eval (evalpolicy.go): a policy against the baselines in the
//     simulated world;
//   - schedule.go: once or --every D, each run's report file, audit row and
//     JSON line;
//
// The lab's scenarios (lab/scenario) run RunPipeline on jobs/memsource in
// process against the simulated world; jobs itself knows nothing of the
// lab.
package jobs
