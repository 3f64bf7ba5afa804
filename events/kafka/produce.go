package kafka

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	kafkago "github.com/segmentio/kafka-go"
)

// partitioner sends one write's records as produce requests, one per
// partition batch, through a kafka-go Client. It is what kafka-go's Writer
// does, minus the Writer's per-message metadata lookup: Writer.WriteMessages
// asks the transport for the topic's partitions once per message (a request
// object and a filtered copy of the cached metadata), which in bench serve
// was 2.1 us of CPU per request, the largest part of the producer's own
// cost. Here they are looked up once per topic per write.
type partitioner struct {
	client         *kafkago.Client
	compression    kafkago.Compression
	partitionBatch int // records per produce request at most
}

// Murmur2 is Kafka's default partitioner: a request id lands on the same
// partition whichever client wrote it, as with the Writer's Murmur2Balancer.
var balancer = kafkago.Murmur2Balancer{}

// produce sends recs and returns one error per record (nil when the broker
// acknowledged it). A failure to learn a topic's partitions, or of a whole
// request, is every affected record's error.
func (w *partitioner) produce(ctx context.Context, recs []record) []error {
	errs := make([]error, len(recs))
	var topics []*topicRecords // a write has records for a few topics
	for i, r := range recs {
		var t *topicRecords
		for _, u := range topics {
			if u.topic == r.topic {
				t = u
				break
			}
		}
		if t == nil {
			t = &topicRecords{topic: r.topic}
			parts, err := w.partitions(ctx, r.topic)
			t.err = err
			t.byPartition = make([][]int, len(parts))
			t.parts = parts
			topics = append(topics, t)
		}
		if t.err != nil {
			errs[i] = t.err
			continue
		}
		p := balancer.Balance(kafkago.Message{Key: []byte(r.key)}, t.parts...)
		t.byPartition[p] = append(t.byPartition[p], i)
	}
	// Partitions in parallel; a partition's batches one after the other,
	// so its records reach the broker in order.
	var wg sync.WaitGroup
	for _, t := range topics {
		for p, idx := range t.byPartition {
			if len(idx) == 0 {
				continue
			}
			wg.Go(func() {
				for len(idx) > 0 {
					n := w.batchLen(recs, idx)
					w.send(ctx, t.topic, p, recs, idx[:n], errs)
					idx = idx[n:]
				}
			})
		}
	}
	wg.Wait()
	return errs
}

// topicRecords is one topic's share of a write, by partition.
type topicRecords struct {
	topic       string
	parts       []int   // partition ids, as the balancer takes them
	byPartition [][]int // indexes into the write's records
	err         error   // the topic's partitions could not be learned
}

// batchLen is how many of idx's records go in one request: at most
// partitionBatch, and under the broker's message.max.bytes.
func (w *partitioner) batchLen(recs []record, idx []int) int {
	size := 0
	for n, i := range idx {
		size += recs[i].size() + 64 // record framing, generous
		if n == w.partitionBatch || (n > 0 && size > maxRecordBytes) {
			return n
		}
	}
	return len(idx)
}

func (w *partitioner) send(ctx context.Context, topic string, partition int, recs []record, idx []int, errs []error) {
	res, err := w.client.Produce(ctx, &kafkago.ProduceRequest{
		Topic:        topic,
		Partition:    partition,
		RequiredAcks: kafkago.RequireAll, // the zero value is acks=0
		Compression:  w.compression,
		Records:      &recordReader{recs: recs, idx: idx},
	})
	if err == nil {
		err = res.Error
	}
	for j, i := range idx {
		switch {
		case err != nil:
			errs[i] = err
		case res.RecordErrors[j] != nil:
			errs[i] = res.RecordErrors[j]
		}
	}
}

// recordReader hands kafka-go recs[idx] without copying them: one Record
// and two readers, reset for each record, as kafka-go's Writer does
// internally (kafkago.NewBytes would allocate two readers a record).
type recordReader struct {
	recs  []record
	idx   []int
	rec   kafkago.Record
	key   stringBytes
	value bytesBytes
}

func (r *recordReader) ReadRecord() (*kafkago.Record, error) {
	if len(r.idx) == 0 {
		return nil, io.EOF
	}
	rc := &r.recs[r.idx[0]]
	r.idx = r.idx[1:]
	r.key.Reset(rc.key)
	r.value.Reset(rc.value)
	r.rec = kafkago.Record{Key: &r.key, Value: &r.value}
	return &r.rec, nil
}

// stringBytes and bytesBytes are kafkago.Bytes (a ReadCloser with Len).
type stringBytes struct{ strings.Reader }

func (*stringBytes) Close() error { return nil }

type bytesBytes struct{ bytes.Reader }

func (*bytesBytes) Close() error { return nil }

// partitions returns topic's partition ids (0..n-1, as the Writer passes
// them to its balancer). kafka-go's transport answers from the metadata it
// refreshes every MetadataTTL (6 s by default) and routes produce requests
// by the same metadata, so a topic that gains partitions gets events on
// them within that time, and never on a partition the transport cannot
// route to yet.
func (w *partitioner) partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := w.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("partitions of %s: broker answered for %d topics", topic, len(md.Topics))
	}
	t := md.Topics[0]
	if t.Error != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, t.Error)
	}
	if len(t.Partitions) == 0 {
		return nil, fmt.Errorf("partitions of %s: %w", topic, kafkago.UnknownTopicOrPartition)
	}
	parts := make([]int, len(t.Partitions))
	for i := range parts {
		parts[i] = i
	}
	return parts, nil
}
