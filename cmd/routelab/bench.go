package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"

	"github.com/routelab/routelab/ingest/ingestbench"
)

const benchHelp = `Benchmarks that report ratios against a baseline measured in the same run.

Modes:
%s
Run "routelab bench MODE --help" for a mode's flags.`

// benchModes lists the bench sub-modes; add one line per mode.
func benchModes() map[string]command {
	return map[string]command{
		"serve":  {"bare fiber vs the full routelab path (zero-latency sim): throughput ratio, added p99", runBenchServe},
		"ingest": {"events producer -> broker -> ingest -> ClickHouse vs direct clickhouse-go inserts", runBenchIngest},
	}
}

func runBench(ctx context.Context, env Env, args []string) error {
	modes := benchModes()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(env.Stdout, modes)
		if len(args) == 0 {
			return fmt.Errorf("bench: no mode given")
		}
		return nil
	}
	m, ok := modes[args[0]]
	if !ok {
		benchUsage(env.Stderr, modes)
		return fmt.Errorf("bench: unknown mode %q", args[0])
	}
	return m.Run(ctx, env, args[1:])
}

func benchUsage(w io.Writer, modes map[string]command) {
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	list := ""
	for _, n := range names {
		list += fmt.Sprintf("  %-8s %s\n", n, modes[n].Summary)
	}
	fmt.Fprintf(w, "Usage: routelab bench MODE [flags]\n\n"+benchHelp+"\n", list)
}

const benchIngestHelp = `Measure the event pipeline against its ceiling.

In one run: inserts N synthetic decision events straight into ClickHouse with
clickhouse-go batches (the ceiling), then pushes the same N events through the
events producer -> a fresh local broker -> the ingest consumer -> ClickHouse, and
reports produced, ingested (distinct event_ids queryable with FINAL), lost,
duplicates, both rates, their ratio and produce-to-queryable latency p50/p99.
Uses a local clickhouse-server under a temporary dir unless --clickhouse names one
(two fresh bench_* databases are created there and dropped). Progress goes to
stderr; --json prints one JSON object on stdout's last line.`

func runBenchIngest(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("bench ingest", benchIngestHelp)
	n := fs.Int("events", 200000, "number of decision events N")
	dsn := fs.String("clickhouse", "", "ClickHouse DSN to benchmark against; empty starts a local server (env ROUTELAB_BENCH_CLICKHOUSE)")
	partitions := fs.Int("kafka-partitions", 6, "partitions of the decisions topic")
	iflags := addIngestFlags(fs)
	seed := fs.Uint64("seed", 1, "seed of the synthetic events")
	keep := fs.Bool("keep", false, "keep the bench databases")
	asJSON := fs.Bool("json", false, "print the result as one JSON object on stdout")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	envDefault(fs, env, "clickhouse", "ROUTELAB_BENCH_CLICKHOUSE")
	iflags.applyEnv(fs, env)
	if *n <= 0 {
		return fmt.Errorf("--events must be > 0")
	}
	fmt.Fprintf(env.Stderr, "bench ingest: events=%d clickhouse=%q kafka-partitions=%d %s\n", *n, maskDSN(*dsn), *partitions, iflags)
	res, err := ingestbench.Run(ctx, ingestbench.Config{
		Events: *n, ClickHouseDSN: *dsn, Partitions: *partitions,
		Consumer: iflags.config(nil, nil), Seed: *seed, Progress: env.Stderr, Keep: *keep,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	fmt.Fprintf(env.Stdout, "produced %d, ingested %d, lost %d, duplicates %d\n", res.Produced, res.Ingested, res.Lost, res.Duplicates)
	fmt.Fprintf(env.Stdout, "pipeline %.0f events/s, direct insert %.0f events/s, ratio %.3f\n", res.EventsPerS, res.DirectInsertEventsPerS, res.Ratio)
	fmt.Fprintf(env.Stdout, "produce-to-queryable p50 %.0f ms, p99 %.0f ms\n", res.E2EP50MS, res.E2EP99MS)
	return nil
}
