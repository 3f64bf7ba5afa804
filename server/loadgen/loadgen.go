// Package loadgen drives a running serve over its HTTP API: Run replays a
// workload as many users (native /v1/images bodies, edit chains, feedback)
// and summarises routes, arms, errors and latency (routelab loadgen);
// Bench measures serve against a bare fiber server answering with the same
// bytes, closed and open loop (routelab bench serve). It lives beside
// server because it speaks server's wire format: request bodies, the
// x-routelab-* headers, the error codes.
package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

// Summary is what a run measured (routelab loadgen --json prints it).
type Summary struct {
	Requests     int     `json:"requests"`
	OK           int     `json:"ok"`
	Errors       int     `json:"errors"`
	Users        int     `json:"users"`
	UsersSeen    int     `json:"users_seen"`
	Seconds      float64 `json:"seconds"`
	RPS          float64 `json:"rps"`
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	LatencyP99MS float64 `json:"latency_p99_ms"`
	Feedback     int     `json:"feedback"`
	// ChainRestarts counts edits whose parent serve no longer had
	// (parent_not_found), resent as the first edit of a new chain.
	ChainRestarts int            `json:"chain_restarts"`
	Models        map[string]int `json:"models"`
	Arms          map[string]int `json:"arms"`
	ErrorCodes    map[string]int `json:"error_codes"`
}

// Config is one run: who to drive, with what, how hard and for how long.
type Config struct {
	Target   string // serve's base URL
	Key      string // tenant API key
	Items    []datasets.WorkItem
	Users    int     // distinct users (the experiment unit), drawn per request
	Feedback float64 // share of answered requests the user sends feedback on
	Seed     uint64
	// Requests stops the run after N requests, Duration after D (one of
	// them); Rate paces requests per second (0: as fast as Concurrency
	// allows).
	Requests    int
	Duration    time.Duration
	Rate        float64
	Concurrency int
	Progress    io.Writer // a progress line every second
}

// Run drives cfg.Target with the workload and summarises what it saw. Edit
// chains follow the workload's: an edit names the answer to its parent item
// (the items of one chain go to one worker, in order), and an edit whose
// parent serve forgot or never answered (parent_not_found) is resent as the
// first edit of a new chain. `routelab sim` serves the same chains.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if len(cfg.Items) == 0 || cfg.Users < 1 || cfg.Concurrency < 1 {
		return Summary{}, errors.New("loadgen: no workload items, users or concurrency")
	}
	lg := &loadgen{
		target: strings.TrimRight(cfg.Target, "/"), key: cfg.Key, items: cfg.Items, users: cfg.Users, feedback: cfg.Feedback, seed: cfg.Seed,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency}},
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	return lg.run(ctx, progress, cfg.Requests, cfg.Duration, cfg.Rate, cfg.Concurrency)
}

type loadgen struct {
	target, key string
	items       []datasets.WorkItem
	users       int
	feedback    float64
	seed        uint64
	client      *http.Client

	mu        sync.Mutex
	lat       []float64
	sum       Summary
	usersSeen map[int]bool
	answered  map[string]string // workload item id -> serve's request id, for edit chains
}

type loadResult struct {
	status  int
	code    string
	model   string
	arms    string
	latency time.Duration
	id      string
	qaPass  bool
}

