package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/routelab/routelab/events"
)

// Spend budgets: a tenant's provider spend in US dollars per UTC day and
// month. A request books its estimated cost (the decided model's list
// price times n) before the provider call, in the same store operation as
// its daily caps, and settles the actual cost after (retries, fallbacks
// and escalations can make it more; a request that delivers nothing costs
// nothing). Amounts are integer micro-dollars so that counters never drift.
//
// Spend is counted for every tenant, budget or not (GET /v1/usage shows
// it). A tenant without a budget costs the store nothing per request: its
// spend is added without a reply (SpendStore.AddSpend, batched by the
// Redis store). A tenant with a budget costs one settle per request when
// the actual cost differs from the estimate or an alert is due, and none
// otherwise.

// BudgetAlertAt is the share of a budget at which its alert fires, once
// per tenant, period and budget.
const BudgetAlertAt = 0.8

// SpendCounter is one of a tenant's spend counters: one period's spend in
// micro-dollars, with that period's budget.
type SpendCounter struct {
	Key    string // "day:TENANT" or "month:TENANT", escaped as capKey
	Period int64  // the UTC day (Unix days) or month (YYYYMM) counted
	Limit  int64  // the budget in µ$; 0: none, the spend is only counted
	// Alert is the spend in µ$ at which the budget's alert fires (the
	// first settle at or past it in the period); 0: none.
	Alert   int64
	Expires int64 // Unix seconds after which the counter may be forgotten
}

// SpendStore keeps tenants' spend against their budgets. Implementations
// also implement CapStore: Book takes the caps and the spend in one step.
type SpendStore interface {
	// Book adds n to every cap counter of day and amount to every spend
	// counter when no cap counter would pass its limit and no spend
	// counter with a Limit has reached it or would pass it, and returns
	// -1; otherwise it adds nothing and returns the index of the first
	// that would, caps first: len(caps)+j is spend[j]. alertDue says that
	// after booking a spend counter is at or past its Alert and its alert
	// has not fired: Settle must then be called even when the actual cost
	// is the amount. Errors wrap ErrStateUnavailable.
	Book(ctx context.Context, day int64, caps []Counter, n int, spend []SpendCounter, amount int64) (refused int, alertDue bool, err error)
	// Settle adds delta (negative: a refund) to every spend counter and
	// says, per counter, whether this call is the first of its period to
	// find it at or past its Alert.
	Settle(ctx context.Context, spend []SpendCounter, delta int64) ([]bool, error)
	// AddSpend adds amount to counters without a budget. It may be
	// batched: the amount is then seen by Spent here at once and by other
	// replicas shortly.
	AddSpend(ctx context.Context, spend []SpendCounter, amount int64) error
	// Spent is each counter's value (0 when absent).
	Spent(ctx context.Context, spend []SpendCounter) ([]int64, error)
}

