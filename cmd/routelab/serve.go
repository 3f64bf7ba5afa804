package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

const serveHelp = `Serve the image API: POST /v1/images (native), /v1/images/generations and
/v1/images/edits (OpenAI Images API shape; model "auto" routes), /v1/feedback,
GET /v1/models, signed image links, /healthz and /readyz on --http-addr; the admin
API (/admin/keys, /admin/policy, /admin/experiments) on --admin-addr, a listener of
its own (loopback by default) that the public port never answers for.

Requests are routed by the live policy, served by the providers of the model
catalog (simulated unless a vendor API key is set: OPENAI_API_KEY, GEMINI_API_KEY,
IDEOGRAM_API_KEY), checked by automated QA and escalated when QA fails. Decision, QA
and signal events go to Kafka (--kafka-brokers) without ever blocking a request.
With Kafka, API keys and the live policy live in the compacted routelab.keys and
routelab.policies topics, so every replica converges; without it they live in this
process only. SIGTERM/Ctrl-C drains: readiness fails, in-flight requests finish,
events are flushed.

Limits (rate per key, daily cap per tenant, provider concurrency) are per replica.`

// serveOptions is what startServe needs; the serve, dev and bench commands fill it.
type serveOptions struct {
	addr       string
	adminAddr  string // admin API listener; "" = none
	brokers    []string
	dataDir    string
	policy     string                // file or shipped policy name, used when no policy is live yet
	catalog    string                // catalog file; "" = the shipped catalog
	catalogFix func(*router.Catalog) // adjusts the loaded catalog (bench)
	adminToken string
	urlSecret  string
	publicURL  string
	simLatency float64 // sim.Options.LatencyScale
	simOptions sim.Options
	blobs      blobOptions
	seedKey    string // a key secret inserted for seedTenant at start (dev)
	seedTenant string
	cfg        server.Config
	gw         gateway.Config
	// keysMaxStale bounds how old the view of the keys topic may grow before
	// /readyz fails; 0 means defaultKeysMaxStale.
	keysMaxStale time.Duration
	logger       *slog.Logger
	registry     *prometheus.Registry
}

