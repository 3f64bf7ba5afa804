package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/ingest"
)

func runConsole(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("console", `Serve the console: review queues and blind pairwise for reviewers, dashboards,
experiments and policy pages for engineers, accounts for admins. Reads
ClickHouse, writes review events to Kafka, shows sampled images from the blob
store. Accounts live in the routelab.users topic when Kafka is configured,
else in DATA_DIR/console/users.json; create them with "routelab users create".

State kept in this process's memory only (per replica; lost on restart):
login sessions and their CSRF tokens (a restart logs everyone out), review
and pairwise leases, each reviewer's item order, skips, undo and the last
pairwise reveal, and the 30 s dashboard panel cache. Shared by every
replica: accounts (routelab.users), scores (routelab.reviews, then
ClickHouse: every replica stops offering an item once it is scored, at its
next --refresh-every), policies and experiments (serve's admin API).
Run one console, or several behind a load balancer with sticky sessions on
the routelab_session cookie; two replicas may then lease the same item to
two reviewers (an extra score, never a lost one).`)
	addr := fs.String("http-addr", "127.0.0.1:8090", "listen address (env ROUTELAB_CONSOLE_ADDR)")
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir: console/ and blobs/ (env ROUTELAB_DATA_DIR)")
	chDSN := fs.String("clickhouse-dsn", ingest.DefaultDSN, `ClickHouse DSN; "none" runs without data pages (env ROUTELAB_CLICKHOUSE_DSN)`)
	brokers := fs.String("kafka-brokers", "", "Kafka brokers, comma separated: review events and accounts (env ROUTELAB_KAFKA_BROKERS)")
	blobDir := fs.String("blob-dir", "", "blob store directory (default DATA_DIR/blobs)")
	blobS3Flag(fs)
	tlsCert := fs.String("tls-cert", "", "TLS certificate file; with --tls-key serves HTTPS and marks cookies Secure")
	tlsKey := fs.String("tls-key", "", "TLS key file")
	adminURL := fs.String("admin-url", "", "serve's admin API for experiment and policy pages (env ROUTELAB_ADMIN_URL)")
	adminToken := fs.String("admin-token", "", "admin API token (env ROUTELAB_ADMIN_TOKEN)")
	trusted := fs.String("trusted-proxies", "", "IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (login rate limits), comma separated; default none (env ROUTELAB_TRUSTED_PROXIES)")
	refresh := fs.Duration("refresh-every", 10*time.Second, "how often review queues pick up new sampled outputs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "http-addr", "ROUTELAB_CONSOLE_ADDR")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(fs, env, "clickhouse-dsn", "ROUTELAB_CLICKHOUSE_DSN")
	envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
	envDefault(fs, env, "admin-url", "ROUTELAB_ADMIN_URL")
	envDefault(fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	envDefault(fs, env, "trusted-proxies", "ROUTELAB_TRUSTED_PROXIES")
	s3, err := blobS3Config(fs, env)
	if err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("console: --tls-cert and --tls-key go together")
	}
	fmt.Fprintf(env.Stderr, "console: http-addr=%s data-dir=%s clickhouse-dsn=%s kafka-brokers=%s blob-dir=%s tls=%t admin-url=%s admin-token=%s\n",
		*addr, *dataDir, maskDSN(*chDSN), *brokers, *blobDir, *tlsCert != "", *adminURL, mask(*adminToken))
	o := console.ProcessConfig{
		DataDir: *dataDir, ClickHouseDSN: *chDSN, BlobDir: *blobDir, BlobS3: s3,
		TLSCert: *tlsCert, TLSKey: *tlsKey, AdminURL: *adminURL, AdminToken: *adminToken, Refresh: *refresh,
		TrustedProxies: splitList(*trusted),
		Logger:         slog.New(slog.NewTextHandler(env.Stderr, nil)),
	}
	if *brokers != "" {
		o.Brokers = strings.Split(*brokers, ",")
	}
	c, err := console.OpenProcess(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("console listen: %w", err)
	}
	fmt.Fprintf(env.Stderr, "console: listening on %s\n", consoleURL(ln, o.TLSCert != ""))
	return c.Serve(ctx, ln)
}

func consoleURL(ln net.Listener, tls bool) string {
	if tls {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// maskDSN hides a password in a DSN for printing.
func maskDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	if user, pw, ok := strings.Cut(dsn[scheme+3:at], ":"); ok {
		return dsn[:scheme+3] + user + ":" + mask(pw) + dsn[at:]
	}
	return dsn
}
