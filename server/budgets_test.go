package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/redisstate/redistest"
)

// priced lists fast at $0.01 an image (what the fake provider charges)
// and strong at $0.04, and gives acme budgets of day and month dollars
// (0: none).
func priced(day, month float64) func(*setup) {
	return func(s *setup) {
		s.gwDeps.Policy.(*gatewaytest.Router).Costs = map[string]float64{"fast": 0.01, "strong": 0.04}
		if day > 0 {
			s.gw.DailyBudgetsUSD = map[string]float64{"acme": day}
		}
		if month > 0 {
			s.gw.MonthlyBudgetsUSD = map[string]float64{"acme": month}
		}
	}
}

type usageBody struct {
	Object, Tenant string
	Daily, Monthly struct {
		Period       string
		SpentUSD     float64  `json:"spent_usd"`
		BudgetUSD    *float64 `json:"budget_usd"`
		RemainingUSD *float64 `json:"remaining_usd"`
		ResetsAt     string   `json:"resets_at"`
	}
}

func (e *env) usage(t *testing.T, query string) (response, usageBody) {
	t.Helper()
	r := do(t, "GET", e.url+"/v1/usage"+query, map[string]string{"Authorization": "Bearer " + e.key}, nil)
	var u usageBody
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &u); err != nil {
			t.Fatalf("decode /v1/usage %s: %v", r.body, err)
		}
	}
	return r, u
}

func budgetAlerts(es ...*env) int {
	n := 0
	for _, e := range es {
		for _, ev := range e.events.Events() {
			if a, ok := ev.Value.(*events.Audit); ok && a.Action == gateway.ActionBudgetAlert {
				n++
			}
		}
	}
	return n
}

// TestReplicasShareBudget: two replicas over one redis-server hold the
// tenant's daily budget together: $0.03 buys three $0.01 images whichever
// replica serves them, the fourth is refused with budget_exhausted and
// Retry-After, either replica's /v1/usage shows the spend, and the 80%
// alert fires once across both.
func TestReplicasShareBudget(t *testing.T) {
	srv := redistest.Start(t)
	rs := []*env{mustStartReplica(t, srv, nil, priced(0.03, 0)), mustStartReplica(t, srv, nil, priced(0.03, 0))}
	var got []int
	var last response
	for i := range 6 {
		last = rs[i%2].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
		got = append(got, last.status)
	}
	if want := []int{200, 200, 200, 429, 429, 429}; !slices.Equal(got, want) {
		t.Errorf("statuses alternating replicas with a $0.03 budget = %v, want %v", got, want)
	}
	secs, err := strconv.Atoi(last.header.Get("Retry-After"))
	if last.errorCode() != "budget_exhausted" || err != nil || secs < 1 || secs > 86400 {
		t.Errorf("refusal = %s, Retry-After %q; want budget_exhausted and the seconds to the next UTC day", last.errorCode(), last.header.Get("Retry-After"))
	}
	r, u := rs[1].usage(t, "")
	if r.status != 200 || u.Tenant != "acme" || u.Daily.SpentUSD != 0.03 || u.Daily.BudgetUSD == nil || *u.Daily.BudgetUSD != 0.03 ||
		*u.Daily.RemainingUSD != 0 || u.Monthly.SpentUSD != 0.03 || u.Monthly.BudgetUSD != nil {
		t.Errorf("/v1/usage on replica 2 = %d %s, want $0.03 of $0.03 spent today, $0.03 this month without a budget", r.status, r.body)
	}
	if n := budgetAlerts(rs...); n != 1 {
		t.Errorf("budget alerts across both replicas = %d, want 1", n)
	}
}

