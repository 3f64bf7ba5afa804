// Package replica assembles one serve replica: the image API (server) over
// the serving core (gateway), with what a serve process owns around them:
// the providers built from the model catalog, the Kafka producer and its
// run marker, the control logs of policies, API keys and experiments
// (followed, so every replica converges), the blob store and its sweeper,
// and the image-link secret. `routelab serve`, `routelab dev` and `routelab
// bench serve` start one with Start; Stop drains it.
package replica

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

// Options is what Start needs; the serve, dev and bench commands fill it.
type Options struct {
	Addr       string
	AdminAddr  string // admin API listener; "" = none
	Brokers    []string
	DataDir    string
	Policy     string                // file or shipped policy name, used when no policy is live yet
	Catalog    string                // catalog file; "" = the shipped catalog
	CatalogFix func(*router.Catalog) // adjusts the loaded catalog (bench)
	AdminToken string
	URLSecret  string
	// URLSecretPrevious still verifies links signed before a rotation.
	URLSecretPrevious string
	PublicURL         string
	Sim               sim.Options // the simulated models (LatencyScale: 1 real time, 0 none)
	Blobs             BlobOptions
	SeedKey           string // a key secret inserted for SeedTenant at start (dev)
	SeedTenant        string
	Server            server.Config
	Gateway           gateway.Config
	// OCRWorkers bounds the tesseract processes of the legibility check
	// (prompts with target text); 0 = half the CPUs, at least 1; negative
	// turns the check off. Without tesseract installed the check is off.
	OCRWorkers int
	// KeysMaxStale bounds how old the view of the keys topic may grow
	// before /readyz fails; 0 means DefaultKeysMaxStale.
	KeysMaxStale time.Duration
	// StateStore is the redis:// URL of the store replicas share daily
	// caps, rate limits, vendor budgets, edit chains and Idempotency-Key
	// records through (redisstate); "" keeps them in this process.
	// Server.Replicas and Gateway.Replicas say how many replicas share it.
	StateStore string
	// AdvertiseAdminURL is where other replicas reach this one's admin
	// listener, to fetch the images of edit chains made here; default the
	// admin listener's own URL (right on one machine; behind a network,
	// e.g. http://POD_IP:8081 with --admin-addr 0.0.0.0:8081).
	AdvertiseAdminURL string
	Logger            *slog.Logger
	Registry          *prometheus.Registry
}

// Replica is a running serve: the app, its listeners and what it owns.
type Replica struct {
	srv       *server.Server
	url       string
	adminURL  string // "" without an admin listener
	producer  *kafka.Producer
	shadows   *gateway.ShadowPool // shadow experiments' mirrors, after responses
	logs      []*kafka.ControlLog
	closers   []func() error
	done      chan error
	adminDone chan error
}

// URL is the image API's base URL, http://host:port.
func (r *Replica) URL() string { return r.url }

// AdminURL is the admin API's base URL; "" without an admin listener.
func (r *Replica) AdminURL() string { return r.adminURL }

// Producer is the event producer; nil without brokers.
func (r *Replica) Producer() *kafka.Producer { return r.producer }

// Server is the HTTP server (a benchmark calls its handler directly).
func (r *Replica) Server() *server.Server { return r.srv }

