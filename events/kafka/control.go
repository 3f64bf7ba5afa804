package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events/control"
)

// ControlLogConfig says which topic to keep and where the brokers are.
type ControlLogConfig struct {
	Brokers []string // bootstrap host:port list
	Topic   string   // a compacted single-partition topic, e.g. events.TopicPolicies
	Logger  *slog.Logger
	// CheckEvery is how often the Log asks the broker for the topic's end
	// offset to confirm its view is current (see Fresh); default 1s.
	CheckEvery time.Duration
}

// ControlLog keeps one of routelab's control-plane topics (policies,
// experiments, API keys, console users; their record layout is in
// events/control) the way Kafka's schema registry keeps schemas: the topic
// has one partition, the record key names an object and the last record per
// key is its current value (an empty value deletes it). Every process that
// needs the state opens a ControlLog, which reads the topic to its end and
// then follows it, so all replicas converge on the same view without any
// other database or coordination; a write returns once it is committed and
// applied locally (read-your-writes). Subscribers are told of every change in
// log order, which is how serve hot-swaps policies.
//
// A ControlLog is a local, always-following view of one control-plane
// topic. It is safe for concurrent use.
type ControlLog struct {
	topic  string
	log    *slog.Logger
	client *kafkago.Client
	tr     *kafkago.Transport
	reader *kafkago.Reader
	cancel context.CancelFunc
	done   chan struct{}
	// checkDone is closed when the freshness checker has stopped.
	checkDone chan struct{}

	mu      sync.Mutex
	state   map[string][]byte
	next    int64         // offset after the last applied record
	changed chan struct{} // closed and replaced whenever next moves
	// current is the latest moment the view is known to have held every
	// record the broker had; probes are end offsets asked for at a moment
	// and not applied yet; end and checkErr are the last check's answer.
	current  time.Time
	probes   []probe
	end      int64
	checkErr error

	subMu sync.Mutex // serialises delivery to subscribers with subscription
	subs  map[int]func(control.Change)
	subID int
}

// probe is the topic's end offset as the broker gave it to a check begun at.
type probe struct {
	at  time.Time
	end int64
}

// maxProbes bounds the probes kept while the follower is behind; dropping
// the oldest loses nothing, a newer probe confirms a later moment.
const maxProbes = 64

// ErrControlLogClosed is returned by calls on a closed ControlLog.
var ErrControlLogClosed = errors.New("control log closed")

// OpenControlLog reads cfg.Topic from its start to the end it has when it is called,
// then keeps following it in the background. It returns once the local view
// is complete, or ctx's error.
func OpenControlLog(ctx context.Context, cfg ControlLogConfig) (*ControlLog, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("control: brokers and topic are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &ControlLog{
		topic: cfg.Topic,
		log:   logger.With("component", "control", "topic", cfg.Topic),
		// Its own transport, so Close can drop its connections and no pooled
		// connection is shared with other clients in the process.
		tr:        &kafkago.Transport{},
		done:      make(chan struct{}),
		checkDone: make(chan struct{}),
		state:     map[string][]byte{},
		changed:   make(chan struct{}),
		subs:      map[int]func(control.Change){},
	}
	l.client = &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: l.tr}
	began := time.Now()
	end, err := l.endOffset(ctx)
	if err != nil {
		return nil, err
	}
	l.current, l.end = began, end
	l.reader = kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:   cfg.Brokers,
		Topic:     cfg.Topic,
		Partition: 0,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		// Fetches wait this long for new records; a new record ends the
		// wait at once, so it bounds idle round trips, not apply latency.
		MaxWait: time.Second,
	})
	if err := l.reader.SetOffset(kafkago.FirstOffset); err != nil {
		l.reader.Close()
		return nil, fmt.Errorf("control %s: %w", cfg.Topic, err)
	}
	fctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.follow(fctx)
	if err := l.waitApplied(ctx, end); err != nil {
		close(l.checkDone)
		l.Close()
		return nil, fmt.Errorf("control %s: read to end (%d): %w", cfg.Topic, end, err)
	}
	every := cfg.CheckEvery
	if every <= 0 {
		every = time.Second
	}
	go l.check(fctx, every)
	return l, nil
}

// check asks the broker for the topic's end offset every interval. The
// view is current as of the moment a check began once the follower has
// applied everything before the offset that check got (apply settles
// probes the follower reaches later).
func (l *ControlLog) check(ctx context.Context, every time.Duration) {
	defer close(l.checkDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		began := time.Now()
		cctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		end, err := l.endOffset(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.checkErr = err
		if err == nil {
			l.end = end
			if l.next >= end {
				l.current, l.probes = began, l.probes[:0]
			} else {
				if len(l.probes) == maxProbes {
					l.probes = append(l.probes[:0], l.probes[1:]...)
				}
				l.probes = append(l.probes, probe{at: began, end: end})
			}
		}
		l.mu.Unlock()
	}
}

// Fresh returns nil when the view held every record the broker had at some
// moment within maxAge of now, so a change committed longer than maxAge ago
// (a revoked key) is applied here. Otherwise it says why not: the follower
// is behind the broker, or the broker does not answer.
func (l *ControlLog) Fresh(maxAge time.Duration) error {
	select {
	case <-l.done:
		return ErrControlLogClosed
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	age := time.Since(l.current)
	if age <= maxAge {
		return nil
	}
	age = age.Round(time.Millisecond)
	if l.checkErr != nil {
		return fmt.Errorf("control %s: view last confirmed current %v ago: %w", l.topic, age, l.checkErr)
	}
	return fmt.Errorf("control %s: follower %d records behind the broker, view last current %v ago", l.topic, max(l.end-l.next, 0), age)
}

// endOffset is the offset the next record of the topic will get.
func (l *ControlLog) endOffset(ctx context.Context) (int64, error) {
	resp, err := l.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{l.topic: {kafkago.LastOffsetOf(0)}},
	})
	if err != nil {
		return 0, fmt.Errorf("control %s: end offset: %w", l.topic, err)
	}
	parts := resp.Topics[l.topic]
	if len(parts) == 0 {
		return 0, fmt.Errorf("control %s: end offset: topic not found", l.topic)
	}
	if parts[0].Error != nil {
		return 0, fmt.Errorf("control %s: end offset: %w", l.topic, parts[0].Error)
	}
	return parts[0].LastOffset, nil
}