// micros is usd in integer micro-dollars.
func micros(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

func usd(micros int64) float64 { return float64(micros) / 1e6 }

// budgetPeriod is one of the two budget periods at an instant.
type budgetPeriod struct {
	name         string // daily | monthly
	kind         string // day | month, the counter key's kind
	id           int64  // Unix day, or YYYYMM
	start, reset time.Time
}

// periods are the UTC month and day of now, the month first: a request
// refused by both waits for the month.
func periods(now time.Time) [2]budgetPeriod {
	t := now.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return [2]budgetPeriod{
		{name: "monthly", kind: "month", id: int64(t.Year())*100 + int64(t.Month()), start: month, reset: month.AddDate(0, 1, 0)},
		{name: "daily", kind: "day", id: t.Unix() / 86400, start: day, reset: day.AddDate(0, 0, 1)},
	}
}

// budgets are tenant's monthly and daily budgets in µ$ (0: none).
func (g *Gateway) budgets(tenant string) [2]int64 {
	pick := func(all float64, per map[string]float64) int64 {
		if v, ok := per[tenant]; ok {
			return micros(v)
		}
		return micros(all)
	}
	return [2]int64{pick(g.cfg.MonthlyBudgetUSD, g.cfg.MonthlyBudgetsUSD), pick(g.cfg.DailyBudgetUSD, g.cfg.DailyBudgetsUSD)}
}

// spendCounters are tenant's counters at now, in periods' order, and
// whether any has a budget.
func (g *Gateway) spendCounters(tenant string, now time.Time) ([]SpendCounter, bool) {
	ps, bs := periods(now), g.budgets(tenant)
	cs := make([]SpendCounter, len(ps))
	budgeted := false
	for i, p := range ps {
		cs[i] = SpendCounter{Key: capKey(p.kind, tenant), Period: p.id, Limit: bs[i], Expires: p.reset.Unix() + 3600}
		if bs[i] > 0 {
			cs[i].Alert = int64(math.Ceil(float64(bs[i]) * BudgetAlertAt))
			budgeted = true
		}
	}
	return cs, budgeted
}

// booking is what reserve booked for one request: its images against the
// daily caps, its estimated cost against the tenant's spend budgets.
type booking struct {
	g        *Gateway
	r        *Request
	now      time.Time
	day      int64
	caps     []Counter
	spend    []SpendCounter
	budgeted bool
	est      int64 // µ$ booked on spend (budgeted tenants only)
	alertDue bool  // Book said a budget's alert is due at settle
}

// reserve books r's images against its daily caps and, when its tenant
// has a spend budget, unitUSD x n against it, in one store operation. A
// store that cannot be reached refuses the request: caps and budgets fail
// closed. The booking's done must be called once.
func (g *Gateway) reserve(ctx context.Context, r *Request, now time.Time, unitUSD float64) (*booking, *Error) {
	b := &booking{g: g, r: r, now: now, day: now.UTC().Unix() / 86400, caps: g.capCounters(r)}
	b.spend, b.budgeted = g.spendCounters(r.Tenant, now)
	if !b.budgeted {
		if len(b.caps) == 0 {
			return b, nil
		}
		i, serr := g.leased.Reserve(ctx, b.day, b.caps, r.N)
		if serr != nil {
			return nil, g.stateRefusal(r, "daily_cap", serr)
		}
		if i >= 0 {
			return nil, g.capRefusal(b, i)
		}
		return b, nil
	}
	b.est = micros(unitUSD) * int64(r.N)
	i, due, serr := g.ledger.Book(ctx, b.day, b.caps, r.N, b.spend, b.est)
	if serr != nil {
		if len(b.caps) > 0 {
			g.m.stateFallback.WithLabelValues("daily_cap").Inc()
		}
		return nil, g.stateRefusal(r, "budget", serr)
	}
	switch {
	case i >= len(b.caps):
		g.m.limited.WithLabelValues("budget").Inc()
		p := periods(now)[i-len(b.caps)]
		return nil, &Error{Code: CodeBudgetExhausted, RetryAfter: p.reset.Sub(now),
			Message: fmt.Sprintf("the tenant's %s spend budget of $%.2f is exhausted (this request is estimated at $%.4f); it resets at %s",
				p.name, usd(b.spend[i-len(b.caps)].Limit), usd(b.est), p.reset.Format(time.RFC3339))}
	case i >= 0:
		return nil, g.capRefusal(b, i)
	}
	b.alertDue = due
	return b, nil
}

func (g *Gateway) stateRefusal(r *Request, part string, err error) *Error {
	g.m.stateFallback.WithLabelValues(part).Inc()
	g.log.Warn("limit store unavailable: request refused", "part", part, "request_id", r.ID, "err", err)
	return errStateUnavailable
}

// done ends the booking: the caps get the images back unless delivered,
// and the spend counters get the actual cost in place of the estimate (a
// request that delivered nothing and cost nothing refunds it all). The
// request's own context may be done (cancelled, timed out): this must
// still happen.
func (b *booking) done(ctx context.Context, delivered bool, costUSD float64) {
	g := b.g
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if !delivered && len(b.caps) > 0 {
		caps := g.leased // as reserve booked them
		if b.budgeted {
			caps = g.caps
		}
		if err := caps.Release(ctx, b.day, b.caps, b.r.N); err != nil {
			g.log.Warn("release daily cap: images stay counted", "request_id", b.r.ID, "images", b.r.N, "err", err)
		}
	}
	actual := micros(costUSD)
	if !b.budgeted {
		if actual > 0 {
			if err := g.ledger.AddSpend(ctx, b.spend, actual); err != nil {
				g.log.Warn("count spend: not counted", "request_id", b.r.ID, "tenant", b.r.Tenant, "usd", costUSD, "err", err)
			}
		}
		return
	}
	if actual == b.est && !b.alertDue {
		return // the booking was the cost: nothing to settle
	}
	alerts, err := g.ledger.Settle(ctx, b.spend, actual-b.est)
	if err != nil {
		g.log.Warn("settle spend: the estimate stays counted", "request_id", b.r.ID, "tenant", b.r.Tenant,
			"estimate_usd", usd(b.est), "actual_usd", costUSD, "err", err)
		return
	}
	for i, crossed := range alerts {
		if crossed {
			g.budgetAlert(b, periods(b.now)[i], b.spend[i])
		}
	}
}

// BudgetAlert is the body of a budget alert (audit event action
// budget.alert).
type BudgetAlert struct {
	Tenant      string  `json:"tenant"`
	Period      string  `json:"period"` // daily | monthly
	PeriodStart string  `json:"period_start"`
	BudgetUSD   float64 `json:"budget_usd"`
	AlertAtUSD  float64 `json:"alert_at_usd"`
	Share       float64 `json:"share"` // BudgetAlertAt
}

// ActionBudgetAlert is the audit action of a budget alert.
const ActionBudgetAlert = "budget.alert"

// budgetAlert tells operators that b's tenant has spent BudgetAlertAt of
// one budget: a warning in the log and an audit event, whose id is the
// same from every replica (ingest keeps one).
func (g *Gateway) budgetAlert(b *booking, p budgetPeriod, c SpendCounter) {
	a := BudgetAlert{Tenant: b.r.Tenant, Period: p.name, PeriodStart: p.start.Format(time.DateOnly),
		BudgetUSD: usd(c.Limit), AlertAtUSD: usd(c.Alert), Share: BudgetAlertAt}
	g.m.budgetAlerts.WithLabelValues(p.name).Inc()
	g.log.Warn("spend budget alert: the tenant has spent 80% of a budget", "tenant", a.Tenant, "period", a.Period,
		"period_start", a.PeriodStart, "budget_usd", a.BudgetUSD, "request_id", b.r.ID)
	body, _ := json.Marshal(a)
	subject := a.Tenant + "/" + a.Period + "/" + a.PeriodStart
	g.emit(events.TopicAudit, "budget/"+subject, &events.Audit{
		Header: events.Header{EventID: "budget-alert:" + subject, SchemaVersion: events.SchemaVersion, TS: g.deps.Now().UnixMilli(),
			Tenant: a.Tenant, RequestID: b.r.ID},
		Action: ActionBudgetAlert, Subject: subject, Actor: "gateway", Body: string(body),
	})
}

// Usage is a tenant's spend this UTC day and month and its budgets.
type Usage struct {
	Tenant string
	Day    PeriodUsage
	Month  PeriodUsage
}

// PeriodUsage is one period's spend. SpentUSD includes the estimates of
// the tenant's requests in flight (settled when they finish).
type PeriodUsage struct {
	Start, Reset time.Time
	SpentUSD     float64
	BudgetUSD    float64 // 0: no budget
	RemainingUSD float64 // BudgetUSD - SpentUSD, never below 0; 0 without a budget
}

// Usage is tenant's spend now. Errors are *Error (state_unavailable).
func (g *Gateway) Usage(ctx context.Context, tenant string) (Usage, error) {
	now := g.deps.Now()
	cs, _ := g.spendCounters(tenant, now)
	spent, err := g.ledger.Spent(ctx, cs)
	if err != nil {
		g.m.stateFallback.WithLabelValues("usage").Inc()
		g.log.Warn("spend store unavailable: usage not shown", "tenant", tenant, "err", err)
		return Usage{}, errStateUnavailable
	}
	u := Usage{Tenant: tenant}
	for i, p := range periods(now) {
		pu := PeriodUsage{Start: p.start, Reset: p.reset, SpentUSD: usd(spent[i]), BudgetUSD: usd(cs[i].Limit)}
		if cs[i].Limit > 0 {
			pu.RemainingUSD = usd(max(0, cs[i].Limit-spent[i]))
		}
		if p.kind == "day" {
			u.Day = pu
		} else {
			u.Month = pu
		}
	}
	return u, nil
}

// MemCaps' spend counters: the default without a shared store.

type spendCount struct {
	period  int64
	n       int64
	alerted bool
}

var _ SpendStore = (*MemCaps)(nil)

// Book implements SpendStore.
func (c *MemCaps) Book(_ context.Context, day int64, caps []Counter, n int, spend []SpendCounter, amount int64) (int, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ct := range caps {
		if c.count(ct.Key, day).n+int64(n) > ct.Limit {
			return i, false, nil
		}
	}
	for j, sc := range spend {
		if cur := c.spendOf(sc).n; sc.Limit > 0 && (cur >= sc.Limit || cur+amount > sc.Limit) {
			return len(caps) + j, false, nil
		}
	}
	for _, ct := range caps {
		c.count(ct.Key, day).n += int64(n)
	}
	due := false
	for _, sc := range spend {
		s := c.spendOf(sc)
		s.n += amount
		due = due || (sc.Alert > 0 && s.n >= sc.Alert && !s.alerted)
	}
	return -1, due, nil
}

// Settle implements SpendStore.
func (c *MemCaps) Settle(_ context.Context, spend []SpendCounter, delta int64) ([]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]bool, len(spend))
	for i, sc := range spend {
		s := c.spendOf(sc)
		s.n = max(0, s.n+delta)
		if sc.Alert > 0 && s.n >= sc.Alert && !s.alerted {
			s.alerted, out[i] = true, true
		}
	}
	return out, nil
}

