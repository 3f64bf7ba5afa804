package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/ingest"
)

const ingestHelp = `Consume the routelab event topics as a Kafka consumer group and write them to ClickHouse.

Each round reads up to --ingest-batch-size messages (waiting at most --ingest-batch-wait
after the first), decodes them, inserts one clickhouse-go batch per table with an
explicit column list, sends undecodable messages to routelab.deadletter with the
reason in headers, and only then commits the offsets (at-least-once; ReplacingMergeTree
tables collapse redelivered event_ids, exact queries use FINAL). When ClickHouse is down
it keeps the round, commits nothing and retries with backoff.

At start it creates the database named in the DSN (default routelab) and applies the
schema migrations. Scale out by running more replicas with the same --ingest-group: the
topics' partitions are split between them. Runs until Ctrl-C, then finishes the round
in hand.`

// clickhouseFlag adds --clickhouse-dsn (the name the other commands use;
// --clickhouse is an alias): a clickhouse-go DSN
// (clickhouse://user:pass@host:9000/routelab?dial_timeout=5s) or host:port.
// Read it with clickhouseDSN after Parse.
func clickhouseFlag(fs *pflag.FlagSet) *string {
	v := fs.String("clickhouse-dsn", ingest.DefaultDSN, "ClickHouse DSN clickhouse://[user:pass@]host:port/database, or host:port (env ROUTELAB_CLICKHOUSE_DSN or ROUTELAB_CLICKHOUSE)")
	fs.StringVar(v, "clickhouse", ingest.DefaultDSN, "alias of --clickhouse-dsn")
	return v
}

// clickhouseDSN applies ROUTELAB_CLICKHOUSE_DSN (then ROUTELAB_CLICKHOUSE)
// when neither flag name was given.
func clickhouseDSN(fs *pflag.FlagSet, env Env, v *string) string {
	if !fs.Changed("clickhouse") {
		envDefault(fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE_DSN")
		envDefault(fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE")
	}
	return *v
}

// ingestFlags are the consumer's tuning flags, shared by ingest and dev.
type ingestFlags struct {
	group     *string
	batchSize *int
	batchWait *time.Duration
	workers   *int
}

func addIngestFlags(fs *pflag.FlagSet) ingestFlags {
	return ingestFlags{
		group:     fs.String("ingest-group", "routelab-ingest", "Kafka consumer group; replicas sharing it split the partitions (env ROUTELAB_INGEST_GROUP)"),
		batchSize: fs.Int("ingest-batch-size", 20000, "max messages per insert round (env ROUTELAB_INGEST_BATCH_SIZE)"),
		batchWait: fs.Duration("ingest-batch-wait", 200*time.Millisecond, "max wait to fill a round after its first message (env ROUTELAB_INGEST_BATCH_WAIT)"),
		workers:   fs.Int("ingest-workers", 1, "consumer-group members in this process (env ROUTELAB_INGEST_WORKERS)"),
	}
}

func (f ingestFlags) applyEnv(fs *pflag.FlagSet, env Env) {
	envDefault(fs, env, "ingest-group", "ROUTELAB_INGEST_GROUP")
	envDefault(fs, env, "ingest-batch-size", "ROUTELAB_INGEST_BATCH_SIZE")
	envDefault(fs, env, "ingest-batch-wait", "ROUTELAB_INGEST_BATCH_WAIT")
	envDefault(fs, env, "ingest-workers", "ROUTELAB_INGEST_WORKERS")
}

func (f ingestFlags) config(brokers []string, logger *slog.Logger) ingest.ConsumerConfig {
	return ingest.ConsumerConfig{
		Brokers: brokers, GroupID: *f.group, BatchSize: *f.batchSize, BatchWait: *f.batchWait,
		Workers: *f.workers, Logger: logger,
	}
}

func (f ingestFlags) String() string {
	return fmt.Sprintf("ingest-group=%s ingest-batch-size=%d ingest-batch-wait=%s ingest-workers=%d", *f.group, *f.batchSize, *f.batchWait, *f.workers)
}

func runIngest(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("ingest", ingestHelp)
	kafkaAddr := kafkaFlag(fs, "127.0.0.1:9092")
	chFlag := clickhouseFlag(fs)
	flags := addIngestFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	brokers := kafkaBrokers(fs, env, kafkaAddr)
	dsn := clickhouseDSN(fs, env, chFlag)
	flags.applyEnv(fs, env)
	if len(brokers) == 0 {
		return fmt.Errorf("--kafka: no brokers given")
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil)).With("component", "ingest")
	fmt.Fprintf(env.Stderr, "ingest: kafka=%v clickhouse=%s %s\n", brokers, maskDSN(dsn), flags)

	if err := kafka.EnsureTopics(ctx, brokers, 0); err != nil {
		return err
	}
	conn, db, err := ingest.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := ingest.NewConsumer(flags.config(brokers, logger), ingest.NewWriter(conn, db))
	if err != nil {
		return err
	}
	logger.Info("consuming", "topics", ingest.Topics(), "database", db)
	err = c.Run(ctx)
	logger.Info("stopped", "stats", fmt.Sprintf("%+v", c.Stats()))
	return err
}
