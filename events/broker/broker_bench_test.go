package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
)

// BenchmarkConsume measures how fast a kafka-go consumer-group reader (what
// ingest uses) drains records from the local broker, log in memory or on
// disk, with kafka-go's default fetch size (1 MiB) and a large one (16 MiB),
// after a kafka-go Writer produced them.
func BenchmarkConsume(b *testing.B) {
	for _, tc := range []struct {
		disk     bool
		maxBytes int
	}{{false, 1 << 20}, {true, 1 << 20}, {true, 16 << 20}} {
		disk := tc.disk
		b.Run(fmt.Sprintf("disk=%v/maxbytes=%dMiB", disk, tc.maxBytes>>20), func(b *testing.B) {
			cfg := broker.Config{}
			if disk {
				cfg.DataDir = b.TempDir()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			br := brokertest.Start(b, cfg)
			n := max(b.N, 50000)
			value := make([]byte, 600)
			for i := range value {
				value[i] = 'a' + byte(i%26)
			}
			w := &kafka.Writer{Addr: kafka.TCP(br.Addr()), Topic: events.TopicDecisions, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchSize: 4096, BatchTimeout: 2 * time.Millisecond}
			msgs := make([]kafka.Message, 0, 4096)
			t0 := time.Now()
			for i := 0; i < n; i++ {
				msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "req-%d", i), Value: value})
				if len(msgs) == cap(msgs) || i == n-1 {
					if err := w.WriteMessages(ctx, msgs...); err != nil {
						b.Fatal(err)
					}
					msgs = msgs[:0]
				}
			}
			produce := time.Since(t0)
			w.Close()

			b.ResetTimer()
			t0 = time.Now()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{br.Addr()}, GroupID: "bench", Topic: events.TopicDecisions, StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: tc.maxBytes, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for i := 0; i < n; i++ {
				if _, err := r.FetchMessage(ctx); err != nil {
					b.Fatal(err)
				}
			}
			consume := time.Since(t0)
			b.ReportMetric(float64(n)/produce.Seconds(), "produce-rec/s")
			b.ReportMetric(float64(n)/consume.Seconds(), "consume-rec/s")
		})
	}
}
