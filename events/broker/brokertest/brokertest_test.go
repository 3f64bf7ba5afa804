package brokertest_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker/brokertest"
)

// slowConn delays each of the broker's responses by d, the way a broker on
// a loaded machine answers late.
type slowConn struct {
	net.Conn
	d time.Duration
}

func (c slowConn) Write(b []byte) (int, error) {
	time.Sleep(c.d)
	return c.Conn.Write(b)
}

type slowListener struct {
	net.Listener
	d time.Duration
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return slowConn{c, l.d}, nil
}

// TestRecordsFromALateBroker: Records reads everything from a broker that
// answers every request 150 ms late. The readers the producer tests had
// before (kafka-go Reader, MaxWait 100 ms, which kafka-go makes the whole
// fetch's read deadline) timed out every fetch against such a broker and
// read nothing until their context ended: TestProducerExactCounts under a
// loaded `go test -race ./...`.
func TestRecordsFromALateBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, events.TopicDecisions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return slowListener{l, 150 * time.Millisecond}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	const n = 300
	w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: events.TopicDecisions, Balancer: &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond, BatchSize: n}
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		msgs[i] = kafkago.Message{Key: fmt.Appendf(nil, "req-%d", i), Value: []byte("{}")}
	}
	if err := w.WriteMessages(brokertest.Context(t), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	got := brokertest.Records(brokertest.Context(t), t, addr, events.TopicDecisions)
	keys := map[string]bool{}
	for _, m := range got {
		keys[string(m.Key)] = true
	}
	if len(got) != n || len(keys) != n {
		t.Errorf("read %d records, %d distinct keys; want %d", len(got), len(keys), n)
	}
}
