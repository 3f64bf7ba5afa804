package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Drop reasons: every event the producer gives up on is counted under one.
const (
	DropQueueFull = "queue_full" // the in-memory queue was full at Enqueue
	DropSpoolFull = "spool_full" // the broker was away and the spool had no room
	DropSpoolIO   = "spool_io"   // the broker was away and writing the spool failed (disk error)
	DropEncode    = "encode"     // the event could not be marshalled
	DropTooLarge  = "too_large"  // one encoded event exceeds the broker's batch limit
	DropRejected  = "rejected"   // the broker refused it with a non-retriable error
	DropClosed    = "closed"     // Enqueue after Close, or left unsent when Close's context ended
)

var dropReasons = []string{DropQueueFull, DropSpoolFull, DropSpoolIO, DropEncode, DropTooLarge, DropRejected, DropClosed}

// ProducerConfig configures a Producer. Zero values take the defaults shown.
type ProducerConfig struct {
	Brokers []string // bootstrap host:port list; required
	// SpoolDir is where batches go while the broker is unreachable. Empty
	// means no spool: the producer then retries the failed batch in memory
	// and the queue absorbs the outage until it fills (drops are counted).
	SpoolDir      string
	SpoolMaxBytes int64 // default 1 GiB
	SegmentBytes  int64 // spool segment size, default 16 MiB
	QueueSize     int   // events held in memory, default 65536
	BatchSize     int   // max events per write, default 4096
	// PartitionBatch caps the records in one produce request (one
	// partition's share of a write); default 512. Larger batches cost the
	// broker less per event: in bench serve, 1024 instead of 128 cut its CPU
	// per event from 3.7-4.3 to 3.1-3.2 us (two runs each, with kafka-go's
	// Writer).
	PartitionBatch int
	// Linger is how long the writer gathers encoded events before one
	// write (Kafka's linger.ms), unless BatchSize comes first; default
	// 200ms. Events are not on the request path, and fuller writes cost
	// the broker and kafka-go less per event: in bench serve the broker
	// spent 3.1-4.0 us per event with kafka-go's 50 ms batch timer, 1.9-2.3
	// us with this (2,188 events a write on average). While the broker is away it is
	// also how long one spool frame (one fsync) gathers.
	Linger       time.Duration
	WriteTimeout time.Duration // per write attempt, default 10s
	RetryBackoff time.Duration // first wait before retrying the broker, doubles up to 5s; default 100ms
	Encoders     int           // goroutines marshalling a large batch, default GOMAXPROCS
	Poll         time.Duration // how often a busy producer looks at its queue; default 1ms (an idle one waits on it)
	Compression  kafka.Compression
	Logger       *slog.Logger
	// Registerer, when set, gets the producer's routelab_events_* metrics.
	Registerer prometheus.Registerer
}

