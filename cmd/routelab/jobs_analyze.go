package main

import (
	"context"
	"fmt"
	"time"

	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
)

func runJobsAnalyze(ctx context.Context, env Env, args []string) error {
	f := newJobFlags("analyze", `Analyse every running experiment (or --experiment ID) from ClickHouse, as
`+"`routelab experiments results`"+` does, and act as the guardrail monitor: a breached guardrail
rolls the experiment back (stopped, rolled_back, with the reason); a canary whose step has
lasted its min_duration with min_units per arm and guardrails within limits advances to its
next ramp step. Changes go through the admin API, which writes them to the experiments topic
and audits them (ClickHouse audit table: canary.rollback, experiment.ramp); every run also
writes a jobs.analyze audit row with the reports. Run it on a schedule with --every 30s.
The --window/--from/--to flags are not used: each experiment is analysed over its current
phase.`, env)
	only := f.fs.String("experiment", "", "analyse only this experiment")
	dryRun := f.fs.Bool("dry-run", false, "report what the monitor would do without ramping or rolling back")
	alpha := f.fs.Float64("alpha", 0.05, "significance level of the reports")
	if err := f.parse(env, args); err != nil {
		return err
	}
	if !(*alpha > 0 && *alpha < 0.5) {
		return fmt.Errorf("--alpha must be in (0, 0.5)")
	}
	adm, err := f.admin()
	if err != nil {
		return err
	}
	s, closeFn, err := f.store(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	reader := chexp.NewReader(s.Conn, s.DB)
	reader.Exact = f.final
	m := &jobs.Monitor{Control: adm, Reader: reader, Alpha: *alpha, DryRun: *dryRun, Progress: stderrProgress(env), Now: time.Now}
	return f.schedule(ctx, env, "analyze", func(ctx context.Context, _ jobs.Window) (any, string, error) {
		rep, err := m.Analyze(ctx, *only)
		if err != nil {
			return nil, "", err
		}
		subject := *only
		if subject == "" {
			subject = "running"
		}
		return rep, subject, nil
	}, s.Audit)
}
