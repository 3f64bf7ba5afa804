package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/kafka"
)

func mustProducer(t testing.TB, cfg kafka.ProducerConfig) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	return p
}

func decision(i int) *events.Decision {
	return &events.Decision{
		Header: events.NewHeader("acme", fmt.Sprintf("req-%d", i)),
		Model:  "sim-fast", Mode: "generate", Tier: "standard", Prompt: "a red bicycle leaning on a wall",
		Candidates: []events.Candidate{{Model: "sim-fast", P: 0.8, CostUSD: 0.01, Eligible: true}},
	}
}

// consumeIDs reads every record of topic from the start to the current end,
// over the wire with kafka-go, and counts each event id.
func consumeIDs(t *testing.T, addr, topic string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, m := range brokertest.Records(testCtx(t), t, addr, topic) {
		var h events.Header
		if err := json.Unmarshal(m.Value, &h); err != nil {
			t.Fatalf("record is not an event: %v", err)
		}
		if string(m.Key) != h.RequestID {
			t.Fatalf("record key %q, want request id %q", m.Key, h.RequestID)
		}
		ids[h.EventID]++
	}
	return ids
}

func TestProducerExactCounts(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	reg := prometheus.NewRegistry()
	// Batches of 1024 (the default is 4096): n events make several writes,
	// each encoded by several goroutines, without 20,000 events to read back.
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{b.Addr()}, SpoolDir: t.TempDir(), Registerer: reg, BatchSize: 1024})

	const n = 6000
	want := map[string]bool{}
	for i := range n {
		d := decision(i)
		want[d.EventID] = true
		p.Enqueue(events.TopicDecisions, d.RequestID, d)
	}
	ctx := testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st := p.Stats()
	if st.Enqueued != n || st.Produced != n || st.Spooled != 0 || st.DroppedTotal() != 0 {
		t.Errorf("Stats() = %+v, want enqueued=produced=%d, nothing spooled or dropped", st, n)
	}
	if st.Writes < n/1024 {
		t.Errorf("%d events in %d writes, want at least %d (batches of 1024)", n, st.Writes, n/1024)
	}
	if got := counterValue(t, reg, "routelab_events_produced_total"); got != n {
		t.Errorf("routelab_events_produced_total = %v, want %d", got, n)
	}
	got := consumeIDs(t, b.Addr(), events.TopicDecisions)
	if len(got) != n {
		t.Fatalf("consumed %d distinct event ids, want %d", len(got), n)
	}
	for id, c := range got {
		if !want[id] || c != 1 {
			t.Fatalf("event %s consumed %d times (known=%v), want exactly once", id, c, want[id])
		}
	}
}

// TestProducerLinger: the writer holds events for Linger unless BatchSize
// comes first, and Close sends what it holds without waiting the linger out.
func TestProducerLinger(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	const batch, n = 100, 250
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{b.Addr()}, Linger: time.Hour, BatchSize: batch})
	for i := range n {
		d := decision(i)
		p.Enqueue(events.TopicDecisions, d.RequestID, d)
	}
	waitFor(t, "a full batch written before the hour's linger", func() bool { return p.Stats().Produced >= batch })
	ctx := testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Gathering to BatchSize means at most one write per full batch and
	// one for the rest at Close; without it each encoded hand-off (the
	// encoder polls every millisecond) could be its own write.
	if st := p.Stats(); st.Produced != n || st.Writes < 1 || st.Writes > n/batch+1 {
		t.Errorf("Stats() produced %d in %d writes, want %d in 1-%d", st.Produced, st.Writes, n, n/batch+1)
	}
}

// gaugeValue reads one unlabelled gauge from reg the way a scrape would.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return scrape(t, reg, name).GetGauge().GetValue()
}

// counterValue reads one unlabelled counter from reg the way a scrape would.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return scrape(t, reg, name).GetCounter().GetValue()
}

