package server

import (
	"crypto/sha256"
	"sync"

	"github.com/routelab/routelab/gateway/bounded"
)

// idempotency remembers responses by (tenant, Idempotency-Key) so a retried
// request gets the first response without a second model call. A second
// request with the same key waits for the first to finish. Per replica,
// bounded by count and by the bytes of the responses kept: a response
// carries its images, megabytes each from a vendor, so 10,000 of them
// could take tens of gigabytes.
type idempotency struct {
	mu sync.Mutex // guards the cache and entries' size
	c  *bounded.LRU[string, *idemEntry]
}

type idemEntry struct {
	body [32]byte // hash of the request (route and body)
	done chan struct{}
	resp *savedResponse // nil when the first request failed: it is not stored
	size int64          // bytes of resp, set once finished
}

type savedResponse struct {
	status  int
	ctype   string
	headers [][2]string
	body    []byte
}

func newIdempotency(size int, maxBytes int64) *idempotency {
	// An entry's size is read on eviction and set in finish, both under mu.
	return &idempotency{c: bounded.New[string](size, maxBytes, func(e *idemEntry) int64 { return e.size })}
}

// begin claims key for a request body. It returns the entry and whether
// the caller owns it (must call finish); otherwise the caller waits on
// entry.done and checks entry.body.
func (i *idempotency) begin(key string, route string, body []byte) (*idemEntry, [32]byte, bool) {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	i.mu.Lock()
	defer i.mu.Unlock()
	if e, ok := i.c.Get(key); ok {
		return e, sum, false
	}
	e := &idemEntry{body: sum, done: make(chan struct{})}
	i.c.Put(key, e) // in flight: no bytes yet
	return e, sum, true
}

// finish records the response (nil to forget the key so a retry runs
// again) and wakes waiters.
func (i *idempotency) finish(key string, e *idemEntry, resp *savedResponse) {
	e.resp = resp
	i.mu.Lock()
	if cur, ok := i.c.Peek(key); ok && cur == e {
		if resp == nil {
			i.c.Remove(key)
		} else {
			e.size = resp.size()
			i.c.Grew(e.size)
		}
	}
	i.mu.Unlock()
	close(e.done)
}

func (r *savedResponse) size() int64 {
	n := len(r.body) + len(r.ctype)
	for _, h := range r.headers {
		n += len(h[0]) + len(h[1])
	}
	return int64(n)
}
