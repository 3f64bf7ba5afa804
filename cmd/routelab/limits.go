package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/server"
)

// limitFlags are serve's --limit-* flags; `routelab dev` has the same ones
// and gives them to every replica it runs.
type limitFlags struct {
	rate        *float64
	burst       *int
	daily       *int
	tenant      *string
	user        *int
	hires       *int
	hiresPixels *int
	vendor      *string
	conc        *int
	queue       *int
	budgetDay   *string
	budgetMonth *string
}

// addLimitFlags adds the limit flags; rate is --limit-rate's default.
func addLimitFlags(fs *pflag.FlagSet, rate float64) limitFlags {
	return limitFlags{
		rate:        fs.Float64("limit-rate", rate, "requests per second per API key (GCRA; shared by the replicas of a --state-store)"),
		burst:       fs.Int("limit-burst", 100, "requests at once per API key"),
		daily:       fs.Int("limit-daily-images", 0, "images per tenant per UTC day; 0 = unlimited (shared by the replicas of a --state-store, else per replica)"),
		tenant:      fs.String("limit-daily-images-tenant", "", "per-tenant daily image caps overriding --limit-daily-images, e.g. acme=5000,trial=50 (0 = unlimited)"),
		user:        fs.Int("limit-daily-images-user", 0, "images per end user (the request's user) of a tenant per UTC day; 0 = unlimited"),
		hires:       fs.Int("limit-daily-hires-user", 0, "high-resolution images (at least --limit-hires-pixels) per end user per UTC day; 0 = unlimited"),
		hiresPixels: fs.Int("limit-hires-pixels", 2_000_000, "width*height from which an image counts as high-resolution"),
		vendor:      fs.String("limit-vendor-rpm", "", "requests per minute per provider across all replicas, e.g. openai=500,gemini=300; past it the call goes to the next model of the fallback chain"),
		conc:        fs.Int("limit-provider-concurrency", 64, "provider calls in flight per provider (per replica)"),
		queue:       fs.Int("limit-provider-queue", 64, "calls waiting per provider before shedding with 503 (per replica)"),
		budgetDay:   fs.String("budget-daily-usd", "", "spend budget in US dollars per tenant per UTC day: a bare amount for every tenant, tenant=amount for one (0 = none), e.g. 20 or acme=500,trial=5 or 20,trial=5; past it requests get 429 budget_exhausted (shared by the replicas of a --state-store, else per replica)"),
		budgetMonth: fs.String("budget-monthly-usd", "", "spend budget in US dollars per tenant per UTC month, as --budget-daily-usd"),
	}
}

// apply sets the limits in the server's and the gateway's config.
func (l limitFlags) apply(s *server.Config, g *gateway.Config) error {
	caps, err := parseCounts("--limit-daily-images-tenant", *l.tenant)
	if err != nil {
		return err
	}
	vendor, err := parseCounts("--limit-vendor-rpm", *l.vendor)
	if err != nil {
		return err
	}
	day, days, err := parseBudgets("--budget-daily-usd", *l.budgetDay)
	if err != nil {
		return err
	}
	month, months, err := parseBudgets("--budget-monthly-usd", *l.budgetMonth)
	if err != nil {
		return err
	}
	s.RatePerSec, s.RateBurst = *l.rate, *l.burst
	g.DailyBudgetUSD, g.DailyBudgetsUSD, g.MonthlyBudgetUSD, g.MonthlyBudgetsUSD = day, days, month, months
	g.DailyCap, g.DailyCaps, g.DailyCapUser, g.DailyCapHiRes, g.HiResPixels = *l.daily, caps, *l.user, *l.hires, *l.hiresPixels
	g.VendorPerMinute, g.ProviderConcurrency, g.ProviderQueue = vendor, *l.conc, *l.queue
	return nil
}

func (l limitFlags) String() string {
	return fmt.Sprintf("limit-rate=%g limit-burst=%d limit-daily-images=%d limit-daily-images-tenant=%s limit-daily-images-user=%d limit-daily-hires-user=%d limit-vendor-rpm=%s provider-concurrency=%d provider-queue=%d budget-daily-usd=%s budget-monthly-usd=%s",
		*l.rate, *l.burst, *l.daily, *l.tenant, *l.user, *l.hires, *l.vendor, *l.conc, *l.queue, *l.budgetDay, *l.budgetMonth)
}

// parseCounts reads "name=n,name=n".
func parseCounts(flag, s string) (map[string]int, error) {
	out := map[string]int{}
	for _, kv := range splitList(s) {
		t, n, ok := strings.Cut(kv, "=")
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || strings.TrimSpace(t) == "" || err != nil || v < 0 {
			return nil, fmt.Errorf("%s: %q is not name=count (count >= 0)", flag, kv)
		}
		out[strings.TrimSpace(t)] = v
	}
	return out, nil
}

// parseBudgets reads "amount,name=amount,...": a bare amount is every
// tenant's budget, name=amount one tenant's (0: none for that tenant).
func parseBudgets(flag, s string) (all float64, per map[string]float64, err error) {
	per = map[string]float64{}
	bare := false
	for _, kv := range splitList(s) {
		t, n, named := strings.Cut(kv, "=")
		if !named {
			t, n = "", kv
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(n), 64)
		t = strings.TrimSpace(t)
		if perr != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || (named && t == "") {
			return 0, nil, fmt.Errorf("%s: %q is not an amount in dollars or tenant=amount (amount >= 0)", flag, kv)
		}
		if !named {
			if bare {
				return 0, nil, fmt.Errorf("%s: two amounts for every tenant in %q", flag, s)
			}
			all, bare = v, true
			continue
		}
		per[t] = v
	}
	return all, per, nil
}
