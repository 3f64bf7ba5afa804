package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests    *prometheus.CounterVec   // route, model, status
	latency     *prometheus.HistogramVec // route
	attempts    *prometheus.CounterVec   // model, status
	limited     *prometheus.CounterVec   // reason: rate | daily_cap | shed
	escalations prometheus.Counter
	sampled     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, gates map[string]*gate) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_serve_requests_total", Help: "Image requests by route, model served and HTTP status.",
		}, []string{"route", "model", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "routelab_serve_request_seconds", Help: "Image request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40},
		}, []string{"route"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_serve_provider_attempts_total", Help: "Provider calls by model and outcome (ok, qa_fail, or the error kind).",
		}, []string{"model", "status"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_serve_limited_total", Help: "Requests refused by a limit: rate, daily_cap, shed.",
		}, []string{"reason"}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "routelab_serve_escalations_total", Help: "Requests escalated to another model after QA failed.",
		}),
		sampled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "routelab_serve_sampled_total", Help: "Outputs sampled for human review.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.attempts, m.limited, m.escalations, m.sampled)
	for name, g := range gates {
		g := g
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "routelab_serve_provider_in_flight", Help: "Provider calls in flight.", ConstLabels: prometheus.Labels{"provider": name},
		}, func() float64 { return float64(g.inFlight()) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "routelab_serve_provider_queued", Help: "Provider calls waiting for a slot.", ConstLabels: prometheus.Labels{"provider": name},
		}, func() float64 { return float64(g.waiting.Load()) }))
	}
	return m
}
