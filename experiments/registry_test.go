package experiments_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
)

type auditRec struct{ action, subject, actor, body string }

type memAudit struct {
	mu   sync.Mutex
	recs []auditRec
}

func (m *memAudit) Audit(_ context.Context, action, subject, actor string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, auditRec{action, subject, actor, string(body)})
}

func MustRegistry(t *testing.T, now *time.Time) (*experiments.Registry, *experiments.MemLog, *memAudit) {
	t.Helper()
	log := experiments.NewMemLog()
	audit := &memAudit{}
	r := experiments.NewRegistry(log, audit, func() time.Time { return *now })
	log.Bind(r.Apply)
	return r, log, audit
}

func MustParse(t *testing.T, path string) experiments.Spec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := experiments.ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegistryLifecycle(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	r, log, audit := MustRegistry(t, &now)
	ctx := context.Background()
	s, err := r.Create(ctx, MustParse(t, "../datasets/experiments/ab-policies.json"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == "" || s.Status != experiments.StatusDraft || s.Buckets == nil || s.Buckets.Width() != experiments.Buckets {
		t.Fatalf("Create = %+v", s)
	}
	if r.Assigner().Len() != 0 {
		t.Fatalf("a draft is assigned")
	}
	now = now.Add(time.Minute)
	if s, err = r.Transition(ctx, s.ID, experiments.StatusRunning, "alice", ""); err != nil || s.Status != experiments.StatusRunning || s.PhaseStarted != now.UnixMilli() {
		t.Fatalf("start = %+v, %v", s, err)
	}
	if r.Assigner().Len() != 1 {
		t.Fatalf("running experiment not in the assigner")
	}
	got := r.Assigner().Assign(nil, experiments.Subject{User: "u1", Mode: "generate"})
	if len(got) != 1 || got[0].Experiment != s.ID {
		t.Fatalf("Assign = %+v", got)
	}
	if _, err := r.Transition(ctx, s.ID, experiments.StatusPaused, "bob", "investigating"); err != nil {
		t.Fatal(err)
	}
	if r.Assigner().Len() != 0 {
		t.Fatal("paused experiment still assigns")
	}
	if _, err := r.Transition(ctx, s.ID, experiments.StatusStopped, "bob", "done"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Transition(ctx, s.ID, experiments.StatusRunning, "bob", "")
	var ve *experiments.ValidationError
	if !errors.As(err, &ve) || ve.Code != "invalid_transition" {
		t.Fatalf("restart a stopped experiment = %v, want invalid_transition", err)
	}
	if _, err := r.Get("nope"); !errors.Is(err, experiments.ErrNotFound) {
		t.Fatalf("Get(nope) = %v", err)
	}
	wantActions := []string{"experiment.create", "experiment.start", "experiment.pause", "experiment.stop"}
	if len(audit.recs) != len(wantActions) || len(log.Records) != len(wantActions) {
		t.Fatalf("audit %d records, log %d, want %d", len(audit.recs), len(log.Records), len(wantActions))
	}
	for i, a := range wantActions {
		if audit.recs[i].action != a || audit.recs[i].subject != s.ID {
			t.Errorf("audit[%d] = %+v, want %s", i, audit.recs[i], a)
		}
	}

	// A fresh registry replaying the log converges on the same state.
	r2 := experiments.NewRegistry(nil, nil, nil)
	for _, rec := range log.Records {
		if err := r2.Apply(rec.Key, rec.Value); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := r.Get(s.ID)
	b, _ := r2.Get(s.ID)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("replayed state differs:\n%s\n%s", ja, jb)
	}
}

func TestRegistryCanaryRamp(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	r, _, audit := MustRegistry(t, &now)
	ctx := context.Background()
	s, err := r.Create(ctx, MustParse(t, "../datasets/experiments/canary.json"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Transition(ctx, s.ID, experiments.StatusRunning, "alice", ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []float64{0.05, 0.25, 0.5, 1} {
		s, err = r.RampTo(ctx, s.ID, 0, "monitor", "held")
		if err != nil || s.Traffic != want {
			t.Fatalf("RampTo(next) = %v, %v; want traffic %v", s.Traffic, err, want)
		}
	}
	if _, err := r.RampTo(ctx, s.ID, 0, "monitor", ""); err == nil {
		t.Fatal("ramp past the last step succeeded")
	}
	s, err = r.Rollback(ctx, s.ID, "monitor", "error_rate breached")
	if err != nil || !s.RolledBack || s.Status != experiments.StatusStopped || s.StopReason != "error_rate breached" {
		t.Fatalf("Rollback = %+v, %v", s, err)
	}
	if last := audit.recs[len(audit.recs)-1]; last.action != "canary.rollback" {
		t.Errorf("last audit = %+v", last)
	}
	// A second experiment in the canary layer gets the freed range.
	s2, err := r.Create(ctx, MustParse(t, "../datasets/experiments/canary.json"), "alice")
	if err != nil || s2.Buckets.Start != 0 {
		t.Fatalf("Create after stop = %+v, %v", s2.Buckets, err)
	}
	if _, err := r.Create(ctx, MustParse(t, "../datasets/experiments/canary.json"), "alice"); err == nil {
		t.Fatal("third canary over a full layer accepted")
	}
}
