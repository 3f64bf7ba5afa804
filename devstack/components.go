package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/console"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/server/client"
	"github.com/routelab/routelab/server/replica"
)

// startServe starts the serve replicas against the dev broker and state
// store, seeding an API key for tenant "dev" and an admin token (kept
// under DATA_DIR/serve so a restart prints the same ones). Every replica
// shares the broker (keys, policies, experiments), the state store (caps,
// rates, chains, idempotency), the blob directory and the image-link
// secret, so a request may go to any of them; each has a data dir of its
// own for its event spool and run marker (the first DATA_DIR, the others
// DATA_DIR/replicas/N); the first's admin listener is dev.json's "admin".
func (st *Stack) startServe(ctx context.Context, cfg Config) error {
	info := &st.Info
	dir := filepath.Join(cfg.Dir, "serve")
	key, err := replica.KeptSecret(filepath.Join(dir, "api-key"), "rl_dev_")
	if err != nil {
		return err
	}
	token, err := replica.KeptSecret(filepath.Join(dir, "admin-token"), "adm_")
	if err != nil {
		return err
	}
	urlSecret, err := replica.KeptSecret(filepath.Join(dir, "url-secret"), "")
	if err != nil {
		return err
	}
	sc := cfg.Serve
	n := max(sc.Replicas, 1)
	scfg, gcfg := sc.Server, sc.Gateway
	scfg.RatePerSec, scfg.Replicas = sc.Rate, n
	scfg.RateBurst = max(scfg.RateBurst, 100, int(sc.Rate))
	gcfg.SampleRate, gcfg.Replicas = sc.SampleRate, n
	for i := range n {
		o := replica.Options{
			Addr: replicaAddr(sc.Addr, i), Brokers: []string{info.Kafka}, DataDir: cfg.Dir, Policy: sc.Policy, Catalog: sc.Catalog,
			AdminToken: token, URLSecret: urlSecret, Sim: sim.Options{LatencyScale: sc.SimLatency},
			Blobs:   replica.BlobOptions{Dir: filepath.Join(cfg.Dir, "blobs")},
			SeedKey: key, SeedTenant: "dev", Server: scfg, Gateway: gcfg, StateStore: info.Redis,
			Logger: cfg.Logger.With("component", "serve"),
		}
		name := "serve"
		if i == 0 {
			o.AdminAddr = sc.AdminAddr
		} else {
			// An admin listener of its own, on a free port, for the
			// images of edit chains made there (not in dev.json).
			o.AdminAddr = "127.0.0.1:0"
			name = fmt.Sprintf("serve replica %d", i+1)
			o.DataDir = filepath.Join(cfg.Dir, "replicas", strconv.Itoa(i+1))
			o.Logger = cfg.Logger.With("component", "serve", "replica", i+1)
		}
		s, err := replica.Start(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		st.onStop(name, func(ctx context.Context) error { return s.Stop(ctx, 30*time.Second) })
		st.run(name, func(ctx context.Context) error {
			if err := s.Wait(ctx); err != nil {
				return fmt.Errorf("stopped: %w", err)
			}
			return nil
		})
		info.APIReplicas = append(info.APIReplicas, s.URL())
		if i == 0 {
			info.API, info.Admin, info.APIKey, info.AdminToken = s.URL(), s.AdminURL(), key, token
		}
	}
	return nil
}

// replicaAddr is replica i's listen address: addr for the first, the next
// ports after it for the others (port 0 stays 0: a free one each).
func replicaAddr(addr string, i int) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if i == 0 || err != nil || perr != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i))
}

// startExperimentMonitor runs the guardrail monitor of `routelab jobs
// analyze` every `every`: it analyses each running experiment from
// ClickHouse and advances canary ramps or rolls back on a breach through
// the admin API (which writes and audits the change).
func (st *Stack) startExperimentMonitor(conn driver.Conn, db string, every time.Duration, logger *slog.Logger) {
	if every <= 0 || st.Info.Admin == "" {
		return
	}
	m := &jobs.Monitor{
		Control: client.New(st.Info.Admin, st.Info.AdminToken, "experiments-monitor"), Reader: chexp.NewReader(conn, db),
		Alpha: 0.05, Progress: func(string, ...any) {}, Now: time.Now,
	}
	st.run("experiments monitor", func(ctx context.Context) error {
		m.Watch(ctx, every, logger.With("component", "experiments-monitor"))
		return nil
	})
}

// startConsole adds the console: accounts in routelab.users, review
// events to the dev broker, data from the dev ClickHouse, and a seeded
// admin whose password is kept in DATA_DIR/console/admin-password (0600) so
// a restart reuses it.
func (st *Stack) startConsole(ctx context.Context, dir, addr, dsn string, logger *slog.Logger) error {
	info := &st.Info
	o := console.ProcessConfig{
		DataDir: dir, ClickHouseDSN: dsn, Brokers: []string{info.Kafka},
		Refresh: 5 * time.Second, Logger: logger.With("component", "console"),
	}
	if info.Admin != "" && info.AdminToken != "" {
		o.AdminURL, o.AdminToken = info.Admin, info.AdminToken
	}
	c, err := console.OpenProcess(ctx, o)
	if err != nil {
		return err
	}
	pw, err := adminPassword(filepath.Join(dir, "console", "admin-password"))
	if err == nil {
		_, err = console.EnsureUser(ctx, c.Deps().Users, "admin", console.RoleAdmin, pw)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("seed console admin: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.Close()
		return fmt.Errorf("console listen: %w", err)
	}
	info.Console = "http://" + ln.Addr().String()
	info.ConsoleUser, info.ConsolePassword = "admin", pw
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- c.Serve(runCtx, ln) }()
	st.onStop("console", func(context.Context) error {
		stop()
		err := <-done
		c.Close()
		return err
	})
	return nil
}

func adminPassword(path string) (string, error) {
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
