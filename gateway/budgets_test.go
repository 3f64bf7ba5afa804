package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

// budgetRig is a gateway whose "fast" model lists at $0.10 an image
// (escalating to "strong" at $0.40), on a clock the test moves.
type budgetRig struct {
	g      *gateway.Gateway
	sink   *gatewaytest.Producer
	fast   *gatewaytest.Provider
	strong *gatewaytest.Provider
	qa     *gatewaytest.Inspector
	now    atomic.Pointer[time.Time]
	ids    *gateway.IDs
}

// noon is the rig's first instant: 12 h to the next UTC day, 25.5 days
// to the next month.
var noon = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func mustBudgetRig(t *testing.T, cfg gateway.Config, caps gateway.CapStore) *budgetRig {
	t.Helper()
	r := &budgetRig{
		sink:   gatewaytest.NewProducer(1024),
		fast:   &gatewaytest.Provider{Model: "fast", Color: red, CostUSD: 0.10},
		strong: &gatewaytest.Provider{Model: "strong", Color: blue, CostUSD: 0.40},
		qa:     &gatewaytest.Inspector{Fail: map[string]bool{}},
		ids:    gateway.NewIDs(),
	}
	r.set(noon)
	cfg.SampleRate = -1
	r.g = gateway.New(cfg, gateway.Deps{
		Policy: &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1",
			Costs: map[string]float64{"fast": 0.10, "strong": 0.40}},
		Providers: map[string]providers.Provider{"fast": r.fast, "strong": r.strong},
		QA:        r.qa,
		Events:    r.sink,
		Caps:      caps,
		Now:       func() time.Time { return *r.now.Load() },
	})
	return r
}

func (r *budgetRig) set(t time.Time) { r.now.Store(&t) }

func (r *budgetRig) serve(t *testing.T, tenant string, n int) (*gateway.Outcome, *gateway.Error) {
	t.Helper()
	req := request(r.ids.Next(), tenant)
	req.N = n
	o, err := r.g.Serve(context.Background(), req)
	if err == nil {
		return o, nil
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("Serve error %v is not a *gateway.Error", err)
	}
	return o, ge
}

func (r *budgetRig) usage(t *testing.T, tenant string) gateway.Usage {
	t.Helper()
	u, err := r.g.Usage(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Usage(%s): %v", tenant, err)
	}
	return u
}

