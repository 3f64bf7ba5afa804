package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/server/client"
)

// startDevExperimentMonitor runs the guardrail monitor of `routelab jobs
// analyze` inside `routelab dev` every `every`: it analyses each running
// experiment from ClickHouse and advances canary ramps or rolls back on a
// breach through the admin API (which writes and audits the change).
func startDevExperimentMonitor(st *devStack, conn driver.Conn, db, adminURL, adminToken string, every time.Duration, logger *slog.Logger) {
	if every <= 0 || adminURL == "" {
		return
	}
	m := &jobs.Monitor{
		Control: client.New(adminURL, adminToken, "experiments-monitor"), Reader: chexp.NewReader(conn, db),
		Alpha: 0.05, Progress: func(string, ...any) {}, Now: time.Now,
	}
	st.run("experiments monitor", func(ctx context.Context) error {
		m.Watch(ctx, every, logger.With("component", "experiments-monitor"))
		return nil
	})
}
