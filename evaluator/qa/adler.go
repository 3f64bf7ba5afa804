package qa

import "encoding/binary"

// adler32Update returns the Adler-32 (RFC 1950) of p continuing from adler
// (1 for a new stream), as hash/adler32 computes it: pngWork checks the
// zlib stream's checksum of every row, as image/png does. hash/adler32 adds
// byte after byte in one dependency chain; here each 8-byte word's sum and
// weighted sum are taken at once by multiplications on 16-bit lanes.
func adler32Update(adler uint32, p []byte) uint32 {
	const (
		mod   = 65521
		lanes = 0x00ff00ff00ff00ff
		ones  = 0x0001000100010001
		// weights 8-j of byte j in the word's own contribution to s2, even
		// bytes (8,6,4,2) and odd ones (7,5,3,1), highest lane first so
		// that the product's top lane is the dot product
		wEven = 0x0008000600040002
		wOdd  = 0x0007000500030001
		// words per block: sums stay far inside uint64 (the running sum
		// of sums grows as 2040 * m^2 / 2)
		blockWords = 1 << 16
	)
	s1, s2 := uint64(adler&0xffff), uint64(adler>>16)
	for len(p) >= 8 {
		m := min(len(p)/8, blockWords)
		blk := p[:8*m]
		p = p[8*m:]
		// word k's bytes are weighted n-(8k+j) = 8(m-k-1) + (8-j) in s2:
		// b sums (m-k) times each word's byte sum, w the (8-j) parts.
		var a, b, w uint64
		for len(blk) >= 16 { // two words a turn: the sums' chains are short
			x, y := binary.LittleEndian.Uint64(blk), binary.LittleEndian.Uint64(blk[8:])
			blk = blk[16:]
			e, o := x&lanes, x>>8&lanes
			f, g := y&lanes, y>>8&lanes
			sx, sy := (e+o)*ones>>48, (f+g)*ones>>48
			b += 2*a + 2*sx + sy
			a += sx + sy
			w += e*wEven>>48 + o*wOdd>>48 + f*wEven>>48 + g*wOdd>>48
		}
		for len(blk) >= 8 {
			x := binary.LittleEndian.Uint64(blk)
			blk = blk[8:]
			e, o := x&lanes, x>>8&lanes
			a += (e + o) * ones >> 48
			b += a
			w += e*wEven>>48 + o*wOdd>>48
		}
		s2 = (s2 + uint64(8*m)*s1 + 8*(b-a) + w) % mod
		s1 = (s1 + a) % mod
	}
	for _, v := range p {
		s1 += uint64(v)
		s2 += s1
	}
	return uint32(s2%mod)<<16 | uint32(s1%mod)
}
