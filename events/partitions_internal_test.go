package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPartitionsGrow: when a topic gains partitions, events go to the new
// ones too once the transport's metadata shows them, and no write fails on
// the way (a partition the transport cannot route to yet is never chosen).
func TestPartitionsGrow(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, TopicDecisions))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &kafka.Transport{MetadataTTL: 100 * time.Millisecond} // 6 s by default
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	w := &partitioner{client: client, partitionBatch: 512}

	recs := make([]record, 300)
	for i := range recs {
		recs[i] = record{topic: TopicDecisions, key: fmt.Sprintf("req-%d", i), value: []byte("{}")}
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
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for p := range n {
			req.Topics[TopicDecisions] = append(req.Topics[TopicDecisions], kafka.LastOffsetOf(p))
		}
		tr := &kafka.Transport{} // fresh metadata
		defer tr.CloseIdleConnections()
		res, err := (&kafka.Client{Addr: kafka.TCP(addr), Transport: tr}).ListOffsets(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int64, n)
		for _, po := range res.Topics[TopicDecisions] {
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
	res, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: TopicDecisions, Count: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[TopicDecisions]; err != nil {
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
