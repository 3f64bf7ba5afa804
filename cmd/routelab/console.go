package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/ingest"
)

func runConsole(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("console", `Serve the console: review queues and blind pairwise for reviewers, dashboards,
experiments and policy pages for engineers, accounts for admins. Reads
ClickHouse, writes review events to Kafka, shows sampled images from the blob
store. Create accounts with "routelab users create".`)
	addr := fs.String("http-addr", "127.0.0.1:8090", "listen address (env ROUTELAB_CONSOLE_ADDR)")
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir: accounts under console/, images under blobs/ (env ROUTELAB_DATA_DIR)")
	chDSN := fs.String("clickhouse-dsn", ingest.DefaultDSN, "ClickHouse DSN; \"none\" runs without data pages (env ROUTELAB_CLICKHOUSE_DSN)")
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
	envDefault(fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE_DSN")
	envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("console: --tls-cert and --tls-key go together")
	}
	if *blobDir == "" {
		*blobDir = filepath.Join(*dataDir, "blobs")
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	fmt.Fprintf(env.Stderr, "console: http-addr=%s data-dir=%s clickhouse-dsn=%s kafka-brokers=%s blob-dir=%s tls=%t\n",
		*addr, *dataDir, maskDSN(*chDSN), *brokers, *blobDir, *tlsCert != "")

	blobs, err := blob.Open(*blobDir)
	if err != nil {
		return err
	}
	deps := console.Deps{Logger: logger, Users: console.NewFileUsers(usersPath(*dataDir)), Blobs: blobs}
	if *chDSN != "none" {
		conn, db, err := ingest.Open(ctx, *chDSN)
		if err != nil {
			return err
		}
		defer conn.Close()
		deps.Data = console.NewData(conn, db)
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

// maskDSN hides a password in a DSN for printing.
func maskDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	cred := dsn[scheme+3 : at]
	if user, pw, ok := strings.Cut(cred, ":"); ok {
		return dsn[:scheme+3] + user + ":" + mask(pw) + dsn[at:]
	}
	return dsn
}
