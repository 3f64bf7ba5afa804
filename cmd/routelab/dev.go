package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
)

const devHelp = `Run the whole routelab stack on this machine in one process tree.

Starts, in order: the local Kafka-protocol broker (data in DATA_DIR/kafka), a
clickhouse-server child process (the installed binary, generated config, data in
DATA_DIR/clickhouse), the schema migrations, and the ingest consumer. Writes the
bound addresses to DATA_DIR/dev.json:
  {"kafka", "clickhouse" (native host:port), "clickhouse_http", "database", ...}
and prints a short summary. Ctrl-C stops everything cleanly (the round in hand is
inserted and committed, ClickHouse and the broker save their data); a restart on the
same --data-dir keeps all data.

Address flags accept port 0; --ports auto picks free ports for everything, so two
instances (and the tests) never collide. The fixed defaults stay clear of a system
ClickHouse on 9000/8123.`

// devInfo is DATA_DIR/dev.json: the bound addresses and seeded credentials
// of a running `routelab dev`. Components that are not running are omitted.
type devInfo struct {
	API            string `json:"api,omitempty"`
	Admin          string `json:"admin,omitempty"` // serve's admin API, a listener apart from api
	Console        string `json:"console,omitempty"`
	Kafka          string `json:"kafka"`
	ClickHouse     string `json:"clickhouse"`
	ClickHouseHTTP string `json:"clickhouse_http"`
	Database       string `json:"database"`
	APIKey         string `json:"api_key,omitempty"`
	AdminToken     string `json:"admin_token,omitempty"`
	// The console's seeded admin account.
	ConsoleUser     string `json:"console_user,omitempty"`
	ConsolePassword string `json:"console_password,omitempty"`
}

// devStack owns the components of `routelab dev`: long-running ones run in
// one errgroup (the first to fail stops all), and every component registers
// its stop function, run in reverse start order on the one stop path.
type devStack struct {
	g     *errgroup.Group
	gctx  context.Context
	stops []devStop
	log   io.Writer
}

type devStop struct {
	name string
	stop func(context.Context) error
}

// onStop registers how to stop a started component.
func (s *devStack) onStop(name string, stop func(context.Context) error) {
	s.stops = append(s.stops, devStop{name, stop})
}

