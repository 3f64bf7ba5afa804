package server

import (
	"sync"
	"time"
)

// The rate limit is per replica: behind N replicas a key gets N times its
// rate. Daily caps and provider gates are the gateway's.

// buckets is a token bucket per API key.
type buckets struct {
	rate  float64 // tokens per second
	burst float64
	mu    sync.Mutex
	m     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newBuckets(rate float64, burst int) *buckets {
	return &buckets{rate: rate, burst: float64(burst), m: make(map[string]*bucket)}
}

// take spends one token for key; when none is left it returns how long
// until one will be.
func (b *buckets) take(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, ok := b.m[key]
	if !ok {
		bk = &bucket{tokens: b.burst, last: now}
		b.m[key] = bk
	}
	if el := now.Sub(bk.last).Seconds(); el > 0 {
		bk.tokens = min(b.burst, bk.tokens+el*b.rate)
		bk.last = now
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return true, 0
	}
	wait := time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
	return false, max(wait, time.Millisecond)
}
