package ingest_test

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// slowConn delays every write by the broker (each response) by d, the way a
// broker on a loaded machine, or one sharing a process with a busy server,
// answers late.
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

// A broker that answers every request 150 ms late must not stop ingest.
// With a fetch deadline of 100 ms (the consumer's old MaxWait: kafka-go
// uses MaxWait as the whole fetch round trip's read deadline) every fetch
// timed out, each partition reader reconnected, and nothing was consumed:
// the "ingest stops writing" seen in routelab dev under load.
func TestConsumerSurvivesASlowBroker(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(2, append(ingest.Topics(), events.TopicDeadLetter)...),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return slowListener{l, 150 * time.Millisecond}, nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	const n = 200
	produce(t, addr, events.TopicDecisions, decisions(t, "slow", n)...)
	cons := startConsumer(t, addr, db, ingest.ConsumerConfig{GroupID: "slow"})
	waitFor(t, "all decisions inserted", func() bool { return cons.Stats().Inserted >= n })
	if got := db.Count(t, ingest.TableDecisions); got != n {
		t.Errorf("count(decisions FINAL) = %d, want %d", got, n)
	}
}
