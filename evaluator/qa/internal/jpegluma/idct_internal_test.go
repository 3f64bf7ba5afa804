package jpegluma

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDCOnly: dcOnly is what idct makes of every coefficient of a block
// whose only non-zero one is the DC, for every DC of a valid file
// (|dc| < 1<<11 times a quantizer < 1<<16) and random int32s beyond.
func TestDCOnly(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	check := func(dc int32) {
		b := block{dc}
		idct(&b)
		want := dcOnly(dc)
		for i, v := range b {
			if v != want {
				t.Fatalf("dc %d: idct[%d] = %d, dcOnly %d", dc, i, v, want)
			}
		}
	}
	for dc := int32(-1 << 20); dc <= 1<<20; dc += 7 {
		check(dc)
	}
	for range 100_000 {
		check(int32(r.Uint32()))
	}
	check(math.MaxInt32)
	check(math.MinInt32)
}

// TestClamp: clamp is image/jpeg's level shift and clip, for every value
// idct can return (an int32 shifted right by 18).
func TestClamp(t *testing.T) {
	for c := int32(math.MinInt32 >> 18); c <= math.MaxInt32>>18; c++ {
		var want uint8
		switch {
		case c < -128:
			want = 0
		case c > 127:
			want = 255
		default:
			want = uint8(c + 128)
		}
		if got := clamp(c); got != want {
			t.Fatalf("clamp(%d) = %d, want %d", c, got, want)
		}
	}
}
