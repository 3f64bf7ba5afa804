package resilience

import "github.com/prometheus/client_golang/prometheus"

var (
	stateDesc = prometheus.NewDesc("routelab_breaker_state",
		"Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.", []string{"name"}, nil)
	rateDesc = prometheus.NewDesc("routelab_breaker_failure_rate",
		"Failure rate in the breaker's rolling window.", []string{"name"}, nil)
	requestsDesc = prometheus.NewDesc("routelab_breaker_window_requests",
		"Calls counted in the breaker's rolling window.", []string{"name"}, nil)
)

// Collector exports every breaker's state for Prometheus; register it on
// the serve process's registry.
type Collector struct{ b *Breakers }

var _ prometheus.Collector = Collector{}

// NewCollector returns a collector over b.
func NewCollector(b *Breakers) Collector { return Collector{b: b} }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- rateDesc
	ch <- requestsDesc
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.b.Snapshot() {
		state := 0.0
		switch s.State {
		case Open.String():
			state = 1
		case HalfOpen.String():
			state = 2
		}
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, state, s.Name)
		ch <- prometheus.MustNewConstMetric(rateDesc, prometheus.GaugeValue, s.FailureRate, s.Name)
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(s.Requests), s.Name)
	}
}