// serveStack is a running serve: the app, its listener and what it owns.
type serveStack struct {
	srv       *server.Server
	url       string
	adminURL  string // "" without an admin listener
	producer  *kafka.Producer
	logs      []*kafka.ControlLog
	closers   []func() error
	done      chan error
	adminDone chan error
}

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("serve", serveHelp)
	o := serveOptions{}
	addr := fs.String("http-addr", "127.0.0.1:8080", "listen address (env ROUTELAB_HTTP_ADDR)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:8081", "admin API listen address, kept off the public port; empty serves no admin API (env ROUTELAB_ADMIN_ADDR)")
	brokers := fs.String("kafka-brokers", "", "Kafka brokers, comma separated; empty discards events (env ROUTELAB_KAFKA_BROKERS)")
	dataDir := fs.String("data-dir", "./.routelab", "data dir: blobs/ for sampled images, spool/ for events while Kafka is away (env ROUTELAB_DATA_DIR)")
	policy := fs.String("policy", "rules", "policy used when none is live yet: a file or a shipped name (rules, explore)")
	catalog := fs.String("catalog", "", "model catalog file (default: the shipped catalog)")
	adminToken := fs.String("admin-token", "", "token for /admin/*; empty disables the admin API (env ROUTELAB_ADMIN_TOKEN)")
	urlSecret := fs.String("url-secret", "", "secret signing image links (response_format=url), at least 32 characters; every replica needs the same one. Default: DATA_DIR/url-secret, made on first start (env ROUTELAB_URL_SECRET)")
	publicURL := fs.String("public-url", "", "base URL of image links (default: http://HOST of the request's Host header) (env ROUTELAB_PUBLIC_URL)")
	trusted := fs.String("trusted-proxies", "", "IPs or CIDRs of reverse proxies whose X-Forwarded-Host/-Proto set the image link base, comma separated; default none (env ROUTELAB_TRUSTED_PROXIES)")
	simLatency := fs.Float64("sim-latency-scale", 1, "simulated model latency multiplier: 1 real time, 0 none")
	bodyLimit := fs.Int("http-body-limit", 32<<20, "request body limit in bytes (413 past it)")
	headerTimeout := fs.Duration("http-read-header-timeout", 10*time.Second, "time for a request's headers, and the whole request without an API key (slowloris)")
	readTimeout := fs.Duration("http-read-timeout", 60*time.Second, "time for an authenticated request's body after its headers")
	writeTimeout := fs.Duration("http-write-timeout", 60*time.Second, "time for writing a response (slow readers)")
	idleTimeout := fs.Duration("http-idle-timeout", 60*time.Second, "keep-alive wait for a connection's next request")
	maxConns := fs.Int("http-max-conns", 4096, "open connections per listener; more are answered 503")
	maxConnsPerIP := fs.Int("http-max-conns-per-ip", 0, "open connections per client address; 0 = no limit (leave 0 behind a proxy)")
	rate := fs.Float64("limit-rate", 50, "requests per second per API key (token bucket refill; per replica)")
	burst := fs.Int("limit-burst", 100, "token bucket size per API key")
	dailyCap := fs.Int("limit-daily-images", 0, "images per tenant per UTC day; 0 = unlimited (per replica)")
	tenantCaps := fs.String("limit-daily-images-tenant", "", "per-tenant daily image caps overriding --limit-daily-images, e.g. acme=5000,trial=50 (0 = unlimited; per replica)")
	conc := fs.Int("limit-provider-concurrency", 64, "provider calls in flight per provider (per replica)")
	queue := fs.Int("limit-provider-queue", 64, "calls waiting per provider before shedding with 503")
	sample := fs.Float64("review-sample-rate", 0.05, "share of outputs sampled for human review, per stratum (model|tier|arm)")
	refAllow := fs.String("ref-allow", "", "CIDRs reference URLs may reach despite being private/loopback, comma separated")
	blobDir := fs.String("blob-dir", "", "blob store (sampled outputs, image links); default DATA_DIR/blobs. Put it on a volume apart from DATA_DIR/spool so full blobs cannot stop event spooling (env ROUTELAB_BLOB_DIR)")
	blobRetention := fs.Duration("blob-retention", 30*24*time.Hour, "blobs older than this are deleted (swept hourly at most); 0 keeps them forever")
	blobMinFree := fs.Uint64("blob-min-free", 1<<30, "bytes that must stay free on the blob store's disk; writes past that are refused (routelab_blob_writes_refused_total); 0 = no check")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests and the event flush")
	fs.DurationVar(&o.keysMaxStale, "keys-max-staleness", defaultKeysMaxStale, "readiness fails when the view of the keys topic (revocations) is older than this")
	gcPercent := gcPercentFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "http-addr", "ROUTELAB_HTTP_ADDR")
	envDefault(fs, env, "admin-addr", "ROUTELAB_ADMIN_ADDR")
	envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	envDefault(fs, env, "url-secret", "ROUTELAB_URL_SECRET")
	envDefault(fs, env, "blob-dir", "ROUTELAB_BLOB_DIR")
	envDefault(fs, env, "public-url", "ROUTELAB_PUBLIC_URL")
	envDefault(fs, env, "trusted-proxies", "ROUTELAB_TRUSTED_PROXIES")
	o.addr, o.adminAddr, o.dataDir, o.policy, o.catalog = *addr, *adminAddr, *dataDir, *policy, *catalog
	o.brokers = splitList(*brokers)
	o.blobs = blobOptions{dir: *blobDir, retention: *blobRetention, minFree: *blobMinFree}
	o.adminToken, o.urlSecret, o.publicURL, o.simLatency = *adminToken, *urlSecret, *publicURL, *simLatency
	o.cfg = server.Config{
		BodyLimit: *bodyLimit, ReadHeaderTimeout: *headerTimeout, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout,
		IdleTimeout: *idleTimeout, MaxConns: *maxConns, MaxConnsPerIP: *maxConnsPerIP, RatePerSec: *rate, RateBurst: *burst,
		TrustedProxies: splitList(*trusted),
	}
	o.gw = gateway.Config{DailyCap: *dailyCap, ProviderConcurrency: *conc, ProviderQueue: *queue, SampleRate: *sample}
	if *sample == 0 {
		o.gw.SampleRate = -1
	}
	caps, err := parseTenantCaps(*tenantCaps)
	if err != nil {
		return err
	}
	o.gw.DailyCaps = caps
	for _, c := range splitList(*refAllow) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("--ref-allow %q: %w", c, err)
		}
		o.cfg.RefAllow = append(o.cfg.RefAllow, p)
	}
	fmt.Fprintf(env.Stderr, "serve: http-addr=%s admin-addr=%s kafka-brokers=%s data-dir=%s policy=%s admin-token=%s url-secret=%s sim-latency-scale=%g body-limit=%d limit-rate=%g limit-burst=%d limit-daily-images=%d provider-concurrency=%d provider-queue=%d review-sample-rate=%g\n",
		o.addr, o.adminAddr, *brokers, o.dataDir, o.policy, mask(o.adminToken), mask(o.urlSecret), o.simLatency, *bodyLimit, *rate, *burst, *dailyCap, *conc, *queue, *sample)
	o.logger = slog.New(slog.NewTextHandler(env.Stderr, nil)).With("component", "serve")
	applyGCPercent(fs, env, *gcPercent)
	s, err := startServe(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "serve: listening on %s, admin API on %s\n", s.url, s.adminURL)
	select {
	case <-ctx.Done():
	case err := <-s.done:
		return errors.Join(err, s.stop(context.Background(), *drain))
	case err := <-s.adminDone:
		s.adminDone <- err // for stop
		return errors.Join(fmt.Errorf("admin listener: %w", err), s.stop(context.Background(), *drain))
	}
	fmt.Fprintln(env.Stderr, "serve: draining")
	return s.stop(context.Background(), *drain)
}

