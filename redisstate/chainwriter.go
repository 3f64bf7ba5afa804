package redisstate

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Edit-chain nodes are written off the request path: every response makes
// one, few are ever edited, and a SET per request through the
// autopipeliner cost each request a context, a timer and a wake-up on top
// of the store's own work. PutChain queues the node; one writer sends what
// has queued as one pipeline. A node reaches the store a few hundred
// microseconds after its response is sent; the gateway looks a missing
// parent up once more before answering parent_not_found, which covers an
// edit sent to another replica at once (gateway.chainMissWait).

// chainQueue bounds the nodes waiting for the writer; past it PutChain
// writes synchronously (backpressure, not loss).
const chainQueue = 4096

// chainBatch is the most nodes one pipeline carries.
const chainBatch = 256

type chainWrite struct {
	key, value string
}

// writeChains sends queued nodes until the store closes, then drains.
func (s *Store) writeChains() {
	defer close(s.chainDone)
	batch := make([]chainWrite, 0, chainBatch)
	for {
		select {
		case w := <-s.chainQ:
			s.flushChains(s.gather(append(batch[:0], w)))
		case <-s.stop:
			for {
				if batch = s.gather(batch[:0]); len(batch) == 0 {
					return
				}
				s.flushChains(batch)
			}
		}
	}
}

// gather adds what is queued to batch, up to chainBatch, without waiting.
func (s *Store) gather(batch []chainWrite) []chainWrite {
	for len(batch) < chainBatch {
		select {
		case w := <-s.chainQ:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

// flushChains writes a batch in one pipeline. A failure marks the store
// down and is logged: those nodes can then be edited on their own replica
// only, as when PutChain fails.
func (s *Store) flushChains(batch []chainWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range batch {
			p.Set(ctx, w.key, w.value, s.o.ChainTTL)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("edit chain nodes not stored: their outputs can be edited on this replica only", "nodes", len(batch), "err", s.fail(ctx, "chain_put", err))
	}
}

// queueChain hands a node to the writer, or writes it now when the queue
// is full.
func (s *Store) queueChain(ctx context.Context, key, value string) error {
	select {
	case s.chainQ <- chainWrite{key, value}:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if err := s.ap.Set(ctx, key, value, s.o.ChainTTL).Err(); err != nil {
		return s.fail(ctx, "chain_put", err)
	}
	return nil
}

// chainFlushWait is how long Close waits for queued nodes at most.
const chainFlushWait = 2 * time.Second
