// Package gateway is routelab's serving core: one Serve call takes a
// validated image request through experiment assignment, the live policy's
// decision, the tenant's daily cap, provider attempts behind their
// concurrency gates, automated QA, fallback, escalation, edit-chain
// restarts and the review-sampling draw, and emits its decision and QA
// events. The HTTP server (server/), `routelab sim` and every lab scenario
// call the same Serve, so what the lab measures is what production does.
//
// The gateway does no HTTP and reads no flags; its clock is injected, so
// the lab runs it in virtual time with simulated providers.
package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Request is one validated image request.
type Request struct {
	ID          string
	Tenant      string
	Unit        string // experiment unit; "" = the request id
	Mode        router.Mode
	Prompt      string
	Refs        References // nil: none
	Mask        []byte
	N           int
	Width       int
	Height      int
	Format      string // png | jpeg | webp
	Compression *int   // output_compression, 0-100; nil: none
	Tier        router.Tier
	Constraints router.Constraints
	Pin         string // an explicit model, "" = route
	ParentID    string // edit chain: the earlier request whose output is edited
	// OpenAI Images options passed to the provider (providers.Request);
	// a transparent Background also restricts routing to models that can.
	// User, the tenant's end user, also has daily caps of its own.
	Background, Moderation, InputFidelity, Style, User string

	shadowOf string // a shadow experiment's mirror of this live request id
}

// References are a request's reference images. Count is known at once;
// Load does the expensive work (fetching, decoding: hundreds of megabytes
// for a hostile PNG) and Serve calls it only once the request is admitted:
// routed, and its images booked against the tenant's daily cap.
type References interface {
	Count() int
	Load(ctx context.Context) ([][]byte, error)
}

// Loaded are references already in memory.
type Loaded [][]byte

// Count is how many there are.
func (l Loaded) Count() int { return len(l) }

// Load returns them.
func (l Loaded) Load(context.Context) ([][]byte, error) { return l, nil }

// CodeReferenceFailed is the decision event's error code when the
// references did not load; the caller gets the loader's own error.
const CodeReferenceFailed = "reference_failed"

// Outcome is a served request.
type Outcome struct {
	ID        string
	Created   time.Time
	Decision  router.Decision // the route as decided (before any fallback)
	Arms      []events.Arm
	Model     string // model whose images are returned
	Provider  string
	Escalated bool
	Fallback  bool
	Reset     bool // an edit chain restarted from its cleanest image
	Attempts  []events.Attempt
	Latency   time.Duration
	CostUSD   float64
	Usage     *providers.Usage // the returned images' token usage, when the vendor reports one
	Images    []providers.Image
	QAPass    bool
	Score     float64 // QA score of the returned images
	Sampled   bool
	BlobKey   string
}

// Sink takes events. Enqueue never blocks: a full queue spills or counts a
// drop, it never makes a request wait.
type Sink interface {
	Enqueue(topic, key string, ev any)
}

// Backlog is implemented by sinks that can run out of room (the Kafka
// producer, while neither its broker nor its spool takes events). While
// Backlogged, Serve and Feedback refuse work (CodeEventsBacklogged) rather
// than answer it and lose its events.
type Backlog interface {
	Backlogged() bool
}

// BlobStore keeps image bytes by content address.
type BlobStore interface {
	Put(ctx context.Context, data []byte) (key string, err error)
	Get(ctx context.Context, key string) ([]byte, error)
}

// Config holds the serving limits. Zero values take the defaults.
type Config struct {
	MaxEscalations      int           // extra models tried after a QA failure; default 1, negative none
	ProviderConcurrency int           // in-flight calls per provider; default 64
	ProviderQueue       int           // waiting calls per provider before shedding; default 64
	QueueWait           time.Duration // longest wait for a provider slot; default 2 s

	DailyCap  int            // images per tenant per UTC day; 0 = unlimited
	DailyCaps map[string]int // per-tenant caps overriding DailyCap (0 = unlimited for that tenant)
	// DailyCapUser caps the images of one end user (Request.User) of a
	// tenant per UTC day, DailyCapHiRes their high-resolution ones (at
	// least HiResPixels, default 2,000,000: 1536x1536 is, 1792x1024 is
	// not); 0 = unlimited. Requests without a user have neither.
	DailyCapUser  int
	DailyCapHiRes int
	HiResPixels   int

	// DailyBudgetUSD and MonthlyBudgetUSD are every tenant's spend budget
	// per UTC day and month in US dollars, DailyBudgetsUSD and
	// MonthlyBudgetsUSD per-tenant budgets overriding them (0 = none for
	// that tenant); 0 = none. A request past one is refused with
	// CodeBudgetExhausted (see budgets.go).
	DailyBudgetUSD    float64
	DailyBudgetsUSD   map[string]float64
	MonthlyBudgetUSD  float64
	MonthlyBudgetsUSD map[string]float64

	// VendorPerMinute is each provider's request budget per minute,
	// shared by every replica through Deps.Limits (vendors rate-limit a
	// whole organisation); a call past it is not made and the fallback
	// chain moves on. Absent or 0: none.
	VendorPerMinute map[string]int
	// Replicas is how many replicas share the limits: while the shared
	// store is unreachable each takes limit / Replicas. Default 1.
	Replicas int

	// ContentPolicyFallback lists the tenants that opted in to having a
	// model's content-policy refusal tried on the next model of the chain
	// ("*": every tenant). For the others a refusal ends the request with
	// content_policy and the vendor's reason: another vendor's filter is
	// not a way around the first one's without the tenant's say.
	ContentPolicyFallback []string

	SampleRate  float64            // review sampling rate per stratum; default 0.05, negative none
	SampleRates map[string]float64 // per stratum "model|tier|arm" (arm "-" when none), or "model", overriding SampleRate
	// FailureBoost multiplies a stratum's rate (capped at 1) for outputs
	// that failed QA, escalated or reset an edit chain, so reviewers see
	// what goes wrong more often; each decision records the rate it was
	// drawn at, and estimates weight a reviewed output by its inverse.
	// Default 4; 1 or less samples failures like the rest.
	FailureBoost float64

	ChainSize  int   // remembered edit-chain nodes; default 4096
	ChainBytes int64 // image bytes those nodes may hold; default 256 MiB

	// FeedbackSize is how many recent requests are remembered with their
	// tenant for /v1/feedback's ownership check and dedupe; default 200,000
	// (about 20 MB).
	FeedbackSize int
}