// scrape gathers reg and returns the one series of the metric name.
func scrape(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

// TestProducerBrokerRestart stops the broker mid-stream and restarts it from
// its data dir: events are spooled while it is away, replayed when it is
// back, none lost; duplicates only where an acknowledgement was lost.
func TestProducerBrokerRestart(t *testing.T) {
	dataDir := t.TempDir()
	b := brokertest.Start(t, broker.Config{DataDir: dataDir})
	addr := b.Addr()
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: t.TempDir(), RetryBackoff: 20 * time.Millisecond})

	want := map[string]bool{}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			d := decision(i)
			want[d.EventID] = true
			p.Enqueue(events.TopicDecisions, d.RequestID, d)
		}
	}
	send(0, 1500)
	waitFor(t, "first events produced", func() bool { return p.Stats().Produced >= 500 })
	b.Close()

	send(1500, 3000)
	waitFor(t, "events spooled while the broker is away", func() bool { return p.Stats().Spooled > 0 && p.Stats().QueueDepth == 0 })
	if p.BrokerUp() || !p.Spooling() || p.Healthy() != nil {
		t.Errorf("broker away: BrokerUp() = %v, Spooling() = %v, Healthy() = %v; want false, true, nil (spooling is healthy)", p.BrokerUp(), p.Spooling(), p.Healthy())
	}
	send(3000, 4000)

	b = brokertest.Start(t, broker.Config{DataDir: dataDir, Addr: addr})
	waitFor(t, "spool replayed", func() bool { return !p.Spooling() && p.Stats().QueueDepth == 0 })
	send(4000, 5000)
	ctx := testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st := p.Stats()
	t.Logf("stats: %+v", st)
	if st.DroppedTotal() != 0 || st.Spooled == 0 || st.Replayed != st.Spooled || !p.BrokerUp() {
		t.Errorf("Stats() = %+v, want no drops, spooled > 0, replayed == spooled, broker up", st)
	}
	got := consumeIDs(t, b.Addr(), events.TopicDecisions)
	dups := 0
	for id := range want {
		switch c := got[id]; {
		case c == 0:
			t.Fatalf("event %s lost", id)
		case c > 1:
			dups += c - 1
		}
	}
	if len(got) != len(want) {
		t.Errorf("consumed %d distinct ids, want %d", len(got), len(want))
	}
	// Only batches in flight when the broker went away can be sent twice.
	if dups > 1500 {
		t.Errorf("%d duplicates, want at most the events in flight at the outage", dups)
	}
	t.Logf("%d events, %d spooled, %d duplicates after restart", len(want), st.Spooled, dups)
}

// TestProducerSpoolSurvivesRestart: a producer closed while the broker is
// away leaves its events in the spool; the next producer on the same spool
// dir delivers them.
func TestProducerSpoolSurvivesRestart(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	addr := b.Addr()
	b.Close()
	spoolDir := t.TempDir()

	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: spoolDir})
	want := map[string]bool{}
	for i := range 500 {
		d := decision(i)
		want[d.EventID] = true
		p.Enqueue(events.TopicQA, d.RequestID, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := p.Close(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "500 events in spool") {
		t.Fatalf("Close with the broker away = %v, want an error reporting 500 spooled events", err)
	}

	b = brokertest.Start(t, broker.Config{Addr: addr})
	p = mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: spoolDir})
	if st := p.Stats(); st.SpoolEvents != 500 {
		t.Errorf("new producer sees %d spooled events, want 500", st.SpoolEvents)
	}
	ctx = testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := consumeIDs(t, addr, events.TopicQA)
	if len(got) != 500 {
		t.Fatalf("consumed %d distinct ids after restart, want 500", len(got))
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("event %s consumed %d times, want 1", id, got[id])
		}
	}
}

