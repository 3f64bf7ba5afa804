package qa

import "encoding/binary"

// adler32Update returns the Adler-32 (RFC 1950) of p continuing from adler
// (1 for a new stream), as hash/adler32 computes it: pngWork checks the
// zlib stream's checksum of every row, as image/png does. hash/adler32 adds
// byte after byte in one dependency chain; here 8-byte words are added lane
// by lane (SWAR), four bytes' sums in the four 16-bit lanes of each of two
// words, with no multiplication per word: a group of up to 16 words is
// summed that way (adlerLanes) and folded into s1 and s2 by a few
// multiplications.
//
// For a group of m words x_0..x_{m-1} (byte j of word k is p[8k+j]), the
// sums Adler-32 needs are
//
//	s1 += Σ p_i
//	s2 += 8m·s1 + Σ (8m - i) p_i = 8m·s1 + 8·Σ_k (m-k)·S_k - Σ_j j·T_j
//
// where S_k is word k's byte sum and T_j the sum of byte j over the words.
// The lanes of a (bytes' running totals) are the T_j, and those of b (the
// running total of a after each word) sum to Σ_k (m-k)·S_k.
func adler32Update(adler uint32, p []byte) uint32 {
	const (
		mod   = 65521
		ones  = 0x0001000100010001
		widen = 0x0000ffff0000ffff
		// wEven and wOdd put Σ j·T_j in the product's top lane: the even
		// bytes (the lanes of ae) weigh 0, 2, 4, 6, the odd ones 1, 3, 5,
		// 7, the weights in reverse lane order.
		wEven = 0x0000000200040006
		wOdd  = 0x0001000300050007
		// blockBytes bounds how much is added to s1 and s2 in uint64
		// before they are reduced: far inside 1<<64.
		blockBytes = 1 << 20
	)
	s1, s2 := uint64(adler&0xffff), uint64(adler>>16)
	for len(p) >= 8 {
		blk := p[:min(len(p), blockBytes)&^7]
		p = p[len(blk):]
		for len(blk) > 0 {
			m := min(len(blk)/8, adlerGroupWords)
			var ae, ao, be, bo uint64
			if m == adlerGroupWords {
				ae, ao, be, bo = adlerLanes((*[8 * adlerGroupWords]byte)(blk))
			} else {
				ae, ao, be, bo = adlerLanesTail(blk[:8*m])
			}
			blk = blk[8*m:]
			// b's lanes may each be near 1<<16: widened to 32-bit lanes.
			// a's lanes are at most 255·16: their plain and weighted sums
			// stay under 1<<16 in every lane of the products.
			b := be&widen + be>>16&widen + bo&widen + bo>>16&widen
			sumS := b&0xffffffff + b>>32 // Σ_k (m-k)·S_k
			jt := ae*wEven>>48 + ao*wOdd>>48
			s2 += uint64(8*m)*s1 + 8*sumS - jt
			s1 += (ae + ao) * ones >> 48
		}
		s1 %= mod
		s2 %= mod
	}
	for _, v := range p {
		s1 += uint64(v)
		s2 += s1
	}
	return uint32(s2%mod)<<16 | uint32(s1%mod)
}

// adlerGroupWords is a group's words: a lane of b reaches 255·m(m+1)/2,
// under 1<<16 for m <= 22.
const adlerGroupWords = 16

// adlerLanes sums a group of 16 words: ae and ao hold the totals of the
// even and odd bytes in 16-bit lanes, be and bo the running totals of ae
// and ao after each word. Its own function with a fixed-size group, so
// that the four sums stay in registers.
func adlerLanes(g *[8 * adlerGroupWords]byte) (ae, ao, be, bo uint64) {
	const lanes = 0x00ff00ff00ff00ff
	for i := 0; i < len(g); i += 16 {
		x := binary.LittleEndian.Uint64(g[i : i+8])
		y := binary.LittleEndian.Uint64(g[i+8 : i+16])
		ae += x & lanes
		ao += x >> 8 & lanes
		be += ae
		bo += ao
		ae += y & lanes
		ao += y >> 8 & lanes
		be += ae
		bo += ao
	}
	return
}

// adlerLanesTail is adlerLanes for the fewer than 16 words at the end.
func adlerLanesTail(g []byte) (ae, ao, be, bo uint64) {
	const lanes = 0x00ff00ff00ff00ff
	for ; len(g) >= 8; g = g[8:] {
		x := binary.LittleEndian.Uint64(g)
		ae += x & lanes
		ao += x >> 8 & lanes
		be += ae
		bo += ao
	}
	return
}
