package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
)

func TestTopicsCreated(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	ctx := brokertest.Context(t)

	client := &kafka.Client{Addr: kafka.TCP(b.Addr())}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	parts := map[string]int{}
	for _, tp := range md.Topics {
		parts[tp.Name] = len(tp.Partitions)
	}
	for _, name := range events.DataTopics() {
		if parts[name] != events.DefaultPartitions {
			t.Errorf("topic %s has %d partitions, want %d", name, parts[name], events.DefaultPartitions)
		}
	}
	for _, name := range events.ControlTopics() {
		if parts[name] != 1 {
			t.Errorf("topic %s has %d partitions, want 1", name, parts[name])
		}
	}

	var resources []kafka.DescribeConfigRequestResource
	for _, name := range events.ControlTopics() {
		resources = append(resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: name, ConfigNames: []string{"cleanup.policy"},
		})
	}
	cfgs, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	for _, r := range cfgs.Resources {
		got := ""
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				got = e.ConfigValue
			}
		}
		if got != "compact" {
			t.Errorf("topic %s cleanup.policy = %q, want compact", r.ResourceName, got)
		}
	}
}

// TestRestartKeepsRecordsAndOffsets produces with kafka-go, restarts the
// broker from its data dir, consumes half with a kafka-go consumer group and
// commits, restarts again, and checks the group resumes where it committed.
func TestRestartKeepsRecordsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	const n = 600
	ctx := brokertest.Context(t)

	b := brokertest.Start(t, broker.Config{DataDir: dir})
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: events.TopicDecisions, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond,
		// The zero value is acks=0: without RequireAll the test would close the
		// broker before it stored the records.
		RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "req-%d", i), Value: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	b.Close()

	b = brokertest.Start(t, broker.Config{DataDir: dir})
	seen := map[string]int{}
	consume := func(count int) {
		r := brokertest.NewReader(t, kafka.ReaderConfig{
			Brokers: []string{b.Addr()}, GroupID: "test", Topic: events.TopicDecisions,
			StartOffset: kafka.FirstOffset,
		})
		defer r.Close()
		for range count {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage: %v", err)
			}
			seen[string(m.Key)]++
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages: %v", err)
			}
		}
	}
	consume(n / 2)
	b.Close()

	b = brokertest.Start(t, broker.Config{DataDir: dir})
	consume(n - n/2)
	if len(seen) != n {
		t.Fatalf("consumed %d distinct keys, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("key %s consumed %d times, want 1 (offsets lost on restart?)", k, c)
		}
	}
}

// TestConsumerGroupSplitsPartitions: two kafka-go group members (two ingest
// replicas) share the partitions between them and together read everything.
// Records keep coming until both members have received some, so the test
// does not depend on when the second member's join lands.
func TestConsumerGroupSplitsPartitions(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	ctx := brokertest.Context(t)

	type got struct {
		member int
		key    string
	}
	ch := make(chan got, 1024)
	for i := range 2 {
		// A short heartbeat so a member learns of a rebalance soon; a
		// rebalance timeout a loaded machine cannot miss, since a member
		// that rejoins late is left out and the group rebalances again.
		r := brokertest.NewReader(t, kafka.ReaderConfig{
			Brokers: []string{b.Addr()}, GroupID: "ingest", Topic: events.TopicQA,
			StartOffset:       kafka.FirstOffset,
			HeartbeatInterval: 200 * time.Millisecond, RebalanceTimeout: 30 * time.Second,
		})
		go func() {
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				// A commit can fail across a rebalance; the record is then
				// read again by the new owner (at-least-once), which is fine.
				_ = r.CommitMessages(ctx, m)
				ch <- got{i, string(m.Key)}
			}
		}()
	}

	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: events.TopicQA, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	seen := map[string]bool{}
	var per [2]int
	for batch := 0; per[0] == 0 || per[1] == 0; batch++ {
		if ctx.Err() != nil {
			t.Fatalf("after %d batches one member still read nothing: %v", batch, per)
		}
		msgs := make([]kafka.Message, 60)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "b%d-%d", batch, i), Value: []byte("{}")}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
		want := len(seen) + len(msgs)
		for len(seen) < want {
			select {
			case g := <-ch:
				seen[g.key] = true
				per[g.member]++
			case <-ctx.Done():
				t.Fatalf("read %d of %d records", len(seen), want)
			}
		}
	}
	t.Logf("records read: member 0 %d, member 1 %d", per[0], per[1])
}
