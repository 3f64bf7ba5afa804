package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/events"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server/client"
)

// jobsCommands are the subcommands of `routelab jobs`. Other parts add
// their job here with one line (its run function in its own file).
func jobsCommands() map[string]command {
	return map[string]command{
		"recalibrate": {"recalibrate the live policy on logged outcomes; write a candidate policy", runJobsRecalibrate},
		"drift":       {"check live traffic and outcome rates against the live policy's reference", runJobsDrift},
		"ope":         {"off-policy evaluation of a candidate policy on the live policy's logged decisions", runJobsOPE},
		"analyze":     {"analyse running experiments; guardrail monitor: advance canary ramps, roll back on breach", runJobsAnalyze},
		"pipeline":    {"recalibrate -> OPE gate -> drift check -> canary -> push, or stop with the reason", runJobsPipeline},
	}
}

func runJobs(ctx context.Context, env Env, args []string) error {
	return group{Intro: `routelab jobs: the offline jobs. Each reads ClickHouse, writes a JSON report (and an audit
row in ClickHouse), prints progress on stderr, and runs once or, with --every D, on a schedule.

Usage: routelab jobs COMMAND [flags]   (COMMAND --help for its flags)

Commands:`, Width: 12, Help: true, NoArgs: errors.New("jobs: no subcommand given"),
		Unknown: "unknown jobs command %q", UsageOnUnknown: true, Subs: jobsCommands()}.run(ctx, env, args)
}

// jobFlags are the flags every job shares.
type jobFlags struct {
	fs          *pflag.FlagSet
	dsn         string
	dataDir     string
	policy      string
	adminURL    string
	adminToken  string
	window      time.Duration
	from, to    string
	every       time.Duration
	asJSON      bool
	reportDir   string
	noAudit     bool
	final       bool
	failSignals []string
	reviewScore string
	minReview   float64
	noQA        bool
}

func newJobFlags(name, description string, env Env) *jobFlags {
	f := &jobFlags{fs: newFlagSet("jobs "+name, description)}
	fs := f.fs
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.dsn, "clickhouse-dsn", "", "ClickHouse DSN, clickhouse://host:port/db (env ROUTELAB_CLICKHOUSE_DSN; default from dev.json under --data-dir, else "+ingest.DefaultDSN+")")
	fs.StringVar(&f.dataDir, "data-dir", "./.routelab", "routelab dev data dir: dev.json is read from it, reports are written under it (env ROUTELAB_DATA_DIR)")
	fs.StringVar(&f.policy, "policy", "", "live policy JSON file (default: GET /admin/policy on the admin API)")
	fs.StringVar(&f.adminURL, "admin-url", "", "admin API base URL (env ROUTELAB_ADMIN_URL; default from dev.json)")
	fs.StringVar(&f.adminToken, "admin-token", "", "admin token (env ROUTELAB_ADMIN_TOKEN; default from dev.json)")
	fs.DurationVar(&f.window, "window", 24*time.Hour, "the window is the last D before --to")
	fs.StringVar(&f.from, "from", "", "window start (RFC 3339 or Unix ms); overrides --window")
	fs.StringVar(&f.to, "to", "", "window end (RFC 3339 or Unix ms; default now)")
	fs.DurationVar(&f.every, "every", 0, "run again every D until interrupted (0: once)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as one JSON object on stdout's last line")
	fs.StringVar(&f.reportDir, "report-dir", "", "directory for the JSON reports (default DATA-DIR/reports)")
	fs.BoolVar(&f.noAudit, "no-audit", false, "do not write the report into ClickHouse's audit table")
	fs.BoolVar(&f.final, "clickhouse-final", false, "read decisions with FINAL (exact under redelivered duplicates, slower)")
	d := jobs.DefaultLabels()
	fs.StringSliceVar(&f.failSignals, "label-fail-signals", d.FailSignals, "user signals that make a request a failure")
	fs.StringVar(&f.reviewScore, "label-review-score", d.ReviewScore, "rubric score a human review must reach (empty: ignore reviews)")
	fs.Float64Var(&f.minReview, "label-min-review-score", d.MinReviewScore, "the mean review score at or above which a reviewed request counts as a success")
	fs.BoolVar(&f.noQA, "label-ignore-qa", false, "do not require the automated QA pass")
	return f
}

