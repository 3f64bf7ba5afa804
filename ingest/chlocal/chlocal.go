// Package chlocal runs the installed clickhouse-server binary as a child
// process for local development, tests and benchmarks. Its configuration is
// generated under a data dir (data, tmp, logs, config and users files), it
// listens on 127.0.0.1 only, and a restart on the same dir keeps the data.
// Production points routelab at an external ClickHouse instead (--clickhouse).
package chlocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/internal/child"
)

// Config says where the server keeps its files and which ports it uses.
type Config struct {
	// Dir holds config.xml, users.xml, data/, tmp/ and log/. Required.
	Dir string
	// Binary is the clickhouse-server executable; empty means look it up on
	// PATH, then /usr/sbin/clickhouse-server, then /usr/bin/clickhouse (the
	// single-binary packaging, run as "clickhouse server").
	Binary string
	// TCPPort (native protocol) and HTTPPort; 0 picks a free port.
	TCPPort  int
	HTTPPort int
	// StartTimeout bounds the wait until the server answers; default 60s.
	StartTimeout time.Duration
}

// Server is a running clickhouse-server child process.
type Server struct {
	// Addr is the native-protocol address, host:port.
	Addr string
	// HTTPURL is the HTTP interface, http://host:port.
	HTTPURL string
	// Dir is the data dir the server runs from.
	Dir string
	// StartDuration is how long the start took until the server answered.
	StartDuration time.Duration

	*child.Process // Done, Stop, Kill
}

// ErrNotInstalled is returned by Start when no clickhouse-server binary exists.
var ErrNotInstalled = errors.New("clickhouse-server not installed (apt-get install -y clickhouse-server clickhouse-client, or make deps)")

// Start generates the configuration under cfg.Dir, starts the server and
// waits until it answers on both ports. When a port is chosen automatically
// and turns out to be taken by the time the server binds it, Start retries
// with fresh ports.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("chlocal: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	bin, args, err := binary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	auto := cfg.TCPPort == 0 || cfg.HTTPPort == 0
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, cfg, bin, args)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !auto || !errors.Is(err, errPortInUse) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port in use")

func binary(explicit string) (string, []string, error) {
	if explicit != "" {
		return explicit, nil, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil, nil
		}
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return p, []string{"server"}, nil
	}
	return "", nil, ErrNotInstalled
}

func start(ctx context.Context, cfg Config, bin string, baseArgs []string) (*Server, error) {
	tcp, http, err := ports(cfg.TCPPort, cfg.HTTPPort)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	configPath := filepath.Join(cfg.Dir, "config.xml")
	usersPath := filepath.Join(cfg.Dir, "users.xml")
	if err := os.WriteFile(configPath, []byte(configXML(cfg.Dir, tcp, http, usersPath)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(usersPath, []byte(usersXML), 0o644); err != nil {
		return nil, err
	}
	// Truncate the error log so a bind failure found below is from this start.
	errLog := filepath.Join(cfg.Dir, "log", "clickhouse-server.err.log")
	_ = os.Truncate(errLog, 0)
	out, err := os.OpenFile(filepath.Join(cfg.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()

	args := append(append([]string{}, baseArgs...), "--config-file="+configPath)
	cmd := exec.Command(bin, args...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	proc, err := child.Start("clickhouse-server", cmd)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp)),
		HTTPURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(http)),
		Dir:     cfg.Dir,
		Process: proc,
	}
	if err := s.WaitReady(ctx, cfg.StartTimeout, 20*time.Millisecond, s.readiness()); err != nil {
		_ = s.Stop(context.Background())
		if b, _ := os.ReadFile(errLog); strings.Contains(string(b), "Address already in use") {
			return nil, fmt.Errorf("%w: %v", errPortInUse, err)
		}
		return nil, fmt.Errorf("clickhouse-server in %s: %w (see %s)", cfg.Dir, err, errLog)
	}
	s.StartDuration = time.Since(began)
	return s, nil
}

// readiness is the start-up probe: /ping and the native port both answer.
func (s *Server) readiness() func(context.Context) bool {
	client := &http.Client{Timeout: time.Second}
	return func(ctx context.Context) bool { return s.ready(ctx, client) }
}

func (s *Server) ready(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.HTTPURL+"/ping", nil)
	if err != nil {
		return false
	}
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// DSN is the clickhouse-go DSN of the native port for a database.
func (s *Server) DSN(database string) string {
	return "clickhouse://" + s.Addr + "/" + database
}

// ports returns the requested ports, picking free ones for zeros.
func ports(tcp, http int) (int, int, error) {
	var err error
	if tcp == 0 {
		if tcp, err = FreePort(); err != nil {
			return 0, 0, err
		}
	}
	for http == 0 || http == tcp {
		if http, err = FreePort(); err != nil {
			return 0, 0, err
		}
	}
	return tcp, http, nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// free when FreePort returns; another process may take it before it is used.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func configXML(dir string, tcp, http int, usersPath string) string {
	p := func(sub string) string { return filepath.Join(dir, sub) + "/" }
	return fmt.Sprintf(`<?xml version="1.0"?>
<!-- Generated by routelab (ingest/chlocal); rewritten at every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>%[1]s</log>
        <errorlog>%[2]s</errorlog>
        <size>50M</size>
        <count>3</count>
    </logger>
    <http_port>%[3]d</http_port>
    <tcp_port>%[4]d</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>%[5]s</path>
    <tmp_path>%[6]s</tmp_path>
    <user_files_path>%[7]s</user_files_path>
    <format_schema_path>%[8]s</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>200</max_concurrent_queries>
    <shutdown_wait_unfinished>2</shutdown_wait_unfinished>
    <users_config>%[9]s</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
</yandex>
`, filepath.Join(dir, "log", "clickhouse-server.log"), filepath.Join(dir, "log", "clickhouse-server.err.log"),
		http, tcp, p("data"), p("tmp"), p("user_files"), p("format_schemas"), usersPath)
}

const usersXML = `<?xml version="1.0"?>
<!-- Generated by routelab (ingest/chlocal): one local user, no password, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <!-- An idle native connection (a client pool) checks for server
                 shutdown every poll_interval seconds; the default 10 makes
                 every stop take 10s. -->
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