func (c *ProducerConfig) defaults() {
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = 1 << 30
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 16 << 20
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 65536
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.PartitionBatch <= 0 {
		c.PartitionBatch = min(512, c.BatchSize)
	}
	if c.Linger <= 0 {
		c.Linger = 200 * time.Millisecond
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.Poll <= 0 {
		c.Poll = time.Millisecond
	}
	if c.Encoders <= 0 {
		c.Encoders = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// maxRecordBytes caps one produce request's records (kafka-go's default
// per-partition batch limit), just under the broker's default
// message.max.bytes; one record must fit in it.
const maxRecordBytes = 1 << 20

// ProducerStats is a snapshot of a producer's counters. Over its lifetime
// Enqueued = (Produced - Replayed) + Spooled + dropped after enqueue (spool_full,
// encode, too_large, rejected, closed-at-shutdown) + QueueDepth + in flight.
type ProducerStats struct {
	Enqueued      int64            `json:"enqueued"`       // accepted by Enqueue
	Produced      int64            `json:"produced"`       // acknowledged by the broker, directly or by replay
	Spooled       int64            `json:"spooled"`        // written to the on-disk spool
	Replayed      int64            `json:"replayed"`       // acknowledged by the broker from the spool
	Dropped       map[string]int64 `json:"dropped"`        // by reason (Drop* constants)
	WriteErrors   int64            `json:"write_errors"`   // failed write attempts
	Writes        int64            `json:"writes"`         // successful writes; Produced/Writes is how full they are (Linger, BatchSize)
	QueueDepth    int              `json:"queue_depth"`    // events in memory: queued, or taken and not yet acknowledged, spooled or dropped
	QueueCapacity int              `json:"queue_capacity"` //
	SpoolEvents   int64            `json:"spool_events"`   // events in the spool not yet replayed
	SpoolBytes    int64            `json:"spool_bytes"`    // on-disk size of the spool
	BrokerUp      bool             `json:"broker_up"`      // the last write attempt succeeded
}

// DroppedTotal sums Dropped over all reasons.
func (s ProducerStats) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

type item struct {
	topic, key string
	ev         any
}

// Producer sends events to Kafka without ever making the caller wait: Enqueue
// puts the event on a bounded in-memory queue; one background goroutine
// marshals batches of them while a second writes the previous batch with
// kafka-go produce requests (synchronously, so it knows exactly which records
// the broker acknowledged). Batches the broker
// does not take go to the spool, and new batches follow them there so order is
// kept; once the broker answers again the spool is replayed oldest first
// before direct writes resume. Delivery is at-least-once: a batch whose
// acknowledgement was lost is sent again, with the same event ids.
type Producer struct {
	cfg     ProducerConfig
	log     *slog.Logger
	queue   chan item
	encoded chan []record // encodeLoop -> writeLoop
	pending atomic.Int64  // events accepted and not yet acknowledged, spooled or dropped
	w       *partitioner
	tr      *kafka.Transport // the writer's own: Close drops its connections
	spool   *spool           // nil without SpoolDir

	closed   atomic.Bool
	inflight atomic.Int64 // Enqueue calls between their closed check and their send
	stop     chan struct{}
	done     chan struct{}
	closeCtx context.Context // set before stop is closed; bounds the final flush

	enqueued, produced, spooled, replayed, writeErrors, writes atomic.Int64
	dropped                                                    map[string]*atomic.Int64 // fixed keys, built once
	brokerUp                                                   atomic.Bool

	mu          sync.Mutex // guards the spool gauges read by Stats
	spoolEvents int64
	spoolBytes  int64
}

// NewProducer opens the spool (replaying whatever an earlier run left in it
// once the broker answers) and starts the background writer.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	cfg.defaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("producer: no brokers")
	}
	p := &Producer{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "producer"),
		queue:   make(chan item, cfg.QueueSize),
		encoded: make(chan []record, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		tr:      &kafka.Transport{},
	}
	p.w = &partitioner{
		client:         &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: p.tr},
		compression:    cfg.Compression,
		partitionBatch: cfg.PartitionBatch,
	}
	p.dropped = make(map[string]*atomic.Int64, len(dropReasons))
	for _, r := range dropReasons {
		p.dropped[r] = new(atomic.Int64)
	}
	p.brokerUp.Store(true)
	if cfg.Registerer != nil {
		if err := registerProducerMetrics(cfg.Registerer, p); err != nil {
			return nil, fmt.Errorf("producer metrics: %w", err)
		}
	}
	if cfg.SpoolDir != "" {
		s, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SegmentBytes)
		if err != nil {
			return nil, err
		}
		p.spool = s
		p.syncSpoolGauges()
		if !s.empty() {
			p.log.Info("spool holds events from an earlier run; replaying", "events", s.pending, "dir", cfg.SpoolDir)
		}
	}
	go p.encodeLoop()
	go p.writeLoop()
	return p, nil
}

// Enqueue queues ev for topic with the given Kafka key (the request id) and
// returns at once; it never blocks. When the queue is full, or the producer
// closed, the event is dropped and counted (Stats().Dropped). ev must not be
// modified after the call: it is marshalled later, on the producer's goroutine.
func (p *Producer) Enqueue(topic, key string, ev any) { p.TryEnqueue(topic, key, ev) }

