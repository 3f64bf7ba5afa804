//go:build unix

package kafka

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/routelab/routelab/events"
)

// BenchmarkWritePath compares the producer's write path with kafka-go's
// Writer set up as the producer used to set it up (Murmur2, acks=all, 512
// records a partition batch, 1 ms batch timer), on the same writes: 2,048
// decision-sized records over both event topics, as one linger gathers them.
// cpu-us/record is the process's CPU (user+system, the in-process broker
// included) per record; the broker's share is the same on both sides.
//
//	go test -run '^$' -bench WritePath -count 6 ./events/
func BenchmarkWritePath(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(events.DefaultPartitions))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx := context.Background()
	if err := EnsureTopics(ctx, []string{addr}, 0); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 900)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	recs := make([]record, 2048)
	for i := range recs {
		topic := events.TopicDecisions
		if i%2 == 1 {
			topic = events.TopicQA
		}
		recs[i] = record{topic: topic, key: fmt.Sprintf("req_%016x", i*7919), value: value}
	}
	write := map[string]func() error{}
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	pw := &partitioner{client: &kafkago.Client{Addr: kafkago.TCP(addr), Transport: tr}, partitionBatch: 512}
	write["partitioner"] = func() error {
		for _, err := range pw.produce(ctx, recs) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(addr), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll,
		BatchSize: 512, BatchBytes: maxRecordBytes, BatchTimeout: time.Millisecond, Transport: &kafkago.Transport{}}
	defer w.Close()
	write["writer"] = func() error {
		msgs := make([]kafkago.Message, len(recs))
		for i, r := range recs {
			msgs[i] = kafkago.Message{Topic: r.topic, Key: []byte(r.key), Value: r.value}
		}
		return w.WriteMessages(ctx, msgs...)
	}
	for _, name := range []string{"writer", "partitioner"} {
		b.Run(name, func(b *testing.B) {
			if err := write[name](); err != nil { // connections and metadata
				b.Fatal(err)
			}
			b.ReportAllocs()
			c0 := cpuTime()
			for b.Loop() {
				if err := write[name](); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N*len(recs)), "cpu-us/record")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
