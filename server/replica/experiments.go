package replica

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

// Experiments is what a serve process needs for experiments: the registry
// (admin API: server.Deps.Experiments) and the assigner of the serving path
// (gateway.Deps.Assigner).
type Experiments struct {
	Registry *experiments.Registry
	Assigner *gateway.ExperimentAssigner
	log      *kafka.ControlLog
}

// Close stops following the experiments topic.
func (w *Experiments) Close() error {
	if w.log != nil {
		return w.log.Close()
	}
	return nil
}

// WireExperiments opens the routelab.experiments control log (an
// in-process log when brokers is empty), builds the registry on it with
// every change audited through producer (may be nil), and the assigner
// whose arms route with policies found by version in the policies log
// (policyDoc: the policies control log's Get, keys control.PolicyDocKey; may be
// nil) or among the shipped policies.
func WireExperiments(ctx context.Context, brokers []string, logger *slog.Logger, producer server.Producer,
	live *gateway.LivePolicy, policyDoc func(key string) ([]byte, bool), health router.Health) (*Experiments, error) {
	w := &Experiments{}
	var audit experiments.Auditor
	if producer != nil {
		audit = expAuditor{producer}
	}
	if len(brokers) == 0 {
		mem := experiments.NewMemLog()
		w.Registry = experiments.NewRegistry(mem, audit, nil)
		mem.Bind(w.Registry.Apply)
	} else {
		l, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: brokers, Topic: events.TopicExperiments, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("experiments control log: %w", err)
		}
		w.log = l
		w.Registry = experiments.NewRegistry(l, audit, nil)
		l.Subscribe(func(c control.Change) {
			if err := w.Registry.Apply(c.Key, c.Value); err != nil {
				logger.Error("experiment record skipped", "key", c.Key, "err", err)
			}
		})
	}
	var routers *gateway.ArmRouters
	if live != nil {
		routers = gateway.NewArmRouters(live, policyLookup(policyDoc), health)
	}
	w.Assigner = gateway.NewExperimentAssigner(w.Registry.Assigner, routers)
	return w, nil
}

// policyLookup finds a policy by version: a document pushed to the policies
// topic, else a shipped policy with that version. Parsed policies are
// cached (a version's document never changes).
func policyLookup(doc func(key string) ([]byte, bool)) func(version string) (*router.Policy, bool) {
	var mu sync.Mutex
	cache := map[string]*router.Policy{}
	return func(version string) (*router.Policy, bool) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := cache[version]; ok {
			return p, true
		}
		var p *router.Policy
		if doc != nil {
			if b, ok := doc(control.PolicyDocKey(version)); ok {
				p, _ = router.ParsePolicy(b)
			}
		}
		if p == nil {
			for _, name := range datasets.PolicyNames() {
				if sp, err := datasets.Policy(name); err == nil && sp.Version == version {
					p = sp
				}
			}
		}
		if p == nil {
			return nil, false
		}
		cache[version] = p
		return p, true
	}
}

// expAuditor sends control-plane changes as audit events.
type expAuditor struct{ p server.Producer }

func (a expAuditor) Audit(_ context.Context, action, subject, actor string, body []byte) {
	h := events.NewHeader("_system", "")
	if !json.Valid(body) {
		body, _ = json.Marshal(string(body))
	}
	a.p.Enqueue(events.TopicAudit, "experiment/"+subject, &events.Audit{
		Header: h, Action: action, Subject: subject, Actor: strings.TrimSpace(actor), Body: string(body),
	})
}