// TryEnqueue is Enqueue for callers that act on a drop (e.g. answer 503 to a
// reviewer rather than lose a score): it reports whether ev was queued.
func (p *Producer) TryEnqueue(topic, key string, ev any) bool {
	p.inflight.Add(1)
	if p.closed.Load() {
		p.inflight.Add(-1)
		p.drop(DropClosed, 1)
		return false
	}
	p.pending.Add(1) // before the send, so QueueDepth never undercounts
	select {
	case p.queue <- item{topic: topic, key: key, ev: ev}:
		p.inflight.Add(-1)
		p.enqueued.Add(1)
		return true
	default:
		p.pending.Add(-1)
		p.inflight.Add(-1)
		p.drop(DropQueueFull, 1)
		return false
	}
}

func (p *Producer) drop(reason string, n int) {
	if n > 0 {
		p.dropped[reason].Add(int64(n))
	}
}

// BrokerUp reports whether the broker took the last write.
func (p *Producer) BrokerUp() bool { return p.brokerUp.Load() }

// Healthy returns nil while events are being delivered or safely spooled,
// which is what /readyz wants: a broker outage alone does not make serve
// unready. It returns an error when events are at risk: the producer is
// closed, the broker is away and there is no spool, or the spool is over 90%
// full.
func (p *Producer) Healthy() error {
	if p.closed.Load() {
		return errors.New("event producer closed")
	}
	if p.brokerUp.Load() {
		return nil
	}
	if p.spool == nil {
		return errors.New("event broker unreachable and no spool: events wait in memory")
	}
	p.mu.Lock()
	used := p.spoolBytes
	p.mu.Unlock()
	if used > p.cfg.SpoolMaxBytes/10*9 {
		return fmt.Errorf("event broker unreachable and spool %d%% full", used*100/p.cfg.SpoolMaxBytes)
	}
	return nil
}

// Spooling reports whether events are waiting in the spool for the broker.
func (p *Producer) Spooling() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spoolEvents > 0
}

// Stats returns the current counters.
func (p *Producer) Stats() ProducerStats {
	s := ProducerStats{
		Enqueued:      p.enqueued.Load(),
		Produced:      p.produced.Load(),
		Spooled:       p.spooled.Load(),
		Replayed:      p.replayed.Load(),
		WriteErrors:   p.writeErrors.Load(),
		Writes:        p.writes.Load(),
		Dropped:       make(map[string]int64, len(dropReasons)),
		QueueDepth:    int(p.pending.Load()),
		QueueCapacity: cap(p.queue),
		BrokerUp:      p.brokerUp.Load(),
	}
	for r, c := range p.dropped {
		s.Dropped[r] = c.Load()
	}
	p.mu.Lock()
	s.SpoolEvents, s.SpoolBytes = p.spoolEvents, p.spoolBytes
	p.mu.Unlock()
	return s
}

// Close stops accepting events, writes out the queue and tries to empty the
// spool until ctx ends. Events still in the spool then stay on disk and are
// replayed by the next producer on the same SpoolDir; Close reports them in
// its error. Events still queued in memory when ctx ends are dropped as
// "closed" (only possible without a spool).
func (p *Producer) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		<-p.done
		return nil
	}
	// Wait for Enqueue calls that saw closed == false to finish their send,
	// so the final drain below sees every accepted event.
	for p.inflight.Load() != 0 {
		time.Sleep(10 * time.Microsecond)
	}
	p.closeCtx = ctx
	close(p.stop)
	<-p.done
	p.tr.CloseIdleConnections()
	var serr error
	if p.spool != nil {
		left := p.spool.pending
		serr = p.spool.close()
		if left > 0 {
			serr = errors.Join(serr, fmt.Errorf("producer closed with %d events in spool %s (replayed on next start)", left, p.cfg.SpoolDir))
		}
	}
	return serr
}

