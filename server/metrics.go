package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/gateway"
)

type metrics struct {
	requestsVec   *prometheus.CounterVec   // route, model, status
	latencyVec    *prometheus.HistogramVec // route
	limited       *prometheus.CounterVec   // reason: rate (the gateway adds daily_cap, shed)
	stateFallback *prometheus.CounterVec   // part: rate, idempotency (the gateway adds its own)
	// inFlight is the image requests being served: the load signal an
	// autoscaler reads (deploy/serve.yaml), since a replica waiting on
	// providers is busy at low CPU.
	inFlight prometheus.Gauge

	// The per-request series, looked up through children: WithLabelValues
	// validates and hashes the values and locks the vector on every call,
	// three calls a request (1.4 us of CPU in BenchmarkServeHandler).
	requests gateway.Children[requestLabels, prometheus.Counter]
	latency  gateway.Children[string, prometheus.Observer]
}

type requestLabels struct {
	route, model string
	status       int
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requestsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "routelab_serve_requests_total", Help: "Image requests by route, model served and HTTP status.",
		}, []string{"route", "model", "status"}),
		latencyVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "routelab_serve_request_seconds", Help: "Image request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40},
		}, []string{"route"}),
		limited:       gateway.LimitedCounter(reg),
		stateFallback: gateway.StateFallbackCounter(reg),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "routelab_serve_in_flight_requests", Help: "Image requests being served (parsed, waiting on providers or QA, responding).",
		}),
	}
	m.requests.New = func(l requestLabels) prometheus.Counter {
		return m.requestsVec.WithLabelValues(l.route, l.model, strconv.Itoa(l.status))
	}
	m.latency.New = func(route string) prometheus.Observer { return m.latencyVec.WithLabelValues(route) }
	reg.MustRegister(m.requestsVec, m.latencyVec, m.inFlight)
	return m
}