func TestProducerQueueOverflowCounted(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	addr := b.Addr()
	b.Close() // nothing listens: without a spool the queue must absorb it

	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, QueueSize: 100, BatchSize: 10})
	refused := 0
	for i := range 1000 {
		if !p.TryEnqueue(events.TopicSignals, "r", decision(i)) {
			refused++
		}
	}
	st := p.Stats()
	if full := st.Dropped[kafka.DropQueueFull]; refused == 0 || full != int64(refused) || st.Enqueued+full != 1000 {
		t.Errorf("TryEnqueue refused %d; Enqueued %d, Dropped[queue_full] %d; want refusals > 0 counted as drops, sum 1000", refused, st.Enqueued, full)
	}
	waitFor(t, "first write to fail", func() bool { return !p.BrokerUp() })
	if p.Healthy() == nil {
		t.Errorf("Healthy() = nil with the broker away and no spool, want an error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = p.Close(ctx)
	st = p.Stats()
	if st.Produced != 0 || st.Dropped[kafka.DropClosed] != st.Enqueued {
		t.Errorf("after Close: Produced %d, Dropped[closed] %d, want 0 and %d (every accepted event accounted for)", st.Produced, st.Dropped[kafka.DropClosed], st.Enqueued)
	}
	p.Enqueue(events.TopicSignals, "r", decision(0))
	if got := p.Stats().Dropped[kafka.DropClosed]; got != st.Enqueued+1 {
		t.Errorf("Enqueue after Close: Dropped[closed] = %d, want %d", got, st.Enqueued+1)
	}
}

// sender enqueues decision events numbered from, to and remembers their ids.
type sender struct {
	p    *kafka.Producer
	want map[string]bool
}

func (s *sender) send(from, to int) {
	for i := from; i < to; i++ {
		d := decision(i)
		s.want[d.EventID] = true
		s.p.Enqueue(events.TopicDecisions, d.RequestID, d)
	}
}

// delivered fails the test unless every event sent is on the broker.
func (s *sender) delivered(t *testing.T, addr string) {
	t.Helper()
	got := consumeIDs(t, addr, events.TopicDecisions)
	lost := 0
	for id := range s.want {
		if got[id] == 0 {
			lost++
		}
	}
	if lost > 0 || len(got) != len(s.want) {
		t.Fatalf("%d of %d events lost (%d distinct ids on the broker)", lost, len(s.want), len(got))
	}
}

// heldOrDropped waits until the producer holds events in memory or has
// dropped some, and fails unless it holds them without a drop.
func heldOrDropped(t *testing.T, p *kafka.Producer) kafka.ProducerStats {
	t.Helper()
	waitFor(t, "events held in memory (or dropped)", func() bool {
		st := p.Stats()
		return st.Held > 0 || st.DroppedTotal() > 0
	})
	st := p.Stats()
	if st.DroppedTotal() != 0 || st.Held == 0 || st.HeldBytes == 0 {
		t.Fatalf("broker away, spool taking nothing: Stats() = %+v, want events held in memory and none dropped", st)
	}
	if err := p.Healthy(); err == nil || !strings.Contains(err.Error(), "held in memory") {
		t.Errorf("Healthy() = %v, want an error naming the events held in memory", err)
	}
	return st
}

// TestProducerSpoolDiskFull: the broker is away and the spool's disk fills
// up. What the spool cannot take stays in memory, retried, and is never
// dropped: it goes to the spool when the disk has room again, or to the
// broker when it returns.
func TestProducerSpoolDiskFull(t *testing.T) {
	dataDir := t.TempDir()
	b := brokertest.Start(t, broker.Config{DataDir: dataDir})
	addr := b.Addr()
	reg := prometheus.NewRegistry()
	cfg := kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: t.TempDir(), RetryBackoff: 10 * time.Millisecond,
		BatchSize: 100, Linger: 10 * time.Millisecond, Registerer: reg}
	full := kafka.FillingDisk(&cfg)
	p := mustProducer(t, cfg)
	s := &sender{p: p, want: map[string]bool{}}

	s.send(0, 200)
	waitFor(t, "first events produced", func() bool { return p.Stats().Produced == 200 })
	b.Close()
	s.send(200, 500)
	waitFor(t, "events spooled while the broker is away", func() bool { st := p.Stats(); return st.Spooled > 0 && st.QueueDepth == 0 })

	full.Store(true)
	s.send(500, 1000)
	heldOrDropped(t, p)
	if got := gaugeValue(t, reg, "routelab_events_held"); got == 0 {
		t.Errorf("routelab_events_held = 0 while events are held")
	}

	// The disk has room again: the held events (and those queued behind
	// them) go to the spool although the broker is still away.
	full.Store(false)
	waitFor(t, "held events spooled", func() bool { st := p.Stats(); return st.Held == 0 && st.QueueDepth == 0 })
	if st := p.Stats(); st.SpoolEvents != 800 || st.DroppedTotal() != 0 {
		t.Errorf("after the disk has room: Stats() = %+v, want 800 events spooled and none dropped", st)
	}

	// Full again, and this time the broker returns first.
	full.Store(true)
	s.send(1000, 1500)
	heldOrDropped(t, p)
	b = brokertest.Start(t, broker.Config{DataDir: dataDir, Addr: addr})
	waitFor(t, "spool replayed and held events delivered", func() bool {
		st := p.Stats()
		return st.QueueDepth == 0 && st.Held == 0 && !p.Spooling()
	})
	if err := p.Healthy(); err != nil {
		t.Errorf("Healthy() = %v once everything is delivered, want nil", err)
	}
	if err := p.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := p.Stats(); st.DroppedTotal() != 0 || st.HeldBytes != 0 {
		t.Errorf("Stats() = %+v, want no drops and nothing held", st)
	}
	s.delivered(t, b.Addr())
}

