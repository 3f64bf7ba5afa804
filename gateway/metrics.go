package gateway

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	attemptsVec   *prometheus.CounterVec // model, status
	limited       *prometheus.CounterVec // reason: daily_cap | budget | shed | events_backlogged (the server adds rate)
	stateFallback *prometheus.CounterVec // part: daily_cap | budget | usage | chain | vendor_budget (the server adds rate, idempotency)
	budgetAlerts  *prometheus.CounterVec // period: daily | monthly
	escalations   prometheus.Counter
	sampled       prometheus.Counter
	attempts      Children[[2]string, prometheus.Counter]
}

// Children caches a metric vector's children by their label values (the
// gateway's and the server's per-request series): WithLabelValues
// validates and hashes the values and locks the vector on every call. The
// label sets must be bounded (routes, catalog models, statuses), as the
// vector's own children are. New makes the child for a key.
type Children[K comparable, M any] struct {
	m   sync.Map // K -> M
	New func(K) M
}

// Of returns k's child, made once.
func (c *Children[K, M]) Of(k K) M {
	if v, ok := c.m.Load(k); ok {
		return v.(M)
	}
	v, _ := c.m.LoadOrStore(k, c.New(k))
	return v.(M)
}

// LimitedCounter is routelab_serve_limited_total{reason}, shared by the
// gateway (daily_cap, shed) and the server (rate): whichever registers it
// first makes it, the other gets the same vector.
func LimitedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "routelab_serve_limited_total", Help: "Requests refused by a limit: rate, daily_cap, budget, shed, events_backlogged.",
	}, []string{"reason"}))
}

// StateFallbackCounter is routelab_state_fallback_total{part}: requests
// that met an unreachable shared state store, by the part whose fallback
// they took (rate, vendor_budget: this replica's share; daily_cap, budget,
// usage: 503; idempotency, chain: served without). Shared like LimitedCounter.
func StateFallbackCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "routelab_state_fallback_total", Help: "Requests that met an unreachable shared state store, by part: rate, vendor_budget (per-replica share), daily_cap, budget, usage (refused 503), idempotency, chain (served without).",
	}, []string{"part"}))
}

// register registers c, or returns the identical collector registered
// before (Prometheus' AlreadyRegisteredError idiom).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

func newMetrics(reg prometheus.Registerer, gates map[string]*gate) *metrics {
	m := &metrics{
		attemptsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_serve_provider_attempts_total", Help: "Provider calls by model and outcome (ok, qa_fail, or the error kind).",
		}, []string{"model", "status"}),
		limited:       LimitedCounter(reg),
		stateFallback: StateFallbackCounter(reg),
		budgetAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_budget_alerts_total", Help: "Spend budget alerts (a tenant spent 80% of a budget), by period, from this replica.",
		}, []string{"period"}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "routelab_serve_escalations_total", Help: "Requests escalated to another model after QA failed.",
		}),
		sampled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "routelab_serve_sampled_total", Help: "Outputs sampled for human review.",
		}),
	}
	m.attempts.New = func(l [2]string) prometheus.Counter { return m.attemptsVec.WithLabelValues(l[0], l[1]) }
	reg.MustRegister(m.attemptsVec, m.escalations, m.sampled, m.budgetAlerts)
	for name, g := range gates {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "routelab_serve_provider_in_flight", Help: "Provider calls in flight.", ConstLabels: prometheus.Labels{"provider": name},
		}, func() float64 { return float64(g.inFlight()) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "routelab_serve_provider_queued", Help: "Provider calls waiting for a slot.", ConstLabels: prometheus.Labels{"provider": name},
		}, func() float64 { return float64(g.waiting.Load()) }))
	}
	return m
}
