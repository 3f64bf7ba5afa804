package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
)

// expArgs parses flags plus exactly want positional arguments.
func expArgs(fs *pflag.FlagSet, args []string, want int, what string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != want {
		fs.Usage()
		return nil, fmt.Errorf("want %s", what)
	}
	return fs.Args(), nil
}

func readSpecFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("-f FILE is required")
	}
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func runExperimentsCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments create", `Create an experiment from a spec file (see datasets/experiments/ for examples and
docs/assignment.md for layers and traffic). The spec is validated locally and by
the server; the experiment starts as a draft: `+"`routelab experiments start ID`"+`.
Prints "created experiment ID" (the id is the last word).`)
	file := fs.StringP("file", "f", "", "spec file (JSON; - for stdin)")
	start := fs.Bool("start", false, "start the experiment right away")
	asJSON := fs.Bool("json", false, "print the stored spec as one JSON object")
	adm := expAdminFlags(fs)
	if _, err := expArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	b, err := readSpecFile(*file)
	if err != nil {
		return err
	}
	if _, err := experiments.ParseSpec(b); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	c, err := adm.resolve(fs, env)
	if err != nil {
		return err
	}
	var s experiments.Spec
	if err := c.Do(ctx, "POST", "/admin/experiments", b, &s); err != nil {
		return err
	}
	if *start {
		if err := c.Do(ctx, "POST", "/admin/experiments/"+url.PathEscape(s.ID)+"/start", nil, &s); err != nil {
			return fmt.Errorf("created %s but start failed: %w", s.ID, err)
		}
	}
	if *asJSON {
		return printJSON(env.Stdout, s)
	}
	fmt.Fprintf(env.Stderr, "layer %s buckets %d-%d, %d arms, status %s\n", s.Layer, s.Buckets.Start, s.Buckets.End, len(s.Arms), s.Status)
	fmt.Fprintf(env.Stdout, "created experiment %s\n", s.ID)
	return nil
}

func runExperimentsList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments list", "List experiments, newest first.")
	status := fs.String("status", "", "only this status (draft, running, paused, stopped)")
	asJSON := fs.Bool("json", false, "print {\"experiments\": [...]} as one JSON object")
	adm := expAdminFlags(fs)
	if _, err := expArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	c, err := adm.resolve(fs, env)
	if err != nil {
		return err
	}
	var out struct {
		Experiments []experiments.Spec `json:"experiments"`
	}
	if err := c.Do(ctx, "GET", "/admin/experiments?status="+url.QueryEscape(*status), nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tLAYER\tTRAFFIC\tPHASE\tARMS\tNAME")
	for _, s := range out.Experiments {
		st := string(s.Status)
		if s.RolledBack {
			st += " (rolled back)"
		}
		names := make([]string, len(s.Arms))
		for i, a := range s.Arms {
			names[i] = a.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%d\t%s\t%s\n", s.ID, st, s.Layer, s.Traffic, s.Phase, strings.Join(names, ","), s.Name)
	}
	return tw.Flush()
}

func runExperimentsShow(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments show", "Show an experiment's stored spec (status, phase, ramp step, stop reason).\n\nUsage: routelab experiments show ID")
	return expSpecCommand(ctx, env, args, fs, "GET", "", nil, func(s experiments.Spec) string {
		b, _ := json.MarshalIndent(s, "", "  ")
		return string(b)
	})
}

func runExperimentsUpdate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments update", `Replace an experiment's definition with a spec file. Layer and layer share
cannot change. Re-weighting, adding or dropping arms, or changing the control,
unit or targeting of a started experiment starts a new analysis phase.

Usage: routelab experiments update ID -f FILE`)
	file := fs.StringP("file", "f", "", "spec file (JSON; - for stdin)")
	return expSpecCommand(ctx, env, args, fs, "PUT", "", func() ([]byte, error) { return readSpecFile(*file) }, func(s experiments.Spec) string {
		return fmt.Sprintf("updated experiment %s: revision %d, phase %d", s.ID, s.Revision, s.Phase)
	})
}

func expTransition(action string) func(context.Context, Env, []string) error {
	return func(ctx context.Context, env Env, args []string) error {
		fs := newFlagSet("experiments "+action, fmt.Sprintf("%s an experiment. Returns once the change is applied.\n\nUsage: routelab experiments %s ID [--reason TEXT]", strings.ToUpper(action[:1])+action[1:], action))
		reason := fs.String("reason", "", "why (kept in the audit trail)")
		body := func() ([]byte, error) { return json.Marshal(map[string]string{"reason": *reason}) }
		return expSpecCommand(ctx, env, args, fs, "POST", "/"+action, body, func(s experiments.Spec) string {
			return fmt.Sprintf("experiment %s is %s (traffic %g, phase %d)", s.ID, s.Status, s.Traffic, s.Phase)
		})
	}
}

func runExperimentsRamp(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments ramp", `Change a running experiment's traffic (the share of its layer range that
enters it). Units already in keep their arm. Without --traffic, a canary moves
to its next ramp step.

