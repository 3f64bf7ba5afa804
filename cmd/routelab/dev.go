package main

import (
	"context"
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

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/server"
)

const devHelp = `Run the whole routelab stack on this machine in one process tree.

Starts, in order: the local Kafka-protocol broker (data in DATA_DIR/kafka), a
redis-server child process (the state the serve replicas share: daily caps, spend
budgets, rate limits, edit chains, Idempotency-Key records; data in DATA_DIR/redis), a
clickhouse-server child process (the installed binary, generated config, data in
DATA_DIR/clickhouse), the schema migrations, the ingest consumer, --replicas serve
replicas (dev.json "api_replicas"; "api" is the first, which also serves the admin
API), the experiments monitor and the console. Every replica gets the --limit-*
and --budget-* flags. Writes the
bound addresses to DATA_DIR/dev.json:
  {"kafka", "clickhouse" (native host:port), "clickhouse_http", "database", ...}
and prints a short summary. Ctrl-C stops everything cleanly (the round in hand is
inserted and committed, ClickHouse and the broker save their data); a restart on the
same --data-dir keeps all data.

Address flags accept port 0; --ports auto picks free ports for everything, so two
instances (and the tests) never collide. The fixed defaults stay clear of a system
ClickHouse on 9000/8123.`

func runDev(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("dev", devHelp)
	dataDir := fs.String("data-dir", "./.routelab", "where every component keeps its data (env ROUTELAB_DATA_DIR)")
	ports := fs.String("ports", "fixed", `"fixed" uses the address flags; "auto" picks free ports for every component`)
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "broker listen address; port 0 picks one (env ROUTELAB_KAFKA_ADDR)")
	redisAddr := fs.String("redis-addr", "127.0.0.1:16379", "listen address of the redis-server the serve replicas share state through; port 0 picks one (env ROUTELAB_REDIS_ADDR)")
	replicas := fs.Int("replicas", 1, "serve replicas sharing the state store, Kafka, ClickHouse, the blobs and the link secret (dev.json api_replicas; api is the first)")
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
	envDefault(fs, env, "redis-addr", "ROUTELAB_REDIS_ADDR")
	envDefault(fs, env, "clickhouse-addr", "ROUTELAB_CLICKHOUSE_ADDR")
	envDefault(fs, env, "clickhouse-http-addr", "ROUTELAB_CLICKHOUSE_HTTP_ADDR")
	envDefault(fs, env, "console-addr", "ROUTELAB_CONSOLE_ADDR")
	envDefault(fs, env, "admin-addr", "ROUTELAB_ADMIN_ADDR")
	iflags.applyEnv(fs, env)
	*sf.policy = policyForCatalog(fs, *sf.policy, *sf.catalog)
	switch *ports {
	case "fixed":
	case "auto":
		*kafkaAddr, *chAddr, *chHTTPAddr, *redisAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
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
	redisPort, err := portOf(*redisAddr)
	if err != nil {
		return fmt.Errorf("--redis-addr: %w", err)
	}
	if *replicas < 1 {
		return fmt.Errorf("--replicas %d: want at least 1", *replicas)
	}
	var scfg server.Config
	var gcfg gateway.Config
	if err := sf.limits.apply(&scfg, &gcfg); err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	infoPath := filepath.Join(dir, devstack.InfoFile)
	_ = os.Remove(infoPath) // a stale file from a killed run must not be read as live
	fmt.Fprintf(env.Stderr, "dev: data-dir=%s ports=%s kafka-addr=%s redis-addr=%s clickhouse-addr=%s clickhouse-http-addr=%s replicas=%d %s %s\n",
		dir, *ports, *kafkaAddr, *redisAddr, *chAddr, *chHTTPAddr, *replicas, sf.limits, iflags)
	st, err := devstack.Start(ctx, devstack.Config{
		Dir: dir, KafkaAddr: *kafkaAddr, RedisPort: redisPort, ClickHousePort: chPort, ClickHouseHTTPPort: chHTTPPort, Database: *database,
		Partitions: *partitions, Ingest: iflags.config(nil, nil), ConsoleAddr: *consoleAddr, MonitorEvery: *monitorEvery,
		Serve: devstack.ServeConfig{Addr: *sf.addr, AdminAddr: *sf.adminAddr, SimLatency: *sf.simLatency, Policy: *sf.policy,
			SampleRate: *sf.sample, Rate: *sf.limits.rate, Replicas: *replicas, Server: scfg, Gateway: gcfg, Catalog: *sf.catalog},
		Logger: slog.New(slog.NewTextHandler(env.Stderr, nil)), Log: env.Stderr,
	})
	if err != nil {
		return err
	}
	if err := devstack.WriteInfo(infoPath, st.Info); err != nil {
		return errors.Join(err, st.Shutdown())
	}
	printDevSummary(env.Stdout, dir, st.Info)

	runErr := st.Wait() // returns when ctx ends (Ctrl-C) or a component fails
	_ = os.Remove(infoPath)
	fmt.Fprintln(env.Stderr, "dev: stopping")
	return errors.Join(runErr, st.Shutdown())
}