// startServe builds serve's dependency graph, leaves first, and starts
// listening.
func startServe(ctx context.Context, o serveOptions) (_ *serveStack, err error) {
	s := &serveStack{done: make(chan error, 1), adminDone: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = s.stop(context.Background(), 5*time.Second)
		}
	}()
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
		o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	cat, err := datasets.LoadCatalog(o.catalog)
	if err != nil {
		return nil, err
	}
	if o.catalogFix != nil {
		o.catalogFix(&cat)
	}
	reg, err := registry.Build(cat, registry.Config{
		Vendors:         registry.VendorsFromEnv(os.Getenv),
		SimulateMissing: true,
		Sim:             simOptions(o),
		OnBreakerChange: func(name string, from, to resilience.State) {
			o.logger.Warn("circuit breaker", "model", name, "from", from.String(), "to", to.String())
		},
	})
	if err != nil {
		return nil, err
	}
	o.registry.MustRegister(resilience.NewCollector(reg.Breakers))
	live := gateway.NewLivePolicy(nil, reg.Breakers)
	keys := server.NewMemKeys()
	var policyLog server.ControlLog = server.NewMemLog()
	var producer server.Producer
	keysReady := func() error { return nil }
	if len(o.brokers) > 0 {
		if err := kafka.EnsureTopics(ctx, o.brokers, 0); err != nil {
			return nil, err
		}
		p, err := kafka.NewProducer(kafka.ProducerConfig{
			Brokers: o.brokers, SpoolDir: filepath.Join(o.dataDir, "spool", "serve"),
			Logger: o.logger.With("component", "producer"), Registerer: o.registry,
		})
		if err != nil {
			return nil, err
		}
		s.producer = p
		producer = p
		stopMarker, err := startRunMarker(o.dataDir, func() int { return p.Stats().QueueDepth }, time.Second, o.logger)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, stopMarker)
		pl, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: o.brokers, Topic: events.TopicPolicies, Logger: o.logger})
		if err != nil {
			return nil, err
		}
		s.logs = append(s.logs, pl)
		policyLog = pl
		if o.keysMaxStale <= 0 {
			o.keysMaxStale = defaultKeysMaxStale
		}
		kl, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: o.brokers, Topic: events.TopicKeys, Logger: o.logger, CheckEvery: controlCheckEvery(o.keysMaxStale)})
		if err != nil {
			return nil, err
		}
		keysReady = keysFresh(kl, o.keysMaxStale)
		s.logs = append(s.logs, kl)
		keys.Persist = func(ctx context.Context, k server.Key) error {
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			return kl.Put(ctx, control.APIKeyKey(k.ID), b)
		}
		followKeys(kl, keys, o.logger)
	} else {
		o.logger.Warn("no --kafka-brokers: events are discarded, keys and policy live in this process only")
	}
	policies := server.NewPolicyStore(live, policyLog)
	if pl, ok := policyLog.(*kafka.ControlLog); ok {
		pl.Subscribe(func(control.Change) {
			if err := policies.Changed(); err != nil {
				o.logger.Error("policy update refused", "err", err)
			}
		})
	}
	seed, err := datasets.PolicyDoc(o.policy)
	if err != nil {
		return nil, err
	}
	if err := policies.Seed(ctx, seed); err != nil {
		return nil, fmt.Errorf("seed policy: %w", err)
	}
	if _, ok := keys.Lookup(server.HashSecret(o.seedKey)); o.seedKey != "" && !ok {
		if _, err := keys.Insert(ctx, o.seedTenant, "dev", o.seedKey); err != nil {
			return nil, fmt.Errorf("seed key: %w", err)
		}
	}
	exp, err := wireExperiments(ctx, o.brokers, o.logger, producer, live, policyLog.Get, reg.Breakers)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, exp.Close)
	blobs, err := openBlobs(o.blobs, o.dataDir, o.registry, o.logger)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, blobs.stop)
	secret, err := loadURLSecret(o.urlSecret, o.dataDir)
	if err != nil {
		return nil, err
	}
	cfg := o.cfg
	cfg.AdminToken, cfg.URLSecret, cfg.PublicURL = o.adminToken, secret, o.publicURL
	var catalog []server.Model
	providerOf := map[string]string{}
	for _, m := range cat.Models {
		if _, ok := reg.Providers[m.Name]; ok {
			catalog = append(catalog, server.Model{Name: m.Name, Provider: m.Provider, Sizes: m.Sizes})
			providerOf[m.Name] = m.Provider
		}
	}
	gw := gateway.New(o.gw, gateway.Deps{
		Policy:     live,
		Providers:  reg.Providers,
		ProviderOf: providerOf,
		QA:         gateway.NewQA(qa.New(qa.DefaultThresholds()).WithCache(4096)),
		Events:     producer,
		Blobs:      blobs.Store,
		Assigner:   exp.Assigner,
		Registry:   o.registry,
		Logger:     o.logger,
	})
	s.srv = server.New(o.logger, cfg, server.Deps{
		Gateway:     gw,
		Catalog:     catalog,
		Events:      producer,
		Keys:        keys,
		Blobs:       blobs.Store,
		Experiments: exp.Registry,
		Policy:      policies,
		Registry:    o.registry,
		Ready: func() error {
			if live.Policy() == nil {
				return errors.New("no policy loaded")
			}
			return keysReady()
		},
	})
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	var aln net.Listener
	if o.adminAddr != "" {
		if aln, err = net.Listen("tcp", o.adminAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		s.adminURL = "http://" + aln.Addr().String()
		go func() { s.adminDone <- s.srv.ServeAdmin(aln) }()
	}
	s.url = "http://" + ln.Addr().String()
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// stop drains the server, then flushes events and closes the control logs.
func (s *serveStack) stop(ctx context.Context, drain time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	var errs []error
	if s.srv != nil && s.url != "" {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain http: %w", err))
		}
		if err := <-s.done; err != nil {
			errs = append(errs, err)
		}
		if s.adminURL != "" {
			if err := <-s.adminDone; err != nil {
				errs = append(errs, fmt.Errorf("admin listener: %w", err))
			}
		}
		s.url, s.adminURL = "", ""
	}
	if s.producer != nil {
		if err := s.producer.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush events: %w", err))
		}
		s.producer = nil
	}
	for _, l := range s.logs {
		_ = l.Close()
	}
	for _, c := range s.closers {
		_ = c()
	}
	s.logs, s.closers = nil, nil
	return errors.Join(errs...)
}

