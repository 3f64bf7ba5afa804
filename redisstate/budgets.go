package redisstate

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routelab/routelab/gateway"
)

var _ gateway.SpendStore = (*Store)(nil)

// bookScript is reserveScript with spend: it books n on every cap counter
// and an amount on every spend counter, or nothing. KEYS the cap counters,
// then the m spend counters, then their m alert flags; ARGV n, the caps'
// expiry, the number of cap counters, the amount, each cap's limit, then
// each spend counter's budget (0: none), expiry and alert threshold (0:
// none). Returns {-1, due} when booked, due 1 when a spend counter is at
// or past its threshold with its alert flag unset; or {i, 0} with i the
// 0-based index (over KEYS) of the first counter that refuses: a cap that
// would pass its limit, a budget reached or that the amount would pass.
var bookScript = redis.NewScript(`
local n, nc, amt = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local m = (#KEYS - nc) / 2
for i = 1, nc do
  if tonumber(redis.call('GET', KEYS[i]) or '0') + n > tonumber(ARGV[4 + i]) then return {i - 1, 0} end
end
local base = 4 + nc
for j = 1, m do
  local lim = tonumber(ARGV[base + 3 * j - 2])
  if lim > 0 then
    local cur = tonumber(redis.call('GET', KEYS[nc + j]) or '0')
    if cur >= lim or cur + amt > lim then return {nc + j - 1, 0} end
  end
end
for i = 1, nc do
  redis.call('INCRBY', KEYS[i], n)
  redis.call('EXPIREAT', KEYS[i], ARGV[2])
end
local due = 0
for j = 1, m do
  local v = redis.call('INCRBY', KEYS[nc + j], amt)
  redis.call('EXPIREAT', KEYS[nc + j], ARGV[base + 3 * j - 1])
  local at = tonumber(ARGV[base + 3 * j])
  if at > 0 and v >= at and redis.call('EXISTS', KEYS[nc + m + j]) == 0 then due = 1 end
end
return {-1, due}`)

// settleScript adds a delta to spend counters and claims their alerts:
// KEYS the m counters then their m alert flags; ARGV the delta, then each
// counter's expiry and alert threshold (0: none). Returns per counter 1
// when this call set its alert flag (first at or past the threshold in
// the period), else 0.
var settleScript = redis.NewScript(`
local m = #KEYS / 2
local d = tonumber(ARGV[1])
local out = {}
for i = 1, m do
  local v = redis.call('INCRBY', KEYS[i], d)
  if v < 0 then
    redis.call('SET', KEYS[i], 0)
    v = 0
  end
  local exp = ARGV[2 * i]
  redis.call('EXPIREAT', KEYS[i], exp)
  out[i] = 0
  local at = tonumber(ARGV[2 * i + 1])
  if at > 0 and v >= at and redis.call('SET', KEYS[m + i], 1, 'NX', 'EXAT', exp) then out[i] = 1 end
end
return out`)

func (s *Store) spendKey(c gateway.SpendCounter) string {
	return s.o.Prefix + "spend:" + strconv.FormatInt(c.Period, 10) + ":" + c.Key
}

func (s *Store) alertKey(c gateway.SpendCounter) string {
	return s.o.Prefix + "spendalert:" + strconv.FormatInt(c.Period, 10) + ":" + c.Key
}

// Book implements gateway.SpendStore: the caps and the spend in one
// script, so a budgeted request costs the store no more round trips than
// a capped one.
func (s *Store) Book(ctx context.Context, day int64, caps []gateway.Counter, n int, spend []gateway.SpendCounter, amount int64) (int, bool, error) {
	ctx, cancel, err := s.begin(ctx, "budget_book")
	if err != nil {
		return 0, false, err
	}
	defer cancel()
	keys := make([]string, 0, len(caps)+2*len(spend))
	keys = append(keys, s.capKeys(day, caps)...)
	args := make([]any, 0, 4+len(caps)+3*len(spend))
	args = append(args, n, (day+1)*86400+3600, len(caps), amount)
	for _, c := range caps {
		args = append(args, c.Limit)
	}
	for _, c := range spend {
		keys = append(keys, s.spendKey(c))
		args = append(args, c.Limit, c.Expires, c.Alert)
	}
	for _, c := range spend {
		keys = append(keys, s.alertKey(c))
	}
	res, err := bookScript.Run(ctx, s.ap, keys, args...).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, false, s.fail(ctx, "budget_book", fmt.Errorf("book: %v %w", res, err))
	}
	return int(res[0]), res[1] == 1, nil
}

