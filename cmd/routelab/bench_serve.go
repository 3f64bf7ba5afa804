package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/redisstate/redislocal"
	"github.com/routelab/routelab/server/loadgen"
	"github.com/routelab/routelab/server/replica"
)

const benchServeHelp = `Measure what routelab's serving path costs on top of the model call.

In one run, on 127.0.0.1: a bare fiber handler that returns the bytes of routelab
responses (512 drawn at random from its latest closed- or open-loop round,
so in the mix routelab serves under load, served in turn), and the full
routelab path (auth, validation, routing with the live
policy, a zero-latency simulated provider, automated QA, review sampling, decision
and QA events through the producer to a local broker). The simulated models
answer at once and never fail, so what is measured is routelab itself. Both are driven by the same
vegeta load generator: closed loop (--workers concurrent clients, as fast as
answered) for throughput, --rounds pairs of --closed-duration each, then open
loop at --rate requests/s for latency, --open-rounds pairs of --open-duration.
Pairs run back to back in ABBA order so load from outside hits both sides
alike; ratio and added_p99_ms are the medians of the per-pair figures.

Prints bare_rps, routelab_rps, ratio, bare_p99_ms, routelab_p99_ms,
added_p99_ms, the mean response size each side served in the closed loop
(they should match), the CPU per request on each side (it hardly moves with other
load on the machine; the throughput ratio assumes an otherwise idle one),
the producer's counters and the heap; --json prints one JSON object on
stdout's last line.

With --state (the default), a second routelab replica whose daily caps, rate limits
and edit chains go through a shared state store (a redis-server child process, or
--state-store) is a third side of every round: state_rps, state_ratio (beside ratio),
state_vs_off (the median per-round ratio of its throughput to routelab's without the
store), state_p99_ms and state_added_p99_ms.

--soak 5m then drives routelab alone at --rate for five minutes and samples
its live heap every --soak-every (after a GC): soak_heap_mb is the series,
soak_heap_growth_mb the mean of its last third minus its first third.`

func runBenchServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("bench serve", benchServeHelp)
	closed := fs.Duration("closed-duration", time.Second, "length of each closed-loop round")
	open := fs.Duration("open-duration", 3*time.Second, "length of each open-loop round")
	rate := fs.Int("rate", 1000, "open-loop request rate per second")
	workers := fs.Int("workers", 16, "closed-loop concurrent clients")
	rounds := fs.Int("rounds", 12, "closed-loop round pairs (bare and routelab back to back, ABBA order)")
	openRounds := fs.Int("open-rounds", 5, "open-loop round pairs (ABBA order)")
	size := fs.String("size", "1024x1024", "image size requested (a catalog size)")
	warmMax := fs.Int("warmup-max", 60, "most 1 s warm-up rounds (warm-up ends when throughput stops rising)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object on stdout's last line")
	gcPercent := gcPercentFlag(fs)
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("mem-profile", "", "write a heap profile at the end of the run to this file")
	soak := fs.Duration("soak", 0, "after the rounds, drive routelab alone at --rate for this long (e.g. 5m) and sample its live heap: is memory steady?")
	soakEvery := fs.Duration("soak-every", 30*time.Second, "heap sampling interval during --soak")
	withState := fs.Bool("state", true, "also measure a replica with the shared state store, in the same rounds")
	stateStore := fs.String("state-store", "", "redis:// URL of the state store for --state; default: a redis-server child process")
	if err := fs.Parse(args); err != nil {
		return err
	}

	if *rounds < 1 || *openRounds < 1 || *rate < 1 || *workers < 1 {
		return errors.New("--rounds, --open-rounds, --rate and --workers must be positive")
	}
	// Both servers and the load generator share this process and so its
	// collector: it runs with serve's GC target, as a serve replica does.
	applyGCPercent(fs, env, *gcPercent)
	tmp, err := os.MkdirTemp("", "routelab-bench-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The broker runs in its own process (routelab kafka), as Kafka would:
	// its log must not sit in the measured server's heap. It shares the
	// cores, so it gets the same GC target as this process.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	kafkaAddr, stopKafka, err := broker.StartProcess(exe, tmp, currentGCPercent())
	if err != nil {
		return err
	}
	defer stopKafka()
	key := replica.RandomToken("rl_bench_")
	// Goroutines inherit profiler labels: everything either server starts
	// (fasthttp workers, the producer, kafka-go) is tagged with its side,
	// so --cpu-profile can be read per side (pprof -tagfocus side=routelab).
	var rl *replica.Replica
	pprof.Do(ctx, pprof.Labels("side", "routelab"), func(ctx context.Context) {
		rl, err = replica.Start(ctx, replica.BenchOptions(kafkaAddr, tmp, key, logger))
	})
	if err != nil {
		return err
	}
	defer rl.Stop(context.Background(), 10*time.Second)
	var rlState *replica.Replica
	if *withState {
		url := *stateStore
		if url == "" {
			rs, err := redislocal.Start(ctx, redislocal.Config{Dir: filepath.Join(tmp, "redis")})
			if err != nil {
				return err
			}
			defer rs.Stop(context.Background())
			url = rs.URL()
		}
		o := replica.BenchOptions(kafkaAddr, filepath.Join(tmp, "state"), key, logger)
		// As serve runs with a store: edit-chain images stay on the
		// replica, other replicas fetch them through its admin listener.
		o.StateStore, o.AdminAddr, o.AdminToken = url, "127.0.0.1:0", replica.RandomToken("adm_")
		pprof.Do(ctx, pprof.Labels("side", "state"), func(ctx context.Context) {
			rlState, err = replica.Start(ctx, o)
		})
		if err != nil {
			return err
		}
		defer rlState.Stop(context.Background(), 10*time.Second)
	}

	body := []byte(`{"prompt":"a red fox in snow at dawn","size":"` + *size + `","response_format":"b64_json"}`)
	hdr := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	cfg := loadgen.BenchConfig{
		URL: rl.URL() + "/v1/images", Header: hdr, Body: body, Closed: *closed, Rounds: *rounds, Workers: *workers,
		Open: *open, OpenRounds: *openRounds, Rate: *rate, WarmMax: *warmMax, Soak: *soak, SoakEvery: *soakEvery,
		CPUTime: cpuTime, Log: env.Stderr,
	}
	if rlState != nil {
		cfg.StateURL = rlState.URL() + "/v1/images"
	}
	if *cpuProfile != "" {
		cfg.StartProfile = func() (func(), error) {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return nil, err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return nil, err
			}
			return func() { pprof.StopCPUProfile(); f.Close() }, nil
		}
	}
	res, err := loadgen.Bench(ctx, cfg)
	if err != nil {
		return err
	}
	res.GCPercent = currentGCPercent()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	for _, r := range []*replica.Replica{rl, rlState} {
		if r == nil {
			continue
		}
		if p := r.Producer(); p != nil {
			st := p.Stats()
			res.EventsProduced, res.EventsDropped, res.EventsWrites = res.EventsProduced+st.Produced, res.EventsDropped+st.DroppedTotal(), res.EventsWrites+st.Writes
		}
	}
	if res.Errors > 0 {
		fmt.Fprintf(env.Stderr, "bench serve: %d routelab requests failed\n", res.Errors)
	}
	if *asJSON {
		return printJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "bare %.0f req/s, routelab %.0f req/s, ratio %.3f; p99 at %d/s: bare %.3f ms, routelab %.3f ms, added %.3f ms; CPU per request: bare %.0f µs, routelab %.0f µs\n",
		res.BareRPS, res.RoutelabRPS, res.Ratio, res.Rate, res.BareP99MS, res.RoutelabP99MS, res.AddedP99MS, res.BareCPUMicros, res.RoutelabCPUMicros)
	if rlState != nil {
		fmt.Fprintf(env.Stdout, "with the shared state store: %.0f req/s, ratio %.3f (without it %.3f; per round %.3f of routelab without it); p99 %.3f ms, added %.3f ms; CPU per request %.0f µs (this process)\n",
			res.StateRPS, res.StateRatio, res.Ratio, res.StateVsOff, res.StateP99MS, res.StateAddedP99MS, res.StateCPUMicros)
	}
	return nil
}

// currentGCPercent reads the collector's target without changing it.
func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
