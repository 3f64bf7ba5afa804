package console

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/segmentio/kafka-go"
)

// KafkaReviews writes review events to the routelab.reviews topic, keyed by
// request id, and returns once the broker acknowledged them: a reviewer's
// submit succeeds only when the score is durable.
type KafkaReviews struct {
	w *kafka.Writer
}

var _ ReviewSink = (*KafkaReviews)(nil)

// NewKafkaReviews writes to brokers.
func NewKafkaReviews(brokers []string) *KafkaReviews {
	return &KafkaReviews{w: &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  events.TopicReviews,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           2 * time.Millisecond,
		AllowAutoTopicCreation: true,
	}}
}

// Emit implements ReviewSink.
func (k *KafkaReviews) Emit(ctx context.Context, r events.Review) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k.w.WriteMessages(ctx, kafka.Message{Key: []byte(r.RequestID), Value: b}); err != nil {
		return fmt.Errorf("write review event: %w", err)
	}
	return nil
}

// Close flushes and closes the writer.
func (k *KafkaReviews) Close() error { return k.w.Close() }