// follow applies records in log order until Close.
func (l *ControlLog) follow(ctx context.Context) {
	defer close(l.done)
	for {
		m, err := l.reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// kafka-go retries broker errors inside ReadMessage; what comes
			// out here is worth a line, then keep going.
			l.log.Warn("read control topic", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		l.apply(control.Change{Key: string(m.Key), Value: m.Value, Deleted: len(m.Value) == 0, Offset: m.Offset})
	}
}

func (l *ControlLog) apply(c control.Change) {
	if c.Deleted {
		c.Value = nil
	}
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.mu.Lock()
	if c.Deleted {
		delete(l.state, c.Key)
	} else {
		l.state[c.Key] = c.Value
	}
	l.next = c.Offset + 1
	settled := 0
	for _, p := range l.probes {
		if p.end > l.next {
			break
		}
		l.current, settled = p.at, settled+1
	}
	l.probes = append(l.probes[:0], l.probes[settled:]...)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(l.subs)) {
		l.subs[id](c)
	}
}

// waitApplied blocks until every record before offset end is applied.
func (l *ControlLog) waitApplied(ctx context.Context, end int64) error {
	for {
		l.mu.Lock()
		next, ch := l.next, l.changed
		l.mu.Unlock()
		if next >= end {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return ErrControlLogClosed
		}
	}
}

// Get returns the current value of key. The slice must not be modified.
func (l *ControlLog) Get(key string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.state[key]
	return v, ok
}

// All returns a copy of the current view, key to value.
func (l *ControlLog) All() map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.state)
}

// Offset is the offset after the last applied record: two ControlLogs on the same
// topic with the same Offset hold the same view.
func (l *ControlLog) Offset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// Subscribe calls fn once for every key in the current view (sorted by key,
// Offset -1), then for every change applied afterwards, in log order, with no
// change missed or reordered in between. fn runs on the log's follow goroutine
// and must return quickly; it must not call Subscribe, the returned cancel, Put
// or Delete (those wait for the goroutine fn is holding up). Get, All and
// Offset are safe to call from fn.
func (l *ControlLog) Subscribe(fn func(control.Change)) (cancel func()) {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	snap := l.All()
	for _, k := range slices.Sorted(maps.Keys(snap)) {
		fn(control.Change{Key: k, Value: snap[k], Offset: -1})
	}
	l.subID++
	id := l.subID
	l.subs[id] = fn
	return func() {
		l.subMu.Lock()
		delete(l.subs, id)
		l.subMu.Unlock()
	}
}

// Put writes value under key and returns once the broker has committed it
// (acks from all in-sync replicas) and this ControlLog has applied it, so a Get right
// after sees it (or a later write by someone else). An empty value deletes the key.
func (l *ControlLog) Put(ctx context.Context, key string, value []byte) error {
	select {
	case <-l.done:
		return ErrControlLogClosed
	default:
	}
	var (
		resp *kafkago.ProduceResponse
		err  error
	)
	// Retry network failures (a broker restart leaves a dead pooled
	// connection behind); a broker error is final. A retry after a lost
	// acknowledgement writes the same value twice, which a last-value-wins
	// log absorbs.
	for attempt := 0; ; attempt++ {
		// Built per attempt: kafkago.Bytes are readers, consumed by a send.
		rec := kafkago.Record{Key: kafkago.NewBytes([]byte(key))}
		if len(value) > 0 {
			rec.Value = kafkago.NewBytes(value)
		}
		resp, err = l.client.Produce(ctx, &kafkago.ProduceRequest{
			Topic:        l.topic,
			Partition:    0,
			RequiredAcks: kafkago.RequireAll,
			Records:      kafkago.NewRecordReader(rec),
		})
		if err == nil {
			err = resp.Error
			break
		}
		var kerr kafkago.Error
		if errors.As(err, &kerr) || attempt == 4 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("control %s: put %q: %w", l.topic, key, err)
	}
	if err := l.waitApplied(ctx, resp.BaseOffset+1); err != nil {
		return fmt.Errorf("control %s: put %q committed at offset %d, not yet applied: %w", l.topic, key, resp.BaseOffset, err)
	}
	return nil
}

// Delete writes a tombstone for key; see Put.
func (l *ControlLog) Delete(ctx context.Context, key string) error { return l.Put(ctx, key, nil) }

// Close stops following the topic.
func (l *ControlLog) Close() error {
	l.cancel()
	<-l.done
	<-l.checkDone
	err := l.reader.Close()
	l.tr.CloseIdleConnections()
	return err
}