// run starts a long-running component; it must return when ctx ends.
func (s *devStack) run(name string, f func(ctx context.Context) error) {
	s.g.Go(func() error {
		if err := f(s.gctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// shutdown stops every component, last started first.
func (s *devStack) shutdown() error {
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
	return errors.Join(errs...)
}

func runDev(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("dev", devHelp)
	dataDir := fs.String("data-dir", "./.routelab", "where every component keeps its data (env ROUTELAB_DATA_DIR)")
	ports := fs.String("ports", "fixed", `"fixed" uses the address flags; "auto" picks free ports for every component`)
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "broker listen address; port 0 picks one (env ROUTELAB_KAFKA_ADDR)")
	chAddr := fs.String("clickhouse-addr", "127.0.0.1:19000", "ClickHouse native listen address; port 0 picks one (env ROUTELAB_CLICKHOUSE_ADDR)")
	chHTTPAddr := fs.String("clickhouse-http-addr", "127.0.0.1:18123", "ClickHouse HTTP listen address; port 0 picks one (env ROUTELAB_CLICKHOUSE_HTTP_ADDR)")
	database := fs.String("clickhouse-database", ingest.DefaultDatabase, "ClickHouse database for the event tables")
	partitions := fs.Int("kafka-partitions", 6, "partitions of each event topic when it is created")
	consoleAddr := fs.String("console-addr", "127.0.0.1:8090", "console listen address; port 0 picks one (env ROUTELAB_CONSOLE_ADDR)")
	monitorEvery := fs.Duration("experiments-monitor-every", 15*time.Second, "how often the guardrail monitor judges running experiments (advance a canary's ramp, roll back on a breach); 0 turns it off")
	sf := addDevServeFlags(fs)
	iflags := addIngestFlags(fs)
	gcPercent := gcPercentFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	applyGCPercent(fs, env, *gcPercent) // dev serves in this process
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(fs, env, "kafka-addr", "ROUTELAB_KAFKA_ADDR")
	envDefault(fs, env, "clickhouse-addr", "ROUTELAB_CLICKHOUSE_ADDR")
	envDefault(fs, env, "clickhouse-http-addr", "ROUTELAB_CLICKHOUSE_HTTP_ADDR")
	envDefault(fs, env, "console-addr", "ROUTELAB_CONSOLE_ADDR")
	envDefault(fs, env, "admin-addr", "ROUTELAB_ADMIN_ADDR")
	iflags.applyEnv(fs, env)
	switch *ports {
	case "fixed":
	case "auto":
		*kafkaAddr, *chAddr, *chHTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		*consoleAddr = "127.0.0.1:0"
		*sf.addr, *sf.adminAddr = "127.0.0.1:0", "127.0.0.1:0"
	default:
		return fmt.Errorf("--ports %q: want fixed or auto", *ports)
	}
	chPort, err := portOf(*chAddr)
	if err != nil {
		return fmt.Errorf("--clickhouse-addr: %w", err)
	}
	chHTTPPort, err := portOf(*chHTTPAddr)
	if err != nil {
		return fmt.Errorf("--clickhouse-http-addr: %w", err)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	infoPath := filepath.Join(dir, "dev.json")
	_ = os.Remove(infoPath) // a stale file from a killed run must not be read as live
	fmt.Fprintf(env.Stderr, "dev: data-dir=%s ports=%s kafka-addr=%s clickhouse-addr=%s clickhouse-http-addr=%s %s\n",
		dir, *ports, *kafkaAddr, *chAddr, *chHTTPAddr, iflags)
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))

	g, gctx := errgroup.WithContext(ctx)
	st := &devStack{g: g, gctx: gctx, log: env.Stderr}
	info := devInfo{Database: *database}
	err = startDev(ctx, st, &info, devConfig{
		dir: dir, kafkaAddr: *kafkaAddr, chPort: chPort, chHTTPPort: chHTTPPort, partitions: *partitions,
		ingest: iflags, logger: logger, consoleAddr: *consoleAddr, serve: sf, monitorEvery: *monitorEvery,
	})
	if err == nil {
		err = writeDevInfo(infoPath, info)
	}
	if err != nil {
		return errors.Join(err, st.shutdown())
	}
	printDevSummary(env.Stdout, dir, info)

	runErr := g.Wait() // returns when ctx ends (Ctrl-C) or a component fails
	_ = os.Remove(infoPath)
	fmt.Fprintln(env.Stderr, "dev: stopping")
	return errors.Join(runErr, st.shutdown())
}

type devConfig struct {
	dir                string
	kafkaAddr          string
	chPort, chHTTPPort int
	partitions         int
	ingest             ingestFlags
	logger             *slog.Logger
	consoleAddr        string
	serve              devServeFlags
	monitorEvery       time.Duration // experiments guardrail monitor; 0: off
}

// startDev starts the components in dependency order, filling info. New
// components (serve, console) go at the end, after what they depend on:
// start, record their addresses in info, register a stop, and run their
// loop with st.run.
func startDev(ctx context.Context, st *devStack, info *devInfo, cfg devConfig) error {
	// Kafka-protocol broker.
	b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(cfg.dir, "kafka"), Addr: cfg.kafkaAddr, Partitions: cfg.partitions})
	if err != nil {
		return err
	}
	st.onStop("kafka", func(context.Context) error { b.Close(); return nil })
	info.Kafka = b.Addr()

	// ClickHouse, with the schema.
	ch, err := chlocal.Start(ctx, chlocal.Config{Dir: filepath.Join(cfg.dir, "clickhouse"), TCPPort: cfg.chPort, HTTPPort: cfg.chHTTPPort})
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
	cfg.logger.Info("clickhouse-server started", "took", ch.StartDuration.Round(time.Millisecond), "native", ch.Addr, "http", ch.HTTPURL)
	conn, db, err := ingest.Open(ctx, ch.DSN(info.Database))
	if err != nil {
		return err
	}
	st.onStop("clickhouse connection", func(context.Context) error { return conn.Close() })

	// Ingest: broker -> ClickHouse.
	consumer, err := ingest.NewConsumer(cfg.ingest.config([]string{b.Addr()}, cfg.logger.With("component", "ingest")), ingest.NewWriter(conn, db))
	if err != nil {
		return err
	}
	ingestCtx, stopIngest := context.WithCancel(context.WithoutCancel(ctx))
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- consumer.Run(ingestCtx) }()
	st.onStop("ingest", func(context.Context) error { stopIngest(); return <-ingestDone })

	if err := startDevServe(ctx, st, info, cfg); err != nil {
		return err
	}
	startDevExperimentMonitor(st, conn, db, info.Admin, info.AdminToken, cfg.monitorEvery, cfg.logger)
	if err := startDevConsole(ctx, st, info, cfg.dir, cfg.consoleAddr, ch.DSN(info.Database), cfg.logger); err != nil {
		return err
	}
	return nil
}