func (lg *loadgen) run(ctx context.Context, progress io.Writer, n int, d time.Duration, rate float64, conc int) (Summary, error) {
	lg.sum = Summary{Users: lg.users, Models: map[string]int{}, Arms: map[string]int{}, ErrorCodes: map[string]int{}}
	lg.usersSeen, lg.answered = map[int]bool{}, map[string]string{}
	worker := lg.chainWorkers(conc)
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	start := time.Now()
	// one queue per worker: the items of a chain queue behind each other
	queues := make([]chan int, conc)
	var wg sync.WaitGroup
	var sent, done atomic.Int64
	for w := range conc {
		queues[w] = make(chan int, 16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(lg.seed, uint64(w)+1))
			for i := range queues[w] {
				lg.one(ctx, i, rng)
				done.Add(1)
			}
		}()
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				lg.mu.Lock()
				ok, errs := lg.sum.OK, lg.sum.Errors
				lg.mu.Unlock()
				el := time.Since(start).Seconds()
				fmt.Fprintf(progress, "loadgen: %6.0f s  sent %d  done %d  ok %d  errors %d  %.1f/s\n", el, sent.Load(), done.Load(), ok, errs, float64(done.Load())/el)
			}
		}
	}()
	// user draw: a fixed user per request index, so runs are reproducible
	userRNG := rand.New(rand.NewPCG(lg.seed, 0xfeed))
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
loop:
	for i := 0; n <= 0 || i < n; i++ {
		if interval > 0 {
			if wait := time.Until(next); wait > 0 {
				select {
				case <-ctx.Done():
					break loop
				case <-time.After(wait):
				}
			}
			next = next.Add(interval)
		}
		u := userRNG.IntN(lg.users)
		select {
		case queues[worker[i%len(lg.items)]] <- i<<20 | u:
			sent.Add(1)
		case <-ctx.Done():
			break loop
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone
	el := time.Since(start).Seconds()
	lg.mu.Lock()
	defer lg.mu.Unlock()
	s := lg.sum
	s.Seconds, s.UsersSeen = el, len(lg.usersSeen)
	if el > 0 {
		s.RPS = float64(s.Requests) / el
	}
	sort.Float64s(lg.lat)
	s.LatencyP50MS, s.LatencyP95MS, s.LatencyP99MS = quantileSorted(lg.lat, 0.5), quantileSorted(lg.lat, 0.95), quantileSorted(lg.lat, 0.99)
	if s.Requests == 0 {
		return s, errors.New("no request completed")
	}
	return s, nil
}

// chainWorkers assigns each workload item to a worker: all items of one
// edit chain (linked by Request.Parent) to the same one, so a chain's
// edits are sent in order, each after its parent was answered.
func (lg *loadgen) chainWorkers(conc int) []int {
	index := make(map[string]int, len(lg.items))
	for i, it := range lg.items {
		index[it.Request.ID] = i
	}
	worker := make([]int, len(lg.items))
	for i, it := range lg.items {
		if p, ok := index[it.Request.Parent]; ok && it.Request.Parent != "" && p < i {
			worker[i] = worker[p]
			continue
		}
		worker[i] = i % conc
	}
	return worker
}

// quantileSorted is the nearest-rank q-quantile of sorted x (the smallest
// value with at least q of them at or below: gonum's Empirical); NaN for
// none.
func quantileSorted(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return stat.Quantile(q, stat.Empirical, x, nil)
}

// one sends job (request index << 20 | user) and records the outcome.
func (lg *loadgen) one(ctx context.Context, job int, rng *rand.Rand) {
	idx, u := job>>20, job&(1<<20-1)
	item := lg.items[idx%len(lg.items)]
	user := fmt.Sprintf("user-%d", u)
	lg.mu.Lock()
	parent := lg.answered[item.Request.Parent]
	lg.mu.Unlock()
	res := lg.post(ctx, RequestBody(item.Request, user, parent))
	restarted := false
	if res.code == "parent_not_found" && parent != "" {
		// serve keeps recent chains only (per replica): start a new chain
		// from the reference image, as a client would
		res, restarted = lg.post(ctx, RequestBody(item.Request, user, "")), true
	}
	if ctx.Err() != nil && res.status == 0 {
		return // stopped by --duration
	}
	lg.mu.Lock()
	lg.sum.Requests++
	if restarted {
		lg.sum.ChainRestarts++
	}
	lg.usersSeen[u] = true
	lg.lat = append(lg.lat, float64(res.latency.Microseconds())/1000)
	if res.status == http.StatusOK {
		lg.sum.OK++
		lg.sum.Models[res.model]++
		if res.id != "" {
			lg.answered[item.Request.ID] = res.id
		}
		for _, a := range strings.Split(res.arms, ",") {
			if a != "" {
				lg.sum.Arms[a]++
			}
		}
	} else {
		lg.sum.Errors++
		code := res.code
		if code == "" {
			code = fmt.Sprintf("http_%d", res.status)
		}
		lg.sum.ErrorCodes[code]++
	}
	lg.mu.Unlock()
	if res.status == http.StatusOK && res.id != "" && rng.Float64() < lg.feedback {
		sig := "thumbs_down"
		if res.qaPass {
			sig = "thumbs_up"
		}
		b, _ := json.Marshal(map[string]string{"request_id": res.id, "signal": sig, "user": user})
		if lg.postFeedback(ctx, b) {
			lg.mu.Lock()
			lg.sum.Feedback++
			lg.mu.Unlock()
		}
	}
}

// refPNG is the workloads' edit reference (datasets.ReferencePNG) as the
// JSON body carries it.
var refPNG = sync.OnceValue(func() string {
	return base64.StdEncoding.EncodeToString(datasets.ReferencePNG())
})

// RequestBody is the native /v1/images body for a workload request. Edits
// with references send small generated PNGs; deeper edits chain on the
// user's previous request when there is one.
func RequestBody(r router.Request, user, parent string) []byte {
	type ref struct {
		B64 string `json:"b64_json"`
	}
	body := map[string]any{"prompt": r.Prompt, "user": user}
	if r.Tier != "" {
		body["quality"] = string(r.Tier)
	}
	if r.Width > 0 && r.Height > 0 {
		body["size"] = fmt.Sprintf("%dx%d", r.Width, r.Height)
	}
	if r.Constraints != (router.Constraints{}) {
		body["constraints"] = r.Constraints
	}
	if r.Mode == router.ModeEdit {
		body["mode"] = "edit"
		var refs []ref
		for range r.RefCount {
			refs = append(refs, ref{refPNG()})
		}
		switch {
		case r.EditDepth > 0 && parent != "":
			body["parent_id"] = parent
			if len(refs) > 0 {
				body["references"] = refs[:len(refs)-1]
			}
		case len(refs) > 0:
			body["references"] = refs
		default:
			body["references"] = []ref{{refPNG()}}
		}
	}
	b, _ := json.Marshal(body)
	return b
}

func (lg *loadgen) post(ctx context.Context, body []byte) loadResult {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lg.target+"/v1/images", bytes.NewReader(body))
	if err != nil {
		return loadResult{code: "client_error", latency: time.Since(start)}
	}
	req.Header.Set("Authorization", "Bearer "+lg.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := lg.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return loadResult{latency: time.Since(start)}
		}
		return loadResult{code: "transport_error", latency: time.Since(start)}
	}
	defer resp.Body.Close()
	var out struct {
		ID     string `json:"id"`
		QAPass bool   `json:"qa_pass"`
		Error  struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out)
	_, _ = io.Copy(io.Discard, resp.Body)
	r := loadResult{
		status: resp.StatusCode, code: out.Error.Code, model: resp.Header.Get("x-routelab-model"),
		arms: resp.Header.Get("x-routelab-experiment"), latency: time.Since(start), id: out.ID, qaPass: out.QAPass,
	}
	if r.id == "" {
		r.id = resp.Header.Get("x-routelab-request-id")
	}
	return r
}

func (lg *loadgen) postFeedback(ctx context.Context, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lg.target+"/v1/feedback", bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+lg.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := lg.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode < 300
}

// WriteText prints the summary as routelab loadgen does: one line of
// totals, then the counts by model, arm and error code.
func (s Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%d requests in %.1f s (%.1f/s): %d ok, %d errors; latency p50 %.0f ms, p95 %.0f ms, p99 %.0f ms; %d feedback signals; %d edit chains restarted\n",
		s.Requests, s.Seconds, s.RPS, s.OK, s.Errors, s.LatencyP50MS, s.LatencyP95MS, s.LatencyP99MS, s.Feedback, s.ChainRestarts)
	for _, k := range sortedKeysOf(s.Models) {
		fmt.Fprintf(w, "  model %-14s %d\n", k, s.Models[k])
	}
	for _, k := range sortedKeysOf(s.Arms) {
		fmt.Fprintf(w, "  arm   %-30s %d\n", k, s.Arms[k])
	}
	for _, k := range sortedKeysOf(s.ErrorCodes) {
		fmt.Fprintf(w, "  error %-20s %d\n", k, s.ErrorCodes[k])
	}
}

func sortedKeysOf(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
