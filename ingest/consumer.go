package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/segmentio/kafka-go"
)

// Headers set on a dead-lettered record; its key and value are the
// original message's, its other headers are kept too.
const (
	HeaderReason          = "routelab-reason"           // an events.Reason* code
	HeaderDetail          = "routelab-detail"           // human-readable detail
	HeaderSourceTopic     = "routelab-source-topic"     // topic the message came from
	HeaderSourcePartition = "routelab-source-partition" // decimal
	HeaderSourceOffset    = "routelab-source-offset"    // decimal
)

// ConsumerConfig configures a Consumer. Brokers is required.
type ConsumerConfig struct {
	Brokers []string
	// GroupID is the Kafka consumer group; replicas of ingest share it and
	// split the partitions. Default "routelab-ingest".
	GroupID string
	// Topics to consume; default Topics().
	Topics []string
	// DeadLetterTopic receives messages that cannot be decoded, and events
	// ClickHouse refuses to insert (ReasonRejected); default
	// events.TopicDeadLetter.
	DeadLetterTopic string
	// BatchSize bounds the messages per insert round; default 20000.
	BatchSize int
	// BatchWait is how long a round keeps filling after its first message
	// before it may be inserted; default 200ms. BatchMaxWait bounds how long
	// a round keeps filling while messages keep coming (the consumer is
	// behind) and the inserter is free; default 5s.
	BatchWait, BatchMaxWait time.Duration
	// Workers is the number of group members this process runs; each
	// owns its share of partitions and inserts independently. Default 1.
	Workers int
	// BackoffMin and BackoffMax bound the wait between retries while
	// ClickHouse (or the broker) refuses a write; defaults 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
	// InsertTimeout bounds one insert round; default 2m.
	InsertTimeout time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// OnCommit, when set, is called after a round's offsets are committed
	// with the ts of every inserted event and the time the insert returned
	// (the events were queryable from then). Used by the benchmark and for
	// latency metrics; it must not retain ts.
	OnCommit func(ts []int64, inserted time.Time)
}

func (c *ConsumerConfig) defaults() {
	if c.GroupID == "" {
		c.GroupID = "routelab-ingest"
	}
	if len(c.Topics) == 0 {
		c.Topics = Topics()
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = events.TopicDeadLetter
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 20000
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 200 * time.Millisecond
	}
	if c.BatchMaxWait < c.BatchWait {
		c.BatchMaxWait = max(c.BatchWait, 5*time.Second)
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Second
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Stats are the consumer's counters since start.
type Stats struct {
	Consumed      int64 // messages fetched
	Inserted      int64 // events inserted and committed
	DeadLettered  int64 // messages sent to the dead-letter topic
	Rejected      int64 // of those, events ClickHouse refused to insert
	Rounds        int64 // committed insert rounds
	InsertErrors  int64 // failed insert attempts (each retried)
	CommitErrors  int64 // failed commit attempts (each retried)
	DeadLetterErr int64 // failed dead-letter writes (each retried)
	FetchErrors   int64 // failed fetches from the broker (each retried)
	// Time spent filling rounds (waiting on the broker), inserting, and
	// committing, summed over workers.
	FetchTime, InsertTime, CommitTime time.Duration
}

// Consumer reads the event topics as a consumer group and writes them to
// ClickHouse: fetch a round, decode, insert, dead-letter the undecodable,
// and only then commit (at-least-once). A failed insert is retried with
// backoff, holding the round and committing nothing, so stopping
// ClickHouse for a while loses no event. An event ClickHouse refuses for
// what it holds is split off from its round (see Writer.Write) and
// dead-lettered like an undecodable one, so it cannot hold up the events
// behind it on its partition.
type Consumer struct {
	cfg    ConsumerConfig
	writer *Writer
	dlq    *kafka.Writer

	consumed, inserted, deadLettered, rounds atomic.Int64
	rejected                                 atomic.Int64
	insertErrs, commitErrs, dlqErrs          atomic.Int64
	fetchErrs                                atomic.Int64
	fetchNS, insertNS, commitNS              atomic.Int64
}

// NewConsumer returns a consumer writing through w. Call Run to start it.
func NewConsumer(cfg ConsumerConfig, w *Writer) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("ingest: ConsumerConfig.Brokers is empty")
	}
	cfg.defaults()
	dlq := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.DeadLetterTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
	}
	return &Consumer{cfg: cfg, writer: w, dlq: dlq}, nil
}

