package redisstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/routelab/routelab/gateway"
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	URL      string        // redis://[:password@]host:port[/db]; required
	Prefix   string        // key prefix; default "rl:"
	ChainTTL time.Duration // edit-chain nodes and their images; default 1 h
	// IdempotencyTTL keeps finished Idempotency-Key records; default 1 h.
	// A record holds its response, images included (megabytes from a
	// vendor unless the client asks for url): the store needs about
	// keyed requests per second x TTL x response size.
	IdempotencyTTL time.Duration
	InFlightTTL    time.Duration // a claim whose owner died is released after this; default 2 min
	Timeout        time.Duration // per operation; default 1 s
	PingEvery      time.Duration // health check; default 1 s
	// SpendFlushEvery is how often the spend of tenants without a budget
	// is written (budgets.go); default 250 ms.
	SpendFlushEvery time.Duration
	Registry        prometheus.Registerer
	Logger          *slog.Logger
}

// Store is the shared state in one Redis-protocol server. Safe for
// concurrent use.
type Store struct {
	o Options
	c *redis.Client
	// ap batches the commands of concurrent requests into one write and
	// one read (go-redis' autopipelining): a request's store operations
	// then cost a share of a round trip's syscalls, not one each.
	ap     *redis.AutoPipeliner
	log    *slog.Logger
	down   atomic.Pointer[error] // nil while reachable
	errs   *prometheus.CounterVec
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	spend  *spendBatch // budgets.go
}

var (
	_ gateway.CapStore     = (*Store)(nil)
	_ gateway.Limiter      = (*Store)(nil)
	_ gateway.BatchLimiter = (*Store)(nil)
	_ gateway.ChainStore   = (*Store)(nil)
)

// Open connects to o.URL and starts the health check. A store that cannot
// be reached now is no error: the Store starts down (Healthy says so) and
// comes up when the server answers.
func Open(ctx context.Context, o Options) (*Store, error) {
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("state store %q: %w", o.URL, err)
	}
	setDefault(&o.ChainTTL, time.Hour)
	setDefault(&o.IdempotencyTTL, time.Hour)
	setDefault(&o.InFlightTTL, 2*time.Minute)
	setDefault(&o.Timeout, time.Second)
	setDefault(&o.PingEvery, time.Second)
	setDefault(&o.SpendFlushEvery, 250*time.Millisecond)
	if o.Prefix == "" {
		o.Prefix = "rl:"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	// Short timeouts and no retries: a script that timed out may have run,
	// and a retry would count twice; the callers have fallbacks.
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = o.Timeout, o.Timeout, o.Timeout, o.Timeout
	ro.MaxRetries = -1
	ro.DialerRetries = 1 // a down store answers at once: callers fall back
	// RESP2: with RESP3 the client peeks for push notifications (which
	// this store never subscribes to) around every command, a syscall each.
	ro.Protocol = 2
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	s := &Store{o: o, c: redis.NewClient(ro), log: o.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		spend: newSpendBatch()}
	if s.ap, err = s.c.AutoPipeline(); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("state store: autopipeline: %w", err)
	}
	s.errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "routelab_state_store_errors_total", Help: "Shared state store operations that failed, by operation (the store was unreachable or slow).",
	}, []string{"op"})
	o.Registry.MustRegister(s.errs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "routelab_state_store_up", Help: "1 while the shared state store answers, 0 while its callers take their fallbacks.",
	}, func() float64 {
		if s.Healthy() != nil {
			return 0
		}
		return 1
	}))
	s.ping(ctx)
	go s.watch()
	go s.flushSpendLoop()
	return s, nil
}

func setDefault(v *time.Duration, d time.Duration) {
	if *v <= 0 {
		*v = d
	}
}

// Healthy is nil while the store answers, else why not.
func (s *Store) Healthy() error {
	if e := s.down.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops the health check and closes the connections.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.done
	<-s.spend.done // the last flush
	return s.c.Close()
}