func (r *budgetRig) alerts() []gateway.BudgetAlert {
	var out []gateway.BudgetAlert
	for _, e := range r.sink.Events() {
		if a, ok := e.Value.(*events.Audit); ok && e.Topic == events.TopicAudit && a.Action == gateway.ActionBudgetAlert {
			var b gateway.BudgetAlert
			if err := json.Unmarshal([]byte(a.Body), &b); err != nil {
				panic(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestBudgetRefusesPastTheDailyBudget: requests are served while their
// estimates fit the day's budget, then refused with budget_exhausted
// naming the daily budget and Retry-After the next UTC midnight; the next
// day the budget is whole again and the month keeps counting.
func TestBudgetRefusesPastTheDailyBudget(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{DailyBudgetsUSD: map[string]float64{"acme": 0.25}, MonthlyBudgetUSD: 100}, nil)
	for i := range 2 {
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Fatalf("request %d within the budget: %v", i, err)
		}
	}
	_, err := r.serve(t, "acme", 1) // $0.20 spent + $0.10 > $0.25
	if err == nil || err.Code != gateway.CodeBudgetExhausted || !strings.Contains(err.Message, "daily") || err.RetryAfter != 12*time.Hour {
		t.Fatalf("third request = %+v, want budget_exhausted naming the daily budget, Retry-After 12h", err)
	}
	if _, err := r.serve(t, "other", 1); err != nil {
		t.Errorf("another tenant without a daily budget: %v", err)
	}
	if calls := r.fast.Calls.Load(); calls != 3 {
		t.Errorf("provider calls = %d, want 3: the refused request never reaches the provider", calls)
	}
	r.set(noon.Add(12 * time.Hour))
	if _, err := r.serve(t, "acme", 1); err != nil {
		t.Errorf("the next UTC day: %v, want served", err)
	}
	u := r.usage(t, "acme")
	if !near(u.Day.SpentUSD, 0.10) || !near(u.Month.SpentUSD, 0.30) || !near(u.Day.RemainingUSD, 0.15) {
		t.Errorf("usage the next day = day %+v month %+v, want $0.10 of $0.25 today and $0.30 this month", u.Day, u.Month)
	}
}

// TestBudgetMonthlyRetryAfter: a request refused by the monthly budget
// waits for the next month, even when the daily budget is exhausted too.
func TestBudgetMonthlyRetryAfter(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 0.10, MonthlyBudgetUSD: 0.10}, nil)
	if _, err := r.serve(t, "acme", 1); err != nil {
		t.Fatal(err)
	}
	_, err := r.serve(t, "acme", 1)
	want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(noon)
	if err == nil || err.Code != gateway.CodeBudgetExhausted || !strings.Contains(err.Message, "monthly") || err.RetryAfter != want {
		t.Fatalf("request past both budgets = %+v, want budget_exhausted naming the monthly budget, Retry-After %v", err, want)
	}
}

// TestBudgetSettlesActualCost: the reservation is the estimate (list
// price x n); the settle replaces it with what the attempts cost: an
// escalation costs both models, a provider charging more than its list
// price costs what it charged.
func TestBudgetSettlesActualCost(t *testing.T) {
	t.Run("escalation", func(t *testing.T) {
		r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 10}, nil)
		r.qa.Fail[gatewaytest.ColorKey(red)] = true // fast fails QA: strong is tried
		o, err := r.serve(t, "acme", 2)
		if err != nil || !o.Escalated {
			t.Fatalf("Serve = %+v, %v; want an escalated outcome", o, err)
		}
		// Estimate 2 x $0.10; actual 2 x $0.10 + 2 x $0.40.
		if u := r.usage(t, "acme"); !near(u.Day.SpentUSD, 1.00) || !near(u.Day.RemainingUSD, 9.00) {
			t.Errorf("day usage = %+v, want $1.00 spent (the actual cost), $9.00 remaining", u.Day)
		}
	})
	t.Run("provider charges more", func(t *testing.T) {
		r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 0.50}, nil)
		r.fast.CostUSD = 0.30 // listed at $0.10
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Fatalf("second request: $0.30 + $0.10 estimate fits $0.50: %v", err)
		}
		// Now $0.60 spent: over the budget; the next is refused even
		// though nothing more is estimated than before.
		if _, err := r.serve(t, "acme", 1); err == nil || err.Code != gateway.CodeBudgetExhausted {
			t.Errorf("third request after $0.60 actual of $0.50 = %v, want budget_exhausted", err)
		}
		if u := r.usage(t, "acme"); !near(u.Day.SpentUSD, 0.60) || u.Day.RemainingUSD != 0 {
			t.Errorf("day usage = %+v, want $0.60 spent, nothing remaining", u.Day)
		}
	})
	t.Run("failure refunds", func(t *testing.T) {
		r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 0.10, DailyCap: 1}, nil)
		fail := func(providers.Request) error {
			return &providers.Error{Kind: providers.KindUnavailable, Message: "down"}
		}
		r.fast.Fail, r.strong.Fail = fail, fail
		if _, err := r.serve(t, "acme", 1); err == nil || err.Code != gateway.CodeProviderFailed {
			t.Fatalf("Serve with every provider down = %v, want provider_failed", err)
		}
		if u := r.usage(t, "acme"); u.Day.SpentUSD != 0 || !near(u.Day.RemainingUSD, 0.10) {
			t.Errorf("day usage after a failure = %+v, want nothing spent: the reservation refunded", u.Day)
		}
		r.fast.Fail, r.strong.Fail = nil, nil
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Errorf("the budget's one request after the refund (cap 1 released too): %v", err)
		}
	})
}

// badRefs are references that fail to load.
type badRefs struct{}

func (badRefs) Count() int { return 1 }

func (badRefs) Load(context.Context) ([][]byte, error) { return nil, errors.New("fetch: 404") }

// TestBudgetRefundWhenReferencesFail: a request booked, then stopped by
// references that do not load, gives its estimate back.
func TestBudgetRefundWhenReferencesFail(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 1}, nil)
	req := request(r.ids.Next(), "acme")
	req.Refs = badRefs{}
	if _, err := r.g.Serve(context.Background(), req); err == nil {
		t.Fatal("Serve with failing references = nil error")
	}
	if u := r.usage(t, "acme"); u.Day.SpentUSD != 0 {
		t.Errorf("day spend after the references failed = $%v, want 0 (refunded)", u.Day.SpentUSD)
	}
}

