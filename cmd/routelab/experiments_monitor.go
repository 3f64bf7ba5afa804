package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
)

// startDevExperimentMonitor runs the guardrail monitor of `routelab jobs
// analyze` inside `routelab dev` every `every`: it analyses each running
// experiment from ClickHouse and advances canary ramps or rolls back on a
// breach through the admin API (which writes and audits the change).
func startDevExperimentMonitor(st *devStack, conn driver.Conn, db, adminURL, adminToken string, every time.Duration, logger *slog.Logger) {
	if every <= 0 || adminURL == "" {
		return
	}
	adm := newAdmin(adminURL, adminToken, "experiments-monitor")
	reader := chexp.NewReader(conn, db)
	log := logger.With("component", "experiments-monitor")
	st.run("experiments monitor", func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			var out struct {
				Experiments []experiments.Spec `json:"experiments"`
			}
			if err := adm.do(ctx, http.MethodGet, "/admin/experiments?status=running", nil, &out); err != nil {
				log.Warn("list running experiments", "err", err)
				continue
			}
			for _, sp := range out.Experiments {
				e := monitorOne(ctx, reader, adm, sp, 0.05, false, func(string, ...any) {})
				switch {
				case e.Error != "":
					log.Warn("experiment not judged", "experiment", sp.ID, "action", e.Verdict.Action, "err", e.Error)
				case e.Verdict.Action != experiments.ActionHold:
					log.Info("experiment "+string(e.Verdict.Action), "experiment", sp.ID, "reason", e.Verdict.Reason, "traffic", e.Verdict.Traffic, "next", e.Verdict.Next)
				}
			}
		}
	})
}