// TestProducerSpoolCapHoldsEvents: a spool at its size cap (SpoolMaxBytes)
// while the broker is away keeps what fits and holds the rest in memory;
// all of it reaches the broker when it returns.
func TestProducerSpoolCapHoldsEvents(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	addr := b.Addr()
	b.Close()

	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, SpoolDir: t.TempDir(), SpoolMaxBytes: 64 << 10, SegmentBytes: 16 << 10,
		RetryBackoff: 10 * time.Millisecond})
	s := &sender{p: p, want: map[string]bool{}}
	s.send(0, 2000)
	heldOrDropped(t, p)
	st := p.Stats()
	if st.Spooled == 0 || st.SpoolBytes > 64<<10 {
		t.Errorf("Stats() = %+v, want spooled > 0 and spool bytes <= 64 KiB", st)
	}

	b = brokertest.Start(t, broker.Config{Addr: addr})
	waitFor(t, "everything delivered", func() bool { return p.Stats().QueueDepth == 0 && !p.Spooling() })
	if err := p.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := p.Stats(); st.DroppedTotal() != 0 || st.Produced < 2000 {
		t.Errorf("Stats() = %+v, want 2000 produced and no drops", st)
	}
	s.delivered(t, addr)
}

// TestProducerBacklogged: with the broker away and nowhere to put events,
// Backlogged turns true before the queue overflows, so a caller that checks
// it loses nothing; it turns false once the broker takes the events.
func TestProducerBacklogged(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	addr := b.Addr()
	b.Close()

	reg := prometheus.NewRegistry()
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{addr}, QueueSize: 80, BatchSize: 10, RetryBackoff: 10 * time.Millisecond, Registerer: reg})
	s := &sender{p: p, want: map[string]bool{}}
	n := 0
	for ; !p.Backlogged(); n++ {
		if n == 1000 {
			t.Fatalf("1000 events in memory of a queue of 80 and not backlogged: %+v", p.Stats())
		}
		s.send(n, n+1)
	}
	st := p.Stats()
	if st.DroppedTotal() != 0 || n < 70 || !st.Backlogged {
		t.Fatalf("backlogged after %d events: Stats() = %+v, want at least 70 (7/8 of 80) kept and none dropped", n, st)
	}
	if err := p.Healthy(); err == nil || !strings.Contains(err.Error(), "backlog") {
		t.Errorf("Healthy() = %v while backlogged, want an error naming the backlog", err)
	}
	if got := gaugeValue(t, reg, "routelab_events_backlogged"); got != 1 {
		t.Errorf("routelab_events_backlogged = %v, want 1", got)
	}

	brokertest.Start(t, broker.Config{Addr: addr})
	waitFor(t, "backlog delivered", func() bool { return p.Stats().QueueDepth == 0 })
	if p.Backlogged() {
		t.Errorf("Backlogged() = true with nothing in memory")
	}
	if err := p.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := p.Stats(); st.DroppedTotal() != 0 || st.Produced != int64(n) {
		t.Errorf("Stats() = %+v, want %d produced and no drops", st, n)
	}
	s.delivered(t, addr)
}

