package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/routelab/routelab/events"
)

// TestPartitionsGrow: when a topic gains partitions, events go to the new
// ones too once the transport's metadata shows them, and no write fails on
// the way (a partition the transport cannot route to yet is never chosen).
func TestPartitionsGrow(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, events.TopicDecisions))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &kafkago.Transport{MetadataTTL: 100 * time.Millisecond} // 6 s by default
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: tr}
	w := &partitioner{client: client, partitionBatch: 512}

	recs := make([]record, 300)
	for i := range recs {
		recs[i] = record{topic: events.TopicDecisions, key: fmt.Sprintf("req-%d", i), value: []byte("{}")}
	}
	write := func() {
		t.Helper()
		for i, err := range w.produce(ctx, recs) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	counts := func(n int) []int64 { // records held by partitions 0..n-1
		t.Helper()
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for p := range n {
			req.Topics[events.TopicDecisions] = append(req.Topics[events.TopicDecisions], kafkago.LastOffsetOf(p))
		}
		tr := &kafkago.Transport{} // fresh metadata
		defer tr.CloseIdleConnections()
		res, err := (&kafkago.Client{Addr: kafkago.TCP(addr), Transport: tr}).ListOffsets(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int64, n)
		for _, po := range res.Topics[events.TopicDecisions] {
			if po.Error != nil {
				t.Fatalf("partition %d: %v", po.Partition, po.Error)
			}
			out[po.Partition] = po.LastOffset
		}
		return out
	}

	write()
	if got := counts(2); got[0] == 0 || got[1] == 0 || got[0]+got[1] != 300 {
		t.Fatalf("records by partition %v, want 300 over both", got)
	}
	res, err := client.CreatePartitions(ctx, &kafkago.CreatePartitionsRequest{Topics: []kafkago.TopicPartitionsConfig{{Name: events.TopicDecisions, Count: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[events.TopicDecisions]; err != nil {
		t.Fatal(err)
	}
	for writes := 2; ; writes++ {
		write()
		got := counts(5)
		if got[2] > 0 && got[3] > 0 && got[4] > 0 {
			if sum := got[0] + got[1] + got[2] + got[3] + got[4]; sum != int64(300*writes) {
				t.Fatalf("records by partition %v: %d in all, want %d", got, sum, 300*writes)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("after %d writes, records by partition %v: none yet on some new partition", writes, got)
		}
	}
}