func (c Config) withDefaults() Config {
	setDefault(&c.ProviderConcurrency, 64)
	setDefault(&c.ProviderQueue, 64)
	setDefault(&c.QueueWait, 2*time.Second)
	setDefault(&c.ChainSize, 4096)
	setDefault(&c.ChainBytes, 256<<20)
	setDefault(&c.FeedbackSize, 200_000)
	setDefault(&c.HiResPixels, 2_000_000)
	setDefault(&c.Replicas, 1)
	if c.MaxEscalations == 0 {
		c.MaxEscalations = 1
	}
	if c.SampleRate == 0 {
		c.SampleRate = 0.05
	}
	setDefault(&c.FailureBoost, 4)
	return c
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Deps are the parts the gateway calls. Policy and Providers are required;
// the rest may be nil (no QA: every image passes; no events; no sampling
// storage; no experiments).
type Deps struct {
	Policy    Policy
	Providers map[string]providers.Provider // by catalog model name
	// ProviderOf names the provider (the concurrency gate) of each model;
	// a model missing here has a gate of its own.
	ProviderOf map[string]string
	QA         QA
	// Sizes gives the size each model answers a request at (its native
	// size for the requested aspect: router.Catalog.NativeSize); QA judges
	// a model's image against that, not against a size the vendor cannot
	// produce. nil: the requested size.
	Sizes    Sizes
	Events   Sink
	Blobs    BlobStore
	Assigner Assigner
	// Shadows runs shadow experiments' mirrors after the live response
	// (a ShadowPool in serve; the lab runs them in turn); nil: none run.
	Shadows ShadowRunner
	// Caps, Chains and Limits are the state replicas share (redisstate):
	// daily caps and, when Caps is also a SpendStore, spend budgets; edit
	// chains; vendor budgets. nil: this replica's memory.
	Caps     CapStore
	Chains   ChainStore
	Limits   Limiter
	Registry prometheus.Registerer // nil: a private registry
	Logger   *slog.Logger          // nil: discard
	Now      func() time.Time      // nil: time.Now
}

// Sizes is the size a model answers a w×h request at.
type Sizes interface {
	NativeSize(model string, w, h int) (int, int)
}

// Gateway serves image requests; safe for concurrent use.
type Gateway struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	caps CapStore
	// leased books unbudgeted requests' caps: caps itself, or with a
	// shared store its large caps leased in blocks (lease.go)
	leased   CapStore
	ledger   SpendStore       // tenants' spend: caps when it is one
	vendor   *RateLimits      // vendor budgets
	gates    map[string]*gate // by provider name
	chains   *chains          // this replica's; Deps.Chains when shared
	feedback *feedbackLog
	backlog  Backlog // deps.Events, when it can run out of room
	spend    shadowSpend
}

// New builds a gateway.
func New(cfg Config, deps Deps) *Gateway {
	cfg = cfg.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger,
		caps:     deps.Caps,
		gates:    map[string]*gate{},
		chains:   newChains(cfg.ChainSize, cfg.ChainBytes),
		feedback: newFeedbackLog(cfg.FeedbackSize),
	}
	for model := range deps.Providers {
		name := g.gateName(model)
		if _, ok := g.gates[name]; !ok {
			g.gates[name] = newGate(cfg.ProviderConcurrency, cfg.ProviderQueue, cfg.QueueWait)
		}
	}
	g.leased = g.caps
	if g.caps == nil {
		g.caps = NewMemCaps()
		g.leased = g.caps
	} else if _, mem := g.caps.(*MemCaps); !mem {
		g.leased = newCapLeases(g.caps, cfg.Replicas) // a shared store
	}
	if l, ok := g.caps.(SpendStore); ok {
		g.ledger = l
	} else {
		g.ledger = splitLedger{caps: g.caps, MemCaps: NewMemCaps()}
	}
	g.backlog, _ = deps.Events.(Backlog)
	g.m = newMetrics(deps.Registry, g.gates)
	g.vendor = NewRateLimits(deps.Limits, cfg.Replicas, deps.Now, func(key string, err error) {
		g.m.stateFallback.WithLabelValues("vendor_budget").Inc()
		g.log.Warn("vendor budget store unavailable: this replica's share applies", "budget", key, "err", err)
	})
	return g
}

// refuseBacklogged returns errBacklogged, counted, while the event sink is
// backlogged: the events of the work could not be kept.
func (g *Gateway) refuseBacklogged() error {
	if g.backlog == nil || !g.backlog.Backlogged() {
		return nil
	}
	g.m.limited.WithLabelValues(CodeEventsBacklogged).Inc()
	return errBacklogged
}

func (g *Gateway) gateName(model string) string {
	if p := g.deps.ProviderOf[model]; p != "" {
		return p
	}
	return model
}

// CountLimited counts a request refused by a limit the caller applies (the
// server's per-key rate), next to the gateway's own (daily_cap, shed).
func (g *Gateway) CountLimited(reason string) { g.m.limited.WithLabelValues(reason).Inc() }
