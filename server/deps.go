package server

import (
	"context"
	"errors"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// Router picks the model for a request under the live policy. Decide is pure
// and fast (microseconds); it never fails: with no eligible model it returns
// a Route with an empty Model.
type Router interface {
	Decide(req router.Request) Route
}

// Route is what the server needs from a routing decision.
type Route struct {
	Model         string   // first model to call
	Chain         []string // fallback and escalation order after Model
	PolicyVersion string
	Rule          string
	Propensity    float64
	Explored      bool
	Candidates    []events.Candidate
	Features      events.Features
	// Reset: the edit chain is at the policy's depth limit; edit the
	// cleanest prior image of the chain instead of the last output.
	Reset     bool
	EditDepth int // edit depth after a reset
}

// Inspector is automated QA on returned image bytes.
type Inspector interface {
	Inspect(img []byte, spec QASpec) QAVerdict
}

// QASpec is what the bytes should be.
type QASpec struct {
	Width, Height   int
	Format          string // png | jpeg | webp
	Reference       []byte // image the edit started from, for drift
	PreserveSubject bool
}

// QAVerdict is the outcome of automated QA.
type QAVerdict struct {
	Pass   bool
	Score  float64 // 0..1, higher is cleaner
	Checks []events.QACheck
	Reason string
}

// Producer sends events. Enqueue never blocks: a full queue spills or
// counts a drop, it never makes a request wait.
type Producer interface {
	Enqueue(topic, key string, ev any)
}

// Healthy is implemented by producers that can say whether they are
// delivering or spooling; /readyz reports it.
type Healthy interface {
	Healthy() error
}

// Assigner assigns a request's unit to running experiments. Assign is pure
// and fast; overrides change how the request is served in that arm.
type Assigner interface {
	Assign(req router.Request) ([]events.Arm, Overrides)
}

// Overrides are an experiment arm's changes to serving.
type Overrides struct {
	Router Router // serve this arm with another policy; nil = live policy
	Model  string // pin a model; "" = route
}

// BlobStore keeps image bytes by content address.
type BlobStore interface {
	Put(data []byte) (key string, err error)
	Get(key string) ([]byte, error) // ErrNotFound when absent
}

// ErrNotFound is returned by stores for an absent key or record.
var ErrNotFound = errors.New("not found")

// KeyStore holds API keys as hashes. Lookup is on the hot path and must be
// an in-memory read.
type KeyStore interface {
	Lookup(hash string) (Key, bool)
	Create(ctx context.Context, tenant, name string) (Key, string, error) // the key and its secret, shown once
	List(ctx context.Context) ([]Key, error)
	Revoke(ctx context.Context, id string) error // ErrNotFound
}

// PolicyAdmin is the control plane for the live policy, behind /admin/policy.
type PolicyAdmin interface {
	Live() (version string, doc []byte, ok bool)
	Push(ctx context.Context, doc []byte) (version string, err error) // returns once applied locally
	Rollback(ctx context.Context) (version string, err error)
}