Usage: routelab experiments ramp ID [--traffic 0.25] [--reason TEXT]`)
	traffic := fs.Float64("traffic", 0, "new traffic in (0, 1]; omit for the canary's next step")
	reason := fs.String("reason", "", "why (kept in the audit trail)")
	body := func() ([]byte, error) {
		if fs.Changed("traffic") && !(*traffic > 0 && *traffic <= 1) {
			return nil, errors.New("--traffic must be in (0, 1]")
		}
		return json.Marshal(map[string]any{"reason": *reason, "traffic": *traffic})
	}
	return expSpecCommand(ctx, env, args, fs, "POST", "/ramp", body, func(s experiments.Spec) string {
		step := ""
		if s.Ramp != nil {
			step = fmt.Sprintf(", step %d of %d", s.Ramp.Step+1, len(s.Ramp.Steps))
		}
		return fmt.Sprintf("experiment %s traffic %g%s", s.ID, s.Traffic, step)
	})
}

// expSpecCommand is the shape of the commands that act on one experiment
// and print the stored spec they get back (show, update, start, pause,
// stop, ramp): fs's own flags plus --json and the admin flags; the
// experiment ID as the one argument; body (nil: none; its error before the
// admin API is resolved) sent with method to /admin/experiments/ID+suffix;
// text formats the spec without --json.
func expSpecCommand(ctx context.Context, env Env, args []string, fs *pflag.FlagSet, method, suffix string,
	body func() ([]byte, error), text func(experiments.Spec) string) error {
	asJSON := fs.Bool("json", false, "print the stored spec as one JSON object")
	adm := expAdminFlags(fs)
	pos, err := expArgs(fs, args, 1, "an experiment ID")
	if err != nil {
		return err
	}
	var b []byte
	if body != nil {
		if b, err = body(); err != nil {
			return err
		}
	}
	c, err := adm.resolve(fs, env)
	if err != nil {
		return err
	}
	var s experiments.Spec
	if err := c.Do(ctx, method, "/admin/experiments/"+url.PathEscape(pos[0])+suffix, b, &s); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, s)
	}
	fmt.Fprintln(env.Stdout, text(s))
	return nil
}

// expCHFlags are the ClickHouse flags of results and jobs analyze.
type expCHFlags struct {
	dsn   string
	exact bool
}

func addExpCHFlags(fs *pflag.FlagSet) *expCHFlags {
	o := &expCHFlags{}
	fs.StringVar(&o.dsn, "clickhouse-dsn", "", "ClickHouse DSN, clickhouse://host:port/db (env ROUTELAB_CLICKHOUSE_DSN; default from dev.json)")
	fs.BoolVar(&o.exact, "exact", false, "read decisions with FINAL (collapse duplicate deliveries first; slower)")
	return o
}

func (o *expCHFlags) resolveDSN(fs *pflag.FlagSet, env Env, dataDir string) (string, error) {
	envDefault(fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE_DSN")
	if o.dsn != "" {
		return o.dsn, nil
	}
	d, _ := devstack.ReadInfo(dataDir)
	if dsn := d.ClickHouseDSN(); dsn != "" {
		return dsn, nil
	}
	return "", errors.New("no ClickHouse: give --clickhouse-dsn, set ROUTELAB_CLICKHOUSE_DSN, or run next to `routelab dev`")
}

func runExperimentsResults(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments results", `Analyse an experiment's current phase from ClickHouse: per arm units, requests
and metrics (success, QA pass/fail, errors, escalation, thumbs up/down, cost per
image, latency mean/p50/p95) with 95% intervals; the sample-ratio-mismatch test;
per treatment the difference from control with its interval, p-value (delta
method: units are randomized, requests are not), Holm-adjusted p-value and
mSPRT always-valid p-value and interval; CUPED on the primary metric when the
units have a pre-period; guardrails.

Usage: routelab experiments results ID [--json]`)
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	adm := expAdminFlags(fs)
	ch := addExpCHFlags(fs)
	pos, err := expArgs(fs, args, 1, "an experiment ID")
	if err != nil {
		return err
	}
	if !(*alpha > 0 && *alpha < 0.5) {
		return errors.New("--alpha must be in (0, 0.5)")
	}
	c, err := adm.resolve(fs, env)
	if err != nil {
		return err
	}
	var s experiments.Spec
	if err := c.Do(ctx, "GET", "/admin/experiments/"+url.PathEscape(pos[0]), nil, &s); err != nil {
		return err
	}
	dsn, err := ch.resolveDSN(fs, env, adm.dataDir)
	if err != nil {
		return err
	}
	conn, db, err := ingest.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	reader := chexp.NewReader(conn, db)
	reader.Exact = ch.exact
	start := time.Now()
	switch s.Kind {
	case experiments.KindBandit:
		return printBanditResults(ctx, env, reader, s, *alpha, *asJSON)
	case experiments.KindHoldout:
		h, err := reader.Holdout(ctx, s, *alpha)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, h)
		}
		h.WriteText(env.Stdout)
		return nil
	}
	r, err := reader.Report(ctx, s, *alpha, time.Now())
	if err != nil {
		return err
	}
	r.QueryMS = time.Since(start).Milliseconds()
	fmt.Fprintf(env.Stderr, "results: %s phase %d analysed in %d ms\n", s.ID, s.Phase, r.QueryMS)
	if *asJSON {
		return printJSON(env.Stdout, r)
	}
	r.WriteText(env.Stdout)
	return nil
}

// printBanditResults is `experiments results` of a bandit: the analysis by
// logged propensities (the fixed-split report does not apply).
func printBanditResults(ctx context.Context, env Env, reader *chexp.Reader, s experiments.Spec, alpha float64, asJSON bool) error {
	groups, err := reader.BanditGroups(ctx, s)
	if err != nil {
		return err
	}
	r := experiments.AnalyzeBandit(s, groups, alpha)
	if asJSON {
		return printJSON(env.Stdout, r)
	}
	r.WriteText(env.Stdout)
	return nil
}
