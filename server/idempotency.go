package server

import (
	"crypto/sha256"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// idempotency remembers responses by (tenant, Idempotency-Key) so a retried
// request gets the first response without a second model call. A second
// request with the same key waits for the first to finish. Per replica.
type idempotency struct {
	c  *lru.Cache[string, *idemEntry]
	mu sync.Mutex
}

type idemEntry struct {
	body [32]byte // hash of the request (route and body)
	done chan struct{}
	resp *savedResponse // nil when the first request failed: it is not stored
}

type savedResponse struct {
	status  int
	ctype   string
	headers [][2]string
	body    []byte
}

func newIdempotency(size int) *idempotency {
	c, _ := lru.New[string, *idemEntry](size)
	return &idempotency{c: c}
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
	i.c.Add(key, e)
	return e, sum, true
}

// finish records the response (nil to forget the key so a retry runs
// again) and wakes waiters.
func (i *idempotency) finish(key string, e *idemEntry, resp *savedResponse) {
	e.resp = resp
	if resp == nil {
		i.mu.Lock()
		if cur, ok := i.c.Peek(key); ok && cur == e {
			i.c.Remove(key)
		}
		i.mu.Unlock()
	}
	close(e.done)
}