// readDevInfo reads DATA_DIR/dev.json, where CLI commands find a running
// `routelab dev` when no flag or environment variable names a service.
func readDevInfo(dir string) (devInfo, error) {
	var d devInfo
	path := filepath.Join(dir, "dev.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// clickHouseDSN is the DSN of dev's ClickHouse and database ("" when dev.json
// names none).
func (d devInfo) clickHouseDSN() string {
	if d.ClickHouse == "" {
		return ""
	}
	dsn := "clickhouse://" + strings.TrimPrefix(d.ClickHouse, "clickhouse://")
	if d.Database != "" && !strings.Contains(strings.TrimPrefix(dsn, "clickhouse://"), "/") {
		dsn += "/" + d.Database
	}
	return dsn
}

// noAdminHelp says where CLI commands look for the admin API.
const noAdminHelp = "no admin API: pass --admin-url and --admin-token (or ROUTELAB_ADMIN_URL/ROUTELAB_ADMIN_TOKEN), or run routelab dev with --data-dir"

// resolveAdmin completes the admin API's URL and token, as given by flags
// or environment, from dev.json under dataDir. The URL is "" when neither
// names one; a dev.json that exists but cannot be read is an error.
func resolveAdmin(url, token, dataDir string) (string, string, error) {
	if url == "" || token == "" {
		d, err := readDevInfo(dataDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		if url == "" {
			url = d.Admin
		}
		if url == "" {
			url = d.API // dev.json of a routelab dev from before the admin listener
		}
		if token == "" {
			token = d.AdminToken
		}
	}
	if url != "" && !strings.Contains(url, "://") {
		url = "http://" + url
	}
	return url, token, nil
}

func writeDevInfo(path string, info devInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path) // readers never see a half-written file
}

func printDevSummary(w io.Writer, dir string, info devInfo) {
	fmt.Fprintf(w, "routelab dev is up (data in %s)\n", dir)
	if info.API != "" {
		fmt.Fprintf(w, "  api              %s   (api key %s)\n", info.API, info.APIKey)
	}
	if info.Admin != "" {
		fmt.Fprintf(w, "  admin api        %s   (admin token in dev.json)\n", info.Admin)
	}
	if info.Console != "" {
		fmt.Fprintf(w, "  console          %s   (user %s, password %s)\n", info.Console, info.ConsoleUser, info.ConsolePassword)
	}
	fmt.Fprintf(w, "  kafka            %s\n", info.Kafka)
	fmt.Fprintf(w, "  clickhouse       %s (native), %s (http), database %s\n", info.ClickHouse, info.ClickHouseHTTP, info.Database)
	fmt.Fprintf(w, "  ingest           routelab.* topics -> ClickHouse\n")
	fmt.Fprintf(w, "  addresses        %s\n", filepath.Join(dir, "dev.json"))
	fmt.Fprintln(w, "Ctrl-C stops everything; a restart keeps the data.")
}

// portOf returns the port of a host:port listen address (0 = pick one).
// Only 127.0.0.1/localhost hosts are accepted: the local ClickHouse listens
// on loopback.
func portOf(addr string) (int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("host %q: the local ClickHouse listens on 127.0.0.1 only", host)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("port %q", p)
	}
	return port, nil
}