// TestReplicasStoreDownBudget: with the store down a tenant with a budget
// is refused 503 state_unavailable (fail closed) and counted, a tenant
// without one is served, /v1/usage is 503, and the admin /readyz says so.
func TestReplicasStoreDownBudget(t *testing.T) {
	srv := redistest.Start(t)
	rs := []*env{mustStartReplica(t, srv, nil, priced(0, 50)), mustStartReplica(t, srv, nil, priced(0, 50))}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, rs[0], `"degraded":["state_store"]`)
	r := rs[0].post(t, "/v1/images", `{"prompt":"x","size":"64x64"}`)
	if r.status != 503 || r.errorCode() != "state_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("tenant with a budget, store down = %d %s, want 503 state_unavailable with Retry-After", r.status, r.errorCode())
	}
	if _, err := rs[0].keys.Insert(context.Background(), "free", "test", "rl_freekey"); err != nil {
		t.Fatal(err)
	}
	if r := rs[0].postKey(t, "rl_freekey", `{"prompt":"x","size":"64x64"}`, nil); r.status != 200 {
		t.Errorf("tenant without a budget, store down = %d %s, want 200", r.status, r.errorCode())
	}
	waitMetric(t, rs[0], `routelab_state_fallback_total{part="budget"} 1`)
	if r, _ := rs[0].usage(t, ""); r.status != 503 || r.errorCode() != "state_unavailable" {
		t.Errorf("/v1/usage, store down = %d %s, want 503 state_unavailable", r.status, r.errorCode())
	}
	ready := do(t, "GET", rs[0].adminURL+"/readyz", nil, nil)
	var body struct{ Degraded map[string]map[string]string }
	_ = json.Unmarshal(ready.body, &body)
	if body.Degraded["state_store"]["budget"] == "" {
		t.Errorf("admin /readyz, store down = %s, want the budgets' fallback named", ready.body)
	}
}

// TestUsage: /v1/usage shows the key's tenant its spend this UTC day and
// month, with and without budgets, and refuses what it does not take.
func TestUsage(t *testing.T) {
	e := mustStart(t, priced(0.50, 0))
	if r := e.post(t, "/v1/images", `{"prompt":"x","size":"64x64","n":2}`); r.status != 200 {
		t.Fatalf("image request = %d %s", r.status, r.body)
	}
	if _, err := e.keys.Insert(context.Background(), "free", "test", "rl_freekey"); err != nil {
		t.Fatal(err)
	}
	if r := e.postKey(t, "rl_freekey", `{"prompt":"x","size":"64x64","n":3}`, nil); r.status != 200 {
		t.Fatalf("free tenant's image request = %d %s", r.status, r.body)
	}
	now := time.Now().UTC()
	r, u := e.usage(t, "")
	if r.status != 200 || u.Object != "usage" || u.Tenant != "acme" || u.Daily.SpentUSD != 0.02 || u.Daily.BudgetUSD == nil ||
		*u.Daily.BudgetUSD != 0.5 || *u.Daily.RemainingUSD != 0.48 || u.Daily.Period != now.Format(time.DateOnly) {
		t.Errorf("acme's usage = %d %s, want $0.02 of a $0.50 daily budget today", r.status, r.body)
	}
	if reset, err := time.Parse(time.RFC3339, u.Monthly.ResetsAt); err != nil || reset.Day() != 1 || !reset.After(now) || u.Monthly.Period != now.Format("2006-01") {
		t.Errorf("monthly period %q resets_at %q, want this month and the first of the next", u.Monthly.Period, u.Monthly.ResetsAt)
	}
	free := do(t, "GET", e.url+"/v1/usage", map[string]string{"Authorization": "Bearer rl_freekey"}, nil)
	var fu usageBody
	_ = json.Unmarshal(free.body, &fu)
	if free.status != 200 || fu.Tenant != "free" || fu.Daily.SpentUSD != 0.03 || fu.Monthly.SpentUSD != 0.03 || fu.Daily.BudgetUSD != nil || fu.Daily.RemainingUSD != nil {
		t.Errorf("free tenant's usage = %d %s, want $0.03 spent, budget and remaining null", free.status, free.body)
	}

	tests := []struct {
		name      string
		query     string
		header    map[string]string
		wantCode  int
		wantError string
	}{
		{"another tenant", "?tenant=free", map[string]string{"Authorization": "Bearer " + e.key}, 400, "invalid_field"},
		{"no key", "", nil, 401, "unauthorized"},
		{"bad key", "", map[string]string{"Authorization": "Bearer rl_nope"}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "GET", e.url+"/v1/usage"+tt.query, tt.header, nil)
			if r.status != tt.wantCode || r.errorCode() != tt.wantError {
				t.Errorf("GET /v1/usage%s = %d %s, want %d %s", tt.query, r.status, r.body, tt.wantCode, tt.wantError)
			}
		})
	}
}