// encodeLoop is the first stage: it takes events off the queue in batches,
// marshals them and hands the records to writeLoop, marshalling the next
// batch while the writer waits on the broker. While events come it polls the
// queue on a short tick instead of parking on it: a goroutine parked on a
// channel must be woken by the sender, and that wake-up (a futex call when a P
// is idle) would land on Enqueue's clock and dominate its tail latency. Once a
// look finds the queue empty it parks on the queue, so an idle replica sleeps
// (polling cost an idle routelab dev 6% of a core) and only the first event
// after a pause pays the wake-up. When the writer is busy
// (or holding a batch for an absent broker without a spool) the hand-off
// blocks and the queue fills, which is where backpressure shows up as
// counted drops.
func (p *Producer) encodeLoop() {
	defer close(p.encoded)
	tick := time.NewTicker(p.cfg.Poll)
	defer tick.Stop()
	var batch []item
	idle := false // the last look found nothing
	for {
		stopping := false
		if len(p.queue) == 0 {
			wait, queue := tick.C, chan item(nil)
			if idle {
				wait, queue = nil, p.queue
			}
			select {
			case <-wait:
			case it := <-queue:
				batch = append(batch, it)
			case <-p.stop:
				stopping = true
			}
		}
		idle = true
		for {
			batch = p.take(batch)
			if len(batch) == 0 {
				break
			}
			idle = false
			recs := p.encode(batch)
			p.pending.Add(-int64(len(batch) - len(recs))) // encode drops are resolved
			clear(batch)
			batch = batch[:0]
			if len(recs) > 0 {
				p.encoded <- recs
			}
			if !stopping {
				break // at Close: go on until the queue is empty
			}
		}
		if stopping {
			return
		}
	}
}

// take adds queued events to batch without blocking, up to BatchSize.
func (p *Producer) take(batch []item) []item {
	for len(batch) < p.cfg.BatchSize {
		select {
		case it := <-p.queue:
			batch = append(batch, it)
		default:
			return batch
		}
	}
	return batch
}

// writeLoop is the second stage and the only goroutine touching the writer
// and the spool.
func (p *Producer) writeLoop() {
	defer close(p.done)
	var (
		held    []record // no spool only: records waiting for the broker to return
		backoff = p.cfg.RetryBackoff
		retry   = time.NewTimer(time.Hour)
		retryC  <-chan time.Time // non-nil while the broker is considered away
		in      = p.encoded      // nil once the encoder has finished
	)
	retry.Stop()
	brokerAway := func() {
		p.brokerUp.Store(false)
		retry.Reset(backoff)
		retryC = retry.C
		backoff = min(backoff*2, 5*time.Second)
	}
	brokerBack := func() {
		if !p.brokerUp.Swap(true) {
			p.log.Info("broker reachable again")
		}
		backoff = p.cfg.RetryBackoff
	}

	for in != nil || held != nil {
		var recs []record
		switch {
		case held != nil:
			// No spool and the broker away: take nothing more until the retry
			// is due, so the queue absorbs the outage.
			select {
			case <-retryC:
				retryC = nil
			case <-p.stop:
				in = p.drainEncoded(in, &held)
			}
		case p.spool != nil && !p.spool.empty() && retryC == nil:
			// Replay is due: take what is ready without waiting.
			select {
			case r, ok := <-in:
				recs, in = r, openOrNil(in, ok)
			default:
			}
		default:
			select {
			case r, ok := <-in:
				recs, in = r, openOrNil(in, ok)
			case <-retryC:
				retryC = nil
			}
		}
		var linger time.Duration
		if len(recs) > 0 && (p.spool == nil || p.spool.empty() || retryC != nil) {
			// Gather for a while: one write of many events costs the
			// broker far less per event than many small ones, and while
			// the broker is away the spool is fsync'd in large frames.
			// A replay that is due does not wait.
			linger = p.cfg.Linger
		}
		recs = p.gather(recs, &in, linger)

		if p.spool == nil {
			held = append(held, recs...)
			if len(held) > 0 && retryC == nil {
				if held = p.sendStaged(held); len(held) > 0 {
					brokerAway()
				} else {
					brokerBack()
				}
			}
			if len(held) == 0 {
				held = nil
			}
			if in == nil && held != nil && p.closing() {
				break // finish retries what is held until Close's deadline
			}
			continue
		}
		// Keep order: while anything is spooled, new records go behind it.
		n := len(recs)
		if n > 0 && p.spool.empty() && retryC == nil {
			if recs = p.send(recs); len(recs) > 0 {
				brokerAway()
			} else {
				brokerBack()
			}
		}
		p.toSpool(recs)
		p.pending.Add(-int64(n))
		if !p.spool.empty() && retryC == nil {
			if p.replayOnce() {
				brokerBack()
			} else {
				brokerAway()
			}
		}
	}
	p.finish(held)
}

