package experiments

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log is the control-plane log experiments live in: the compacted
// routelab.experiments topic, keyed by experiment id. Put returns once the
// record is committed and has been applied locally (the log calls
// Registry.Apply for every record it reads, its own included).
type Log interface {
	Put(ctx context.Context, key string, value []byte) error
}

// Auditor records control-plane changes (events.Audit into ClickHouse).
type Auditor interface {
	Audit(ctx context.Context, action, subject, actor string, body []byte)
}

// Registry is the experiments control plane of one process: the current
// specs (rebuilt from the log), the assigner built from them, and the
// changes (create, start, pause, stop, ramp, update), each written to the
// log and audited. Reads are lock-free; writes are serialized per process.
type Registry struct {
	log   Log
	audit Auditor
	now   func() time.Time

	mu      sync.Mutex // serializes writes in this process
	applyMu sync.Mutex // serializes Apply
	state   atomic.Pointer[registryState]
}

type registryState struct {
	specs    map[string]Spec
	assigner *Assigner
	applied  chan struct{} // closed when the next state is stored
}

// NewRegistry makes an empty registry; feed it the log's records through
// Apply. audit may be nil; now defaults to time.Now.
func NewRegistry(log Log, audit Auditor, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	r := &Registry{log: log, audit: audit, now: now}
	r.state.Store(&registryState{specs: map[string]Spec{}, assigner: NewAssigner(nil), applied: make(chan struct{})})
	return r
}

// Apply applies one record of the log: value is a spec document, or empty
// for a deletion. Records that do not parse are skipped and reported.
func (r *Registry) Apply(key string, value []byte) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	cur := r.state.Load()
	next := make(map[string]Spec, len(cur.specs)+1)
	for k, v := range cur.specs {
		next[k] = v
	}
	if len(value) == 0 {
		delete(next, key)
	} else {
		var s Spec
		if err := json.Unmarshal(value, &s); err != nil {
			return fmt.Errorf("experiment record %s: %w", key, err)
		}
		if s.ID != key {
			return fmt.Errorf("experiment record %s carries id %q", key, s.ID)
		}
		next[key] = s
	}
	all := make([]Spec, 0, len(next))
	for _, s := range next {
		all = append(all, s)
	}
	r.state.Store(&registryState{specs: next, assigner: NewAssigner(all), applied: make(chan struct{})})
	close(cur.applied)
	return nil
}

// Assigner is the assigner for the current running experiments.
func (r *Registry) Assigner() *Assigner { return r.state.Load().assigner }

