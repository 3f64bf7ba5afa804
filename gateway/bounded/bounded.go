// Package bounded is an LRU cache bounded by entry count and by the bytes its
// values hold. The caches that keep images or whole responses (edit chains
// in the gateway, Idempotency-Key records in the server) need both: a
// vendor's picture is megabytes, so a count alone could let a few thousand
// entries take gigabytes per replica.
package bounded

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// LRU is safe for concurrent use, as the golang-lru cache it embeds.
type LRU[K comparable, V any] struct {
	*lru.Cache[K, V]
	size     func(V) int64 // a value's bytes, read when it is evicted
	bytes    atomic.Int64
	maxBytes int64
}

// New makes a cache of at most n entries holding at most maxBytes, as size
// counts a value's bytes.
func New[K comparable, V any](n int, maxBytes int64, size func(V) int64) *LRU[K, V] {
	b := &LRU[K, V]{size: size, maxBytes: maxBytes}
	b.Cache, _ = lru.NewWithEvict(n, func(_ K, v V) { b.bytes.Add(-size(v)) })
	return b
}

// Put stores v under a key not in the cache, then trims.
func (b *LRU[K, V]) Put(k K, v V) {
	b.bytes.Add(b.size(v))
	b.Add(k, v)
	b.trim()
}

// Grew records that a cached value's size went up by n, then trims. The
// caller must make the new size what size reports from now on.
func (b *LRU[K, V]) Grew(n int64) {
	b.bytes.Add(n)
	b.trim()
}

// Bytes is what the cached values hold now.
func (b *LRU[K, V]) Bytes() int64 { return b.bytes.Load() }

// trim drops the oldest entries while the bytes held pass maxBytes; the
// newest is always kept.
func (b *LRU[K, V]) trim() {
	for b.bytes.Load() > b.maxBytes && b.Len() > 1 {
		b.RemoveOldest()
	}
}
