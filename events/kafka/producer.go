package kafka

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
	kafkago "github.com/segmentio/kafka-go"
)

// Drop reasons: every event the producer gives up on is counted under one.
const (
	DropQueueFull = "queue_full" // the in-memory queue was full at Enqueue
	DropSpoolIO   = "spool_io"   // the spool's files were unreadable at replay
	DropEncode    = "encode"     // the event could not be marshalled
	DropTooLarge  = "too_large"  // one encoded event exceeds the broker's batch limit
	DropRejected  = "rejected"   // the broker refused it with a non-retriable error
	DropClosed    = "closed"     // Enqueue after Close, or left unsent when Close's context ended
)

var dropReasons = []string{DropQueueFull, DropSpoolIO, DropEncode, DropTooLarge, DropRejected, DropClosed}

// ProducerConfig configures a Producer. Zero values take the defaults shown.
type ProducerConfig struct {
	Brokers []string // bootstrap host:port list; required
	// SpoolDir is where batches go while the broker is unreachable. Empty
	// means no spool: the producer then retries the failed batch in memory
	// and the queue absorbs the outage until it fills (drops are counted).
	SpoolDir      string
	SpoolMaxBytes int64 // default 1 GiB
	SegmentBytes  int64 // spool segment size, default 16 MiB
	// QueueSize bounds the events in memory, default 65536. Past 7/8 of it
	// Backlogged is true (the gateway then refuses requests); the last
	// eighth is room for the events of requests already admitted.
	QueueSize int
	BatchSize int // max events per write, default 4096
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
	Compression  kafkago.Compression
	Logger       *slog.Logger
	// Registerer, when set, gets the producer's routelab_events_* metrics.
	Registerer prometheus.Registerer

	createSegment createFunc // nil: os.OpenFile; tests give a disk that fills up
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
// Enqueued = (Produced - Replayed) + Spooled + dropped after enqueue (encode,
// too_large, rejected, closed-at-shutdown) + QueueDepth + in flight.
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
	Held          int64            `json:"held"`           // events neither the broker nor the spool took, kept in memory and retried (part of QueueDepth)
	HeldBytes     int64            `json:"held_bytes"`     // their encoded size
	Backlogged    bool             `json:"backlogged"`     // QueueDepth is past the bound: see Backlogged
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
	tr      *kafkago.Transport // the writer's own: Close drops its connections
	spool   *spool             // nil without SpoolDir

	backlogAt int64 // pending at which Backlogged turns true

	closed   atomic.Bool
	inflight atomic.Int64 // Enqueue calls between their closed check and their send
	stop     chan struct{}
	done     chan struct{}
	closeCtx context.Context // set before stop is closed; bounds the final flush

	enqueued, produced, spooled, replayed, writeErrors, writes atomic.Int64
	dropped                                                    map[string]*atomic.Int64 // fixed keys, built once
	brokerUp                                                   atomic.Bool
	heldEvents, heldBytes                                      atomic.Int64 // writeLoop's held records

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
		tr:      &kafkago.Transport{},
	}
	p.backlogAt = int64(cfg.QueueSize - cfg.QueueSize/8)
	p.w = &partitioner{
		client:         &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: p.tr},
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
		s, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SegmentBytes, cfg.createSegment)
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
// closed, the event is dropped and counted (Stats().Dropped); callers that
// can refuse work check Backlogged first, so that it does not come to that. ev must not be
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

// Backlogged reports whether the events in memory are past 7/8 of
// QueueSize: the broker and the spool are not taking them (or not fast
// enough), and events enqueued now may not fit. The gateway then refuses
// new requests rather than answer them and lose their events; the queue's
// last eighth is room for the requests already admitted. It turns false as
// soon as the broker or the spool takes events again.
func (p *Producer) Backlogged() bool { return p.pending.Load() >= p.backlogAt }

// BrokerUp reports whether the broker took the last write.
func (p *Producer) BrokerUp() bool { return p.brokerUp.Load() }

// Healthy returns nil while events are being delivered or safely spooled,
// which is what /readyz wants: a broker outage alone does not make serve
// unready. It returns an error when events are at risk: the producer is
// closed, it is backlogged, it holds events in memory that neither the
// broker nor the spool takes, the broker is away and there is no spool, or
// the spool is over 90% full.
func (p *Producer) Healthy() error {
	if p.closed.Load() {
		return errors.New("event producer closed")
	}
	if p.Backlogged() {
		return fmt.Errorf("event backlog full: %d events in memory (bound %d), %d of them taken by neither the broker nor the spool; new requests are refused",
			p.pending.Load(), cap(p.queue), p.heldEvents.Load())
	}
	if n := p.heldEvents.Load(); n > 0 {
		return fmt.Errorf("event broker unreachable and the spool takes no more events: %d held in memory", n)
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
		Held:          p.heldEvents.Load(),
		HeldBytes:     p.heldBytes.Load(),
		Backlogged:    p.Backlogged(),
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
// its error. Events still in memory when ctx ends (without a spool, or with
// one that takes no more) are dropped as "closed".
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
