// Package broker runs routelab's local single-node Kafka-protocol broker: franz-go's
// kfake with a data dir, so topics, records and committed consumer offsets survive
// a restart. It is what `routelab kafka` and `routelab dev` run and what the
// integration tests produce to and consume from over the wire. Production points
// every process at Apache Kafka or Redpanda instead; nothing else changes.
package broker

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/kafka"
)

// Config says where the broker keeps its data and where it listens.
type Config struct {
	// DataDir holds segments, topic metadata and group offsets. Empty keeps
	// everything in memory (tests that do not restart the broker).
	DataDir string
	// Addr is host:port to listen on; port 0 picks a free port (see Broker.Addr).
	// Empty means 127.0.0.1:0.
	Addr string
	// Partitions for the data topics; 0 means events.DefaultPartitions.
	Partitions int
	// SyncWrites fsyncs every produced batch before acknowledging it. Off by
	// default, like Kafka's own default: a clean Close still saves
	// everything, only a machine crash can lose the last acknowledged batches.
	SyncWrites bool
}

// Broker is a running local broker. Close it to persist its state.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts the broker, reloading DataDir when it holds a previous run, and
// makes sure every routelab topic exists (topics added in a newer build are
// created on an old data dir too). It returns once clients can connect.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// kfake always asks for 127.0.0.1:<port>; ListenFn lets us bind the
	// configured host instead, and the listener's real address (port 0
	// resolved) is what kfake advertises in metadata.
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.ClusterID("routelab"),
		kfake.DefaultNumPartitions(partitionsOr(cfg.Partitions)),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("broker data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", addr, err)
	}
	b := &Broker{cluster: c, addr: c.ListenAddrs()[0]}
	if err := kafka.EnsureTopics(ctx, []string{b.addr}, cfg.Partitions); err != nil {
		c.Close()
		return nil, err
	}
	return b, nil
}

func partitionsOr(n int) int {
	if n <= 0 {
		return events.DefaultPartitions
	}
	return n
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Cluster is the kfake cluster behind the broker, for tests that inject
// faults (Cluster.Fault, Cluster.ControlKey): failed or dropped requests,
// a stalled fetch.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Compact runs log compaction now on the compacted (control-plane) topics;
// kfake otherwise compacts on its own schedule (log.cleaner.backoff.ms).
func (b *Broker) Compact() { b.cluster.Compact() }

// Close stops accepting connections and saves the broker's state to its data
// dir. Safe to call more than once.
func (b *Broker) Close() { b.cluster.Close() }