// Start builds serve's dependency graph, leaves first, and starts
// listening.
func Start(ctx context.Context, o Options) (_ *Replica, err error) {
	r := &Replica{done: make(chan error, 1), adminDone: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = r.Stop(context.Background(), 5*time.Second)
		}
	}()
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	cat, err := datasets.LoadCatalog(o.Catalog)
	if err != nil {
		return nil, err
	}
	if o.CatalogFix != nil {
		o.CatalogFix(&cat)
	}
	reg, err := registry.Build(cat, registry.Config{
		Vendors:         registry.VendorsFromEnv(os.Getenv),
		SimulateMissing: true,
		Sim:             o.Sim,
		OnBreakerChange: func(name string, from, to resilience.State) {
			o.Logger.Warn("circuit breaker", "model", name, "from", from.String(), "to", to.String())
		},
	})
	if err != nil {
		return nil, err
	}
	o.Registry.MustRegister(resilience.NewCollector(reg.Breakers))
	logCatalog(o.Logger, cat, reg)
	live := gateway.NewLivePolicy(nil, reg.Breakers)
	keys := server.NewMemKeys()
	var policyLog server.ControlLog = server.NewMemLog()
	var producer server.Producer
	keysReady := func() error { return nil }
	if len(o.Brokers) > 0 {
		if err := kafka.EnsureTopics(ctx, o.Brokers, 0); err != nil {
			return nil, err
		}
		p, err := kafka.NewProducer(kafka.ProducerConfig{
			Brokers: o.Brokers, SpoolDir: filepath.Join(o.DataDir, "spool", "serve"),
			Logger: o.Logger.With("component", "producer"), Registerer: o.Registry,
		})
		if err != nil {
			return nil, err
		}
		r.producer = p
		producer = p
		stopMarker, err := startRunMarker(o.DataDir, func() int { return p.Stats().QueueDepth }, time.Second, o.Logger)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, stopMarker)
		pl, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: o.Brokers, Topic: events.TopicPolicies, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		r.logs = append(r.logs, pl)
		policyLog = pl
		if o.KeysMaxStale <= 0 {
			o.KeysMaxStale = DefaultKeysMaxStale
		}
		kl, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: o.Brokers, Topic: events.TopicKeys, Logger: o.Logger, CheckEvery: controlCheckEvery(o.KeysMaxStale)})
		if err != nil {
			return nil, err
		}
		keysReady = keysFresh(kl, o.KeysMaxStale)
		r.logs = append(r.logs, kl)
		keys.Persist = func(ctx context.Context, k server.Key) error {
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			return kl.Put(ctx, control.APIKeyKey(k.ID), b)
		}
		followKeys(kl, keys, o.Logger)
	} else {
		o.Logger.Warn("no --kafka-brokers: events are discarded, keys and policy live in this process only")
	}
	policies := server.NewPolicyStore(live, policyLog)
	if pl, ok := policyLog.(*kafka.ControlLog); ok {
		pl.Subscribe(func(control.Change) {
			if err := policies.Changed(); err != nil {
				o.Logger.Error("policy update refused", "err", err)
			}
		})
	}
	seed, err := datasets.PolicyDoc(o.Policy)
	if err != nil {
		return nil, err
	}
	if err := policies.Seed(ctx, seed); err != nil {
		return nil, fmt.Errorf("seed policy: %w", err)
	}
	if err := servable(live.Policy(), reg, cat.Version); err != nil {
		return nil, err
	}
	if _, ok := keys.Lookup(server.HashSecret(o.SeedKey)); o.SeedKey != "" && !ok {
		if _, err := keys.Insert(ctx, o.SeedTenant, "dev", o.SeedKey); err != nil {
			return nil, fmt.Errorf("seed key: %w", err)
		}
	}
	exp, err := WireExperiments(ctx, o.Brokers, o.Logger, producer, live, policyLog.Get, reg.Breakers)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, exp.Close)
	blobs, err := openBlobs(ctx, o.Blobs, o.DataDir, o.Registry, o.Logger)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, blobs.stop)
	secret, err := loadURLSecret(o.URLSecret, o.DataDir)
	if err != nil {
		return nil, err
	}
	var state *redisstate.Store
	if o.StateStore != "" {
		if state, err = redisstate.Open(ctx, redisstate.Options{URL: o.StateStore, Registry: o.Registry, Logger: o.Logger.With("component", "state")}); err != nil {
			return nil, err
		}
		r.closers = append(r.closers, state.Close)
	}
	cfg := o.Server
	cfg.AdminToken, cfg.URLSecret, cfg.PublicURL = o.AdminToken, secret, o.PublicURL
	if o.URLSecretPrevious != "" {
		if len(o.URLSecretPrevious) < minURLSecret {
			return nil, fmt.Errorf("--url-secret-previous is %d characters; want at least %d", len(o.URLSecretPrevious), minURLSecret)
		}
		cfg.URLSecretPrevious = []byte(o.URLSecretPrevious)
	}
	var catalog []server.Model
	providerOf := map[string]string{}
	for _, m := range cat.Models {
		if _, ok := reg.Providers[m.Name]; ok {
			catalog = append(catalog, server.Model{Name: m.Name, Provider: m.Provider, Sizes: m.Sizes,
				CostUSD: prices(m.CostUSD), Simulated: m.Simulated || slices.Contains(reg.Simulated, m.Name), Transparent: m.TransparentBackground, MaxImages: m.MaxImages})
			providerOf[m.Name] = m.Provider
		}
	}
	r.shadows = gateway.NewShadowPool(4, 256)
	gdeps := gateway.Deps{
		Policy:     live,
		Providers:  reg.Providers,
		ProviderOf: providerOf,
		QA:         newQA(o.OCRWorkers, o.Logger),
		Sizes:      &cat,
		Events:     producer,
		Blobs:      blobs,
		Assigner:   exp.Assigner,
		Shadows:    r.shadows,
		Registry:   o.Registry,
		Logger:     o.Logger,
	}
	sdeps := server.Deps{}
	var peers *server.ChainPeers
	if state != nil {
		gdeps.Caps, gdeps.Chains, gdeps.Limits = state, state, state
		sdeps.Rates, sdeps.Idempotency, sdeps.State = state, state, state
		if o.AdminAddr != "" && o.AdminToken != "" {
			// Chain nodes stay here, and a replica lacking one asks the
			// others in the store's directory: no response writes to the
			// store for its chain.
			peers = &server.ChainPeers{Token: o.AdminToken}
			gdeps.Chains = &server.PeerChains{Peers: peers, Directory: state}
		}
	}
	gw := gateway.New(o.Gateway, gdeps)
	sdeps.Gateway, sdeps.Catalog, sdeps.Events, sdeps.Keys, sdeps.Blobs = gw, catalog, producer, keys, blobs
	sdeps.Experiments, sdeps.Policy, sdeps.Registry = exp.Registry, policies, o.Registry
	sdeps.AutoPrice = func() *server.AutoPrice { return autoPrice(live.Policy()) }
	sdeps.Ready = func() error {
		if live.Policy() == nil {
			return errors.New("no policy loaded")
		}
		return keysReady()
	}
	r.srv = server.New(o.Logger, cfg, sdeps)
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	var aln net.Listener
	if o.AdminAddr != "" {
		if aln, err = net.Listen("tcp", o.AdminAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		r.adminURL = "http://" + aln.Addr().String()
		if peers != nil {
			peers.SelfURL = cmp.Or(o.AdvertiseAdminURL, advertised(aln.Addr()))
			// first in line at Stop, before the store closes
			r.closers = append([]func() error{announce(state, peers.SelfURL, o.Logger)}, r.closers...)
		}
		go func() { r.adminDone <- r.srv.ServeAdmin(aln) }()
	}
	r.url = "http://" + ln.Addr().String()
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// Wait returns nil when ctx ends, or the error with which a listener
// stopped serving (the admin listener's as "admin listener: ..."). Stop
// drains the replica after either.
func (r *Replica) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.done:
		r.done <- err // for Stop
		return err
	case err := <-r.adminDone:
		r.adminDone <- err // for Stop
		return fmt.Errorf("admin listener: %w", err)
	}
}

