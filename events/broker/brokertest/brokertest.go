// Package brokertest starts routelab's local broker (events/broker) for
// tests: one helper for every package whose tests produce to or consume from
// a broker over the wire.
package brokertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events/broker"
)

// WaitLimit bounds a test's waits on the broker only so that a hang fails
// with a message instead of at go test's -timeout. The waits themselves
// end on what they wait for (a record read, an offset applied, a counter):
// a 2-core machine running the whole suite under -race has needed over a
// minute for what takes 9 s alone, so no wait may be a timing budget.
const WaitLimit = 3 * time.Minute

// Context is a context for a test's waits: it ends after WaitLimit, or
// when the test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	tb.Cleanup(cancel)
	return ctx
}

// Start starts a broker with cfg (every routelab topic created) and closes
// it when the test ends. A test that stops the broker itself, e.g. to
// restart it from cfg.DataDir on the same address, may call Close too: it
// is safe to call more than once.
func Start(tb testing.TB, cfg broker.Config) *broker.Broker {
	tb.Helper()
	b, err := broker.Start(Context(tb), cfg)
	if err != nil {
		tb.Fatalf("start broker: %v", err)
	}
	tb.Cleanup(b.Close)
	return b
}

// FetchWait is the MaxWait test readers use. kafka-go makes MaxWait the
// read deadline of a whole fetch round trip, so a short one (50-100 ms,
// tempting in a test so that Close does not wait out an idle fetch) times
// every fetch out on a loaded machine and the reader reconnects in a loop
// without reading anything: how TestProducerExactCounts ran out of its
// 60 s under a parallel `go test -race ./...`. With MinBytes 1 the broker
// answers as soon as it has data, so MaxWait only holds a fetch on an idle
// partition, and a Reader's Close waits for that fetch: 3 s keeps both
// the slack and the Close short.
const FetchWait = 3 * time.Second

// NewReader is kafkago.NewReader with a MaxWait of at least FetchWait,
// closed when the test ends.
func NewReader(tb testing.TB, cfg kafkago.ReaderConfig) *kafkago.Reader {
	tb.Helper()
	cfg.MaxWait = max(cfg.MaxWait, FetchWait)
	r := kafkago.NewReader(cfg)
	tb.Cleanup(func() { r.Close() })
	return r
}

// Records reads every record of topic on the broker at addr, from the
// start to the end it has when Records is called, partition by partition
// in offset order. It fetches only offsets the broker has, so no fetch
// waits on an idle partition; ctx only bounds a broker that stops
// answering.
func Records(ctx context.Context, tb testing.TB, addr, topic string) []kafkago.Message {
	tb.Helper()
	md, err := (&kafkago.Client{Addr: kafkago.TCP(addr)}).Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		tb.Fatalf("metadata of %s: %v", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		tb.Fatalf("metadata of %s: %+v", topic, md.Topics)
	}
	var out []kafkago.Message
	for _, part := range md.Topics[0].Partitions {
		msgs, err := partitionRecords(ctx, addr, topic, part.ID)
		if err != nil {
			tb.Fatalf("read %s/%d: %v", topic, part.ID, err)
		}
		out = append(out, msgs...)
	}
	return out
}

func partitionRecords(ctx context.Context, addr, topic string, partition int) ([]kafkago.Message, error) {
	conn, err := kafkago.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	var out []kafkago.Message
	for off := first; off < last; {
		if _, err := conn.Seek(off, kafkago.SeekAbsolute); err != nil {
			return out, fmt.Errorf("seek %d: %w", off, err)
		}
		batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: FetchWait})
		from := off
		for off < last {
			m, err := batch.ReadMessage()
			if err != nil {
				break // the batch's end, or its error from Close below
			}
			out = append(out, m)
			off = m.Offset + 1
		}
		if err := batch.Close(); err != nil {
			return out, fmt.Errorf("fetch at %d: %w", from, err)
		}
		if off == from {
			return out, fmt.Errorf("fetch at %d returned nothing, end %d", from, last)
		}
	}
	return out, nil
}
