package kafka

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
)

// The producer's two stages: encodeLoop marshals queued events, writeLoop
// sends them to the broker, spools them while it is away and replays the
// spool when it is back.

// encodeLoop is the first stage: it takes events off the queue in batches,
// marshals them and hands the records to writeLoop, marshalling the next
// batch while the writer waits on the broker. While events come it polls the
// queue on a short tick instead of parking on it: a goroutine parked on a
// channel must be woken by the sender, and that wake-up (a futex call when a P
// is idle) would land on Enqueue's clock and dominate its tail latency. Once a
// look finds the queue empty it parks on the queue, so an idle replica sleeps
// (polling cost an idle routelab dev 6% of a core) and only the first event
// after a pause pays the wake-up. When the writer is busy
// (or holding records neither the broker nor the spool takes) the hand-off
// blocks and the queue fills, which is where backpressure shows up: first
// as Backlogged, then as counted drops.
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
// and the spool. Records go straight to the broker while it answers and
// nothing waits before them; otherwise they go behind the backlog: first
// the spool, then held, the records neither the broker nor the spool took
// (the broker away and the spool's disk full or at its cap, or no spool).
// Held records stay in memory, retried with backoff (the broker first, then
// the spool), until one of them takes them; meanwhile the loop takes no new
// records, so the queue absorbs the outage and, before it overflows,
// Backlogged tells the gateway to refuse requests whose events it could not
// keep.
func (p *Producer) writeLoop() {
	defer close(p.done)
	var (
		held    []record
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

loop:
	for in != nil || len(held) > 0 {
		var recs []record
		switch {
		case len(held) > 0 && retryC != nil:
			// Nothing takes the held records: take nothing more until
			// the retry is due.
			select {
			case <-retryC:
				retryC = nil
			case <-p.stop:
				// Close: hold what the encoder still has; finish retries
				// until Close's deadline.
				p.drainEncoded(in, &held)
				p.noteHeld(held, nil)
				break loop
			}
		case len(held) > 0:
			// The retry is due: the backlog goes first.
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
		if len(held) == 0 {
			var linger time.Duration
			if len(recs) > 0 && (p.spool == nil || p.spool.empty() || retryC != nil) {
				// Gather for a while: one write of many events costs the
				// broker far less per event than many small ones, and while
				// the broker is away the spool is fsync'd in large frames.
				// A replay that is due does not wait.
				linger = p.cfg.Linger
			}
			recs = p.gather(recs, &in, linger)
		}

		// Keep order: while anything waits in the backlog, new records go
		// behind it. New records arrive only while nothing is held.
		if n := len(recs); n > 0 && p.backlogEmpty(held) && retryC == nil {
			if recs = p.send(recs); len(recs) > 0 {
				brokerAway()
			} else {
				brokerBack()
			}
			p.pending.Add(-int64(n - len(recs)))
		}
		if len(recs) > 0 {
			held = p.toSpool(recs)
		}
		if !p.backlogEmpty(held) && retryC == nil {
			if p.drainBacklog(&held) {
				brokerBack()
			} else {
				brokerAway()
			}
		}
	}
	p.finish(held)
}

// backlogEmpty reports whether nothing waits for the broker.
func (p *Producer) backlogEmpty(held []record) bool {
	return len(held) == 0 && (p.spool == nil || p.spool.empty())
}

// drainBacklog makes one step of delivering the backlog, oldest first: a
// chunk of the spool, or once the spool is empty the held records. It
// reports whether the broker took it. When it did not, held records are
// offered to the spool again (its disk may have room now).
func (p *Producer) drainBacklog(held *[]record) bool {
	if p.spool != nil && !p.spool.empty() {
		if p.replayOnce() {
			return true
		}
		*held = p.spoolHeld(*held)
		return false
	}
	if len(*held) == 0 {
		return true
	}
	n := len(*held)
	left := p.send(*held)
	p.pending.Add(-int64(n - len(left)))
	if len(left) == 0 {
		p.noteHeld(nil, nil)
		*held = nil
		return true
	}
	*held = p.spoolHeld(left)
	return false
}

// spoolHeld moves as many held records to the spool as it takes; the rest
// stay held.
func (p *Producer) spoolHeld(held []record) []record {
	if p.spool == nil || len(held) == 0 {
		p.noteHeld(held, nil)
		return held
	}
	n, err := p.spoolPrefix(held)
	p.pending.Add(-int64(n))
	held = held[n:]
	p.noteHeld(held, err)
	if len(held) == 0 {
		return nil
	}
	return held
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
// Close while holding records nothing takes.
func (p *Producer) drainEncoded(in chan []record, held *[]record) {
	if in == nil {
		return
	}
	for r := range in {
		*held = append(*held, r...)
	}
}

// finish runs at Close, after the encoder has drained the queue: keep
// delivering the backlog until it is empty or Close's context ends.
func (p *Producer) finish(held []record) {
	ctx := p.closeCtx
	backoff := p.cfg.RetryBackoff
	for ctx.Err() == nil && !p.backlogEmpty(held) {
		if p.drainBacklog(&held) {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	// What is spooled stays on disk for the next run; held records are lost.
	if len(held) > 0 {
		p.log.Error("producer closed with events neither the broker nor the spool took; dropping them", "events", len(held))
	}
	p.drop(DropClosed, len(held))
	p.pending.Add(-int64(len(held)))
	p.noteHeld(nil, nil)
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
		b, err := events.Encode(it.ev)
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
	var ke kafkago.Error
	return errors.As(err, &ke) && !ke.Temporary()
}

// toSpool appends recs to the spool and returns the records it did not
// take (all of them without a spool), which the caller holds in memory.
func (p *Producer) toSpool(recs []record) (held []record) {
	if p.spool == nil {
		p.noteHeld(recs, nil)
		return recs
	}
	n, err := p.spoolPrefix(recs)
	p.pending.Add(-int64(n))
	if n == len(recs) {
		return nil
	}
	held = recs[n:]
	p.noteHeld(held, err)
	return held
}

// spoolPrefix appends as many of recs to the spool as it takes, in order,
// and returns how many, with the error that stopped it. A batch that does
// not fit as one frame (the spool's cap, or a disk with a little room left)
// is halved until the parts fit, so that as many records as possible leave
// memory; the first part that does not fit ends it, so the spool never
// holds a record ahead of an older one kept in memory.
func (p *Producer) spoolPrefix(recs []record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	err := p.spool.append(recs)
	switch {
	case err == nil:
		p.spooled.Add(int64(len(recs)))
		p.syncSpoolGauges()
		return len(recs), nil
	case len(recs) > 1 && (errors.Is(err, errSpoolFull) || errors.Is(err, syscall.ENOSPC)):
		h := len(recs) / 2
		n, err := p.spoolPrefix(recs[:h])
		if n < h {
			return n, err
		}
		m, err := p.spoolPrefix(recs[h:])
		return h + m, err
	default:
		return 0, err
	}
}

// noteHeld publishes how many records are held in memory (Stats,
// Backlogged) and logs when holding starts and ends; err is why the spool
// did not take them.
func (p *Producer) noteHeld(held []record, err error) {
	var bytes int64
	for _, r := range held {
		bytes += int64(r.size())
	}
	was := p.heldEvents.Swap(int64(len(held)))
	p.heldBytes.Store(bytes)
	switch {
	case was == 0 && len(held) > 0 && p.spool == nil:
		p.log.Warn("broker unreachable and no spool; holding events in memory", "events", len(held))
	case was == 0 && len(held) > 0:
		p.log.Error("broker unreachable and the spool takes no more events; holding them in memory", "events", len(held), "bytes", bytes, "err", err)
	case was > 0 && len(held) == 0:
		p.log.Info("events held in memory delivered or spooled", "events", was)
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
