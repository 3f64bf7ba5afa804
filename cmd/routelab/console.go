package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/console"
)

func runConsole(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("console", `Serve the console: review queues and blind pairwise for reviewers, dashboards,
experiments and policy pages for engineers, accounts for admins. Reads
ClickHouse, writes review events to Kafka, shows sampled images from the blob
store. Create accounts with "routelab users create".`)
	addr := fs.String("http-addr", "127.0.0.1:8090", "listen address (env ROUTELAB_CONSOLE_ADDR)")
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir: accounts under console/, images under blobs/ (env ROUTELAB_DATA_DIR)")
	chAddr := fs.String("clickhouse-addr", "", "ClickHouse native address host:port (env ROUTELAB_CLICKHOUSE_ADDR)")
	chDB := fs.String("clickhouse-database", "routelab", "ClickHouse database (env ROUTELAB_CLICKHOUSE_DATABASE)")
	brokers := fs.String("kafka-brokers", "", "Kafka brokers, comma separated, for review events (env ROUTELAB_KAFKA_BROKERS)")
	blobDir := fs.String("blob-dir", "", "blob store directory (default DATA_DIR/blobs)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file; with --tls-key serves HTTPS and marks cookies Secure")
	tlsKey := fs.String("tls-key", "", "TLS key file")
	refresh := fs.Duration("refresh-every", 10*time.Second, "how often review queues pick up new sampled outputs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "http-addr", "ROUTELAB_CONSOLE_ADDR")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(fs, env, "clickhouse-addr", "ROUTELAB_CLICKHOUSE_ADDR")
	envDefault(fs, env, "clickhouse-database", "ROUTELAB_CLICKHOUSE_DATABASE")
	envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("console: --tls-cert and --tls-key go together")
	}
	if *blobDir == "" {
		*blobDir = filepath.Join(*dataDir, "blobs")
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	fmt.Fprintf(env.Stderr, "console: http-addr=%s data-dir=%s clickhouse-addr=%s clickhouse-database=%s kafka-brokers=%s blob-dir=%s tls=%t\n",
		*addr, *dataDir, *chAddr, *chDB, *brokers, *blobDir, *tlsCert != "")

	deps := console.Deps{Logger: logger, Users: console.NewFileUsers(usersPath(*dataDir)), Blobs: console.DirBlobs(*blobDir)}
	if *chAddr != "" {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{*chAddr}, Auth: clickhouse.Auth{Database: *chDB, Username: "default"}})
		if err != nil {
			return fmt.Errorf("open clickhouse: %w", err)
		}
		defer conn.Close()
		deps.Data = console.NewData(conn, *chDB)
	}
	if *brokers != "" {
		k := console.NewKafkaReviews(strings.Split(*brokers, ","))
		defer k.Close()
		deps.Reviews = k
	}
	c, err := console.New(console.Config{Secure: *tlsCert != ""}, deps)
	if err != nil {
		return err
	}
	return serveConsole(ctx, c, *addr, *tlsCert, *tlsKey, *refresh, env)
}

// serveConsole runs the console's listener and queue refresher until ctx
// ends, then drains with a deadline. `routelab dev` calls it too.
func serveConsole(ctx context.Context, c *console.Console, addr, cert, key string, refresh time.Duration, env Env) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if cert != "" {
			err = c.App().ListenTLS(addr, cert, key)
		} else {
			err = c.App().Listen(addr)
		}
		if err != nil {
			return fmt.Errorf("console listen %s: %w", addr, err)
		}
		return nil
	})
	g.Go(func() error { return c.Run(gctx, refresh) })
	g.Go(func() error {
		<-gctx.Done()
		return c.App().ShutdownWithTimeout(10 * time.Second)
	})
	fmt.Fprintf(env.Stderr, "console: listening on %s\n", addr)
	return g.Wait()
}