func TestProducerEncodeErrorCounted(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{b.Addr()}})
	p.Enqueue(events.TopicAudit, "r", map[string]any{"bad": make(chan int)})
	ctx := testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := p.Stats().Dropped[kafka.DropEncode]; got != 1 {
		t.Errorf("Dropped[encode] = %d, want 1", got)
	}
}

// TestProducerPartitionsLikeWriter checks that events land where kafka-go's
// Writer (Murmur2, Kafka's default partitioner) puts the same keys, so the
// producer agrees with other Kafka clients and with earlier builds, and that
// a partition's records keep their order when its share of a write is split
// into several produce requests (PartitionBatch 7).
func TestProducerPartitionsLikeWriter(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	const n = 300
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{b.Addr()}, PartitionBatch: 7, Linger: time.Hour})
	for i := range n {
		p.Enqueue(events.TopicDecisions, fmt.Sprintf("req-%d", i), decision(i))
	}
	ctx := testCtx(t)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Produced; got != n {
		t.Fatalf("produced %d, want %d", got, n)
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addr()), Topic: events.TopicQA, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll}
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		msgs[i] = kafkago.Message{Key: fmt.Appendf(nil, "req-%d", i), Value: []byte("{}")}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	ours, theirs := keyPartitions(t, b.Addr(), events.TopicDecisions, true), keyPartitions(t, b.Addr(), events.TopicQA, false)
	if len(ours) != n || len(theirs) != n {
		t.Fatalf("read %d and %d keys, want %d each", len(ours), len(theirs), n)
	}
	for k, part := range ours {
		if theirs[k] != part {
			t.Fatalf("key %s: partition %d, kafka-go's Writer chose %d", k, part, theirs[k])
		}
	}
}

// keyPartitions reads topic and returns each record key's partition; with
// ordered, it also fails unless each partition holds its keys (req-N) in
// increasing N.
func keyPartitions(t *testing.T, addr, topic string, ordered bool) map[string]int {
	t.Helper()
	out := map[string]int{}
	prev := map[int]int{} // partition -> last N
	for _, m := range brokertest.Records(testCtx(t), t, addr, topic) {
		part := m.Partition
		var i int
		if _, err := fmt.Sscanf(string(m.Key), "req-%d", &i); err != nil {
			t.Fatalf("key %q: %v", m.Key, err)
		}
		if p, ok := prev[part]; ordered && ok && i <= p {
			t.Fatalf("partition %d: req-%d after req-%d", part, i, p)
		}
		prev[part] = i
		out[string(m.Key)] = part
	}
	return out
}

// TestProducerWakesAfterIdle: a producer that found its queue empty sleeps
// on the queue instead of polling it; each event after such a pause must
// still go out at once, with no Close to flush it.
func TestProducerWakesAfterIdle(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	p := mustProducer(t, kafka.ProducerConfig{Brokers: []string{b.Addr()}, Linger: time.Millisecond})
	defer p.Close(context.Background())
	r := brokertest.NewReader(t, kafkago.ReaderConfig{Brokers: []string{b.Addr()}, GroupID: "idle-test", Topic: events.TopicDecisions,
		StartOffset: kafkago.FirstOffset})
	ctx := testCtx(t)
	for i := range 3 {
		p.Enqueue(events.TopicDecisions, fmt.Sprintf("req-%d", i), decision(i))
		m, err := r.ReadMessage(ctx) // once read, the producer has gone idle again
		if err != nil {
			t.Fatalf("event %d never arrived: %v", i, err)
		}
		if want := fmt.Sprintf("req-%d", i); string(m.Key) != want {
			t.Fatalf("read %s, want %s", m.Key, want)
		}
	}
}
