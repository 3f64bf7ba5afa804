package server

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// boundedLRU is an LRU cache bounded by entry count and by the bytes its
// values hold. The caches that keep images or whole responses need both:
// a vendor's picture is megabytes, so a count alone could let a few
// thousand entries take gigabytes per replica.
type boundedLRU[K comparable, V any] struct {
	*lru.Cache[K, V]
	size     func(V) int64 // a value's bytes, read when it is evicted
	bytes    atomic.Int64
	maxBytes int64
}

func newBoundedLRU[K comparable, V any](n int, maxBytes int64, size func(V) int64) *boundedLRU[K, V] {
	b := &boundedLRU[K, V]{size: size, maxBytes: maxBytes}
	b.Cache, _ = lru.NewWithEvict(n, func(_ K, v V) { b.bytes.Add(-size(v)) })
	return b
}

// add stores v under a key not in the cache, then trims.
func (b *boundedLRU[K, V]) add(k K, v V) {
	b.bytes.Add(b.size(v))
	b.Add(k, v)
	b.trim()
}

// grew records that a cached value's size went up by n, then trims. The
// caller must make the new size what size reports from now on.
func (b *boundedLRU[K, V]) grew(n int64) {
	b.bytes.Add(n)
	b.trim()
}

// trim drops the oldest entries while the bytes held pass maxBytes; the
// newest is always kept.
func (b *boundedLRU[K, V]) trim() {
	for b.bytes.Load() > b.maxBytes && b.Len() > 1 {
		b.RemoveOldest()
	}
}
