package sim

import (
	"image"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// sizedCache is an LRU bounded by the bytes its values hold (size counts
// them) as well as by entry count: the simulator keeps encoded renders and
// decoded pictures, from kilobytes to megabytes each.
type sizedCache[K comparable, V any] struct {
	c        *lru.Cache[K, V]
	bytes    atomic.Int64
	maxBytes int64
	size     func(V) int64
}

func newSizedCache[K comparable, V any](entries int, maxBytes int64, size func(V) int64) *sizedCache[K, V] {
	s := &sizedCache[K, V]{maxBytes: maxBytes, size: size}
	s.c, _ = lru.NewWithEvict(entries, func(_ K, v V) { s.bytes.Add(-size(v)) })
	return s
}

func (s *sizedCache[K, V]) Get(k K) (V, bool) { return s.c.Get(k) }

// Add keeps v under k unless k is cached already, then drops the oldest
// entries while the bytes held pass the bound (the newest always stays).
func (s *sizedCache[K, V]) Add(k K, v V) {
	if _, ok, _ := s.c.PeekOrAdd(k, v); ok {
		return
	}
	s.bytes.Add(s.size(v))
	for s.bytes.Load() > s.maxBytes && s.c.Len() > 1 {
		s.c.RemoveOldest()
	}
}

// pixelBytes is what a decoded picture holds in memory.
func pixelBytes(img image.Image) int64 {
	switch m := img.(type) {
	case *image.RGBA:
		return int64(len(m.Pix))
	case *image.NRGBA:
		return int64(len(m.Pix))
	case *image.Gray:
		return int64(len(m.Pix))
	case *repeatedImage:
		return pixelBytes(m.small)
	}
	b := img.Bounds()
	return 4 * int64(b.Dx()) * int64(b.Dy())
}
