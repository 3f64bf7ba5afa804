package kafka_test

import (
	"context"
	"slices"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/kafka"
)

// BenchmarkEnqueue is the cost a request pays to emit one event with the
// broker up. Events go in bursts of 1000 and the clock is stopped while the
// producer drains between bursts, so ns/op is Enqueue itself, not the cost of
// sharing the cores with a saturated producer.
func BenchmarkEnqueue(b *testing.B) {
	br := brokertest.Start(b, broker.Config{})
	p := mustProducer(b, kafka.ProducerConfig{Brokers: []string{br.Addr()}, SpoolDir: b.TempDir()})
	d := decision(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 999 {
			b.StopTimer()
			for p.Stats().QueueDepth > 0 {
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
		}
		p.Enqueue(events.TopicDecisions, d.RequestID, d)
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = p.Close(ctx)
	b.ReportMetric(float64(p.Stats().DroppedTotal()), "dropped")
}

// BenchmarkEnqueueBrokerDown measures Enqueue latency per call with the
// broker up (baseline) and with the broker stopped, so that every batch goes
// to the fsync'd spool, in the same run: eight rounds of up then down (the
// broker restarted from its data dir and the spool replayed, untimed, between
// rounds) so load drifting on a shared machine hits both alike. The target is
// p99 down / p99 up within 1.10. Events go in bursts of 1000 and the queue is
// let drain between bursts (untimed), so both measure Enqueue, not drops.
func BenchmarkEnqueueBrokerDown(b *testing.B) {
	dir := b.TempDir()
	br := brokertest.Start(b, broker.Config{DataDir: dir})
	addr := br.Addr()
	defer func() { br.Close() }()
	p := mustProducer(b, kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: b.TempDir(), QueueSize: 1 << 16, RetryBackoff: 20 * time.Millisecond})
	d := decision(0)

	const burst, rounds = 1000, 8
	var up, down []time.Duration
	phase := func(lat *[]time.Duration, n int) {
		for i := 0; i < n; {
			for j := 0; j < burst && i < n; j, i = j+1, i+1 {
				t0 := time.Now()
				p.Enqueue(events.TopicDecisions, d.RequestID, d)
				*lat = append(*lat, time.Since(t0))
			}
			for p.Stats().QueueDepth > 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	per := max(b.N, 40000) / rounds
	spooled := int64(0)
	b.ResetTimer()
	for range rounds {
		phase(&up, per)
		br.Close()
		phase(&down, per)
		b.StopTimer()
		spooled = max(spooled, p.Stats().SpoolEvents)
		br = brokertest.Start(b, broker.Config{DataDir: dir, Addr: addr})
		for p.Spooling() {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
	b.StopTimer()

	st := p.Stats()
	if st.Spooled == 0 || st.Replayed != st.Spooled {
		b.Fatalf("broker-down phases spooled %d, replayed %d: %+v", st.Spooled, st.Replayed, st)
	}
	slices.Sort(up)
	slices.Sort(down)
	pct := func(lat []time.Duration, q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds())
	}
	b.ReportMetric(pct(up, 0.5), "p50-up-ns")
	b.ReportMetric(pct(up, 0.99), "p99-up-ns")
	b.ReportMetric(pct(down, 0.5), "p50-down-ns")
	b.ReportMetric(pct(down, 0.99), "p99-down-ns")
	b.ReportMetric(pct(down, 0.99)/pct(up, 0.99), "p99-down/up")
	b.ReportMetric(float64(st.Spooled), "spooled")
	b.ReportMetric(float64(st.DroppedTotal()), "dropped")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		b.Fatalf("Close: %v", err)
	}
}

// BenchmarkProducerThroughput pushes b.N decision events through the
// Producer to kfake and, in the same run, writes the same pre-encoded events
// with a bare kafka-go Writer in 4096-record calls (the ceiling: no queue, no
// JSON on the clock). Reports events/s for both and their ratio.
func BenchmarkProducerThroughput(b *testing.B) {
	br := brokertest.Start(b, broker.Config{})
	n := max(b.N, 50000)
	evs := make([]*events.Decision, n)
	for i := range evs {
		evs[i] = decision(i)
	}

	b.ResetTimer()
	t0 := time.Now()
	p := mustProducer(b, kafka.ProducerConfig{Brokers: []string{br.Addr()}, QueueSize: n})
	for _, d := range evs {
		p.Enqueue(events.TopicDecisions, d.RequestID, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		b.Fatalf("Close: %v", err)
	}
	producer := time.Since(t0)
	b.StopTimer()
	if st := p.Stats(); st.Produced != int64(n) {
		b.Fatalf("produced %d of %d: %+v", st.Produced, n, st)
	}

	msgs := make([]kafkago.Message, n)
	for i, d := range evs {
		v, _ := events.Encode(d)
		msgs[i] = kafkago.Message{Topic: events.TopicSignals, Key: []byte(d.RequestID), Value: v}
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(br.Addr()), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll, BatchSize: 4096, BatchTimeout: 2 * time.Millisecond}
	t0 = time.Now()
	for i := 0; i < n; i += 4096 {
		if err := w.WriteMessages(ctx, msgs[i:min(i+4096, n)]...); err != nil {
			b.Fatalf("baseline write: %v", err)
		}
	}
	direct := time.Since(t0)
	w.Close()

	b.ReportMetric(float64(n)/producer.Seconds(), "producer-ev/s")
	b.ReportMetric(float64(n)/direct.Seconds(), "writer-ev/s")
	b.ReportMetric(direct.Seconds()/producer.Seconds(), "ratio")
}
