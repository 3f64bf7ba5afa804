package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/server"
	"github.com/routelab/routelab/server/replica"
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

Limits (rate per key, daily caps per tenant, per end user and on high-resolution
renders per end user, spend budgets per tenant per day and month in dollars, vendor
budgets per minute) are shared by every replica through --state-store (Redis or
Valkey), as are edit chains and Idempotency-Key records; without it they are per
replica. A request books its estimated cost (list price x n) against its tenant's
budgets before the provider call and settles the actual cost after; past a budget it
gets 429 budget_exhausted with Retry-After the budget's reset, and at 80% of a budget
an audit event (action budget.alert) and a warning are logged once per period.
GET /v1/usage shows a key's tenant its spend, budgets and resets. When the store
cannot be reached, rate limits and vendor budgets fall back to limit/--replicas on
each replica, daily caps and spend budgets refuse with 503 state_unavailable, and
idempotency and edit chains work on this replica only
(a warning is logged); /readyz lists the store as degraded. Provider concurrency
is per replica. An edit chain's image stays on the replica that made it; another
replica editing it fetches it from that one's admin listener (--advertise-admin-url,
with the admin token all replicas share).`

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("serve", serveHelp)
	o := replica.Options{}
	addr := fs.String("http-addr", "127.0.0.1:8080", "listen address (env ROUTELAB_HTTP_ADDR)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:8081", "admin API listen address, kept off the public port; empty serves no admin API (env ROUTELAB_ADMIN_ADDR)")
	brokers := fs.String("kafka-brokers", "", "Kafka brokers, comma separated; empty discards events (env ROUTELAB_KAFKA_BROKERS)")
	dataDir := fs.String("data-dir", "./.routelab", "data dir: blobs/ for sampled images, spool/ for events while Kafka is away (env ROUTELAB_DATA_DIR)")
	policy := fs.String("policy", "rules", "policy used when none is live yet: a file or a shipped name (rules, explore); with --catalog vendors the default is the vendors policy")
	catalog := fs.String("catalog", "", catalogHelp)
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
	limits := addLimitFlags(fs, 50)
	stateStore := fs.String("state-store", "", "redis:// URL of the Redis or Valkey the replicas share daily caps, spend budgets, rate limits, vendor budgets, edit chains and Idempotency-Key records through; empty keeps them in this process (env ROUTELAB_STATE_STORE)")
	advertise := fs.String("advertise-admin-url", "", "where other replicas reach this one's admin listener, to fetch the images of edit chains made here, e.g. http://POD_IP:8081 (default: the admin listener's address) (env ROUTELAB_ADVERTISE_ADMIN_URL)")
	replicas := fs.Int("replicas", 1, "how many replicas share --state-store: while it is unreachable each allows limit/replicas (env ROUTELAB_REPLICAS)")
	sample := fs.Float64("review-sample-rate", 0.05, "share of outputs sampled for human review, per stratum (model|tier|arm)")
	refusalFallback := fs.StringSlice("content-policy-fallback", nil, "tenants (comma-separated; * for all) whose content-policy refusals are tried on the next model of the chain; for the others a refusal ends the request with content_policy and the vendor's coded reason")
	boost := fs.Float64("review-failure-boost", 4, "failure audits: outputs that failed QA, escalated or reset an edit chain are sampled at this many times their stratum's rate (capped at 1); the rate is recorded with each decision and review estimates weigh by its inverse; 1 samples them like the rest")
	refAllow := fs.String("ref-allow", "", "CIDRs reference URLs may reach despite being private/loopback, comma separated")
	urlSecretPrev := fs.String("url-secret-previous", "", "the image-link secret before a rotation: links it signed keep opening until they expire, new links use --url-secret (env ROUTELAB_URL_SECRET_PREVIOUS)")
	blobS3Flag(fs)
	blobDir := fs.String("blob-dir", "", "blob store (sampled outputs, image links); default DATA_DIR/blobs. Put it on a volume apart from DATA_DIR/spool so full blobs cannot stop event spooling (env ROUTELAB_BLOB_DIR)")
	blobRetention := fs.Duration("blob-retention", 30*24*time.Hour, "blobs older than this are deleted (swept hourly at most); 0 keeps them forever")
	blobMinFree := fs.Uint64("blob-min-free", 1<<30, "bytes that must stay free on the blob store's disk; writes past that are refused (routelab_blob_writes_refused_total); 0 = no check")
	fs.IntVar(&o.OCRWorkers, "qa-ocr-workers", 0, "tesseract processes at once for the legibility check of prompts with text to render; 0 = half the CPUs, negative = no legibility check")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests and the event flush")
	fs.DurationVar(&o.KeysMaxStale, "keys-max-staleness", replica.DefaultKeysMaxStale, "readiness fails when the view of the keys topic (revocations) is older than this")
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
	envDefault(fs, env, "url-secret-previous", "ROUTELAB_URL_SECRET_PREVIOUS")
	envDefault(fs, env, "blob-dir", "ROUTELAB_BLOB_DIR")
	envDefault(fs, env, "public-url", "ROUTELAB_PUBLIC_URL")
	envDefault(fs, env, "trusted-proxies", "ROUTELAB_TRUSTED_PROXIES")
	envDefault(fs, env, "state-store", "ROUTELAB_STATE_STORE")
	envDefault(fs, env, "replicas", "ROUTELAB_REPLICAS")
	envDefault(fs, env, "advertise-admin-url", "ROUTELAB_ADVERTISE_ADMIN_URL")
	o.Addr, o.AdminAddr, o.DataDir, o.Catalog = *addr, *adminAddr, *dataDir, *catalog
	o.Policy = policyForCatalog(fs, *policy, *catalog)
	o.Brokers = splitList(*brokers)
	o.Blobs = replica.BlobOptions{Dir: *blobDir, Retention: *blobRetention, MinFree: *blobMinFree}
	o.AdminToken, o.URLSecret, o.PublicURL, o.Sim.LatencyScale = *adminToken, *urlSecret, *publicURL, *simLatency
	o.URLSecretPrevious = *urlSecretPrev
	s3, err := blobS3Config(fs, env)
	if err != nil {
		return err
	}
	o.Blobs.S3 = s3
	o.Server = server.Config{
		BodyLimit: *bodyLimit, ReadHeaderTimeout: *headerTimeout, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout,
		IdleTimeout: *idleTimeout, MaxConns: *maxConns, MaxConnsPerIP: *maxConnsPerIP,
		TrustedProxies: splitList(*trusted), Replicas: *replicas,
	}
	o.Gateway = gateway.Config{SampleRate: *sample, FailureBoost: *boost, Replicas: *replicas, ContentPolicyFallback: *refusalFallback}
	if *sample == 0 {
		o.Gateway.SampleRate = -1
	}
	if err := limits.apply(&o.Server, &o.Gateway); err != nil {
		return err
	}
	o.StateStore, o.AdvertiseAdminURL = *stateStore, *advertise
	for _, c := range splitList(*refAllow) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("--ref-allow %q: %w", c, err)
		}
		o.Server.RefAllow = append(o.Server.RefAllow, p)
	}
	fmt.Fprintf(env.Stderr, "serve: http-addr=%s admin-addr=%s kafka-brokers=%s data-dir=%s policy=%s admin-token=%s url-secret=%s sim-latency-scale=%g body-limit=%d %s state-store=%s replicas=%d review-sample-rate=%g qa-ocr-workers=%d\n",
		o.Addr, o.AdminAddr, *brokers, o.DataDir, o.Policy, mask(o.AdminToken), mask(o.URLSecret), o.Sim.LatencyScale, *bodyLimit, limits, maskURL(o.StateStore), *replicas, *sample, o.OCRWorkers)
	o.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil)).With("component", "serve")
	applyGCPercent(fs, env, *gcPercent)
	s, err := replica.Start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "serve: listening on %s, admin API on %s\n", s.URL(), s.AdminURL())
	if err := s.Wait(ctx); err != nil {
		return errors.Join(err, s.Stop(context.Background(), *drain))
	}
	fmt.Fprintln(env.Stderr, "serve: draining")
	return s.Stop(context.Background(), *drain)
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