func (f *jobFlags) parse(env Env, args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	envDefault(f.fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(f.fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE_DSN")
	envDefault(f.fs, env, "admin-url", "ROUTELAB_ADMIN_URL")
	envDefault(f.fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	if f.reportDir == "" {
		f.reportDir = filepath.Join(f.dataDir, "reports")
	}
	return nil
}

func (f *jobFlags) labels() jobs.Labels {
	return jobs.Labels{RequireQA: !f.noQA, FailSignals: f.failSignals, ReviewScore: f.reviewScore, MinReviewScore: f.minReview}
}

// windowAt is the window ending at now (or --to).
func (f *jobFlags) windowAt(now time.Time) (jobs.Window, error) {
	to := now
	if f.to != "" {
		t, err := parseTime(f.to)
		if err != nil {
			return jobs.Window{}, fmt.Errorf("--to: %w", err)
		}
		to = t
	}
	from := to.Add(-f.window)
	if f.from != "" {
		t, err := parseTime(f.from)
		if err != nil {
			return jobs.Window{}, fmt.Errorf("--from: %w", err)
		}
		from = t
	}
	if !from.Before(to) {
		return jobs.Window{}, fmt.Errorf("empty window: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return jobs.Window{From: from, To: to}, nil
}

func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339, s)
}

// store opens ClickHouse.
func (f *jobFlags) store(ctx context.Context, env Env) (*chsource.Store, func(), error) {
	lab := f.labels()
	if err := lab.Validate(); err != nil {
		return nil, nil, err
	}
	dsn := f.dsn
	if dsn == "" {
		d, _ := devstack.ReadInfo(f.dataDir) // absent: ingest.Open's default
		dsn = d.ClickHouseDSN()
	}
	conn, db, err := ingest.Open(ctx, dsn)
	if err != nil {
		if dsn == "" {
			return nil, nil, fmt.Errorf("%w (no dev.json under --data-dir %s: pass --clickhouse-dsn, set ROUTELAB_CLICKHOUSE_DSN, or point --data-dir / ROUTELAB_DATA_DIR at a routelab dev data dir)", err, f.dataDir)
		}
		return nil, nil, err
	}
	shown := dsn
	if shown == "" {
		shown = ingest.DefaultDSN
	}
	fmt.Fprintf(env.Stderr, "jobs: clickhouse %s database %s\n", maskDSN(shown), db)
	return &chsource.Store{Conn: conn, DB: db, Labels: lab, Final: f.final}, func() { conn.Close() }, nil
}

// cliActor names the person running a CLI command in audit events.
func cliActor(env Env, tool string) string {
	if u := env.Getenv("USER"); u != "" {
		return tool + ":" + u
	}
	return tool
}

func (f *jobFlags) admin() (*client.Admin, error) {
	u, tok, err := resolveAdmin(f.adminURL, f.adminToken, f.dataDir)
	if err != nil {
		return nil, err
	}
	if u == "" {
		return nil, errors.New(noAdminHelp + ", or give --policy FILE")
	}
	return client.New(u, tok, "jobs"), nil
}

// livePolicy loads the live policy from --policy or the admin API.
func (f *jobFlags) livePolicy(ctx context.Context) (*router.Policy, error) {
	if f.policy != "" {
		return datasets.LoadPolicy(f.policy)
	}
	a, err := f.admin()
	if err != nil {
		return nil, err
	}
	return a.Policy(ctx)
}

// schedule runs job once, or on the --every schedule until ctx ends (see
// jobs.Schedule); audit nil or --no-audit writes no audit row.
func (f *jobFlags) schedule(ctx context.Context, env Env, name string, job jobs.Job, audit func(ctx context.Context, a events.Audit) error) error {
	s := jobs.Schedule{Every: f.every, ReportDir: f.reportDir, Window: f.windowAt, Log: env.Stderr, Now: time.Now}
	if !f.noAudit {
		s.Audit = audit
	}
	if f.asJSON {
		s.JSON = env.Stdout
	}
	return s.Run(ctx, name, job)
}

func runJobsRecalibrate(ctx context.Context, env Env, args []string) error {
	f := newJobFlags("recalibrate", `Recalibrate the live policy on the window's logged outcomes: per model, an isotonic map from
the logged calibrated P to the observed success (inverse-propensity weighted, aggregated in
ClickHouse over every decision of the live policy), ECE and Brier before/after on the held-out
fifth, a rule audit and the tier thresholds re-chosen on the cost/success frontier (on a hash
sample of rows). Writes the candidate policy (parent version, window and metrics inside) to --out.
Labels: see --label-* (default: QA pass, no thumbs_down/regenerate, mean human "overall" >= 3).`, env)
	out := f.fs.String("out", "", "candidate policy file (default DATA-DIR/policies/candidate.json)")
	refit := f.fs.Bool("refit", false, "train a new classifier on the window (router training, inverse-propensity weighted) instead of recalibrating the live one; automatic when the live policy has none")
	rowLimit := f.fs.Int("row-limit", 50000, "rows sampled for the rule audit and the thresholds")
	if err := f.parse(env, args); err != nil {
		return err
	}
	if *out == "" {
		*out = f.candidatePath()
	}
	s, closeFn, err := f.store(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	progress := stderrProgress(env)
	return f.schedule(ctx, env, "recalibrate", func(ctx context.Context, w jobs.Window) (any, string, error) {
		live, err := f.livePolicy(ctx)
		if err != nil {
			return nil, "", err
		}
		cand, rep, err := jobs.RunRecalibrate(ctx, s, live, w, jobs.RecalibrateJob{RowLimit: *rowLimit, Refit: *refit}, progress)
		if err != nil {
			return nil, "", err
		}
		if err := datasets.WritePolicy(*out, cand); err != nil {
			return nil, "", err
		}
		rep.Out = *out
		progress("recalibrate: candidate %s (parent %s) written to %s; ECE %.4f -> %.4f", rep.PolicyVersion, rep.Parent, *out, rep.ECEBefore, rep.ECEAfter)
		return rep, rep.PolicyVersion, nil
	}, s.Audit)
}

func runJobsOPE(ctx context.Context, env Env, args []string) error {
	f := newJobFlags("ope", `Off-policy evaluation of a candidate policy on the live policy's logged decisions in the window
(the held-out fifth recalibration does not fit on): each logged request is replayed under the
candidate; IPS, self-normalised IPS and doubly robust estimates (the candidate's own calibrated P
as the reward model) of its success rate, with seeded bootstrap intervals and the effective sample
size. Refuses, with the reason, where propensities are missing or the logged data does not
support the candidate. The gate passes when DR >= the live policy's observed success - --margin.`, env)
	candPath := f.fs.String("candidate", "", "candidate policy file (default DATA-DIR/policies/candidate.json)")
	margin := f.fs.Float64("margin", 0.01, "how far below the live policy's success the candidate's DR may be")
	boot := f.fs.Int("bootstrap", 500, "bootstrap resamples")
	seed := f.fs.Uint64("seed", 1, "bootstrap seed")
	limit := f.fs.Int("limit", 50000, "held-out decisions replayed at most (a hash sample)")
	if err := f.parse(env, args); err != nil {
		return err
	}
	if *candPath == "" {
		*candPath = f.candidatePath()
	}
	s, closeFn, err := f.store(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	progress := stderrProgress(env)
	return f.schedule(ctx, env, "ope", func(ctx context.Context, w jobs.Window) (any, string, error) {
		live, err := f.livePolicy(ctx)
		if err != nil {
			return nil, "", err
		}
		cand, err := datasets.LoadPolicy(*candPath)
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("no candidate policy at %s: run `routelab jobs recalibrate` first (it writes one there) or pass --candidate FILE", *candPath)
		}
		if err != nil {
			return nil, "", err
		}
		rep, err := jobs.RunOPE(ctx, s, cand, live, w, jobs.OPEJob{Limit: *limit, OPE: jobs.OPEOptions{Margin: *margin, Options: ope.Options{Bootstrap: *boot, Seed: *seed}}}, progress)
		if err != nil {
			return nil, "", err
		}
		progress("ope: %s on %d decisions: ips %.4f snips %.4f dr %.4f [%.4f, %.4f] ess %.0f; live %.4f; pass %v %s",
			cand.Version, rep.N, rep.IPS.Value, rep.SNIPS.Value, rep.DR.Value, rep.DR.CILow, rep.DR.CIHigh, rep.ESS, rep.LiveValue, rep.Pass, rep.Reason)
		return rep, cand.Version, nil
	}, s.Audit)
}

func runJobsDrift(ctx context.Context, env Env, args []string) error {
	f := newJobFlags("drift", `Check the window against the live policy's reference distributions, with the histograms and
counts computed in ClickHouse: PSI and binned KS on numeric features, chi-square (Cramér's V)
on categorical ones, the route-share shift (total variation; baseline: the live policy's own
decisions before the window), and Bernoulli CUSUMs over time buckets on the QA-fail,
escalation, slow-latency and thumbs-down rates (baseline: the policy's training window, else
the window's first quarter). A check breaches on an effect size over its threshold, with at
least --drift-min-count observations per side (and, for KS/chi-square, p < --drift-alpha).
A breach writes a jobs.drift.breach audit row (the dashboards mark it) and POSTs the report
to --webhook.`, env)
	var th drift.Thresholds
	th = th.Defaults()
	var cc drift.CUSUMConfig
	cc = cc.Defaults()
	f.fs.Float64Var(&th.PSI, "drift-psi", th.PSI, "PSI at which a feature breaches")
	f.fs.Float64Var(&th.KS, "drift-ks", th.KS, "KS statistic D at which a numeric feature breaches")
	f.fs.Float64Var(&th.CramersV, "drift-cramers-v", th.CramersV, "Cramér's V at which a categorical feature breaches")
	f.fs.Float64Var(&th.RouteShareTV, "drift-route-tv", th.RouteShareTV, "total-variation distance of route shares at which the route share breaches")
	f.fs.Float64Var(&th.MinCount, "drift-min-count", th.MinCount, "fewest observations per side for a check to run")
	f.fs.Float64Var(&th.Alpha, "drift-alpha", th.Alpha, "p-value KS/chi-square must also fall below")
	f.fs.Float64Var(&cc.H, "cusum-h", cc.H, "CUSUM alarm threshold (log-likelihood ratio)")
	f.fs.Float64Var(&cc.Shift, "cusum-shift", cc.Shift, "relative rise of a rate the CUSUM is tuned to")
	step := f.fs.Duration("cusum-step", time.Minute, "time bucket of the rate streams")
	webhook := f.fs.String("webhook", "", "URL to POST the report to on a breach")
	if err := f.parse(env, args); err != nil {
		return err
	}
	s, closeFn, err := f.store(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	progress := stderrProgress(env)
	return f.schedule(ctx, env, "drift", func(ctx context.Context, w jobs.Window) (any, string, error) {
		live, err := f.livePolicy(ctx)
		if err != nil {
			return nil, "", err
		}
		rep, err := jobs.Drift(ctx, s, live, w, jobs.DriftConfig{Thresholds: th, CUSUM: cc, Step: *step}, progress)
		if err != nil {
			return nil, "", err
		}
		progress("drift: %d decisions, breached %v %v (%d ms)", int(rep.Events), rep.Breached, rep.Breaches, rep.ElapsedMS)
		if rep.Breached {
			if !f.noAudit {
				a, err := jobs.NewAudit(time.Now(), "jobs.drift.breach", live.Version, rep)
				if err != nil {
					return nil, "", err
				}
				if err := s.Audit(ctx, a); err != nil {
					return nil, "", err
				}
			}
			if *webhook != "" {
				if err := jobs.PostDriftBreach(ctx, *webhook, rep); err != nil {
					progress("drift: webhook: %v", err)
				}
			}
		}
		return rep, live.Version, nil
	}, s.Audit)
}

func runJobsPipeline(ctx context.Context, env Env, args []string) error {
	f := newJobFlags("pipeline", `The gated push: recalibrate the live policy (or take --candidate) -> OPE gate (the candidate's
DR must not be below the live policy's observed success by more than --margin) -> drift check
(a breach stops the pipeline unless --drift-blocks=false) -> canary experiment with guardrails
-> promote through the admin API (POST /admin/policy) with --push, or stop with the reason.
Every step is recorded in the report and as a jobs.pipeline.<step> audit row.
The canary (with --push): the candidate is staged in the policies topic without becoming live
(POST /admin/policy/stage), an experiment in layer --canary-layer splits the ramp's share of
requests between a "live" arm and a "candidate" arm routed by the candidate's version, and the
guardrails (default: error rate +0.05, QA fail rate +0.10, cost per image +$0.05, p95 latency
+3000 ms over the live arm; or --canary-spec) are read from ClickHouse every --canary-poll. Each
step holds --canary-step-duration with --canary-min-units units per arm before the next; a breach
rolls the experiment back and the pipeline stops; a canary that has not passed within
--canary-timeout is stopped and the pipeline stops. Without --push the canary is skipped.`, env)
	candPath := f.fs.String("candidate", "", "gate this candidate policy file instead of recalibrating a new one")
	margin := f.fs.Float64("margin", 0.01, "OPE gate margin")
	driftBlocks := f.fs.Bool("drift-blocks", true, "stop on a drift breach")
	skipCanary := f.fs.Bool("skip-canary", false, "promote without a canary experiment")
	push := f.fs.Bool("push", false, "push the candidate when every gate passes (default: dry run)")
	out := f.fs.String("out", "", "candidate policy file (default DATA-DIR/policies/candidate.json)")
	cflags := addCanaryFlags(f.fs)
	if err := f.parse(env, args); err != nil {
		return err
	}
	ccfg, err := cflags.config()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = f.candidatePath()
	}
	s, closeFn, err := f.store(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	progress := stderrProgress(env)
	return f.schedule(ctx, env, "pipeline", func(ctx context.Context, w jobs.Window) (any, string, error) {
		live, err := f.livePolicy(ctx)
		if err != nil {
			return nil, "", err
		}
		opt := jobs.PipelineOptions{OPE: jobs.OPEJob{OPE: jobs.OPEOptions{Margin: *margin}}, DriftBlocks: *driftBlocks, SkipCanary: *skipCanary, Push: *push}
		if !f.noAudit {
			opt.Audit = s.Audit
		}
		if *candPath != "" {
			if opt.Candidate, err = datasets.LoadPolicy(*candPath); err != nil {
				return nil, "", err
			}
		}
		var pusher jobs.Pusher
		var canary jobs.Canary
		if *push {
			a, err := f.admin()
			if err != nil {
				return nil, "", err
			}
			pusher = a
			if !*skipCanary {
				reader := chexp.NewReader(s.Conn, s.DB)
				reader.Exact = f.final
				canary = &jobs.CanaryRunner{Control: a, Reader: reader, Config: ccfg, Progress: progress, Now: time.Now}
			}
		}
		rep, err := jobs.RunPipeline(ctx, s, live, w, canary, pusher, opt, progress)
		if err != nil {
			return nil, "", err
		}
		if opt.Candidate == nil && rep.CandidatePolicy != nil {
			// keep the candidate the pipeline built, for inspection or a later push
			if err := datasets.WritePolicy(*out, rep.CandidatePolicy); err != nil {
				return nil, "", err
			}
			progress("pipeline: candidate %s written to %s", rep.Candidate, *out)
		}
		return rep, rep.Candidate, nil
	}, nil)
}

// candidatePath is where jobs write and read the candidate policy by default.
func (f *jobFlags) candidatePath() string {
	return filepath.Join(f.dataDir, "policies", "candidate.json")
}

// stderrProgress reports a job's progress lines on stderr.
func stderrProgress(env Env) func(format string, a ...any) {
	return func(format string, a ...any) { fmt.Fprintf(env.Stderr, format+"\n", a...) }
}
