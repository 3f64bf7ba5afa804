package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/jobs"
)

func schedule(t *testing.T, every time.Duration) (jobs.Schedule, *bytes.Buffer, *[]events.Audit) {
	t.Helper()
	var out bytes.Buffer
	var audits []events.Audit
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	return jobs.Schedule{
		Every: every, ReportDir: t.TempDir(), JSON: &out, Log: io.Discard,
		Window: func(at time.Time) (jobs.Window, error) { return jobs.Window{From: at.Add(-time.Hour), To: at}, nil },
		Audit:  func(_ context.Context, a events.Audit) error { audits = append(audits, a); return nil },
		Now:    func() time.Time { now = now.Add(time.Second); return now },
	}, &out, &audits
}

// A run writes its report three ways: a file, an audit row, a JSON line.
func TestScheduleOnce(t *testing.T) {
	s, out, audits := schedule(t, 0)
	var window jobs.Window
	err := s.Run(context.Background(), "drift", func(_ context.Context, w jobs.Window) (any, string, error) {
		window = w
		return map[string]int{"events": 7}, "live-1", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if window.To.Sub(window.From) != time.Hour {
		t.Errorf("window %v .. %v, want the hour before now", window.From, window.To)
	}
	files, _ := filepath.Glob(filepath.Join(s.ReportDir, "drift-*.json"))
	if len(files) != 1 {
		t.Fatalf("report files %v, want one drift-*.json", files)
	}
	b, _ := os.ReadFile(files[0])
	if strings.TrimSpace(string(b)) != `{"events":7}` || strings.TrimSpace(out.String()) != `{"events":7}` {
		t.Errorf("report file %q, JSON line %q; want {\"events\":7}", b, out.String())
	}
	if len(*audits) != 1 || (*audits)[0].Action != "jobs.drift" || (*audits)[0].Subject != "live-1" {
		t.Errorf("audits = %+v, want one jobs.drift on live-1", *audits)
	}
	var body map[string]int
	if err := json.Unmarshal([]byte((*audits)[0].Body), &body); err != nil || body["events"] != 7 {
		t.Errorf("audit body %q", (*audits)[0].Body)
	}
}

// Once, a failed run is the command's error; on a schedule it is retried
// at the next tick, and the schedule ends with its context.
func TestScheduleRetries(t *testing.T) {
	boom := errors.New("clickhouse away")
	s, _, _ := schedule(t, 0)
	err := s.Run(context.Background(), "ope", func(context.Context, jobs.Window) (any, string, error) { return nil, "", boom })
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "jobs ope: ") {
		t.Errorf("Run once = %v, want jobs ope: %v", err, boom)
	}

	s, out, audits := schedule(t, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	err = s.Run(ctx, "ope", func(context.Context, jobs.Window) (any, string, error) {
		runs++
		if runs == 1 {
			return nil, "", boom
		}
		cancel()
		return runs, "cand", nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("Run every = %v after %d runs, want nil after 2", err, runs)
	}
	if len(*audits) != 1 || strings.TrimSpace(out.String()) != "2" {
		t.Errorf("after a failed and a good run: %d audits, JSON %q; want 1 and 2", len(*audits), out.String())
	}
}