// blobOptions place and bound serve's blob store.
type blobOptions struct {
	dir       string        // "" = DATA_DIR/blobs
	retention time.Duration // 0 = keep forever
	minFree   uint64        // 0 = no free-space check
}

// sweptBlobs is the blob store with its retention sweeper.
type sweptBlobs struct {
	*blob.Store
	stop func() error
}

// openBlobs opens the blob store, exports its refused writes and sweeps as
// metrics, and sweeps blobs past retention every retention/24 (at most
// hourly, at least every minute) until stop.
func openBlobs(o blobOptions, dataDir string, reg prometheus.Registerer, logger *slog.Logger) (*sweptBlobs, error) {
	if o.dir == "" {
		o.dir = filepath.Join(dataDir, "blobs")
	}
	st, err := blob.New(o.dir, blob.Options{MinFree: o.minFree})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "routelab_blob_writes_refused_total", Help: "Blob writes refused because the blob disk is below --blob-min-free."},
			func() float64 { return float64(st.Refused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "routelab_blob_swept_total", Help: "Blobs deleted past --blob-retention."},
			func() float64 { return float64(st.Swept()) }),
	)
	b := &sweptBlobs{Store: st, stop: func() error { return nil }}
	if o.retention <= 0 {
		return b, nil
	}
	every := min(max(o.retention/24, time.Minute), time.Hour)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := st.Sweep(time.Now(), o.retention); err != nil {
				logger.Warn("blob sweep", "err", err)
			} else if n > 0 {
				logger.Info("blob sweep", "removed", n, "retention", o.retention)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	b.stop = func() error { close(done); <-stopped; return nil }
	return b, nil
}

