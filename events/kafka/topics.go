package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
)

// EnsureTopics creates every routelab topic (events.DataTopics with
// partitions each, events.ControlTopics compacted with one) that does not
// exist yet on the cluster at addrs (host:port list); existing topics are
// left as they are, so it is safe on every start and against a real Kafka or
// Redpanda. partitions <= 0 means events.DefaultPartitions.
func EnsureTopics(ctx context.Context, addrs []string, partitions int) error {
	if partitions <= 0 {
		partitions = events.DefaultPartitions
	}
	var topics []kafkago.TopicConfig
	for _, t := range events.DataTopics() {
		topics = append(topics, kafkago.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: -1})
	}
	for _, t := range events.ControlTopics() {
		topics = append(topics, kafkago.TopicConfig{
			Topic: t, NumPartitions: 1, ReplicationFactor: -1,
			ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
		})
	}
	// A transport of our own: kafka-go's shared default may hold pooled
	// connections to a broker that has since restarted on the same address.
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(addrs...), Timeout: 10 * time.Second, Transport: tr}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("create topics: %w (last error: %v)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var resp *kafkago.CreateTopicsResponse
		resp, err = client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: topics})
		if err != nil {
			err = fmt.Errorf("create topics: %w", err)
			continue // a broker still starting, or a stale connection
		}
		for name, terr := range resp.Errors {
			if terr != nil && !errors.Is(terr, kafkago.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", name, terr)
			}
		}
		return nil
	}
	return err
}