// Settle implements gateway.SpendStore.
func (s *Store) Settle(ctx context.Context, spend []gateway.SpendCounter, delta int64) ([]bool, error) {
	ctx, cancel, err := s.begin(ctx, "budget_settle")
	if err != nil {
		return nil, err
	}
	defer cancel()
	keys := make([]string, 2*len(spend))
	args := make([]any, 0, 1+2*len(spend))
	args = append(args, delta)
	for i, c := range spend {
		keys[i] = s.spendKey(c)
		keys[len(spend)+i] = s.alertKey(c)
		args = append(args, c.Expires, c.Alert)
	}
	res, err := settleScript.Run(ctx, s.ap, keys, args...).Int64Slice()
	if err != nil || len(res) != len(spend) {
		return nil, s.fail(ctx, "budget_settle", fmt.Errorf("settle: %v %w", res, err))
	}
	out := make([]bool, len(spend))
	for i, v := range res {
		out[i] = v == 1
	}
	return out, nil
}

// spendBatch is the spend of tenants without a budget not yet written:
// AddSpend adds here and the flusher writes it every SpendFlushEvery, one
// MULTI for all tenants, so such a request costs the store no round trip.
type spendBatch struct {
	mu      sync.Mutex
	pending map[string]pendingSpend // by store key
	// flushing is held by a flush and by Spent, so that a read sees an
	// amount either in the store or in pending, never in neither.
	flushing sync.Mutex
	done     chan struct{}
}

type pendingSpend struct{ n, expires int64 }

func newSpendBatch() *spendBatch {
	return &spendBatch{pending: map[string]pendingSpend{}, done: make(chan struct{})}
}

func (b *spendBatch) add(key string, n, expires int64) {
	p := b.pending[key]
	b.pending[key] = pendingSpend{n: p.n + n, expires: max(p.expires, expires)}
}

// AddSpend implements gateway.SpendStore: the amount is written with the
// next flush (other replicas see it then; this one at once). While the
// store is down it waits here and is written once the store is back.
func (s *Store) AddSpend(_ context.Context, spend []gateway.SpendCounter, amount int64) error {
	s.spend.mu.Lock()
	defer s.spend.mu.Unlock()
	for _, c := range spend {
		s.spend.add(s.spendKey(c), amount, c.Expires)
	}
	return nil
}

// Spent implements gateway.SpendStore: the store's counters plus what
// this replica has not written yet.
func (s *Store) Spent(ctx context.Context, spend []gateway.SpendCounter) ([]int64, error) {
	s.spend.flushing.Lock()
	defer s.spend.flushing.Unlock()
	ctx, cancel, err := s.begin(ctx, "spend_get")
	if err != nil {
		return nil, err
	}
	defer cancel()
	keys := make([]string, len(spend))
	for i, c := range spend {
		keys[i] = s.spendKey(c)
	}
	vals, err := s.ap.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.fail(ctx, "spend_get", err)
	}
	out := make([]int64, len(spend))
	s.spend.mu.Lock()
	defer s.spend.mu.Unlock()
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i], _ = strconv.ParseInt(str, 10, 64)
		}
		out[i] += s.spend.pending[keys[i]].n
	}
	return out, nil
}

// flushSpendLoop writes the batched spend every SpendFlushEvery, and once
// more when the store closes.
func (s *Store) flushSpendLoop() {
	defer close(s.spend.done)
	t := time.NewTicker(s.o.SpendFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.flushSpend(context.Background())
			return
		case <-t.C:
			s.flushSpend(context.Background())
		}
	}
}

// flushSpend writes the pending spend in one MULTI; when that fails the
// amounts go back to pending for the next flush.
func (s *Store) flushSpend(ctx context.Context) {
	b := s.spend
	b.flushing.Lock()
	defer b.flushing.Unlock()
	b.mu.Lock()
	batch := b.pending
	if len(batch) == 0 {
		b.mu.Unlock()
		return
	}
	b.pending = make(map[string]pendingSpend, len(batch))
	b.mu.Unlock()
	ctx, cancel, err := s.begin(ctx, "spend_add")
	if err == nil {
		_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for k, v := range batch {
				p.IncrBy(ctx, k, v.n)
				p.ExpireAt(ctx, k, time.Unix(v.expires, 0))
			}
			return nil
		})
		if err != nil {
			err = s.fail(ctx, "spend_add", err)
		}
		cancel()
	}
	if err == nil {
		return
	}
	b.mu.Lock()
	for k, v := range batch {
		b.add(k, v.n, v.expires)
	}
	b.mu.Unlock()
}