func (s *Store) watch() {
	defer close(s.done)
	t := time.NewTicker(s.o.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.ping(context.Background())
		}
	}
}

func (s *Store) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		s.markDown(err)
		return
	}
	if s.down.Swap(nil) != nil {
		s.log.Info("state store reachable again", "url", redactURL(s.o.URL))
	}
}

func (s *Store) markDown(err error) {
	err = fmt.Errorf("%w: %v", gateway.ErrStateUnavailable, err)
	if s.down.Swap(&err) == nil {
		s.log.Warn("state store unreachable: fallbacks apply until it answers", "url", redactURL(s.o.URL), "err", err)
	}
}

// begin fails at once while the store is down; otherwise it bounds the
// operation by Timeout.
func (s *Store) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if err := s.Healthy(); err != nil {
		s.errs.WithLabelValues(op).Inc()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	return ctx, cancel, nil
}

// fail records a failed operation; an error that is not the caller's own
// (cancelled) marks the store down.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	s.errs.WithLabelValues(op).Inc()
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	s.markDown(err)
	return fmt.Errorf("state store %s: %w: %v", op, gateway.ErrStateUnavailable, err)
}

func redactURL(u string) string {
	ro, err := redis.ParseURL(u)
	if err != nil {
		return "?"
	}
	return "redis://" + ro.Addr + "/" + strconv.Itoa(ro.DB)
}

// reserveScript books n on every counter or none: KEYS the counters,
// ARGV n, the expiry (unix seconds), then each counter's limit. Returns
// -1, or the 0-based index of the first counter that would pass its limit.
var reserveScript = redis.NewScript(`
local n = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') + n > tonumber(ARGV[i + 2]) then return i - 1 end
end
for _, k in ipairs(KEYS) do
  redis.call('INCRBY', k, n)
  redis.call('EXPIREAT', k, ARGV[2])
end
return -1`)

// releaseScript takes n back from every counter, never below zero.
var releaseScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if redis.call('DECRBY', k, ARGV[1]) <= 0 then redis.call('DEL', k) end
end
return 0`)

func (s *Store) capKeys(day int64, counters []gateway.Counter) []string {
	keys := make([]string, len(counters))
	d := strconv.FormatInt(day, 10)
	for i, c := range counters {
		keys[i] = s.o.Prefix + "cap:" + d + ":" + c.Key
	}
	return keys
}

// Reserve implements gateway.CapStore.
func (s *Store) Reserve(ctx context.Context, day int64, counters []gateway.Counter, n int) (int, error) {
	ctx, cancel, err := s.begin(ctx, "cap_reserve")
	if err != nil {
		return 0, err
	}
	defer cancel()
	args := make([]any, 0, 2+len(counters))
	args = append(args, n, (day+1)*86400+3600)
	for _, c := range counters {
		args = append(args, c.Limit)
	}
	i, err := reserveScript.Run(ctx, s.ap, s.capKeys(day, counters), args...).Int()
	if err != nil {
		return 0, s.fail(ctx, "cap_reserve", err)
	}
	return i, nil
}

// Release implements gateway.CapStore.
func (s *Store) Release(ctx context.Context, day int64, counters []gateway.Counter, n int) error {
	ctx, cancel, err := s.begin(ctx, "cap_release")
	if err != nil {
		return err
	}
	defer cancel()
	if err := releaseScript.Run(ctx, s.ap, s.capKeys(day, counters), n).Err(); err != nil {
		return s.fail(ctx, "cap_release", err)
	}
	return nil
}

// gcraScript is GCRA on the store's clock (TIME, so replicas' clocks need
// not agree): KEYS[1] holds the theoretical arrival time in µs; ARGV the
// emission interval, the tolerance in µs and the requests admitted at
// once (n). Returns {1, 0} when admitted, {0, µs until they would be}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + tonumber(ARGV[1]) * tonumber(ARGV[3])
local at = nxt - tonumber(ARGV[2])
if at > now then return {0, math.ceil(at - now)} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, 0}`)

