// Package devstack runs the whole routelab stack on one machine in one
// process tree, as `routelab dev` does: the local Kafka-protocol broker, a
// redis-server child process (the state serve replicas share), a
// clickhouse-server child process with the schema, the ingest consumer,
// one or more serve replicas, the experiments guardrail monitor and the console, each
// started after what it depends on and stopped in reverse order on one
// stop path. Info is what a running stack writes to DATA_DIR/dev.json.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
	"github.com/routelab/routelab/redisstate/redislocal"
	"github.com/routelab/routelab/server"
)

// Config places and sizes the components. Addresses accept port 0.
type Config struct {
	Dir                string // data dir, absolute: kafka/, clickhouse/, serve/, console/ ...
	KafkaAddr          string
	RedisPort          int // the state store, on 127.0.0.1; 0 picks one
	ClickHousePort     int // native protocol, on 127.0.0.1
	ClickHouseHTTPPort int
	Database           string                // ClickHouse database of the event tables
	Partitions         int                   // of each event topic when it is created
	Ingest             ingest.ConsumerConfig // consumer tuning; Brokers and Logger are filled in
	Serve              ServeConfig
	ConsoleAddr        string
	MonitorEvery       time.Duration // experiments guardrail monitor; 0: off
	Logger             *slog.Logger
	Log                io.Writer // one line per stopped component
}

// ServeConfig is what dev sets of its serve replicas.
type ServeConfig struct {
	Replicas  int    // serve replicas sharing the state store, Kafka, the blobs and the link secret; default 1
	Addr      string // image API of the first replica; the others take the next ports (or free ones with port 0)
	AdminAddr string // admin API (the first replica's)
	// Server and Gateway hold the limits every replica gets (dev's
	// --limit-* flags); Rate and SampleRate below override theirs.
	Server     server.Config
	Gateway    gateway.Config
	SimLatency float64 // simulated model latency multiplier
	Policy     string  // made live on first start: a file or a shipped name
	SampleRate float64 // review sampling
	Rate       float64 // requests per second per API key
	Catalog    string  // model catalog: a file or a shipped name ("" = the simulated one)
}

// Stack owns the components of a running dev stack: long-running ones run
// in one errgroup (the first to fail stops all), and every component
// registers its stop function, run in reverse start order by Shutdown.
type Stack struct {
	Info  Info // the bound addresses and seeded credentials
	g     *errgroup.Group
	gctx  context.Context
	stops []stop
	log   io.Writer
}

type stop struct {
	name string
	stop func(context.Context) error
}

// onStop registers how to stop a started component.
func (s *Stack) onStop(name string, f func(context.Context) error) {
	s.stops = append(s.stops, stop{name, f})
}

// run starts a long-running component; it must return when ctx ends.
func (s *Stack) run(name string, f func(ctx context.Context) error) {
	s.g.Go(func() error {
		if err := f(s.gctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Wait returns when ctx (Start's) ends, nil, or when a component fails,
// with its error. Shutdown then stops the rest.
func (s *Stack) Wait() error { return s.g.Wait() }

// Shutdown stops every component, last started first.
func (s *Stack) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		began := time.Now()
		if err := s.stops[i].stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.stops[i].name, err))
		}
		fmt.Fprintf(s.log, "dev: stopped %s in %v\n", s.stops[i].name, time.Since(began).Round(time.Millisecond))
	}
	s.stops = nil
	return errors.Join(errs...)
}

// Start starts the components in dependency order, filling Info, and runs
// them until ctx ends or one fails (Wait). When a component fails to
// start, what had started is stopped again and the error returned.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	g, gctx := errgroup.WithContext(ctx)
	st := &Stack{g: g, gctx: gctx, log: cfg.Log, Info: Info{Database: cfg.Database}}
	if err := st.start(ctx, cfg); err != nil {
		return nil, errors.Join(err, st.Shutdown())
	}
	return st, nil
}

// start starts the components. New components go at the end, after what
// they depend on: start, record their addresses in Info, register a
// stop, and run their loop with st.run.
func (st *Stack) start(ctx context.Context, cfg Config) error {
	info := &st.Info
	// Kafka-protocol broker.
	b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(cfg.Dir, "kafka"), Addr: cfg.KafkaAddr, Partitions: cfg.Partitions})
	if err != nil {
		return err
	}
	st.onStop("kafka", func(context.Context) error { b.Close(); return nil })
	info.Kafka = b.Addr()

	// The state store the serve replicas share.
	rs, err := redislocal.Start(ctx, redislocal.Config{Dir: filepath.Join(cfg.Dir, "redis"), Port: cfg.RedisPort, Persist: true})
	if err != nil {
		return err
	}
	st.onStop("redis", rs.Stop)
	st.run("redis", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-rs.Done():
			return fmt.Errorf("redis-server exited unexpectedly; see %s/redis.log", rs.Dir)
		}
	})
	info.Redis = rs.URL()

	// ClickHouse, with the schema.
	ch, err := chlocal.Start(ctx, chlocal.Config{Dir: filepath.Join(cfg.Dir, "clickhouse"), TCPPort: cfg.ClickHousePort, HTTPPort: cfg.ClickHouseHTTPPort})
	if err != nil {
		return err
	}
	st.onStop("clickhouse", ch.Stop)
	st.run("clickhouse", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-ch.Done():
			return fmt.Errorf("clickhouse-server exited unexpectedly; see %s/log", ch.Dir)
		}
	})
	info.ClickHouse, info.ClickHouseHTTP = ch.Addr, ch.HTTPURL
	cfg.Logger.Info("clickhouse-server started", "took", ch.StartDuration.Round(time.Millisecond), "native", ch.Addr, "http", ch.HTTPURL)
	conn, db, err := ingest.Open(ctx, ch.DSN(info.Database))
	if err != nil {
		return err
	}
	st.onStop("clickhouse connection", func(context.Context) error { return conn.Close() })

	// Ingest: broker -> ClickHouse.
	icfg := cfg.Ingest
	icfg.Brokers, icfg.Logger = []string{b.Addr()}, cfg.Logger.With("component", "ingest")
	consumer, err := ingest.NewConsumer(icfg, ingest.NewWriter(conn, db))
	if err != nil {
		return err
	}
	ingestCtx, stopIngest := context.WithCancel(context.WithoutCancel(ctx))
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- consumer.Run(ingestCtx) }()
	st.onStop("ingest", func(context.Context) error { stopIngest(); return <-ingestDone })

	if err := st.startServe(ctx, cfg); err != nil {
		return err
	}
	st.startExperimentMonitor(conn, db, cfg.MonitorEvery, cfg.Logger)
	return st.startConsole(ctx, cfg.Dir, cfg.ConsoleAddr, ch.DSN(info.Database), cfg.Logger)
}