// minURLSecret is the shortest image-link secret accepted: 32 characters
// (e.g. openssl rand -hex 16), beyond a brute-force search of the HMAC key.
const minURLSecret = 32

// loadURLSecret returns the secret signing image links: the configured one,
// or the one kept in DATA_DIR/url-secret (0600), made on first start. A
// per-process random secret would break every link at a restart and on
// every replica but the one that made it.
func loadURLSecret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		if len(configured) < minURLSecret {
			return nil, fmt.Errorf("--url-secret is %d characters; want at least %d (e.g. openssl rand -hex 32)", len(configured), minURLSecret)
		}
		return []byte(configured), nil
	}
	s, err := devSecret(filepath.Join(dataDir, "url-secret"), "")
	if err != nil {
		return nil, fmt.Errorf("url secret: %w", err)
	}
	return []byte(s), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// devServeFlags are the serve flags of `routelab dev`.
type devServeFlags struct {
	addr       *string
	adminAddr  *string
	simLatency *float64
	policy     *string
	sample     *float64
	rate       *float64
}

func addDevServeFlags(fs *pflag.FlagSet) devServeFlags {
	return devServeFlags{
		// serve's default (50/s per key) would cap `routelab loadgen` against
		// dev's one seeded key below what the machine serves
		rate:       fs.Float64("limit-rate", 1000, "requests per second per API key (token bucket refill)"),
		addr:       fs.String("api-addr", "127.0.0.1:8080", "image API listen address; port 0 picks one"),
		adminAddr:  fs.String("admin-addr", "127.0.0.1:8081", "admin API listen address (dev.json \"admin\"); port 0 picks one (env ROUTELAB_ADMIN_ADDR)"),
		simLatency: fs.Float64("sim-latency-scale", 0.05, "simulated model latency multiplier (1 = real time)"),
		policy:     fs.String("policy", "explore", "policy made live on first start: a file or a shipped name"),
		sample:     fs.Float64("review-sample-rate", 0.05, "share of outputs sampled for human review"),
	}
}