// Stats returns the counters.
func (c *Consumer) Stats() Stats {
	return Stats{
		Consumed: c.consumed.Load(), Inserted: c.inserted.Load(), DeadLettered: c.deadLettered.Load(),
		Rejected: c.rejected.Load(),
		Rounds:   c.rounds.Load(), InsertErrors: c.insertErrs.Load(), CommitErrors: c.commitErrs.Load(),
		DeadLetterErr: c.dlqErrs.Load(), FetchErrors: c.fetchErrs.Load(),
		FetchTime: time.Duration(c.fetchNS.Load()), InsertTime: time.Duration(c.insertNS.Load()),
		CommitTime: time.Duration(c.commitNS.Load()),
	}
}

// Run consumes until ctx ends, then finishes the round in hand (insert and
// commit, bounded by InsertTimeout), leaves the group and returns nil. It
// returns an error only when it cannot run at all.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.dlq.Close()
	var wg sync.WaitGroup
	errs := make([]error, c.cfg.Workers)
	for i := range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.work(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Consumer) newReader() *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:     c.cfg.Brokers,
		GroupID:     c.cfg.GroupID,
		GroupTopics: c.cfg.Topics,
		StartOffset: kafka.FirstOffset,
		MinBytes:    1,
		MaxBytes:    16 << 20,
		// kafka-go uses MaxWait as the read deadline of the whole fetch
		// round trip (the broker is told to wait 1 s less, or a quarter less
		// below 1 s). At 100 ms a broker that answered late (a loaded
		// machine; in routelab dev the broker shares a process with serve)
		// timed every fetch out, every partition reader reconnected at once,
		// and ingest stopped. With MinBytes 1 the broker answers as soon as
		// there is data, so a long wait only holds idle partitions.
		MaxWait:        fetchMaxWait,
		QueueCapacity:  c.cfg.BatchSize,
		CommitInterval: 0, // CommitMessages is synchronous
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		// kafka-go retries fetch and group errors on its own; without a
		// logger they are silent, and a partition that keeps failing just
		// looks like a consumer that stopped.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.cfg.Logger.Warn("kafka reader: " + fmt.Sprintf(msg, args...))
		}),
	})
}

// fetchMaxWait is the reader's MaxWait: the broker long-polls an idle
// partition for 1 s and has 1 s more to answer before the fetch times out.
const fetchMaxWait = 2 * time.Second

// round is one batch of fetched messages on its way to ClickHouse.
type round struct {
	msgs    []kafka.Message
	decoded int // msgs[:decoded] are in batch or dead
	batch   *Batch
	rows    []int // rows[i] is the index in msgs of the batch's i-th event
	dead    []kafka.Message
	evs     []any   // decode scratch
	errs    []error // decode scratch
	// lag is, per partition seen in this round, how many messages the
	// broker held beyond the last one fetched (high watermark - offset - 1).
	lag map[topicPartition]int64
}

type topicPartition struct {
	topic     string
	partition int
}

// behind reports whether the broker had more messages for any partition of
// the round when its last message was fetched.
func (rd *round) behind() bool {
	for _, l := range rd.lag {
		if l > 0 {
			return true
		}
	}
	return false
}

// work is one group member: a fetcher goroutine fills and decodes the next
// round while an inserter inserts and commits the previous one, in order.
// Two rounds circulate between them, so memory stays bounded while
// ClickHouse is down (the fetcher waits for a free round).
func (c *Consumer) work(ctx context.Context, id int) error {
	log := c.cfg.Logger.With("worker", id)
	r := c.newReader()
	defer r.Close()
	free := make(chan *round, 2)
	free <- &round{batch: NewBatch()}
	free <- &round{batch: NewBatch()}
	full := make(chan *round)
	idle := make(chan struct{}, 1)
	inserterDone := make(chan struct{})
	go func() {
		defer close(inserterDone)
		for {
			select { // tell the fetcher we are waiting for a round
			case idle <- struct{}{}:
			default:
			}
			rd, ok := <-full
			if !ok {
				return
			}
			// After ctx ends, rounds in hand still get inserted and
			// committed, each within InsertTimeout.
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if ctx.Err() != nil {
				wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.cfg.InsertTimeout)
			}
			err := c.finish(wctx, log, r, rd)
			cancel()
			if err != nil {
				log.Warn("round left uncommitted; it will be redelivered", "messages", len(rd.msgs), "err", err)
				return
			}
			free <- rd
		}
	}()
	defer func() { close(full); <-inserterDone }()
	for ctx.Err() == nil {
		var rd *round
		select {
		case rd = <-free:
		case <-inserterDone:
			return nil
		}
		if !c.fill(ctx, r, rd, full, idle, inserterDone) {
			return nil
		}
	}
	return nil
}

