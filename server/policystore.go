package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/router"
)

// ControlLog is a compacted control-plane topic as seen by one replica
// (events/kafka.ControlLog): Put returns once the record is committed and
// applied locally; Subscribe sees every key, then every change in order.
type ControlLog interface {
	Get(key string) ([]byte, bool)
	Put(ctx context.Context, key string, value []byte) error
}

// PolicyStore keeps the live policy in a control-plane topic (records as
// events/control lays them out: each pushed document, the live record with
// the versions live before it for rollback) and swaps it
// into a LivePolicy whenever the topic's "live" record changes, on every
// replica. It implements PolicyAdmin.
type PolicyStore struct {
	live *gateway.LivePolicy
	log  ControlLog
	mu   sync.Mutex // serialises push and rollback on this replica
	// applyMu serialises applying the log's state to the router. It is
	// never held across a Put: the log's follower calls Changed, and Put
	// waits for the follower.
	applyMu sync.Mutex
}

var _ PolicyAdmin = (*PolicyStore)(nil)

// NewPolicyStore keeps live in step with log. Call Changed from the log's
// subscription for every change.
func NewPolicyStore(live *gateway.LivePolicy, log ControlLog) *PolicyStore {
	return &PolicyStore{live: live, log: log}
}

// Changed applies the log's current "live" record; call it on every change
// of the topic (cheap when the live version did not change).
func (s *PolicyStore) Changed() error { return s.apply() }

func (s *PolicyStore) apply() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	rec, ok, err := control.ReadLivePolicy(s.log)
	if !ok || err != nil {
		return err
	}
	if p := s.live.Policy(); p != nil && p.Version == rec.Version {
		return nil
	}
	doc, ok := s.log.Get(control.PolicyDocKey(rec.Version))
	if !ok {
		return fmt.Errorf("policies: live version %s has no document", rec.Version)
	}
	p, err := router.ParsePolicy(doc)
	if err != nil {
		return fmt.Errorf("policies: version %s: %w", rec.Version, err)
	}
	s.live.Store(p)
	return nil
}

// Live returns the live version and its document.
func (s *PolicyStore) Live() (string, []byte, bool) {
	p := s.live.Policy()
	if p == nil {
		return "", nil, false
	}
	doc, ok := s.log.Get(control.PolicyDocKey(p.Version))
	if !ok {
		b, err := p.JSON()
		if err != nil {
			return "", nil, false
		}
		doc = b
	}
	return p.Version, doc, true
}

// Push validates doc (router.ParsePolicy: checksum, catalog, rules),
// publishes it and makes it live; it returns once it is live here.
func (s *PolicyStore) Push(ctx context.Context, doc []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	version, err := s.publish(ctx, doc)
	if err != nil {
		return "", err
	}
	return version, s.putLive(ctx, s.current().Promote(version))
}

// Stage validates doc as Push does and publishes it without making it
// live: experiment arms find it by version (a canary of a candidate). It
// returns once the document is committed and applied here.
func (s *PolicyStore) Stage(ctx context.Context, doc []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publish(ctx, doc)
}

// publish validates doc and writes its canonical form under its version.
// The caller holds s.mu.
func (s *PolicyStore) publish(ctx context.Context, doc []byte) (string, error) {
	p, err := router.ParsePolicy(doc)
	if err != nil {
		return "", &Error{Status: fiber.StatusBadRequest, Code: "invalid_policy", Message: err.Error()}
	}
	canon, err := p.JSON()
	if err != nil {
		return "", err
	}
	if err := s.log.Put(ctx, control.PolicyDocKey(p.Version), canon); err != nil {
		return "", err
	}
	return p.Version, nil
}

var _ PolicyStager = (*PolicyStore)(nil)

// Seed pushes doc when the topic has no live policy yet (first start).
func (s *PolicyStore) Seed(ctx context.Context, doc []byte) error {
	if _, ok := s.log.Get(control.PolicyLiveKey); ok {
		return s.apply()
	}
	_, err := s.Push(ctx, doc)
	return err
}

// ErrNoPrevious is returned by Rollback with no earlier version.
var ErrNoPrevious = &Error{Status: fiber.StatusConflict, Code: "no_previous_policy", Message: "no earlier policy version to roll back to"}

// Rollback makes the previously live version live again.
func (s *PolicyStore) Rollback(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.current().Rollback()
	if !ok {
		return "", ErrNoPrevious
	}
	return rec.Version, s.putLive(ctx, rec)
}

// current is the live record; an unreadable one counts as none, so a push
// can replace it.
func (s *PolicyStore) current() control.LivePolicy {
	rec, _, _ := control.ReadLivePolicy(s.log)
	return rec
}

func (s *PolicyStore) putLive(ctx context.Context, rec control.LivePolicy) error {
	b, err := rec.Encode()
	if err != nil {
		return err
	}
	if err := s.log.Put(ctx, control.PolicyLiveKey, b); err != nil {
		return err
	}
	// Put returns once the record is applied to the log's view; apply it
	// to the router here too, so the caller reads its own write.
	return s.apply()
}

// MemLog is a ControlLog in memory, for a single replica without a broker.
type MemLog struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ ControlLog = (*MemLog)(nil)

func NewMemLog() *MemLog { return &MemLog{m: map[string][]byte{}} }

func (l *MemLog) Get(key string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[key]
	return v, ok
}

func (l *MemLog) Put(_ context.Context, key string, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(value) == 0 {
		delete(l.m, key)
		return nil
	}
	l.m[key] = append([]byte(nil), value...)
	return nil
}

var _ = errors.New
