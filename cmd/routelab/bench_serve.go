package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
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

--soak 5m then drives routelab alone at --rate for five minutes and samples
its live heap every --soak-every (after a GC): soak_heap_mb is the series,
soak_heap_growth_mb the mean of its last third minus its first third.`

type benchServeResult struct {
	BareRPS       float64 `json:"bare_rps"`
	RoutelabRPS   float64 `json:"routelab_rps"`
	Ratio         float64 `json:"ratio"`
	BareP99MS     float64 `json:"bare_p99_ms"`
	RoutelabP99MS float64 `json:"routelab_p99_ms"`
	AddedP99MS    float64 `json:"added_p99_ms"`
	BareP50MS     float64 `json:"bare_p50_ms"`
	RoutelabP50MS float64 `json:"routelab_p50_ms"`
	Rate          int     `json:"open_loop_rate"`
	Workers       int     `json:"workers"`
	Rounds        int     `json:"rounds"`
	OpenRounds    int     `json:"open_rounds"`
	ResponseBytes int     `json:"response_bytes"` // mean size of the bare side's first samples
	// Mean response size each side served over the closed-loop rounds: the
	// bare side stands for routelab only if they match.
	BareServedBytes     float64 `json:"bare_served_bytes"`
	RoutelabServedBytes float64 `json:"routelab_served_bytes"`
	Requests            uint64  `json:"routelab_requests"`
	Errors              uint64  `json:"routelab_errors"`
	EventsProduced      int64   `json:"events_produced"`
	EventsDropped       int64   `json:"events_dropped"`
	EventsWrites        int64   `json:"events_writes"` // broker writes: events_produced / events_writes is how full they are
	HeapStartMB         float64 `json:"heap_start_mb"`
	HeapEndMB           float64 `json:"heap_end_mb"`
	GOMAXPROCS          int     `json:"gomaxprocs"`
	GCPercent           int     `json:"gc_percent"`
	// CPU per closed-loop request, load generator included (it runs in
	// this process): unlike throughput it hardly moves with other load on
	// the machine, so it is the figure to compare between runs.
	BareCPUMicros     float64 `json:"bare_cpu_us_per_request"`
	RoutelabCPUMicros float64 `json:"routelab_cpu_us_per_request"`
	CPURatio          float64 `json:"cpu_ratio"`
	// --soak: an open-loop run at --rate against routelab alone, the live
	// heap (after a GC) sampled every --soak-every. Steady memory means the
	// last samples sit where the first ones did.
	SoakSeconds    float64   `json:"soak_seconds,omitempty"`
	SoakRequests   uint64    `json:"soak_requests,omitempty"`
	SoakErrors     uint64    `json:"soak_errors,omitempty"`
	SoakP99MS      float64   `json:"soak_p99_ms,omitempty"`
	SoakHeapMB     []float64 `json:"soak_heap_mb,omitempty"`
	SoakHeapGrowMB float64   `json:"soak_heap_growth_mb,omitempty"`
}

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
	kafkaAddr, stopKafka, err := startBrokerProcess(ctx, tmp, currentGCPercent())
	if err != nil {
		return err
	}
	defer stopKafka()
	key := randomToken("rl_bench_")
	// Goroutines inherit profiler labels: everything either server starts
	// (fasthttp workers, the producer, kafka-go) is tagged with its side,
	// so --cpu-profile can be read per side (pprof -tagfocus side=routelab).
	var rl *serveStack
	pprof.Do(ctx, pprof.Labels("side", "routelab"), func(ctx context.Context) {
		rl, err = startServe(ctx, benchServeOptions(kafkaAddr, tmp, key, logger))
	})
	if err != nil {
		return err
	}
	defer rl.stop(context.Background(), 10*time.Second)

	body := []byte(`{"prompt":"a red fox in snow at dawn","size":"` + *size + `","response_format":"b64_json"}`)
	hdr := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	if _, err := fetchOnce(ctx, rl.url+"/v1/images", hdr, body); err != nil {
		return fmt.Errorf("routelab sample request: %w", err)
	}
	rlTarget := vegeta.Target{Method: "POST", URL: rl.url + "/v1/images", Body: body, Header: hdr}
	// Warm up until routelab's throughput stops rising: the simulated
	// provider's render cache and QA's result cache fill (a fixed prompt has
	// a bounded set of outputs: variants x quality steps x models), so the
	// rounds measure the steady state of the serving path.
	var top float64
	for i, flat := 0, 0; i < *warmMax && (i < 5 || flat < 3) && ctx.Err() == nil; i++ {
		m := attack(ctx, rlTarget, 0, *workers, time.Second, nil)
		fmt.Fprintf(env.Stderr, "bench serve: warm-up %2d routelab %8.0f req/s\n", i+1, m.Throughput)
		if m.Throughput > top*1.05 {
			top, flat = m.Throughput, 0
		} else {
			flat++
		}
	}
	// The baseline: fiber with one handler that returns the bytes of
	// routelab responses, in turn: the same bytes, in the same mix of sizes.
	// A render's size follows its quality, and a rare escalation answers
	// with a picture three times larger, so the samples are many, drawn at
	// random from a routelab round under load, and replaced after each
	// routelab round: 64 requests made one at a time after the warm-up
	// averaged 70 kB where routelab then served 76-78 kB, and 512 drawn from
	// one round after the warm-up 74.9 kB against 77.0 kB served in the
	// rounds, so the bare side had less to send than routelab.
	first := newReservoir(sampleSize)
	attack(ctx, rlTarget, 0, *workers, time.Second, first)
	if len(first.out) < sampleSize {
		return fmt.Errorf("routelab sample: %d successful responses in one second, want %d", len(first.out), sampleSize)
	}
	var samples atomic.Pointer[[][]byte]
	samples.Store(&first.out)
	var next atomic.Uint64
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Post("/v1/images", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		s := *samples.Load()
		return c.Send(s[next.Add(1)%uint64(len(s))])
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go pprof.Do(ctx, pprof.Labels("side", "bare"), func(context.Context) { _ = bare.Listener(ln) })
	defer bare.ShutdownWithTimeout(2 * time.Second) // idle load-generator connections would hold Shutdown
	bareURL := "http://" + ln.Addr().String()
	res := benchServeResult{Rate: *rate, Workers: *workers, Rounds: *rounds, OpenRounds: *openRounds, ResponseBytes: meanLen(first.out), GOMAXPROCS: runtime.GOMAXPROCS(0), GCPercent: currentGCPercent()}
	res.HeapStartMB = heapMB()
	targets := map[string]vegeta.Target{
		"bare":     {Method: "POST", URL: bareURL + "/v1/images", Body: body, Header: hdr},
		"routelab": rlTarget,
	}
	attack(ctx, targets["bare"], 0, *workers, time.Second, nil)
	if *cpuProfile != "" { // the measured rounds only, not the warm-up
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Rounds are pairs run back to back in ABBA order (bare, routelab,
	// routelab, bare, ...), so load from outside the benchmark hits both
	// sides alike; each pair gives a ratio (closed loop) or a p99
	// difference (open loop), and the result is their median over the
	// pairs. Closed-loop rounds are short and many: the machine's speed
	// drifts by tens of percent within seconds, and more pairs make the
	// median steadier.
	var rps = map[string][]float64{}
	var p50s, p99s = map[string][]float64{}, map[string][]float64{}
	var ratios, added []float64
	var cpuPer = map[string][]float64{}
	type bytesServed struct{ bytes, responses uint64 }
	served := map[string]*bytesServed{"bare": {}, "routelab": {}} // closed loop
	// Each routelab round's responses replace the bare side's samples.
	keep := map[string]*atomic.Pointer[[][]byte]{"routelab": &samples}
	count := func(name string, m *vegeta.Metrics) {
		if name == "routelab" {
			res.Requests += m.Requests
			res.Errors += m.Requests - uint64(m.Success*float64(m.Requests)+0.5)
		}
	}
	for r := 0; r < *rounds && ctx.Err() == nil; r++ {
		order := []string{"bare", "routelab"}
		if r%2 == 1 {
			order = []string{"routelab", "bare"}
		}
		got := map[string]*vegeta.Metrics{}
		for _, name := range order {
			c0 := cpuTime()
			m := labelledAttack(ctx, name, "closed", targets[name], 0, *workers, *closed, keep[name])
			if m.Requests > 0 {
				cpuPer[name] = append(cpuPer[name], float64((cpuTime()-c0).Microseconds())/float64(m.Requests))
			}
			fmt.Fprintf(env.Stderr, "bench serve: round %d %-8s closed loop %8.0f req/s (success %.3f, %.0f bytes a response)\n", r+1, name, m.Throughput, m.Success, m.BytesIn.Mean)
			got[name] = m
			rps[name] = append(rps[name], m.Throughput)
			served[name].bytes += m.BytesIn.Total
			served[name].responses += m.Requests
			count(name, m)
		}
		ratios = append(ratios, got["routelab"].Throughput/got["bare"].Throughput)
	}
	for r := 0; r < *openRounds && ctx.Err() == nil; r++ {
		order := []string{"bare", "routelab"}
		if r%2 == 1 {
			order = []string{"routelab", "bare"}
		}
		got := map[string]*vegeta.Metrics{}
		for _, name := range order {
			m := labelledAttack(ctx, name, "open", targets[name], *rate, *workers, *open, keep[name])
			fmt.Fprintf(env.Stderr, "bench serve: round %d %-8s open loop %d/s  p50 %.3f ms  p99 %.3f ms (success %.3f)\n", r+1, name, *rate, ms(m.Latencies.P50), ms(m.Latencies.P99), m.Success)
			got[name] = m
			p50s[name] = append(p50s[name], ms(m.Latencies.P50))
			p99s[name] = append(p99s[name], ms(m.Latencies.P99))
			count(name, m)
		}
		added = append(added, ms(got["routelab"].Latencies.P99)-ms(got["bare"].Latencies.P99))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.BareRPS, res.RoutelabRPS = round1(median(rps["bare"])), round1(median(rps["routelab"]))
	res.Ratio = round3(median(ratios))
	res.BareP99MS, res.RoutelabP99MS = round3(median(p99s["bare"])), round3(median(p99s["routelab"]))
	res.BareP50MS, res.RoutelabP50MS = round3(median(p50s["bare"])), round3(median(p50s["routelab"]))
	res.AddedP99MS = round3(median(added))
	res.BareCPUMicros, res.RoutelabCPUMicros = round1(median(cpuPer["bare"])), round1(median(cpuPer["routelab"]))
	perResponse := func(s *bytesServed) float64 { return round1(float64(s.bytes) / float64(max(s.responses, 1))) }
	res.BareServedBytes, res.RoutelabServedBytes = perResponse(served["bare"]), perResponse(served["routelab"])
	if res.RoutelabCPUMicros > 0 {
		res.CPURatio = round3(res.BareCPUMicros / res.RoutelabCPUMicros)
	}
	if *soak > 0 {
		soakRun(ctx, env, &res, rlTarget, *rate, *workers, *soak, *soakEvery)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	runtime.GC()
	res.HeapEndMB = heapMB()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if rl.producer != nil {
		st := rl.producer.Stats()
		res.EventsProduced, res.EventsDropped, res.EventsWrites = st.Produced, st.DroppedTotal(), st.Writes
	}
	if res.Errors > 0 {
		fmt.Fprintf(env.Stderr, "bench serve: %d routelab requests failed\n", res.Errors)
	}
	if *asJSON {
		return printJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "bare %.0f req/s, routelab %.0f req/s, ratio %.3f; p99 at %d/s: bare %.3f ms, routelab %.3f ms, added %.3f ms; CPU per request: bare %.0f µs, routelab %.0f µs\n",
		res.BareRPS, res.RoutelabRPS, res.Ratio, res.Rate, res.BareP99MS, res.RoutelabP99MS, res.AddedP99MS, res.BareCPUMicros, res.RoutelabCPUMicros)
	return nil
}

// benchServeOptions is the serving stack bench serve measures (and
// BenchmarkServeHandler): simulated models with zero latency and no upstream
// errors, so what is left is routelab; limits out of the way.
func benchServeOptions(broker, dir, key string, logger *slog.Logger) serveOptions {
	return serveOptions{
		addr: "127.0.0.1:0", brokers: []string{broker}, dataDir: dir, policy: "rules",
		simLatency: 0, simOptions: sim.Options{Variants: 1}, seedKey: key, seedTenant: "bench",
		catalogFix: func(c *router.Catalog) {
			for i := range c.Models {
				c.Models[i].ErrorRate, c.Models[i].RateLimitRate = 0, 0
			}
		},
		logger: logger,
		cfg:    server.Config{RatePerSec: 1e12, RateBurst: 1 << 30},
		gw:     gateway.Config{ProviderConcurrency: 4096, ProviderQueue: 4096},
	}
}

// soakRun drives target at rate for d in slices of every, sampling the
// live heap after each slice, and reports whether it stayed level: the
// growth is the mean of the last third of the samples minus the first
// third's.
func soakRun(ctx context.Context, env Env, res *benchServeResult, target vegeta.Target, rate, workers int, d, every time.Duration) {
	every = min(max(every, time.Second), d)
	start := time.Now()
	runtime.GC()
	res.SoakHeapMB = append(res.SoakHeapMB, heapMB())
	for time.Since(start) < d && ctx.Err() == nil {
		m := attack(ctx, target, rate, workers, min(every, d-time.Since(start)), nil)
		res.SoakRequests += m.Requests
		res.SoakErrors += m.Requests - uint64(m.Success*float64(m.Requests)+0.5)
		res.SoakP99MS = max(res.SoakP99MS, ms(m.Latencies.P99))
		runtime.GC()
		res.SoakHeapMB = append(res.SoakHeapMB, heapMB())
		fmt.Fprintf(env.Stderr, "bench serve: soak %5.0fs/%.0fs  %d req  p99 %.3f ms  live heap %.1f MB\n",
			time.Since(start).Seconds(), d.Seconds(), m.Requests, ms(m.Latencies.P99), res.SoakHeapMB[len(res.SoakHeapMB)-1])
	}
	res.SoakSeconds = round1(time.Since(start).Seconds())
	if n := len(res.SoakHeapMB) / 3; n > 0 {
		first, last := res.SoakHeapMB[:n], res.SoakHeapMB[len(res.SoakHeapMB)-n:]
		res.SoakHeapGrowMB = round1(mean(last) - mean(first))
	}
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

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// labelledAttack is attack with its load generator's goroutines labelled
// client=side and loop=closed|open in CPU profiles. keep, when not nil,
// gets a fresh draw of the round's response bodies (see newReservoir).
func labelledAttack(ctx context.Context, side, loop string, t vegeta.Target, rate, workers int, d time.Duration, keep *atomic.Pointer[[][]byte]) (m *vegeta.Metrics) {
	var r *reservoir
	if keep != nil {
		r = newReservoir(sampleSize)
	}
	pprof.Do(ctx, pprof.Labels("client", side, "loop", loop), func(ctx context.Context) {
		m = attack(ctx, t, rate, workers, d, r)
	})
	if r != nil && len(r.out) == sampleSize {
		keep.Store(&r.out)
	}
	return m
}

// sampleSize is how many routelab responses the bare side serves in turn.
const sampleSize = 512

// reservoir keeps n of the bodies offered to it, drawn uniformly at random
// (reservoir sampling), so a whole round can be sampled in bounded memory.
type reservoir struct {
	n, seen int
	rng     *rand.Rand
	out     [][]byte
}

func newReservoir(n int) *reservoir {
	return &reservoir{n: n, rng: rand.New(rand.NewPCG(1, 2)), out: make([][]byte, 0, n)}
}

func (r *reservoir) offer(b []byte) {
	r.seen++
	switch {
	case len(r.out) < r.n:
		r.out = append(r.out, b)
	case r.rng.IntN(r.seen) < r.n:
		r.out[r.rng.IntN(r.n)] = b
	}
}

// attack runs one vegeta attack: closed loop (rate 0: workers send as fast
// as answered) or open loop at rate per second. keep, when not nil, is
// offered every successful response's body.
func attack(ctx context.Context, t vegeta.Target, rate, workers int, d time.Duration, keep *reservoir) *vegeta.Metrics {
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(true), vegeta.Timeout(10 * time.Second), vegeta.Connections(workers * 4)}
	pacer := vegeta.Rate{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
		pacer = vegeta.Rate{Freq: 0}
	} else {
		opts = append(opts, vegeta.Workers(uint64(workers)))
	}
	a := vegeta.NewAttacker(opts...)
	var m vegeta.Metrics
	for r := range a.Attack(vegeta.NewStaticTargeter(t), pacer, d, "bench") {
		m.Add(r)
		if keep != nil && r.Code == http.StatusOK {
			keep.offer(r.Body)
		}
		if ctx.Err() != nil {
			a.Stop()
		}
	}
	m.Close()
	return &m
}

func fetchOnce(ctx context.Context, url string, hdr http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = hdr.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	var probe struct {
		Images []json.RawMessage `json:"images"`
	}
	if json.Unmarshal(b, &probe) != nil || len(probe.Images) == 0 {
		return nil, fmt.Errorf("no images in %.200s", b)
	}
	return b, nil
}

func meanLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n / max(len(bs), 1)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func heapMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return round1(float64(ms.HeapAlloc) / (1 << 20))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

func round3(x float64) float64 {
	if x < 0 {
		return -round3(-x)
	}
	return float64(int64(x*1000+0.5)) / 1000
}

// startBrokerProcess runs `routelab kafka --json` as a child process with its
// data under dir and returns its address and how to stop it.
func startBrokerProcess(ctx context.Context, dir string, gcPercent int) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "kafka", "--json", "--kafka-addr", "127.0.0.1:0", "--data-dir", dir, "--gc-percent", strconv.Itoa(gcPercent))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var info struct {
		Kafka string `json:"kafka"`
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil || info.Kafka == "" {
		stop()
		return "", nil, fmt.Errorf("routelab kafka did not report its address: %v", err)
	}
	return info.Kafka, stop, nil
}