// Allow implements gateway.Limiter.
func (s *Store) Allow(ctx context.Context, key string, r gateway.Rate) (bool, time.Duration, error) {
	return s.AllowN(ctx, key, r, 1)
}

// AllowN implements gateway.BatchLimiter: n requests admitted in one step,
// or none.
func (s *Store) AllowN(ctx context.Context, key string, r gateway.Rate, n int) (bool, time.Duration, error) {
	if r.PerSec <= 0 {
		return true, 0, nil
	}
	ctx, cancel, err := s.begin(ctx, "rate")
	if err != nil {
		return false, 0, err
	}
	defer cancel()
	interval := 1e6 / r.PerSec
	res, err := gcraScript.Run(ctx, s.ap, []string{s.o.Prefix + "rate:" + key}, interval, interval*float64(max(r.Burst, 1)), max(n, 1)).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, 0, s.fail(ctx, "rate", fmt.Errorf("gcra: %v %w", res, err))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, max(time.Duration(res[1])*time.Microsecond, time.Millisecond), nil
}

// A chain node is stored as 'R', the hex SHA-256 of its image (kept at
// img:SHA256) and its gateway.ChainMeta in JSON. Serve's replicas with an
// admin listener keep nodes to themselves (server.PeerChains); this store
// holds them for replicas without one.

// PutChain implements gateway.ChainStore: the node and its image (by
// content, so a chain's repeated images are kept once) in one MULTI before
// PutChain returns.
func (s *Store) PutChain(ctx context.Context, n gateway.ChainNode) error {
	meta, err := json.Marshal(n.Meta())
	if err != nil {
		return err
	}
	ctx, cancel, err := s.begin(ctx, "chain_put")
	if err != nil {
		return err
	}
	defer cancel()
	sum := sha256.Sum256(n.Image)
	h := hex.EncodeToString(sum[:])
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.o.Prefix+"img:"+h, n.Image, s.o.ChainTTL)
		p.Set(ctx, s.o.Prefix+"chain:"+n.ID, "R"+h+string(meta), s.o.ChainTTL)
		return nil
	})
	if err != nil {
		return s.fail(ctx, "chain_put", err)
	}
	return nil
}

// chainScript reads a node and its image: KEYS[1] the node, ARGV[1] the
// image key prefix. Returns false when either is gone.
var chainScript = redis.NewScript(`
local m = redis.call('GET', KEYS[1])
if not m then return false end
if string.sub(m, 1, 1) ~= 'R' then return false end
local img = redis.call('GET', ARGV[1] .. string.sub(m, 2, 65))
if not img then return false end
return {m, img}`)

// Chain implements gateway.ChainStore.
func (s *Store) Chain(ctx context.Context, id string) (gateway.ChainNode, bool, error) {
	ctx, cancel, err := s.begin(ctx, "chain_get")
	if err != nil {
		return gateway.ChainNode{}, false, err
	}
	defer cancel()
	res, err := chainScript.Run(ctx, s.ap, []string{s.o.Prefix + "chain:" + id}, s.o.Prefix+"img:").StringSlice()
	if errors.Is(err, redis.Nil) {
		return gateway.ChainNode{}, false, nil
	}
	if err != nil {
		return gateway.ChainNode{}, false, s.fail(ctx, "chain_get", err)
	}
	var m gateway.ChainMeta
	var img []byte
	if len(res) != 2 || len(res[0]) <= 65 || res[0][0] != 'R' {
		return gateway.ChainNode{}, false, nil // a damaged record is an unknown parent
	}
	if err := json.Unmarshal([]byte(res[0][65:]), &m); err != nil {
		return gateway.ChainNode{}, false, nil
	}
	img = []byte(res[1])
	return m.Node(id, img), true, nil
}
