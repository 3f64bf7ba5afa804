package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/routelab/routelab/events"
)

// Job is one run of a scheduled job over a window: its report and the
// subject the report's audit row names.
type Job func(ctx context.Context, w Window) (report any, subject string, err error)

// Schedule runs a job once or every Every until its context ends. Each run
// writes its report to a file under ReportDir, an audit row (action
// "jobs.NAME") and, with JSON set, the report as one JSON line.
type Schedule struct {
	Every     time.Duration // 0: once
	ReportDir string
	// Window is the window of a run starting at now.
	Window func(now time.Time) (Window, error)
	// Audit writes the report's audit row; nil writes none.
	Audit func(ctx context.Context, a events.Audit) error
	JSON  io.Writer // nil: no JSON line
	Log   io.Writer // progress lines
	Now   func() time.Time
}

// Run runs job as name. Once, a failed run is an error; on a schedule it
// is logged and the job runs again at the next tick.
func (s Schedule) Run(ctx context.Context, name string, job Job) error {
	for {
		w, err := s.Window(s.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Log, "jobs %s: window %s .. %s\n", name, w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339))
		rep, subject, err := job(ctx, w)
		if err != nil {
			if s.Every <= 0 {
				return fmt.Errorf("jobs %s: %w", name, err)
			}
			fmt.Fprintf(s.Log, "jobs %s: %v (will retry in %s)\n", name, err, s.Every)
		} else if err := s.emit(ctx, name, subject, rep); err != nil {
			return err
		}
		if s.Every <= 0 {
			return nil
		}
		t := time.NewTimer(s.Every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s Schedule) emit(ctx context.Context, name, subject string, rep any) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode %s report: %w", name, err)
	}
	if err := os.MkdirAll(s.ReportDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(s.ReportDir, fmt.Sprintf("%s-%s.json", name, s.Now().UTC().Format("20060102T150405.000Z")))
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(s.Log, "jobs %s: report written to %s\n", name, path)
	if s.Audit != nil {
		a, err := NewAudit(s.Now(), "jobs."+name, subject, rep)
		if err != nil {
			return err
		}
		if err := s.Audit(ctx, a); err != nil {
			return fmt.Errorf("audit %s report: %w", name, err)
		}
	}
	if s.JSON != nil {
		fmt.Fprintln(s.JSON, string(b))
	}
	return nil
}
