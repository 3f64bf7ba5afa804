package replica_test

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server/replica"
)

type recProducer struct {
	mu  sync.Mutex
	evs []any
}

func (p *recProducer) Enqueue(topic, key string, ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if topic == events.TopicAudit {
		p.evs = append(p.evs, ev)
	}
}

func TestWireExperimentsOverKafka(t *testing.T) {
	ctx := brokertest.Context(t)
	b := brokertest.Start(t, broker.Config{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	prod := &recProducer{}
	// two serve replicas
	w1, err := replica.WireExperiments(ctx, []string{b.Addr()}, logger, prod, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	w2, err := replica.WireExperiments(ctx, []string{b.Addr()}, logger, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()

	raw, err := os.ReadFile("../../datasets/experiments/ab-policies.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := experiments.ParseSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := w1.Registry.Create(ctx, spec, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// read-your-writes on the writing replica
	if _, err := w1.Registry.Transition(ctx, s.ID, experiments.StatusRunning, "alice", ""); err != nil {
		t.Fatal(err)
	}
	req := router.Request{ID: "r1", Unit: "user-7", Tenant: "acme", Mode: router.ModeGenerate, Prompt: "a fox"}
	arms, _ := w1.Assigner.Assign(req)
	if len(arms) != 1 || arms[0].Experiment != s.ID {
		t.Fatalf("replica 1 Assign = %+v", arms)
	}
	// the other replica converges and assigns the same arm
	started, _ := w1.Registry.Get(s.ID)
	if err := w2.Registry.WaitApplied(ctx, s.ID, started.Revision); err != nil {
		t.Fatal(err)
	}
	if got, _ := w2.Assigner.Assign(req); len(got) != 1 || got[0] != arms[0] {
		t.Fatalf("replicas disagree: %+v vs %+v", got, arms[0])
	}
	prod.mu.Lock()
	defer prod.mu.Unlock()
	if len(prod.evs) != 2 {
		t.Fatalf("audit events = %d, want 2 (create, start)", len(prod.evs))
	}
	a := prod.evs[1].(*events.Audit)
	if a.Action != "experiment.start" || a.Subject != s.ID || a.Actor != "alice" || a.Tenant != "_system" {
		t.Errorf("audit = %+v", a)
	}
}
