package server

import (
	"context"
	"errors"
)

// Producer sends the server's own events (audit, signals; the gateway
// emits the serving events). Enqueue never blocks: a full queue spills or
// counts a drop, it never makes a request wait.
type Producer interface {
	Enqueue(topic, key string, ev any)
}

// Healthy is implemented by producers that can say whether they are
// delivering or spooling; /readyz reports it.
type Healthy interface {
	Healthy() error
}

// BlobStore keeps image bytes by content address.
type BlobStore interface {
	Put(ctx context.Context, data []byte) (key string, err error)
	Get(ctx context.Context, key string) ([]byte, error) // ErrNotFound when absent
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