// fill gathers a round and hands it to the inserter. It waits as long as
// needed for the first message and at least BatchWait for more. After that
// it hands the round over as soon as the inserter is idle and the broker
// has nothing more right now (a short poll comes back empty), or, while
// messages keep coming (a backlog), once BatchMaxWait has passed. So a
// consumer that keeps up inserts every BatchWait, and one that is behind
// inserts fewer, larger rounds (up to BatchSize), which is what MergeTree
// wants. It reports false when the worker should stop (ctx ended with
// nothing in hand, or the inserter gave up).
func (c *Consumer) fill(ctx context.Context, r *kafka.Reader, rd *round, full chan<- *round, idle <-chan struct{}, inserterDone <-chan struct{}) bool {
	rd.msgs, rd.decoded = rd.msgs[:0], 0
	rd.dead = rd.dead[:0]
	rd.rows = rd.rows[:0]
	rd.batch.Reset()
	if rd.lag == nil {
		rd.lag = map[topicPartition]int64{}
	}
	clear(rd.lag)
	m, err := c.fetchFirst(ctx, r)
	if err != nil {
		return false
	}
	began := time.Now()
	c.add(rd, m)
	minDone, maxDone := began.Add(c.cfg.BatchWait), began.Add(c.cfg.BatchMaxWait)
	tryHandoff := func() bool {
		select {
		case <-idle: // the inserter is waiting on full
			c.decodePending(rd)
			c.account(rd, began)
			full <- rd
			return true
		default:
			return false
		}
	}
	for len(rd.msgs) < c.cfg.BatchSize && ctx.Err() == nil {
		now := time.Now()
		poll := now.Add(idlePoll)
		if now.Before(minDone) {
			poll = minDone
		}
		fctx, cancel := context.WithDeadline(ctx, poll)
		m, err := r.FetchMessage(fctx)
		cancel()
		switch {
		case err == nil:
			c.add(rd, m)
			if !time.Now().Before(maxDone) && tryHandoff() {
				return true
			}
		case !time.Now().Before(minDone) && (!rd.behind() || !time.Now().Before(maxDone)):
			// Caught up (a stall in the fetch pipeline while the broker
			// holds more does not count), or waited long enough.
			if tryHandoff() {
				return true
			}
		}
	}
	c.decodePending(rd)
	c.account(rd, began)
	select {
	case full <- rd:
		select { // the inserter's idle signal for this round is stale now
		case <-idle:
		default:
		}
		return true
	case <-inserterDone:
		return false
	}
}