// Get returns the experiment with id, or ErrNotFound.
func (r *Registry) Get(id string) (Spec, error) {
	s, ok := r.state.Load().specs[id]
	if !ok {
		return Spec{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return s.Clone(), nil
}

// List returns every experiment, newest first.
func (r *Registry) List() []Spec {
	st := r.state.Load()
	out := make([]Spec, 0, len(st.specs))
	for _, s := range st.specs {
		out = append(out, s.Clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedMS != out[j].CreatedMS {
			return out[i].CreatedMS > out[j].CreatedMS
		}
		return out[i].ID < out[j].ID
	})
	return out
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// NewID makes an experiment id from its name: a slug and 6 random hex digits.
func NewID(name string) string {
	slug := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(slug) > 40 {
		slug = strings.Trim(slug[:40], "-")
	}
	if slug == "" {
		slug = "exp"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return slug + "-" + hex.EncodeToString(b[:])
}

// Create validates a new spec, gives it an id (unless it has one that is
// free), reserves its layer range and stores it as a draft.
func (r *Registry) Create(ctx context.Context, s Spec, actor string) (Spec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Normalize()
	s.Status, s.Phase, s.Revision, s.StopReason, s.RolledBack = StatusDraft, 1, 1, "", false
	if s.ID == "" {
		s.ID = NewID(s.Name)
	} else if _, err := r.Get(s.ID); err == nil {
		return Spec{}, invalid("duplicate_id", "id", "experiment %q exists", s.ID)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	if err := Allocate(&s, r.List()); err != nil {
		return Spec{}, err
	}
	ms := r.now().UnixMilli()
	s.CreatedMS, s.UpdatedMS = ms, ms
	if s.Ramp != nil {
		s.Traffic = s.Ramp.Steps[s.Ramp.Step]
	}
	return s, r.write(ctx, s, "experiment.create", actor, "")
}

// Transition starts, pauses or stops an experiment.
func (r *Registry) Transition(ctx context.Context, id string, to Status, actor, reason string) (Spec, error) {
	return r.change(ctx, id, "experiment."+verb(to), actor, reason, func(s *Spec) error {
		if s.Status == to {
			return nil // idempotent
		}
		return Transition(s, to, reason, r.now())
	})
}

func verb(s Status) string {
	switch s {
	case StatusRunning:
		return "start"
	case StatusPaused:
		return "pause"
	case StatusStopped:
		return "stop"
	}
	return string(s)
}

// RampTo sets an experiment's traffic (a manual ramp); traffic <= 0 means
// the canary's next step.
func (r *Registry) RampTo(ctx context.Context, id string, traffic float64, actor, reason string) (Spec, error) {
	return r.change(ctx, id, "experiment.ramp", actor, reason, func(s *Spec) error {
		if traffic <= 0 {
			if s.Ramp == nil {
				return invalid("missing_field", "traffic", "experiment has no ramp steps; give traffic")
			}
			if s.Ramp.Step+1 >= len(s.Ramp.Steps) {
				return invalid("invalid_transition", "ramp.step", "the ramp is at its last step")
			}
			traffic = s.Ramp.Steps[s.Ramp.Step+1]
		}
		return SetTraffic(s, traffic, r.now())
	})
}

// Rollback stops a canary because a guardrail was breached.
func (r *Registry) Rollback(ctx context.Context, id, actor, reason string) (Spec, error) {
	return r.change(ctx, id, "canary.rollback", actor, reason, func(s *Spec) error {
		if s.Status == StatusStopped {
			return invalid("invalid_transition", "status", "experiment is already stopped")
		}
		s.RolledBack = true
		return Transition(s, StatusStopped, reason, r.now())
	})
}

// Update replaces an experiment's definition (see Update for what starts a
// new phase).
func (r *Registry) Update(ctx context.Context, id string, next Spec, actor string) (Spec, error) {
	return r.change(ctx, id, "experiment.update", actor, "", func(s *Spec) error {
		u, err := Update(*s, next, r.now())
		if err != nil {
			return err
		}
		*s = u
		return nil
	})
}

// Reweight is a bandit's scheduled re-weighting (see Reweight) from the
// per-stratum outcomes agg; it writes nothing when it is not time yet and
// reports whether it wrote.
func (r *Registry) Reweight(ctx context.Context, id string, agg map[string][]ArmOutcomes, actor string) (Spec, bool, error) {
	done := false
	s, err := r.change(ctx, id, "bandit.reweight", actor, "", func(s *Spec) error {
		next, ok, err := Reweight(*s, agg, r.now())
		if err != nil || !ok {
			return err
		}
		*s, done = next, true
		return nil
	})
	return s, done, err
}

// change applies fn to the current spec and writes it; fn returning the
// spec unchanged (same revision) writes nothing.
func (r *Registry) change(ctx context.Context, id, action, actor, reason string, fn func(*Spec) error) (Spec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.Get(id)
	if err != nil {
		return Spec{}, err
	}
	rev := s.Revision
	if err := fn(&s); err != nil {
		return Spec{}, err
	}
	if s.Revision == rev {
		return s, nil
	}
	return s, r.write(ctx, s, action, actor, reason)
}

func (r *Registry) write(ctx context.Context, s Spec, action, actor, reason string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := r.log.Put(ctx, s.ID, b); err != nil {
		return fmt.Errorf("write experiment %s: %w", s.ID, err)
	}
	if err := r.WaitApplied(ctx, s.ID, s.Revision); err != nil {
		return err
	}
	if r.audit != nil {
		body := b
		if reason != "" {
			body, _ = json.Marshal(struct {
				Reason string `json:"reason"`
				Spec   Spec   `json:"spec"`
			}{reason, s})
		}
		r.audit.Audit(ctx, action, s.ID, actor, body)
	}
	return nil
}

// WaitApplied waits until this registry holds revision rev of id (the log
// may tell its subscribers after Put has returned).
func (r *Registry) WaitApplied(ctx context.Context, id string, rev int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st := r.state.Load()
		if s, ok := st.specs[id]; ok && s.Revision >= rev {
			return nil
		}
		select {
		case <-st.applied:
		case <-ctx.Done():
			return fmt.Errorf("%w: experiment %s revision %d not applied: %v", ErrConflict, id, rev, ctx.Err())
		}
	}
}

// MemLog is an in-process Log for tests and single-process use: Put applies
// the record to the registry synchronously.
type MemLog struct {
	mu      sync.Mutex
	Records []MemRecord
	apply   func(key string, value []byte) error
}

// MemRecord is one record written to a MemLog.
type MemRecord struct {
	Key   string
	Value []byte
}

// NewMemLog returns a log; Bind the registry to it.
func NewMemLog() *MemLog { return &MemLog{} }

// Bind sets the function records are applied with (Registry.Apply).
func (l *MemLog) Bind(apply func(key string, value []byte) error) { l.apply = apply }

// Put records and applies the value.
func (l *MemLog) Put(_ context.Context, key string, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.apply == nil {
		return errors.New("memlog not bound")
	}
	l.Records = append(l.Records, MemRecord{key, append([]byte(nil), value...)})
	return l.apply(key, value)
}
