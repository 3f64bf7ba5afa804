package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func runLoadgen(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("loadgen", `Drive a running serve with a workload: POST /v1/images for each workload item,
as --users distinct users (the experiment unit), at --rate requests/s (0 = as
fast as --concurrency allows), for --requests N or --duration D. Users send
feedback (thumbs up when the image passed QA, down otherwise) on
--feedback-rate of their requests. Progress goes to stderr every second; the
summary (JSON with --json) to stdout.

The workload is a JSONL file from `+"`routelab workload generate`"+` (--workload FILE), or
the built-in mix (generated from --seed): text rendering, layouts, photoreal,
abstract, avatars, illustrations, edit chains. The target and API key default
to ROUTELAB_API_URL/ROUTELAB_API_KEY, then dev.json under --data-dir.`)
	target := fs.String("target", "", "serve base URL (env ROUTELAB_API_URL; default dev.json api)")
	apiKey := fs.String("api-key", "", "tenant API key (env ROUTELAB_API_KEY; default dev.json api_key)")
	dataDir := fs.String("data-dir", "./.routelab", "routelab dev data dir holding dev.json (env ROUTELAB_DATA_DIR)")
	workload := fs.String("workload", "", "workload JSONL file (default: the built-in mix)")
	rate := fs.Float64("rate", 0, "requests per second (0 = unlimited)")
	requests := fs.Int("requests", 0, "stop after this many requests")
	duration := fs.Duration("duration", 0, "stop after this long")
	users := fs.Int("users", 1000, "distinct users")
	concurrency := fs.Int("concurrency", 64, "requests in flight at most (serve's default per-provider concurrency is 64)")
	feedback := fs.Float64("feedback-rate", 0.2, "share of requests the user gives feedback on")
	seed := fs.Uint64("seed", 1, "random seed (workload and user draws)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "target", "ROUTELAB_API_URL")
	envDefault(fs, env, "api-key", "ROUTELAB_API_KEY")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	if *target == "" || *apiKey == "" {
		if d, err := readDevInfo(*dataDir); err == nil {
			if *target == "" {
				*target = d.API
			}
			if *apiKey == "" {
				*apiKey = d.APIKey
			}
		}
	}
	switch {
	case *target == "" || *apiKey == "":
		return errors.New("--target and --api-key are required (or env, or dev.json)")
	case (*requests > 0) == (*duration > 0):
		return errors.New("give exactly one of --requests N and --duration D")
	case *requests < 0 || *duration < 0 || *users < 1 || *concurrency < 1 || *rate < 0:
		return errors.New("--requests, --duration, --users, --concurrency and --rate must be positive")
	case *feedback < 0 || *feedback > 1:
		return errors.New("--feedback-rate must be in [0, 1]")
	}
	if !strings.Contains(*target, "://") {
		*target = "http://" + *target
	}
	items, err := loadgenWorkload(*workload, *seed, *requests)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "loadgen: target %s, key %s, %d workload items, %d users, concurrency %d, rate %g/s\n",
		*target, mask(*apiKey), len(items), *users, *concurrency, *rate)
	lg := &loadgen{
		target: strings.TrimRight(*target, "/"), key: *apiKey, items: items, users: *users, feedback: *feedback, seed: *seed,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency}},
	}
	sum, err := lg.run(ctx, env.Stderr, *requests, *duration, *rate, *concurrency)
	if err != nil {
		return err
	}
	if *asJSON {
		return expPrintJSON(env.Stdout, sum)
	}
	fmt.Fprintf(env.Stdout, "%d requests in %.1f s (%.1f/s): %d ok, %d errors; latency p50 %.0f ms, p95 %.0f ms, p99 %.0f ms; %d feedback signals; %d edit chains restarted\n",
		sum.Requests, sum.Seconds, sum.RPS, sum.OK, sum.Errors, sum.LatencyP50MS, sum.LatencyP95MS, sum.LatencyP99MS, sum.Feedback, sum.ChainRestarts)
	for _, k := range sortedKeysOf(sum.Models) {
		fmt.Fprintf(env.Stdout, "  model %-14s %d\n", k, sum.Models[k])
	}
	for _, k := range sortedKeysOf(sum.Arms) {
		fmt.Fprintf(env.Stdout, "  arm   %-30s %d\n", k, sum.Arms[k])
	}
	for _, k := range sortedKeysOf(sum.ErrorCodes) {
		fmt.Fprintf(env.Stdout, "  error %-20s %d\n", k, sum.ErrorCodes[k])
	}
	return nil
}

func sortedKeysOf(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// loadgenWorkload reads a JSONL workload, or generates the built-in mix.
func loadgenWorkload(path string, seed uint64, n int) ([]datasets.WorkItem, error) {
	if path == "" {
		if n <= 0 || n > 20000 {
			n = 20000
		}
		return datasets.Generate(seed, n)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	items, err := datasets.ReadWorkload(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: empty workload", path)
	}
	return items, nil
}

// LoadSummary is what a loadgen run measured.
type LoadSummary struct {
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

type loadgen struct {
	target, key string
	items       []datasets.WorkItem
	users       int
	feedback    float64
	seed        uint64
	client      *http.Client

	mu        sync.Mutex
	lat       []float64
	sum       LoadSummary
	usersSeen map[int]bool
	lastID    map[int]string // user -> last request id, for edit chains
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

func (lg *loadgen) run(ctx context.Context, progress io.Writer, n int, d time.Duration, rate float64, conc int) (LoadSummary, error) {
	lg.sum = LoadSummary{Users: lg.users, Models: map[string]int{}, Arms: map[string]int{}, ErrorCodes: map[string]int{}}
	lg.usersSeen, lg.lastID = map[int]bool{}, map[int]string{}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var sent, done atomic.Int64
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(lg.seed, uint64(w)+1))
			for i := range jobs {
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
		case jobs <- i<<20 | u:
			sent.Add(1)
		case <-ctx.Done():
			break loop
		}
	}
	close(jobs)
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

func quantileSorted(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return x[int(math.Min(float64(len(x)-1), math.Floor(q*float64(len(x)))))]
}

// one sends job (request index << 20 | user) and records the outcome.
func (lg *loadgen) one(ctx context.Context, job int, rng *rand.Rand) {
	idx, u := job>>20, job&(1<<20-1)
	item := lg.items[idx%len(lg.items)]
	user := fmt.Sprintf("user-%d", u)
	lg.mu.Lock()
	parent := lg.lastID[u]
	lg.mu.Unlock()
	res := lg.post(ctx, requestBody(item.Request, user, parent))
	restarted := false
	if res.code == "parent_not_found" && parent != "" {
		// serve keeps recent chains only (per replica): start a new chain
		// from the reference image, as a client would
		res, restarted = lg.post(ctx, requestBody(item.Request, user, "")), true
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
			lg.lastID[u] = res.id
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

var refPNG = sync.OnceValue(func() string {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return base64.StdEncoding.EncodeToString(buf.Bytes())
})

// requestBody is the native /v1/images body for a workload request. Edits
// with references send small generated PNGs; deeper edits chain on the
// user's previous request when there is one.
func requestBody(r router.Request, user, parent string) []byte {
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