// fetchFirst waits for the first message of a round. An error other than
// the end of ctx or of the reader (the broker away, the group coordinator
// moving) is logged and the fetch retried with backoff: kafka-go's reader
// keeps reconnecting on its own, and giving up here would end the worker,
// and with it `routelab ingest`, because the broker was away for a while.
func (c *Consumer) fetchFirst(ctx context.Context, r *kafka.Reader) (kafka.Message, error) {
	wait := c.cfg.BackoffMin
	for {
		m, err := r.FetchMessage(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, io.EOF) {
			return m, err
		}
		c.fetchErrs.Add(1)
		c.cfg.Logger.Warn("fetch failed; retrying", "err", err, "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return m, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, c.cfg.BackoffMax)
	}
}

// idlePoll is how long fill waits for a next message before it takes the
// broker to have nothing more for now.
const idlePoll = 20 * time.Millisecond

func (c *Consumer) account(rd *round, began time.Time) {
	c.fetchNS.Add(int64(time.Since(began)))
	c.consumed.Add(int64(len(rd.msgs)))
}

// add takes m into rd; decoding happens in chunks, in parallel.
func (c *Consumer) add(rd *round, m kafka.Message) {
	rd.msgs = append(rd.msgs, m)
	if m.HighWaterMark > 0 {
		rd.lag[topicPartition{m.Topic, m.Partition}] = m.HighWaterMark - m.Offset - 1
	}
	if len(rd.msgs)-rd.decoded >= decodeChunk {
		c.decodePending(rd)
	}
}

// decodeChunk is how many fetched messages are decoded together.
const decodeChunk = 1024

// decodePending decodes the messages of rd not decoded yet, spread over
// up to GOMAXPROCS goroutines, then adds them to the batch (or the dead
// letters) in fetch order. Decoding is the fetcher's main cost; spreading
// it keeps one core from limiting a worker.
func (c *Consumer) decodePending(rd *round) {
	pending := rd.msgs[rd.decoded:]
	n := len(pending)
	if n == 0 {
		return
	}
	rd.evs = slices.Grow(rd.evs[:0], n)[:n]
	rd.errs = slices.Grow(rd.errs[:0], n)[:n]
	decodeRange := func(i, j int) {
		for k := i; k < j; k++ {
			rd.evs[k], rd.errs[k] = decodeMessage(pending[k])
		}
	}
	if p := min(runtime.GOMAXPROCS(0), n/128); p <= 1 {
		decodeRange(0, n)
	} else {
		var wg sync.WaitGroup
		size := (n + p - 1) / p
		for i := 0; i < n; i += size {
			wg.Go(func() { decodeRange(i, min(i+size, n)) })
		}
		wg.Wait()
	}
	for k := range n {
		if rd.errs[k] != nil {
			rd.dead = append(rd.dead, deadLetter(pending[k], rd.errs[k]))
		} else {
			rd.batch.addEvent(rd.evs[k])
			rd.rows = append(rd.rows, rd.decoded+k)
		}
		rd.evs[k], rd.errs[k] = nil, nil
	}
	rd.decoded = len(rd.msgs)
}

// finish inserts, dead-letters and commits rd, retrying each step with
// backoff until it succeeds or ctx ends.
func (c *Consumer) finish(ctx context.Context, log *slog.Logger, r *kafka.Reader, rd *round) error {
	var (
		inserted time.Time
		rejected []Rejection
	)
	began := time.Now()
	err := c.retry(ctx, log, "insert", &c.insertErrs, func(ctx context.Context) error {
		ictx, cancel := context.WithTimeout(ctx, c.cfg.InsertTimeout)
		defer cancel()
		err := c.writer.Write(ictx, rd.batch)
		if rej := (*RejectedError)(nil); errors.As(err, &rej) {
			rejected, err = rej.Rejected, nil
		}
		if err != nil {
			return err
		}
		inserted = time.Now()
		return nil
	})
	if err != nil {
		return err
	}
	c.insertNS.Add(int64(time.Since(began)))
	for _, rj := range rejected {
		m := rd.msgs[rd.rows[rj.Index]]
		rd.dead = append(rd.dead, deadLetterAs(m, ReasonRejected, rj.Err.Error()))
	}
	if len(rd.dead) > 0 {
		err := c.retry(ctx, log, "dead-letter", &c.dlqErrs, func(ctx context.Context) error {
			return c.dlq.WriteMessages(ctx, rd.dead...)
		})
		if err != nil {
			return err
		}
		for _, m := range rd.dead {
			log.Warn("dead-lettered", "topic", header(m, HeaderSourceTopic), "partition", header(m, HeaderSourcePartition),
				"offset", header(m, HeaderSourceOffset), "reason", header(m, HeaderReason), "detail", header(m, HeaderDetail))
		}
	}
	began = time.Now()
	err = c.retry(ctx, log, "commit", &c.commitErrs, func(ctx context.Context) error {
		return r.CommitMessages(ctx, rd.msgs...)
	})
	if err != nil {
		return err
	}
	c.commitNS.Add(int64(time.Since(began)))
	c.inserted.Add(int64(rd.batch.Len() - len(rejected)))
	c.deadLettered.Add(int64(len(rd.dead)))
	c.rejected.Add(int64(len(rejected)))
	c.rounds.Add(1)
	if c.cfg.OnCommit != nil && rd.batch.Len() > len(rejected) {
		c.cfg.OnCommit(insertedTS(rd.batch.TS(), rejected), inserted)
	}
	return nil
}

// retry runs f until it succeeds, waiting between attempts with doubling
// backoff capped at BackoffMax; it gives up only when ctx ends.
func (c *Consumer) retry(ctx context.Context, log *slog.Logger, what string, failures *atomic.Int64, f func(context.Context) error) error {
	wait := c.cfg.BackoffMin
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		failures.Add(1)
		log.Warn(what+" failed; retrying", "err", err, "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, err)
		case <-t.C:
		}
		wait = min(2*wait, c.cfg.BackoffMax)
	}
}

// insertedTS is ts without the rejected events' entries.
func insertedTS(ts []int64, rejected []Rejection) []int64 {
	if len(rejected) == 0 {
		return ts
	}
	out := make([]int64, 0, len(ts)-len(rejected))
	skip := make(map[int]bool, len(rejected))
	for _, rj := range rejected {
		skip[rj.Index] = true
	}
	for i, v := range ts {
		if !skip[i] {
			out = append(out, v)
		}
	}
	return out
}

// deadLetter is the record sent to the dead-letter topic for m, which
// could not be decoded.
func deadLetter(m kafka.Message, err error) kafka.Message {
	reason, detail := "invalid", err.Error()
	var de *events.DecodeError
	if errors.As(err, &de) {
		reason, detail = de.Reason, de.Detail
	}
	return deadLetterAs(m, reason, detail)
}

// deadLetterAs is the record sent to the dead-letter topic for m with the
// given reason and detail.
func deadLetterAs(m kafka.Message, reason, detail string) kafka.Message {
	hs := append([]kafka.Header{}, m.Headers...)
	hs = append(hs,
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDetail, Value: []byte(detail)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: hs}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