// Stop drains the server, then flushes events and closes the control logs.
func (r *Replica) Stop(ctx context.Context, drain time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	var errs []error
	if r.srv != nil && r.url != "" {
		if err := r.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain http: %w", err))
		}
		if err := <-r.done; err != nil {
			errs = append(errs, err)
		}
		if r.adminURL != "" {
			if err := <-r.adminDone; err != nil {
				errs = append(errs, fmt.Errorf("admin listener: %w", err))
			}
		}
		r.url, r.adminURL = "", ""
	}
	if r.shadows != nil {
		r.shadows.Close(ctx) // their events go out with the producer's flush
		r.shadows = nil
	}
	if r.producer != nil {
		if err := r.producer.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush events: %w", err))
		}
		r.producer = nil
	}
	for _, l := range r.logs {
		_ = l.Close()
	}
	for _, c := range r.closers {
		_ = c()
	}
	r.logs, r.closers = nil, nil
	return errors.Join(errs...)
}

// Directory entries: renewed every announceEvery, they lapse after
// announceTTL (a replica that died leaves the directory within it).
const (
	announceEvery = 10 * time.Second
	announceTTL   = 30 * time.Second
)

// announce lists url in the replica directory until the returned stop is
// called, which takes it out.
func announce(state *redisstate.Store, url string, log *slog.Logger) (stop func() error) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(announceEvery)
		defer t.Stop()
		for {
			if err := state.Announce(context.Background(), url, announceTTL); err != nil {
				log.Warn("replica directory: not announced; edits of this replica's images elsewhere fail until it is", "url", url, "err", err)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() error {
		close(done)
		<-finished
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return state.Withdraw(ctx, url)
	}
}

// newQA is automated QA with the legibility check when tesseract is there
// and workers allow it.
func newQA(workers int, log *slog.Logger) gateway.QA {
	c := qa.New(qa.DefaultThresholds()).WithCache(4096)
	if workers < 0 {
		return gateway.NewQA(c)
	}
	bin, err := tesseract.Find()
	if err != nil {
		log.Warn("legibility QA off", "err", err)
		return gateway.NewQA(c)
	}
	if workers == 0 {
		workers = max(1, runtime.NumCPU()/2)
	}
	log.Info("legibility QA on", "tesseract", bin, "workers", workers)
	return gateway.NewTextQA(c, qa.NewTextChecker(tesseract.New(bin, workers, tesseract.PSMSparse), qa.TextThresholds{}), log.With("component", "qa"))
}

// logCatalog says at start which models are live (a vendor key or a
// simulated catalog model), which vendor models the simulator acts out for
// want of a key, and which are left out and why.
func logCatalog(log *slog.Logger, cat router.Catalog, reg *registry.Registry) {
	var live []string
	for _, m := range cat.Models {
		if _, ok := reg.Providers[m.Name]; ok && !slices.Contains(reg.Simulated, m.Name) {
			live = append(live, m.Name)
		}
	}
	log.Info("catalog", "version", cat.Version, "live", strings.Join(live, ","), "simulated_no_key", strings.Join(reg.Simulated, ","))
	for _, name := range slices.Sorted(maps.Keys(reg.Missing)) {
		log.Warn("model left out", "model", name, "reason", reg.Missing[name])
	}
}

// servable refuses to start with a live policy that routes to a model no
// provider serves: it would start fine and answer those requests with 503
// no_model_available.
func servable(p *router.Policy, reg *registry.Registry, catalog string) error {
	if p == nil {
		return nil
	}
	for _, m := range p.Models {
		if _, ok := reg.Providers[m.Name]; ok {
			continue
		}
		why := "catalog " + catalog + " lacks it"
		if r, ok := reg.Missing[m.Name]; ok {
			why = r
		}
		return fmt.Errorf("policy %s routes to model %s, which cannot be served (%s): start with a policy for this catalog (--policy) or push one", p.Version, m.Name, why)
	}
	return nil
}

// autoPrice is "auto"'s price under the live policy p (nil: none yet).
func autoPrice(p *router.Policy) *server.AutoPrice {
	if p == nil {
		return nil
	}
	rp := p.RoutePrice()
	ap := &server.AutoPrice{PolicyVersion: p.Version, MinUSD: rp.MinUSD, MaxUSD: rp.MaxUSD,
		Basis: "range: the cheapest and the dearest image among the models the live policy routes between (a rules policy's mean depends on the traffic)"}
	if len(rp.ExpectedUSD) > 0 {
		ap.Basis = "expected_usd: mean cost per image by quality tier at the live policy's thresholds, measured on held-out traffic when it was trained; min/max: the range among its models"
		ap.ExpectedUSD = map[string]float64{}
		for t, c := range rp.ExpectedUSD {
			ap.ExpectedUSD[string(t)] = c
		}
	}
	return ap
}

// prices is a catalog model's price table with string tiers, for GET /v1/models.
func prices(c map[string]map[router.Tier]float64) map[string]map[string]float64 {
	out := make(map[string]map[string]float64, len(c))
	for size, byTier := range c {
		out[size] = make(map[string]float64, len(byTier))
		for t, usd := range byTier {
			out[size][string(t)] = usd
		}
	}
	return out
}

// advertised is the admin URL other replicas can reach this one at when
// none is configured: the listener's address, or, when it listens on every
// interface (0.0.0.0 or ::, as in a container), this host's first
// non-loopback address: a container's or pod's own IP, which its peers
// reach it by.
func advertised(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return "http://" + a.String()
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range addrs {
			if ip, ok := ia.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
				return "http://" + net.JoinHostPort(ip.IP.String(), strconv.Itoa(tcp.Port))
			}
		}
	}
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}