// noAdminHelp says where CLI commands look for the admin API.
const noAdminHelp = "no admin API: pass --admin-url and --admin-token (or ROUTELAB_ADMIN_URL/ROUTELAB_ADMIN_TOKEN), or run routelab dev with --data-dir"

// resolveAdmin completes the admin API's URL and token, as given by flags
// or environment, from dev.json under dataDir. The URL is "" when neither
// names one; a dev.json that exists but cannot be read is an error.
func resolveAdmin(url, token, dataDir string) (string, string, error) {
	if url == "" || token == "" {
		d, err := devstack.ReadInfo(dataDir)
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

func printDevSummary(w io.Writer, dir string, info devstack.Info) {
	fmt.Fprintf(w, "routelab dev is up (data in %s)\n", dir)
	if info.API != "" {
		fmt.Fprintf(w, "  api              %s   (api key %s)\n", info.API, info.APIKey)
	}
	for i, r := range info.APIReplicas[min(1, len(info.APIReplicas)):] {
		fmt.Fprintf(w, "  api replica %d    %s\n", i+2, r)
	}
	if info.Redis != "" {
		fmt.Fprintf(w, "  state store      %s\n", info.Redis)
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
	fmt.Fprintf(w, "  addresses        %s\n", filepath.Join(dir, devstack.InfoFile))
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

// devServeFlags are the serve flags of `routelab dev`.
type devServeFlags struct {
	addr       *string
	adminAddr  *string
	simLatency *float64
	policy     *string
	sample     *float64
	catalog    *string
	limits     limitFlags
}

func addDevServeFlags(fs *pflag.FlagSet) devServeFlags {
	return devServeFlags{
		// serve's default rate (50/s per key) would cap `routelab loadgen`
		// against dev's one seeded key below what the machine serves
		limits:     addLimitFlags(fs, 1000),
		addr:       fs.String("api-addr", "127.0.0.1:8080", "image API listen address; port 0 picks one"),
		adminAddr:  fs.String("admin-addr", "127.0.0.1:8081", "admin API listen address (dev.json \"admin\"); port 0 picks one (env ROUTELAB_ADMIN_ADDR)"),
		simLatency: fs.Float64("sim-latency-scale", 0.05, "simulated model latency multiplier (1 = real time)"),
		policy:     fs.String("policy", "default", "policy made live on first start: a file or a shipped name (default: trained in the simulated world, epsilon 0.05; explore: 80% exploration, for collecting training data)"),
		sample:     fs.Float64("review-sample-rate", 0.05, "share of outputs sampled for human review"),
		catalog:    fs.String("catalog", "", catalogHelp),
	}
}