// AddSpend implements SpendStore.
func (c *MemCaps) AddSpend(_ context.Context, spend []SpendCounter, amount int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sc := range spend {
		c.spendOf(sc).n += amount
	}
	return nil
}

// Spent implements SpendStore.
func (c *MemCaps) Spent(_ context.Context, spend []SpendCounter) ([]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, len(spend))
	for i, sc := range spend {
		if s, ok := c.spend[sc.Key]; ok && s.period == sc.Period {
			out[i] = s.n
		}
	}
	return out, nil
}

// spendOf is sc's counter of its period (a new period starts it at zero);
// mu held.
func (c *MemCaps) spendOf(sc SpendCounter) *spendCount {
	s, ok := c.spend[sc.Key]
	if !ok || s.period != sc.Period {
		s = &spendCount{period: sc.Period}
		c.spend[sc.Key] = s
	}
	return s
}

// splitLedger books budgets in this replica's memory beside a CapStore
// that keeps no spend (a CapStore of some other kind): caps first, then
// the spend, the caps given back when the spend is refused.
type splitLedger struct {
	caps CapStore
	*MemCaps
}

func (l splitLedger) Book(ctx context.Context, day int64, caps []Counter, n int, spend []SpendCounter, amount int64) (int, bool, error) {
	if len(caps) > 0 {
		if i, err := l.caps.Reserve(ctx, day, caps, n); err != nil || i >= 0 {
			return i, false, err
		}
	}
	i, due, err := l.MemCaps.Book(ctx, day, nil, 0, spend, amount)
	if i >= 0 && len(caps) > 0 {
		if err := l.caps.Release(ctx, day, caps, n); err != nil {
			return 0, false, err
		}
		i += len(caps)
	}
	return i, due, err
}
