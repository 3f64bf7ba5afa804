// Command routelab is the one binary of routelab: the serving data plane, the
// ingest consumer, the console, the offline jobs, the lab and the local
// development stack, each as a subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "routelab:", err)
		}
		os.Exit(exitCode(err))
	}
}

// Env is what a subcommand may touch of the outside world; tests pass their own.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// command is one subcommand. Run parses its own flags from args.
type command struct {
	Summary string
	Run     func(ctx context.Context, env Env, args []string) error
}

// commands lists every subcommand; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"bench":       {"benchmarks with same-run baselines: bench ingest (bench MODE --help)", runBench},
		"clickhouse":  {"run a local clickhouse-server (dev, tests) with its data under DATA_DIR/clickhouse", runClickHouse},
		"dev":         {"run broker + ClickHouse + ingest (+ serve, console) locally; writes DATA_DIR/dev.json", runDev},
		"ingest":      {"consume the event topics into ClickHouse (consumer group, at-least-once)", runIngest},
		"version":     {"print the build version", runVersion},
		"qa":          {"run serve's automated image QA (format, size, blank, sharpness, drift) on files", runQA},
		"smoke":       {"send one cheap request to every real model whose vendor key is set; print latency, size, cost", runSmoke},
		"workload":    {"generate lab workloads (JSONL requests with hidden tasks)", runWorkload},
		"sim":         {"run a workload through a policy in the simulated world, logging decisions", runSim},
		"policy":      {"routing policies: train, eval, show, diff", runPolicy},
		"loadgen":     {"drive a running serve with a workload (requests, users, rate) and summarize", runLoadgen},
		"experiments": {"A/B routing experiments and canaries: create, start, ramp, results, validate", runExperiments},
		"kafka":       {"run a local single-node Kafka-protocol broker (dev)", runKafka},
		"console":     {"serve the review UI, dashboards, experiment and policy pages", runConsole},
		"users":       {"create and list console accounts", runUsers},
		"lab":         {"lab scenarios: change the simulated world mid-run and run the closed loop", runLab},
		"serve":       {"serve the image API (native and OpenAI shape), admin API, metrics", runServe},
		"keys":        {"tenant API keys: create, list, revoke (admin API)", runKeys},
		"jobs":        {"offline jobs: recalibrate, drift, ope, pipeline (once or --every D)", runJobs},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// Subcommands report progress from worker goroutines; lock the writers
	// once here so no subcommand has to.
	env := Env{Getenv: getenv, Stdout: &lockedWriter{w: stdout}, Stderr: &lockedWriter{w: stderr}}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.Run(ctx, env, args[1:])
}

var errUsage = errors.New("no command given")

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "routelab: one image API in front of many image models, and the lab that measures how it routes.")
	fmt.Fprintln(w, "\nUsage: routelab COMMAND [flags]   (routelab COMMAND --help for its flags)\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].Summary)
	}
}

func exitCode(err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	return 1
}

// lockedWriter serialises writes from concurrent goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// group is a command made of subcommands (routelab policy, keys, jobs,
// experiments): -h/--help (and "help" when Help is set) lists them after
// Intro on stdout; no argument lists them and returns NoArgs.
type group struct {
	Intro   string
	Width   int  // of the name column
	Help    bool // "help" lists too
	NoArgs  error
	Unknown string // error format for an unknown subcommand, with %q
	// UsageOnUnknown lists the subcommands on stderr before that error.
	UsageOnUnknown bool
	Subs           map[string]command
}

func (g group) run(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || (g.Help && args[0] == "help") {
		g.usage(env.Stdout)
		if len(args) == 0 {
			return g.NoArgs
		}
		return nil
	}
	sub, ok := g.Subs[args[0]]
	if !ok {
		if g.UsageOnUnknown {
			g.usage(env.Stderr)
		}
		return fmt.Errorf(g.Unknown, args[0])
	}
	return sub.Run(ctx, env, args[1:])
}

func (g group) usage(w io.Writer) {
	fmt.Fprintln(w, g.Intro)
	names := make([]string, 0, len(g.Subs))
	for n := range g.Subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s %s\n", g.Width, n, g.Subs[n].Summary)
	}
}
