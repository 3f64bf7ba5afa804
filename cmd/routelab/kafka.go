package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/events/broker"
)

const kafkaHelp = `Run a local single-node Kafka-protocol broker (franz-go's kfake) for development.

Topics, records and consumer-group offsets live under DATA_DIR/kafka and survive a
restart. On start it creates the routelab topics: the event topics with
--kafka-partitions partitions and the compacted control-plane topics (policies,
experiments, keys, users) with one partition. Runs until Ctrl-C.

In production run Apache Kafka or Redpanda instead and point every routelab process
at it with --kafka-brokers host:port,... (or ROUTELAB_KAFKA_BROKERS).`

func runKafka(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("kafka", kafkaHelp)
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir; the broker keeps its log under DATA_DIR/kafka (env ROUTELAB_DATA_DIR)")
	addr := fs.String("kafka-addr", "127.0.0.1:9092", "host:port to listen on; port 0 picks a free port (env ROUTELAB_KAFKA_ADDR)")
	fs.StringVar(addr, "addr", "127.0.0.1:9092", "alias of --kafka-addr")
	_ = fs.MarkHidden("addr")
	parts := fs.Int("kafka-partitions", 6, "partitions of each event topic when it is created (env ROUTELAB_KAFKA_PARTITIONS)")
	syncWrites := fs.Bool("kafka-sync-writes", false, "fsync every produced batch before acknowledging it (slower; survives a machine crash)")
	asJSON := fs.Bool("json", false, `print {"kafka": ADDR, "data_dir": DIR} on stdout once the broker accepts connections`)
	// The broker keeps its log in memory as well as on disk, so its heap
	// grows with every record and collections at Go's default target get
	// dearer as it fills; the same target as serve and dev (where the
	// broker runs in-process).
	gcPercent := gcPercentFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	applyGCPercent(fs, env, *gcPercent)
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	if !fs.Changed("addr") {
		envDefault(fs, env, "kafka-addr", "ROUTELAB_KAFKA_ADDR")
	}
	envDefault(fs, env, "kafka-partitions", "ROUTELAB_KAFKA_PARTITIONS")

	dir := filepath.Join(*dataDir, "kafka")
	fmt.Fprintf(env.Stderr, "kafka: data-dir=%s kafka-addr=%s kafka-partitions=%d kafka-sync-writes=%t\n", dir, *addr, *parts, *syncWrites)
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Addr: *addr, Partitions: *parts, SyncWrites: *syncWrites})
	if err != nil {
		return err
	}
	if *asJSON {
		out, _ := json.Marshal(broker.Ready{DataDir: dir, Kafka: b.Addr()})
		fmt.Fprintln(env.Stdout, string(out))
	} else {
		fmt.Fprintf(env.Stdout, "kafka broker listening on %s (data in %s); Ctrl-C to stop\n", b.Addr(), dir)
	}
	<-ctx.Done()
	b.Close() // saves the log and offsets
	fmt.Fprintln(env.Stderr, "kafka: stopped")
	return nil
}

// kafkaFlag adds the shared broker-list flag to a subcommand's flag set:
// --kafka-brokers (the name serve, console and users use) with --kafka as an
// alias (the spelling). Read it with kafkaBrokers after Parse.
func kafkaFlag(fs *pflag.FlagSet, def string) *string {
	v := fs.String("kafka-brokers", def, "Kafka bootstrap brokers host:port,... (env ROUTELAB_KAFKA_BROKERS or ROUTELAB_KAFKA)")
	fs.StringVar(v, "kafka", def, "alias of --kafka-brokers")
	return v
}

// kafkaBrokers applies ROUTELAB_KAFKA_BROKERS (then ROUTELAB_KAFKA) when no
// flag was given and splits the list.
func kafkaBrokers(fs *pflag.FlagSet, env Env, v *string) []string {
	if !fs.Changed("kafka") {
		envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
		envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA")
	}
	var out []string
	for _, s := range strings.Split(*v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
