package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"

	"github.com/routelab/routelab/gateway/bounded"
)

// IdempotencyStore keeps Idempotency-Key records: a key is claimed by the
// first request that uses it, and holds that request's response once it
// finishes. The default is this replica's memory (memIdempotency); a
// shared store (redisstate) makes a retry sent to another replica a
// replay too.
type IdempotencyStore interface {
	// Begin claims key for a request whose route and body hash to sum.
	// When the key is held by a request with the same sum still in
	// flight, Begin waits for it to finish (or ctx to end). Errors: the
	// store cannot be reached, or ctx ended.
	Begin(ctx context.Context, key string, sum [32]byte) (IdemClaim, error)
	// Finish stores the owner's response (nil: the request failed, the
	// key is forgotten so a retry runs again).
	Finish(ctx context.Context, key string, c IdemClaim, resp []byte) error
}

// IdemClaim is what Begin found.
type IdemClaim struct {
	Owner bool     // the caller claimed the key and must Finish it
	Token string   // the owner's claim, for Finish
	Sum   [32]byte // the hash the key was first used with
	// Resp is the stored response when not Owner and Sum matches; nil
	// when the first request failed while this one waited.
	Resp []byte
}

// requestSum hashes a request's route and body: a key reused with another
// request is refused.
func requestSum(route string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// memIdempotency remembers responses in this replica's memory, bounded by
// count and by the bytes of the responses kept: a response carries its
// images, megabytes each from a vendor, so 10,000 of them could take tens
// of gigabytes.
type memIdempotency struct {
	mu   sync.Mutex // guards the cache, entries' size and next
	c    *bounded.LRU[string, *idemEntry]
	next uint64
}

var _ IdempotencyStore = (*memIdempotency)(nil)

type idemEntry struct {
	token string
	sum   [32]byte
	done  chan struct{}
	resp  []byte // nil when the first request failed: it is not stored
	size  int64  // bytes of resp, set once finished
}

func newIdempotency(size int, maxBytes int64) *memIdempotency {
	// An entry's size is read on eviction and set in Finish, both under mu.
	return &memIdempotency{c: bounded.New[string](size, maxBytes, func(e *idemEntry) int64 { return e.size })}
}

// Begin implements IdempotencyStore.
func (i *memIdempotency) Begin(ctx context.Context, key string, sum [32]byte) (IdemClaim, error) {
	i.mu.Lock()
	e, ok := i.c.Get(key)
	if !ok {
		i.next++
		e = &idemEntry{token: strconv.FormatUint(i.next, 10), sum: sum, done: make(chan struct{})}
		i.c.Put(key, e) // in flight: no bytes yet
		i.mu.Unlock()
		return IdemClaim{Owner: true, Token: e.token, Sum: sum}, nil
	}
	i.mu.Unlock()
	if e.sum != sum {
		return IdemClaim{Sum: e.sum}, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return IdemClaim{}, ctx.Err()
	}
	return IdemClaim{Sum: e.sum, Resp: e.resp}, nil
}

// Finish implements IdempotencyStore.
func (i *memIdempotency) Finish(_ context.Context, key string, c IdemClaim, resp []byte) error {
	i.mu.Lock()
	e, ok := i.c.Peek(key)
	if !ok || e.token != c.Token {
		i.mu.Unlock()
		return nil // evicted while in flight
	}
	e.resp = resp
	if resp == nil {
		i.c.Remove(key)
	} else {
		e.size = int64(len(resp))
		i.c.Grew(e.size)
	}
	i.mu.Unlock()
	close(e.done)
	return nil
}

// savedResponse is a response kept for replays.
type savedResponse struct {
	status  int
	ctype   string
	headers [][2]string
	body    []byte
}

// encode lays r out as length-prefixed fields: status, content type,
// header count, name/value pairs, body.
func (r *savedResponse) encode() []byte {
	n := 16 + len(r.ctype) + len(r.body)
	for _, h := range r.headers {
		n += 8 + len(h[0]) + len(h[1])
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(r.status))
	b = appendField(b, r.ctype)
	b = binary.AppendUvarint(b, uint64(len(r.headers)))
	for _, h := range r.headers {
		b = appendField(appendField(b, h[0]), h[1])
	}
	return append(b, r.body...)
}

func appendField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errBadRecord = errors.New("malformed idempotency record")

// decodeResponse reads what encode wrote.
func decodeResponse(b []byte) (*savedResponse, error) {
	var r savedResponse
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	field := func() (string, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)) {
			return "", false
		}
		s := string(b[:l])
		b = b[l:]
		return s, true
	}
	status, ok := uv()
	if !ok {
		return nil, errBadRecord
	}
	r.status = int(status)
	if r.ctype, ok = field(); !ok {
		return nil, errBadRecord
	}
	nh, ok := uv()
	if !ok || nh > 64 {
		return nil, errBadRecord
	}
	for range nh {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 {
			return nil, errBadRecord
		}
		r.headers = append(r.headers, [2]string{k, v})
	}
	r.body = b
	return &r, nil
}
