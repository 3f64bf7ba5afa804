package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/server"
)

// TestBudgetFlags: serve's and dev's --budget-* flags set every tenant's
// budget (a bare amount) and per-tenant ones (tenant=amount); dev hands
// the gateway config it builds to every replica.
func TestBudgetFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantDay   float64
		wantDays  map[string]float64
		wantMonth float64
		wantMons  map[string]float64
	}{
		{"none", nil, 0, map[string]float64{}, 0, map[string]float64{}},
		{"per tenant", []string{"--budget-daily-usd", "probe=5.00", "--budget-monthly-usd", "probe=100,trial=0"},
			0, map[string]float64{"probe": 5}, 0, map[string]float64{"probe": 100, "trial": 0}},
		{"default and override", []string{"--budget-daily-usd", "20, trial=0.5", "--budget-monthly-usd", "300"},
			20, map[string]float64{"trial": 0.5}, 300, map[string]float64{}},
	}
	for _, tt := range tests {
		for name, add := range map[string]func(*pflag.FlagSet) limitFlags{
			"serve": func(fs *pflag.FlagSet) limitFlags { return addLimitFlags(fs, 50) },
			"dev":   func(fs *pflag.FlagSet) limitFlags { return addDevServeFlags(fs).limits },
		} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
				l := add(fs)
				if err := fs.Parse(tt.args); err != nil {
					t.Fatal(err)
				}
				var s server.Config
				var g gateway.Config
				if err := l.apply(&s, &g); err != nil {
					t.Fatalf("apply: %v", err)
				}
				got := []any{g.DailyBudgetUSD, g.DailyBudgetsUSD, g.MonthlyBudgetUSD, g.MonthlyBudgetsUSD}
				if diff := cmp.Diff([]any{tt.wantDay, tt.wantDays, tt.wantMonth, tt.wantMons}, got); diff != "" {
					t.Errorf("budgets from %v (-want +got):\n%s", tt.args, diff)
				}
			})
		}
	}
}

func TestBudgetFlagsRefused(t *testing.T) {
	for _, give := range []string{"x", "acme=", "=5", "acme=-1", "5,6", "acme=NaN", "acme=+Inf"} {
		if _, _, err := parseBudgets("--budget-daily-usd", give); err == nil {
			t.Errorf("parseBudgets(%q) = nil error, want refused", give)
		}
	}
}
