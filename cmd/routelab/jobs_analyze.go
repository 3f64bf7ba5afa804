package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
)

// analyzeEntry is one experiment in the analyze job's report.
type analyzeEntry struct {
	Experiment string              `json:"experiment"`
	Verdict    experiments.Verdict `json:"verdict"`
	Applied    bool                `json:"applied"` // the ramp or rollback was written
	Error      string              `json:"error,omitempty"`
	Report     experiments.Report  `json:"report"`
}

// analyzeReport is the analyze job's report.
type analyzeReport struct {
	At          int64          `json:"at_ms"`
	Experiments []analyzeEntry `json:"experiments"`
	ElapsedMS   int64          `json:"elapsed_ms"`
}

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
	progress := stderrProgress(env)
	return f.schedule(ctx, env, "analyze", func(ctx context.Context, _ jobs.Window) (any, string, error) {
		start := time.Now()
		var specs []experiments.Spec
		if *only != "" {
			var sp experiments.Spec
			if err := adm.do(ctx, http.MethodGet, "/admin/experiments/"+url.PathEscape(*only), nil, &sp); err != nil {
				return nil, "", err
			}
			specs = append(specs, sp)
		} else {
			var out struct {
				Experiments []experiments.Spec `json:"experiments"`
			}
			if err := adm.do(ctx, http.MethodGet, "/admin/experiments?status=running", nil, &out); err != nil {
				return nil, "", err
			}
			specs = out.Experiments
		}
		rep := analyzeReport{At: start.UnixMilli()}
		for _, sp := range specs {
			e := monitorOne(ctx, reader, adm, sp, *alpha, *dryRun, progress)
			rep.Experiments = append(rep.Experiments, e)
		}
		rep.ElapsedMS = time.Since(start).Milliseconds()
		progress("analyze: %d experiments in %d ms", len(rep.Experiments), rep.ElapsedMS)
		subject := *only
		if subject == "" {
			subject = "running"
		}
		return rep, subject, nil
	}, s.Audit)
}

// monitorOne analyses one experiment and applies the monitor's verdict.
func monitorOne(ctx context.Context, reader *chexp.Reader, adm *admin, sp experiments.Spec, alpha float64, dryRun bool, progress func(string, ...any)) analyzeEntry {
	e := analyzeEntry{Experiment: sp.ID}
	t := time.Now()
	data, err := reader.Arms(ctx, sp)
	if err != nil {
		e.Error = err.Error()
		progress("analyze: %s: %v", sp.ID, err)
		return e
	}
	e.Report = experiments.Analyze(sp, data, alpha)
	e.Report.QueryMS = time.Since(t).Milliseconds()
	// Each judgement is a look at the data: its always-valid results join
	// the running ones experiments results reports (a dry run records
	// nothing). Judge does not read them, so a failure here only loses the
	// look.
	if err := reader.Look(ctx, sp, alpha, &e.Report, !dryRun, time.Now()); err != nil {
		progress("analyze: %s: looks: %v", sp.ID, err)
	}
	e.Verdict = experiments.Judge(sp, e.Report, time.Now())
	progress("analyze: %s: %.0f units, srm p %.3g: %s (%s)", sp.ID, e.Report.Units, e.Report.SRMPValue, e.Verdict.Action, e.Verdict.Reason)
	if dryRun || e.Verdict.Action == experiments.ActionHold {
		return e
	}
	path := "/admin/experiments/" + url.PathEscape(sp.ID) + "/"
	body := map[string]any{"reason": e.Verdict.Reason}
	switch e.Verdict.Action {
	case experiments.ActionAdvance:
		path += "ramp"
		body["traffic"] = e.Verdict.Next
	case experiments.ActionRollback:
		path += "rollback"
	}
	b, _ := json.Marshal(body)
	var after experiments.Spec
	if err := adm.do(ctx, http.MethodPost, path, b, &after); err != nil {
		e.Error = err.Error()
		progress("analyze: %s: %s failed: %v", sp.ID, e.Verdict.Action, err)
		return e
	}
	e.Applied = true
	progress("analyze: %s: %s applied: status %s, traffic %g", sp.ID, e.Verdict.Action, after.Status, after.Traffic)
	return e
}
