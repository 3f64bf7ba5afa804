package resilience_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/resilience"
)

func TestCollector(t *testing.T) {
	clk := newClock()
	set := resilience.NewBreakers(resilience.BreakerConfig{MinRequests: 2}, clk.Now, nil)
	call(t, set.For("sim-fast"), nil)
	for range 2 {
		call(t, set.For("sim-typo"), perr(providers.KindUnavailable))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(resilience.NewCollector(set))
	want := `
# HELP routelab_breaker_state Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.
# TYPE routelab_breaker_state gauge
routelab_breaker_state{name="sim-fast"} 0
routelab_breaker_state{name="sim-typo"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "routelab_breaker_state"); err != nil {
		t.Error(err)
	}
}