func openOrNil(ch chan []record, ok bool) chan []record {
	if !ok {
		return nil
	}
	return ch
}

// gather adds encoded batches that are ready, up to BatchSize records; with
// linger > 0 it waits that long for more.
func (p *Producer) gather(recs []record, in *chan []record, linger time.Duration) []record {
	var timeout <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		timeout = t.C
	}
	for *in != nil && len(recs) < p.cfg.BatchSize {
		if timeout == nil {
			select {
			case r, ok := <-*in:
				if !ok {
					*in = nil
				}
				recs = append(recs, r...)
				continue
			default:
				return recs
			}
		}
		select {
		case r, ok := <-*in:
			if !ok {
				*in = nil
			}
			recs = append(recs, r...)
		case <-timeout:
			return recs
		}
	}
	return recs
}

// drainEncoded moves everything the encoder still has into held; used at
// Close while holding a batch for an absent broker.
func (p *Producer) drainEncoded(in chan []record, held *[]record) chan []record {
	if in == nil {
		return nil
	}
	for r := range in {
		*held = append(*held, r...)
	}
	return nil
}

func (p *Producer) closing() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// finish runs at Close, after the encoder has drained the queue: keep trying
// the broker until nothing is left or Close's context ends.
func (p *Producer) finish(held []record) {
	ctx := p.closeCtx
	backoff := p.cfg.RetryBackoff
	for ctx.Err() == nil {
		if p.spool == nil {
			if held = p.sendStaged(held); len(held) == 0 {
				return
			}
		} else {
			if p.spool.empty() {
				return
			}
			if p.replayOnce() {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	// What is spooled stays on disk for the next run; held records are lost.
	p.drop(DropClosed, len(held))
	p.pending.Add(-int64(len(held)))
}

// encode marshals a batch, spreading large batches over Encoders goroutines
// (JSON is the producer's main CPU cost); order is kept. Events that cannot be
// sent at all are dropped here.
func (p *Producer) encode(batch []item) []record {
	recs := make([]record, len(batch))
	ok := make([]bool, len(batch))
	workers := min(p.cfg.Encoders, (len(batch)+255)/256)
	if workers <= 1 {
		p.encodeRange(batch, recs, ok)
	} else {
		var wg sync.WaitGroup
		chunk := (len(batch) + workers - 1) / workers
		for lo := 0; lo < len(batch); lo += chunk {
			hi := min(lo+chunk, len(batch))
			wg.Go(func() { p.encodeRange(batch[lo:hi], recs[lo:hi], ok[lo:hi]) })
		}
		wg.Wait()
	}
	out := recs[:0]
	for i := range recs {
		if ok[i] {
			out = append(out, recs[i])
		}
	}
	return out
}

func (p *Producer) encodeRange(batch []item, recs []record, ok []bool) {
	for i, it := range batch {
		b, err := Encode(it.ev)
		if err != nil {
			p.drop(DropEncode, 1)
			p.log.Error("drop event that does not encode", "topic", it.topic, "err", err)
			continue
		}
		r := record{topic: it.topic, key: it.key, value: b}
		if r.size()+64 > maxRecordBytes {
			p.drop(DropTooLarge, 1)
			p.log.Error("drop event larger than the broker's batch limit", "topic", it.topic, "bytes", len(b))
			continue
		}
		recs[i], ok[i] = r, true
	}
}

// sendStaged is send for the no-spool path, where records stay pending until sent.
func (p *Producer) sendStaged(recs []record) []record {
	n := len(recs)
	left := p.send(recs)
	p.pending.Add(-int64(n - len(left)))
	return left
}

// send writes recs and returns the records still to send (nil when all were
// acknowledged or refused for good).
func (p *Producer) send(recs []record) []record {
	if len(recs) == 0 {
		return nil
	}
	acked, left, _ := p.write(recs)
	p.produced.Add(int64(acked))
	return left
}

// write sends recs (produce requests of up to PartitionBatch records, all
// partitions at once) and returns how many the broker acknowledged and the
// records worth retrying; records refused with a non-retriable error are
// dropped as rejected. Records that failed for a passing reason are tried
// once more after a short pause, as kafka-go's Writer did, so a leader
// moving does not send the producer to its spool.
func (p *Producer) write(recs []record) (acked int, left []record, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
	defer cancel()
	errs := p.w.produce(ctx, recs)
	if retry := retriable(errs); len(retry) > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(retryPause):
			again := make([]record, len(retry))
			for j, i := range retry {
				again[j] = recs[i]
			}
			for j, e := range p.w.produce(ctx, again) {
				errs[retry[j]] = e
			}
		}
	}
	for i, e := range errs {
		switch {
		case e == nil:
			acked++
		case isPermanent(e):
			p.drop(DropRejected, 1)
			p.log.Error("broker rejected event", "topic", recs[i].topic, "err", e)
		default:
			left = append(left, recs[i])
			if err == nil {
				err = e
			}
		}
	}
	if acked == len(recs) {
		p.writes.Add(1)
		return acked, nil, nil
	}
	p.writeErrors.Add(1)
	if err != nil && p.brokerUp.Load() {
		p.log.Warn("broker write failed; spooling until it answers", "err", err)
	}
	return acked, left, err
}

// retryPause is the wait before a write's one retry (kafka-go's Writer
// waited 10-50 ms with the settings this producer gave it).
const retryPause = 20 * time.Millisecond

// retriable returns the indexes of records that failed for a passing reason.
func retriable(errs []error) []int {
	var out []int
	for i, e := range errs {
		if e != nil && !isPermanent(e) {
			out = append(out, i)
		}
	}
	return out
}

func isPermanent(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && !ke.Temporary()
}

// toSpool appends recs to the spool. When they do not fit as one frame it
// keeps halving, so that as many as fit are kept; the rest are dropped as
// spool_full.
func (p *Producer) toSpool(recs []record) {
	if len(recs) == 0 {
		return
	}
	err := p.spool.append(recs)
	switch {
	case err == nil:
		p.spooled.Add(int64(len(recs)))
		p.syncSpoolGauges()
	case errors.Is(err, errSpoolFull) && len(recs) > 1:
		p.toSpool(recs[:len(recs)/2])
		p.toSpool(recs[len(recs)/2:])
	case errors.Is(err, errSpoolFull):
		p.drop(DropSpoolFull, 1)
	default:
		p.log.Error("spool append failed; dropping batch", "events", len(recs), "err", err)
		p.drop(DropSpoolIO, len(recs))
	}
}

// replayOnce sends the oldest spooled records (up to a batch) and consumes
// them on success. A partial failure consumes nothing: the whole chunk is
// sent again later (at-least-once).
func (p *Producer) replayOnce() bool {
	recs, pos, err := p.spool.peek(p.cfg.BatchSize)
	if err != nil {
		p.log.Error("spool read failed", "err", err)
		return false
	}
	if len(recs) == 0 {
		// Events are counted as spooled but no frame can be read: the
		// files were damaged under us. Count them lost rather than spin.
		n := p.spool.discard()
		p.drop(DropSpoolIO, int(n))
		p.log.Error("spool unreadable; dropped what it held", "events", n, "dir", p.cfg.SpoolDir)
		p.syncSpoolGauges()
		return true
	}
	acked, left, _ := p.write(recs)
	if len(left) > 0 {
		return false
	}
	if err := p.spool.advance(pos, len(recs)); err != nil {
		p.log.Error("spool advance failed", "err", err)
	}
	p.replayed.Add(int64(acked))
	p.produced.Add(int64(acked))
	p.syncSpoolGauges()
	if p.spool.empty() {
		p.log.Info("spool replayed; writing directly again")
	}
	return true
}

func (p *Producer) syncSpoolGauges() {
	p.mu.Lock()
	p.spoolEvents, p.spoolBytes = p.spool.pending, p.spool.bytes()
	p.mu.Unlock()
}
