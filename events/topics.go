package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Control-plane topics added after the first contract: API keys (serve) and
// console users. Like policies and experiments they are compacted.
const (
	TopicKeys  = "routelab.keys"
	TopicUsers = "routelab.users"
)

// DefaultPartitions is how many partitions the data topics get when routelab
// creates them: enough for a handful of ingest consumers to share the load.
const DefaultPartitions = 6

// DataTopics are the event topics: partitioned by request id, deleted by
// retention, consumed by ingest.
func DataTopics() []string {
	return []string{TopicDecisions, TopicQA, TopicSignals, TopicReviews, TopicAudit, TopicDeadLetter}
}

// ControlTopics are the control-plane topics: one partition so a reader sees
// one total order, cleanup.policy=compact so the last record per key is kept
// for ever and a reader can rebuild the state by reading to the end.
func ControlTopics() []string {
	return []string{TopicPolicies, TopicExperiments, TopicKeys, TopicUsers}
}

// EnsureTopics creates every routelab topic that does not exist yet on the
// cluster at addrs (host:port list); existing topics are left as they are, so
// it is safe on every start and against a real Kafka or Redpanda.
// partitions <= 0 means DefaultPartitions.
func EnsureTopics(ctx context.Context, addrs []string, partitions int) error {
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	var topics []kafka.TopicConfig
	for _, t := range DataTopics() {
		topics = append(topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: -1})
	}
	for _, t := range ControlTopics() {
		topics = append(topics, kafka.TopicConfig{
			Topic: t, NumPartitions: 1, ReplicationFactor: -1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
		})
	}
	// A transport of our own: kafka-go's shared default may hold pooled
	// connections to a broker that has since restarted on the same address.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second, Transport: tr}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("create topics: %w (last error: %v)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var resp *kafka.CreateTopicsResponse
		resp, err = client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
		if err != nil {
			err = fmt.Errorf("create topics: %w", err)
			continue // a broker still starting, or a stale connection
		}
		for name, terr := range resp.Errors {
			if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", name, terr)
			}
		}
		return nil
	}
	return err
}
