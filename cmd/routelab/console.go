package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/ingest"
)

// consoleOptions are what the console process needs; `routelab console`
// fills them from flags and `routelab dev` from its own stack.
type consoleOptions struct {
	Addr          string
	DataDir       string
	ClickHouseDSN string // "none": no data pages
	Brokers       []string
	BlobDir       string
	TLSCert       string
	TLSKey        string
	AdminURL      string
	AdminToken    string
	Refresh       time.Duration
	// TrustedProxies may name the client in X-Forwarded-For.
	TrustedProxies []string
	Logger         *slog.Logger
}

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
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("console: --tls-cert and --tls-key go together")
	}
	fmt.Fprintf(env.Stderr, "console: http-addr=%s data-dir=%s clickhouse-dsn=%s kafka-brokers=%s blob-dir=%s tls=%t admin-url=%s admin-token=%s\n",
		*addr, *dataDir, maskDSN(*chDSN), *brokers, *blobDir, *tlsCert != "", *adminURL, mask(*adminToken))
	o := consoleOptions{
		Addr: *addr, DataDir: *dataDir, ClickHouseDSN: *chDSN, BlobDir: *blobDir,
		TLSCert: *tlsCert, TLSKey: *tlsKey, AdminURL: *adminURL, AdminToken: *adminToken, Refresh: *refresh,
		TrustedProxies: splitList(*trusted),
		Logger:         slog.New(slog.NewTextHandler(env.Stderr, nil)),
	}
	if *brokers != "" {
		o.Brokers = strings.Split(*brokers, ",")
	}
	c, closeAll, err := newConsole(ctx, o)
	if err != nil {
		return err
	}
	defer closeAll()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("console listen: %w", err)
	}
	fmt.Fprintf(env.Stderr, "console: listening on %s\n", consoleURL(ln, o.TLSCert != ""))
	return serveConsole(ctx, c, ln, o)
}

func consoleURL(ln net.Listener, tls bool) string {
	if tls {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// newConsole builds the console and its collaborators, leaves first; the
// returned func closes them.
func newConsole(ctx context.Context, o consoleOptions) (*console.Console, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*console.Console, func(), error) {
		closeAll()
		return nil, nil, err
	}
	if o.BlobDir == "" {
		o.BlobDir = filepath.Join(o.DataDir, "blobs")
	}
	blobs, err := blob.Open(o.BlobDir)
	if err != nil {
		return fail(err)
	}
	deps := console.Deps{Logger: o.Logger, Blobs: blobs}
	if o.ClickHouseDSN != "none" {
		conn, db, err := ingest.Open(ctx, o.ClickHouseDSN)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { conn.Close() })
		deps.Data = console.NewData(conn, db)
	}
	if len(o.Brokers) > 0 {
		if err := kafka.EnsureTopics(ctx, o.Brokers, 0); err != nil {
			return fail(err)
		}
		users, err := console.OpenControlUsers(ctx, o.Brokers)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { users.Close() })
		deps.Users = users
		pols, err := console.OpenControlPolicies(ctx, o.Brokers)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { pols.Close() })
		deps.Policies = pols
		p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: o.Brokers, SpoolDir: filepath.Join(o.DataDir, "console", "spool"), Logger: o.Logger})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p.Close(ctx)
		})
		deps.Reviews = console.ProducerReviews{P: p}
	} else {
		deps.Users = console.NewFileUsers(usersPath(o.DataDir))
	}
	if o.AdminURL != "" {
		deps.Control = console.NewAdminClient(o.AdminURL, o.AdminToken)
	}
	c, err := console.New(console.Config{Secure: o.TLSCert != "", TrustedProxies: o.TrustedProxies}, deps)
	if err != nil {
		return fail(err)
	}
	return c, closeAll, nil
}

// serveConsole runs the console on ln and its queue refresher until ctx
// ends, then drains with a deadline.
func serveConsole(ctx context.Context, c *console.Console, ln net.Listener, o consoleOptions) error {
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("console tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := c.App().Listener(ln); err != nil {
			return fmt.Errorf("console serve: %w", err)
		}
		return nil
	})
	g.Go(func() error { return c.Run(gctx, o.Refresh) })
	g.Go(func() error {
		<-gctx.Done()
		return c.App().ShutdownWithTimeout(10 * time.Second)
	})
	return g.Wait()
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

// startDevConsole adds the console to `routelab dev`: accounts in
// routelab.users, review events to the dev broker, data from the dev
// ClickHouse, and a seeded admin whose password is kept in
// DATA_DIR/console/admin-password (0600) so a restart reuses it.
func startDevConsole(ctx context.Context, st *devStack, info *devInfo, dir, addr, dsn string, logger *slog.Logger) error {
	o := consoleOptions{
		Addr: addr, DataDir: dir, ClickHouseDSN: dsn, Brokers: []string{info.Kafka},
		Refresh: 5 * time.Second, Logger: logger.With("component", "console"),
	}
	if info.Admin != "" && info.AdminToken != "" {
		o.AdminURL, o.AdminToken = info.Admin, info.AdminToken
	}
	c, closeAll, err := newConsole(ctx, o)
	if err != nil {
		return err
	}
	pw, err := devAdminPassword(filepath.Join(dir, "console", "admin-password"))
	if err == nil {
		_, err = console.EnsureUser(ctx, c.Deps().Users, "admin", console.RoleAdmin, pw)
	}
	if err != nil {
		closeAll()
		return fmt.Errorf("seed console admin: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		closeAll()
		return fmt.Errorf("console listen: %w", err)
	}
	info.Console = consoleURL(ln, false)
	info.ConsoleUser, info.ConsolePassword = "admin", pw
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- serveConsole(runCtx, c, ln, o) }()
	st.onStop("console", func(context.Context) error {
		stop()
		err := <-done
		closeAll()
		return err
	})
	return nil
}

func devAdminPassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 8 {
		return string(b), nil
	}
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(r[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return pw, os.WriteFile(path, []byte(pw), 0o600)
}
