package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"gonum.org/v1/gonum/stat"
)

// BenchConfig is one bench run against routelab's POST URL.
type BenchConfig struct {
	URL string // routelab's /v1/images
	// StateURL, when set, is a second routelab replica's /v1/images whose
	// state (caps, rates, chains, idempotency) is in a shared store: a
	// third side of every round, its ratio to bare reported beside
	// routelab's.
	StateURL string
	Header   http.Header
	Body     []byte
	// Closed-loop rounds: Rounds pairs of Closed each, Workers clients.
	Closed  time.Duration
	Rounds  int
	Workers int
	// Open-loop rounds: OpenRounds pairs of Open each at Rate per second.
	Open       time.Duration
	OpenRounds int
	Rate       int
	WarmMax    int // most 1 s warm-up rounds
	// Soak, when > 0, drives routelab alone at Rate for that long after the
	// rounds, sampling the live heap every SoakEvery.
	Soak, SoakEvery time.Duration
	// CPUTime is the process's CPU time so far (user + system).
	CPUTime func() time.Duration
	// StartProfile, when set, starts a CPU profile of the measured rounds
	// and returns its stop.
	StartProfile func() (stop func(), err error)
	Log          io.Writer
}

// Bench measures what routelab's serving path costs on top of the model
// call: the same load generator against a bare fiber handler that answers
// with the bytes of routelab's own responses, and against routelab. Rounds
// are pairs run back to back in ABBA order, so load from outside hits both
// sides alike; the ratio and the added p99 are medians over the pairs.
func Bench(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	if _, err := fetchOnce(ctx, cfg.URL, cfg.Header, cfg.Body); err != nil {
		return BenchResult{}, fmt.Errorf("routelab sample request: %w", err)
	}
	rlTarget := vegeta.Target{Method: "POST", URL: cfg.URL, Body: cfg.Body, Header: cfg.Header}
	// Warm up until routelab's throughput stops rising: the simulated
	// provider's render cache and QA's result cache fill (a fixed prompt has
	// a bounded set of outputs: variants x quality steps x models), so the
	// rounds measure the steady state of the serving path.
	var top float64
	for i, flat := 0, 0; i < cfg.WarmMax && (i < 5 || flat < 3) && ctx.Err() == nil; i++ {
		m := attack(ctx, rlTarget, 0, cfg.Workers, time.Second, nil)
		fmt.Fprintf(cfg.Log, "bench serve: warm-up %2d routelab %8.0f req/s\n", i+1, m.Throughput)
		if m.Throughput > top*1.05 {
			top, flat = m.Throughput, 0
		} else {
			flat++
		}
	}
	if cfg.StateURL != "" {
		st := vegeta.Target{Method: "POST", URL: cfg.StateURL, Body: cfg.Body, Header: cfg.Header}
		if _, err := fetchOnce(ctx, cfg.StateURL, cfg.Header, cfg.Body); err != nil {
			return BenchResult{}, fmt.Errorf("routelab with the state store, sample request: %w", err)
		}
		top = 0
		for i, flat := 0, 0; i < cfg.WarmMax && (i < 5 || flat < 3) && ctx.Err() == nil; i++ {
			m := attack(ctx, st, 0, cfg.Workers, time.Second, nil)
			fmt.Fprintf(cfg.Log, "bench serve: warm-up %2d state    %8.0f req/s\n", i+1, m.Throughput)
			if m.Throughput > top*1.05 {
				top, flat = m.Throughput, 0
			} else {
				flat++
			}
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
	attack(ctx, rlTarget, 0, cfg.Workers, time.Second, first)
	if len(first.out) < sampleSize {
		return BenchResult{}, fmt.Errorf("routelab sample: %d successful responses in one second, want %d", len(first.out), sampleSize)
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
		return BenchResult{}, err
	}
	go pprof.Do(ctx, pprof.Labels("side", "bare"), func(context.Context) { _ = bare.Listener(ln) })
	defer bare.ShutdownWithTimeout(2 * time.Second) // idle load-generator connections would hold Shutdown
	bareURL := "http://" + ln.Addr().String()
	res := BenchResult{Rate: cfg.Rate, Workers: cfg.Workers, Rounds: cfg.Rounds, OpenRounds: cfg.OpenRounds, ResponseBytes: meanLen(first.out), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	res.HeapStartMB = heapMB()
	targets := map[string]vegeta.Target{
		"bare":     {Method: "POST", URL: bareURL + "/v1/images", Body: cfg.Body, Header: cfg.Header},
		"routelab": rlTarget,
	}
	sides := []string{"bare", "routelab"}
	if cfg.StateURL != "" {
		targets["state"] = vegeta.Target{Method: "POST", URL: cfg.StateURL, Body: cfg.Body, Header: cfg.Header}
		sides = append(sides, "state")
	}
	// order is round r's sides: bare first on even rounds, last on odd
	// ones (ABBA, or ABCCBA with the state side).
	order := func(r int) []string {
		o := slices.Clone(sides)
		if r%2 == 1 {
			slices.Reverse(o)
		}
		return o
	}
	attack(ctx, targets["bare"], 0, cfg.Workers, time.Second, nil)
	if cfg.StartProfile != nil { // the measured rounds only, not the warm-up
		stop, err := cfg.StartProfile()
		if err != nil {
			return BenchResult{}, err
		}
		defer stop()
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
	var stateRatios, stateAdded, stateVsOff []float64
	var cpuPer = map[string][]float64{}
	type bytesServed struct{ bytes, responses uint64 }
	served := map[string]*bytesServed{"bare": {}, "routelab": {}, "state": {}} // closed loop
	// Each routelab round's responses replace the bare side's samples.
	keep := map[string]*atomic.Pointer[[][]byte]{"routelab": &samples}
	count := func(name string, m *vegeta.Metrics) {
		if name != "bare" {
			res.Requests += m.Requests
			res.Errors += m.Requests - uint64(m.Success*float64(m.Requests)+0.5)
		}
	}
	for r := 0; r < cfg.Rounds && ctx.Err() == nil; r++ {
		got := map[string]*vegeta.Metrics{}
		for _, name := range order(r) {
			c0 := cfg.CPUTime()
			m := labelledAttack(ctx, name, "closed", targets[name], 0, cfg.Workers, cfg.Closed, keep[name])
			if m.Requests > 0 {
				cpuPer[name] = append(cpuPer[name], float64((cfg.CPUTime()-c0).Microseconds())/float64(m.Requests))
			}
			fmt.Fprintf(cfg.Log, "bench serve: round %d %-8s closed loop %8.0f req/s (success %.3f, %.0f bytes a response)\n", r+1, name, m.Throughput, m.Success, m.BytesIn.Mean)
			got[name] = m
			rps[name] = append(rps[name], m.Throughput)
			served[name].bytes += m.BytesIn.Total
			served[name].responses += m.Requests
			count(name, m)
		}
		ratios = append(ratios, got["routelab"].Throughput/got["bare"].Throughput)
		if st := got["state"]; st != nil {
			stateRatios = append(stateRatios, st.Throughput/got["bare"].Throughput)
			stateVsOff = append(stateVsOff, st.Throughput/got["routelab"].Throughput)
		}
	}
	for r := 0; r < cfg.OpenRounds && ctx.Err() == nil; r++ {
		got := map[string]*vegeta.Metrics{}
		for _, name := range order(r) {
			m := labelledAttack(ctx, name, "open", targets[name], cfg.Rate, cfg.Workers, cfg.Open, keep[name])
			fmt.Fprintf(cfg.Log, "bench serve: round %d %-8s open loop %d/s  p50 %.3f ms  p99 %.3f ms (success %.3f)\n", r+1, name, cfg.Rate, ms(m.Latencies.P50), ms(m.Latencies.P99), m.Success)
			got[name] = m
			p50s[name] = append(p50s[name], ms(m.Latencies.P50))
			p99s[name] = append(p99s[name], ms(m.Latencies.P99))
			count(name, m)
		}
		added = append(added, ms(got["routelab"].Latencies.P99)-ms(got["bare"].Latencies.P99))
		if st := got["state"]; st != nil {
			stateAdded = append(stateAdded, ms(st.Latencies.P99)-ms(got["bare"].Latencies.P99))
		}
	}
	if ctx.Err() != nil {
		return BenchResult{}, ctx.Err()
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
	if cfg.StateURL != "" && len(stateRatios) > 0 {
		res.StateRPS, res.StateRatio, res.StateVsOff = round1(median(rps["state"])), round3(median(stateRatios)), round3(median(stateVsOff))
		res.StateCPUMicros, res.StateServedBytes = round1(median(cpuPer["state"])), perResponse(served["state"])
		if len(stateAdded) > 0 {
			res.StateP99MS, res.StateAddedP99MS = round3(median(p99s["state"])), round3(median(stateAdded))
		}
	}
	if cfg.Soak > 0 {
		soakRun(ctx, cfg.Log, &res, rlTarget, cfg.Rate, cfg.Workers, cfg.Soak, cfg.SoakEvery)
	}
	if ctx.Err() != nil {
		return BenchResult{}, ctx.Err()
	}
	runtime.GC()
	res.HeapEndMB = heapMB()
	return res, nil
}

// soakRun drives target at rate for d in slices of every, sampling the
// live heap after each slice, and reports whether it stayed level: the
// growth is the mean of the last third of the samples minus the first
// third's.
func soakRun(ctx context.Context, log io.Writer, res *BenchResult, target vegeta.Target, rate, workers int, d, every time.Duration) {
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
		fmt.Fprintf(log, "bench serve: soak %5.0fs/%.0fs  %d req  p99 %.3f ms  live heap %.1f MB\n",
			time.Since(start).Seconds(), d.Seconds(), m.Requests, ms(m.Latencies.P99), res.SoakHeapMB[len(res.SoakHeapMB)-1])
	}
	res.SoakSeconds = round1(time.Since(start).Seconds())
	if n := len(res.SoakHeapMB) / 3; n > 0 {
		first, last := res.SoakHeapMB[:n], res.SoakHeapMB[len(res.SoakHeapMB)-n:]
		res.SoakHeapGrowMB = round1(stat.Mean(last, nil) - stat.Mean(first, nil))
	}
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

// median is the middle value, the mean of the two middle ones for an even
// count: gonum's LinInterp at 0.5 with the first value weighted 0 (R's type
// 7 quantile), exact for either count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 1 {
		return s[0]
	}
	w := make([]float64, len(s))
	for i := 1; i < len(w); i++ {
		w[i] = 1
	}
	return stat.Quantile(0.5, stat.LinInterp, s, w)
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

// BenchResult is what Bench measured (routelab bench serve --json prints it).
type BenchResult struct {
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
	// The side with the shared state store (BenchConfig.StateURL), measured
	// in the same rounds: its throughput, its ratio to bare (beside
	// Ratio), the median per-round ratio of its throughput to routelab's
	// without the store, its p99 and added p99, and its CPU per request
	// (this process only: the store's own CPU is another process's).
	StateRPS         float64   `json:"state_rps,omitempty"`
	StateRatio       float64   `json:"state_ratio,omitempty"`
	StateVsOff       float64   `json:"state_vs_off,omitempty"`
	StateP99MS       float64   `json:"state_p99_ms,omitempty"`
	StateAddedP99MS  float64   `json:"state_added_p99_ms,omitempty"`
	StateCPUMicros   float64   `json:"state_cpu_us_per_request,omitempty"`
	StateServedBytes float64   `json:"state_served_bytes,omitempty"`
	SoakSeconds      float64   `json:"soak_seconds,omitempty"`
	SoakRequests     uint64    `json:"soak_requests,omitempty"`
	SoakErrors       uint64    `json:"soak_errors,omitempty"`
	SoakP99MS        float64   `json:"soak_p99_ms,omitempty"`
	SoakHeapMB       []float64 `json:"soak_heap_mb,omitempty"`
	SoakHeapGrowMB   float64   `json:"soak_heap_growth_mb,omitempty"`
}