// TestBudgetReservedBeforeTheCall: a request in flight holds its estimate,
// so a concurrent one cannot spend the same dollars.
func TestBudgetReservedBeforeTheCall(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 0.15}, nil)
	block := make(chan struct{})
	r.fast.Block = block
	first := make(chan *gateway.Error, 1)
	go func() {
		_, err := r.serve(t, "acme", 1)
		first <- err
	}()
	for r.fast.Calls.Load() == 0 { // the first is at the provider, its $0.10 booked
		time.Sleep(time.Millisecond)
	}
	if u := r.usage(t, "acme"); !near(u.Day.SpentUSD, 0.10) {
		t.Errorf("usage with a request in flight = $%v, want its $0.10 estimate", u.Day.SpentUSD)
	}
	second := make(chan *gateway.Error, 1)
	go func() {
		_, err := r.serve(t, "acme", 1)
		second <- err
	}()
	// The second is refused at once, or reaches the provider (a failure:
	// it would block there until the first is let go).
	for {
		select {
		case err := <-second:
			if err == nil || err.Code != gateway.CodeBudgetExhausted {
				t.Errorf("second request while the first holds $0.10 of $0.15 = %v, want budget_exhausted", err)
			}
		default:
			if r.fast.Calls.Load() < 2 {
				time.Sleep(time.Millisecond)
				continue
			}
			t.Errorf("second request while the first holds $0.10 of $0.15 reached the provider, want budget_exhausted")
		}
		break
	}
	close(block)
	if err := <-first; err != nil {
		t.Errorf("first request: %v", err)
	}
}

// TestBudgetAlertOnce: the alert (an audit event) fires on the request
// that brings spend to 80% of a budget, once per budget and period, not
// on the requests after; another period alerts again.
func TestBudgetAlertOnce(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 1.00, MonthlyBudgetUSD: 100}, nil)
	for i := range 10 { // $0.10 each: the 8th reaches $0.80
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want := 0
		if i >= 7 {
			want = 1
		}
		if got := len(r.alerts()); got != want {
			t.Fatalf("after request %d ($%.2f) alerts = %d, want %d", i, float64(i+1)/10, got, want)
		}
	}
	a := r.alerts()[0]
	if a.Tenant != "acme" || a.Period != "daily" || a.PeriodStart != "2026-12-06" || !near(a.BudgetUSD, 1) || !near(a.AlertAtUSD, 0.8) {
		t.Errorf("alert = %+v, want acme's daily budget of $1 on 2026-12-06 at $0.80", a)
	}
	r.set(noon.Add(24 * time.Hour))
	for range 8 {
		if _, err := r.serve(t, "acme", 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(r.alerts()); got != 2 {
		t.Errorf("alerts after reaching 80%% on the next day = %d, want 2", got)
	}
}

// TestUsageWithoutBudget: spend is counted without a budget; the budget
// fields stay zero.
func TestUsageWithoutBudget(t *testing.T) {
	r := mustBudgetRig(t, gateway.Config{}, nil)
	if _, err := r.serve(t, "acme", 3); err != nil {
		t.Fatal(err)
	}
	u := r.usage(t, "acme")
	if !near(u.Day.SpentUSD, 0.30) || !near(u.Month.SpentUSD, 0.30) || u.Day.BudgetUSD != 0 || u.Month.RemainingUSD != 0 {
		t.Errorf("usage = %+v, want $0.30 spent today and this month, no budgets", u)
	}
	if want := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC); !u.Day.Reset.Equal(want) {
		t.Errorf("day reset = %v, want %v", u.Day.Reset, want)
	}
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC); !u.Month.Reset.Equal(want) {
		t.Errorf("month reset = %v, want %v", u.Month.Reset, want)
	}
}

// plainCaps is a CapStore that keeps no spend.
type plainCaps struct{ m *gateway.MemCaps }

func (p plainCaps) Reserve(ctx context.Context, day int64, cs []gateway.Counter, n int) (int, error) {
	return p.m.Reserve(ctx, day, cs, n)
}

