package console

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
)

// ControlUsers keeps accounts in the compacted routelab.users topic: every
// console replica (and `routelab users create`) sees the same accounts with
// no database of its own. Key = user name, value = the User as JSON.
type ControlUsers struct {
	log *kafka.ControlLog
}

var _ UserStore = (*ControlUsers)(nil)

// NewControlUsers uses an opened control log of events.TopicUsers.
func NewControlUsers(l *kafka.ControlLog) *ControlUsers { return &ControlUsers{log: l} }

// OpenControlUsers opens routelab.users on brokers.
func OpenControlUsers(ctx context.Context, brokers []string) (*ControlUsers, error) {
	l, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: brokers, Topic: events.TopicUsers})
	if err != nil {
		return nil, err
	}
	return &ControlUsers{log: l}, nil
}

// Close stops following the topic.
func (u *ControlUsers) Close() error { return u.log.Close() }

// Lookup implements UserStore.
func (u *ControlUsers) Lookup(_ context.Context, name string) (User, error) {
	b, ok := u.log.Get(control.UserKey(name))
	if !ok {
		return User{}, ErrUserNotFound
	}
	var x User
	if err := json.Unmarshal(b, &x); err != nil {
		return User{}, fmt.Errorf("decode user %s: %w", name, err)
	}
	return x, nil
}

// List implements UserStore.
func (u *ControlUsers) List(_ context.Context) ([]User, error) {
	var out []User
	for name, b := range u.log.All() {
		var x User
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, fmt.Errorf("decode user %s: %w", name, err)
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Create implements UserStore. Two replicas creating the same name at the
// same instant both succeed and the later record wins; accounts are created
// by admins, rarely, so this is accepted rather than adding a lock.
func (u *ControlUsers) Create(ctx context.Context, x User) error {
	if _, ok := u.log.Get(control.UserKey(x.Name)); ok {
		return ErrUserExists
	}
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	return u.log.Put(ctx, control.UserKey(x.Name), b)
}

// ProducerReviews hands review events to the shared kafka.Producer
// (bounded queue, batching, on-disk spool while Kafka is away).
type ProducerReviews struct {
	P *kafka.Producer
}

var _ ReviewSink = ProducerReviews{}

// Emit implements ReviewSink.
func (s ProducerReviews) Emit(_ context.Context, r events.Review) error {
	if !s.P.TryEnqueue(events.TopicReviews, r.RequestID, r) {
		return &FieldError{Code: "event_queue_full", Message: "the score could not be queued for Kafka; try again", Status: 503}
	}
	return nil
}

// PolicyVersions reads every pushed policy version and the live chain.
type PolicyVersions interface {
	// Live is the live version and the versions live before it, newest last.
	Live() (version string, history []string)
	Doc(version string) ([]byte, bool)
	Versions() []string
}

// ControlPolicies reads the compacted routelab.policies topic in the layout
// of events/control (each pushed document, the live record), which
// server.PolicyStore writes. The console only reads it; pushes and
// rollbacks go through the admin API.
type ControlPolicies struct {
	log *kafka.ControlLog
}

var _ PolicyVersions = (*ControlPolicies)(nil)

// OpenControlPolicies follows routelab.policies on brokers.
func OpenControlPolicies(ctx context.Context, brokers []string) (*ControlPolicies, error) {
	l, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: brokers, Topic: events.TopicPolicies})
	if err != nil {
		return nil, err
	}
	return &ControlPolicies{log: l}, nil
}

// Close stops following the topic.
func (p *ControlPolicies) Close() error { return p.log.Close() }

// Live implements PolicyVersions.
func (p *ControlPolicies) Live() (string, []string) {
	rec, _, _ := control.ReadLivePolicy(p.log) // an unreadable record shows as none live
	return rec.Version, rec.History
}

// Doc implements PolicyVersions.
func (p *ControlPolicies) Doc(version string) ([]byte, bool) {
	return p.log.Get(control.PolicyDocKey(version))
}

// Versions implements PolicyVersions.
func (p *ControlPolicies) Versions() []string {
	var out []string
	for k := range p.log.All() {
		if v, ok := control.PolicyVersionOfKey(k); ok {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
