package jobs

import (
	"math"
	"time"
)

// RateBucket is one time bucket of the outcome rates the streaming
// detectors watch.
type RateBucket struct {
	Start       time.Time
	N           float64
	QAFail      float64
	Escalated   float64
	SlowOver    float64 // latency above the slow threshold
	ThumbsDown  float64
	Regenerated float64
	Lat         []float64 // events per latency bin (LatBins)
}

// LatBins is the number of latency bins in a RateBucket: quarter octaves
// of milliseconds (bin = floor(4 log2(ms + 1)), about 19% wide), capped.
const LatBins = 80

// LatBinLow is the lowest latency (ms) of bin b.
func LatBinLow(b int) float64 { return math.Exp2(float64(b)/4) - 1 }

// LatBin is the latency bin of ms: floor(4 log2(ms + 1)), negative
// latencies as 0, capped at the last bin.
func LatBin(ms float64) int {
	return min(int(math.Floor(4*math.Log2(math.Max(ms, 0)+1))), LatBins-1)
}

// SlowFrom sets SlowOver of every bucket to its events in latency bins
// at or above bin from.
func SlowFrom(bs []RateBucket, from int) {
	for i := range bs {
		bs[i].SlowOver = 0
		for b := from; b < len(bs[i].Lat); b++ {
			bs[i].SlowOver += bs[i].Lat[b]
		}
	}
}

// P90Bin is the first latency bin above the 90th percentile of the
// buckets' events: at most 10% of them fall at or above it.
func P90Bin(bs []RateBucket) int {
	lat := make([]float64, LatBins)
	var n float64
	for _, b := range bs {
		for i, c := range b.Lat {
			lat[i] += c
			n += c
		}
	}
	acc := 0.0
	for i, c := range lat {
		acc += c
		if acc >= 0.9*n {
			return i + 1
		}
	}
	return LatBins
}
