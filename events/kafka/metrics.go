package kafka

import "github.com/prometheus/client_golang/prometheus"

// producerCollector exposes a Producer's Stats as Prometheus metrics. It reads
// the counters at scrape time, so the hot path pays nothing for metrics.
type producerCollector struct {
	p                                                         *Producer
	enqueued, produced, spooled, replayed, dropped, writeErrs *prometheus.Desc
	writes                                                    *prometheus.Desc
	queueDepth, queueCap, spoolEvents, spoolBytes, brokerUp   *prometheus.Desc
	held, heldBytes, backlogged                               *prometheus.Desc
}

// registerProducerMetrics registers p's metrics (routelab_events_*) with reg.
func registerProducerMetrics(reg prometheus.Registerer, p *Producer) error {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("routelab_events_"+name, help, labels, nil)
	}
	return reg.Register(&producerCollector{
		p:           p,
		enqueued:    d("enqueued_total", "Events accepted by Enqueue."),
		produced:    d("produced_total", "Events acknowledged by the broker, directly or by replay."),
		spooled:     d("spooled_total", "Events written to the on-disk spool while the broker was away."),
		replayed:    d("replayed_total", "Events replayed from the spool and acknowledged by the broker."),
		dropped:     d("dropped_total", "Events given up on, by reason.", "reason"),
		writeErrs:   d("write_errors_total", "Failed write attempts to the broker."),
		writes:      d("writes_total", "Successful writes to the broker; produced_total / writes_total is the events per write."),
		queueDepth:  d("queue_depth", "Events waiting in the in-memory queue."),
		queueCap:    d("queue_capacity", "Capacity of the in-memory queue."),
		spoolEvents: d("spool_events", "Events in the spool not yet replayed."),
		spoolBytes:  d("spool_bytes", "On-disk size of the spool."),
		brokerUp:    d("broker_up", "1 when the last write to the broker succeeded."),
		held:        d("held", "Events neither the broker nor the spool took, kept in memory and retried; while above 0 no new events are taken and queue_depth grows behind them."),
		heldBytes:   d("held_bytes", "Encoded size of the held events."),
		backlogged:  d("backlogged", "1 while the events in memory are past 7/8 of queue_capacity and new requests are refused."),
	})
}

func (c *producerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enqueued, c.produced, c.spooled, c.replayed, c.dropped, c.writeErrs, c.writes,
		c.queueDepth, c.queueCap, c.spoolEvents, c.spoolBytes, c.brokerUp, c.held, c.heldBytes, c.backlogged} {
		ch <- d
	}
}

func (c *producerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.enqueued, s.Enqueued)
	counter(c.produced, s.Produced)
	counter(c.spooled, s.Spooled)
	counter(c.replayed, s.Replayed)
	counter(c.writeErrs, s.WriteErrors)
	counter(c.writes, s.Writes)
	for _, r := range dropReasons {
		counter(c.dropped, s.Dropped[r], r)
	}
	gauge(c.queueDepth, float64(s.QueueDepth))
	gauge(c.queueCap, float64(s.QueueCapacity))
	gauge(c.spoolEvents, float64(s.SpoolEvents))
	gauge(c.spoolBytes, float64(s.SpoolBytes))
	gauge(c.held, float64(s.Held))
	gauge(c.heldBytes, float64(s.HeldBytes))
	gauge(c.brokerUp, boolGauge(s.BrokerUp))
	gauge(c.backlogged, boolGauge(s.Backlogged))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