// startDevServe starts serve against the dev broker, seeding an API key
// for tenant "dev" and an admin token (kept under DATA_DIR/serve so a
// restart prints the same ones).
func startDevServe(ctx context.Context, st *devStack, info *devInfo, cfg devConfig) error {
	dir := filepath.Join(cfg.dir, "serve")
	key, err := devSecret(filepath.Join(dir, "api-key"), "rl_dev_")
	if err != nil {
		return err
	}
	token, err := devSecret(filepath.Join(dir, "admin-token"), "adm_")
	if err != nil {
		return err
	}
	urlSecret, err := devSecret(filepath.Join(dir, "url-secret"), "")
	if err != nil {
		return err
	}
	s, err := startServe(ctx, serveOptions{
		addr: *cfg.serve.addr, adminAddr: *cfg.serve.adminAddr, brokers: []string{info.Kafka}, dataDir: cfg.dir, policy: *cfg.serve.policy,
		adminToken: token, urlSecret: urlSecret, simLatency: *cfg.serve.simLatency,
		seedKey: key, seedTenant: "dev", cfg: server.Config{RatePerSec: *cfg.serve.rate, RateBurst: max(100, int(*cfg.serve.rate))}, gw: gateway.Config{SampleRate: *cfg.serve.sample},
		logger: cfg.logger.With("component", "serve"),
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	st.onStop("serve", func(ctx context.Context) error { return s.stop(ctx, 30*time.Second) })
	st.run("serve", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case err := <-s.done:
			s.done <- err // for stop
			return fmt.Errorf("serve stopped: %w", err)
		case err := <-s.adminDone:
			s.adminDone <- err // for stop
			return fmt.Errorf("serve's admin listener stopped: %w", err)
		}
	})
	info.API, info.Admin, info.APIKey, info.AdminToken = s.url, s.adminURL, key, token
	return nil
}

// devSecret reads a secret kept in path, or makes and keeps one.
func devSecret(path, prefix string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > len(prefix)+8 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	s := randomToken(prefix)
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// defaultGCPercent is serve's GOGC. A replica's live heap is small (53-80
// MB in a 5-minute soak) while it allocates per request (bodies, events),
// so collections are frequent at Go's default 100. 400 lets the heap grow
// to five times the live heap between collections; in one measured pair of
// runs it cut CPU per request by 12% and halved the added p99
// (docs/serving.md, "GC").
const defaultGCPercent = 400

func gcPercentFlag(fs *pflag.FlagSet) *int {
	return fs.Int("gc-percent", defaultGCPercent, "Go GC target (GOGC) for this process: heap growth over the live heap before a collection, in percent; the GOGC environment variable wins when set and this flag is not")
}

// applyGCPercent sets the collector's target unless GOGC was given in the
// environment and the flag was not, and the soft memory limit
// (applyMemoryLimit) that keeps the raised target from running the process
// out of memory.
func applyGCPercent(fs *pflag.FlagSet, env Env, percent int) {
	applyMemoryLimit(env)
	if env.Getenv("GOGC") != "" && !fs.Changed("gc-percent") {
		return
	}
	debug.SetGCPercent(percent)
}

// parseTenantCaps reads "tenant=n,tenant=n".
func parseTenantCaps(s string) (map[string]int, error) {
	caps := map[string]int{}
	for _, kv := range splitList(s) {
		t, n, ok := strings.Cut(kv, "=")
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || strings.TrimSpace(t) == "" || err != nil || v < 0 {
			return nil, fmt.Errorf("--limit-daily-images-tenant: %q is not tenant=images (images >= 0)", kv)
		}
		caps[strings.TrimSpace(t)] = v
	}
	return caps, nil
}

func simOptions(o serveOptions) sim.Options {
	opt := o.simOptions
	opt.LatencyScale = o.simLatency
	return opt
}