func (p plainCaps) Release(ctx context.Context, day int64, cs []gateway.Counter, n int) error {
	return p.m.Release(ctx, day, cs, n)
}

// TestBudgetBesideAPlainCapStore: with a CapStore that keeps no spend,
// budgets are this replica's, and a request refused by its budget gives
// its images back to the caps.
func TestBudgetBesideAPlainCapStore(t *testing.T) {
	caps := plainCaps{gateway.NewMemCaps()}
	r := mustBudgetRig(t, gateway.Config{DailyBudgetUSD: 0.10, DailyCap: 2}, caps)
	if _, err := r.serve(t, "acme", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.serve(t, "acme", 1); err == nil || err.Code != gateway.CodeBudgetExhausted {
		t.Fatalf("second request = %v, want budget_exhausted", err)
	}
	// The same caps under a gateway without the budget: one image left.
	r = mustBudgetRig(t, gateway.Config{DailyCap: 2}, caps)
	if _, err := r.serve(t, "acme", 1); err != nil {
		t.Errorf("the cap's second image: %v, want served (the budget's refusal gave its image back)", err)
	}
	if _, err := r.serve(t, "acme", 1); err == nil || err.Code != gateway.CodeDailyCapReached {
		t.Errorf("a third image = %v, want daily_cap_reached", err)
	}
}

// countingLedger counts the store operations of a MemCaps.
type countingLedger struct {
	*gateway.MemCaps
	books, settles, adds atomic.Int64
}

func (c *countingLedger) Book(ctx context.Context, day int64, caps []gateway.Counter, n int, spend []gateway.SpendCounter, amount int64) (int, bool, error) {
	c.books.Add(1)
	return c.MemCaps.Book(ctx, day, caps, n, spend, amount)
}

func (c *countingLedger) Settle(ctx context.Context, spend []gateway.SpendCounter, delta int64) ([]bool, error) {
	c.settles.Add(1)
	return c.MemCaps.Settle(ctx, spend, delta)
}

func (c *countingLedger) AddSpend(ctx context.Context, spend []gateway.SpendCounter, amount int64) error {
	c.adds.Add(1)
	return c.MemCaps.AddSpend(ctx, spend, amount)
}

// TestBudgetStoreCalls: what each request asks of the store. Without a
// budget: no booking, the spend added (batched by the Redis store). With
// one: a booking, and a settle only when the cost differs from the
// estimate or an alert is due.
func TestBudgetStoreCalls(t *testing.T) {
	store := &countingLedger{MemCaps: gateway.NewMemCaps()}
	r := mustBudgetRig(t, gateway.Config{DailyBudgetsUSD: map[string]float64{"acme": 1}}, store)
	calls := func() [3]int64 { return [3]int64{store.books.Load(), store.settles.Load(), store.adds.Load()} }
	tests := []struct {
		name   string
		tenant string
		fail   bool // fast fails QA: an escalation costs more than the estimate
		want   [3]int64
	}{
		{"no budget", "free", false, [3]int64{0, 0, 1}},
		{"budget, cost as estimated", "acme", false, [3]int64{1, 0, 0}},  // $0.20 spent
		{"budget, escalated", "acme", true, [3]int64{1, 1, 0}},           // $0.70: $0.50 for $0.10 estimated
		{"budget, alert due", "acme", false, [3]int64{1, 1, 0}},          // $0.80: the alert
		{"budget, alert fired before", "acme", false, [3]int64{1, 0, 0}}, // $0.90
		{"budget, as estimated again", "acme", false, [3]int64{1, 0, 0}}, // $1.00
	}
	r.serve(t, "acme", 1) // $0.10 to start from
	for _, tt := range tests {
		r.qa.Fail[gatewaytest.ColorKey(red)] = tt.fail
		before := calls()
		if _, err := r.serve(t, tt.tenant, 1); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		after := calls()
		got := [3]int64{after[0] - before[0], after[1] - before[1], after[2] - before[2]}
		if got != tt.want {
			t.Errorf("%s: books, settles, adds = %v, want %v", tt.name, got, tt.want)
		}
	}
	if n := len(r.alerts()); n != 1 {
		t.Errorf("alerts = %d, want 1", n)
	}
}
