package qa

import (
	"encoding/binary"
	"image"
	"math"
	"math/bits"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Hash is a 64-bit perceptual hash (pHash): the signs, against their median,
// of the 8×8 lowest-frequency DCT coefficients of the image shrunk to 32×32
// luma. Similar images have hashes a small Hamming distance apart; it
// survives re-encoding, resizing and mild colour changes, and moves when the
// layout (the subject) changes.
type Hash uint64

// Distance is the Hamming distance between two hashes, 0..64.
func (h Hash) Distance(o Hash) int { return bits.OnesCount64(uint64(h ^ o)) }

const hashSide = 32

// dctCos[u][x] = cos((2x+1)uπ / 64), the DCT-II basis for the 8 lowest frequencies.
var dctCos = func() (t [8][hashSide]float64) {
	for u := range 8 {
		for x := range hashSide {
			t[u][x] = math.Cos(float64(2*x+1) * float64(u) * math.Pi / (2 * hashSide))
		}
	}
	return t
}()

// phash computes the hash of a luma plane.
func phash(g gray) Hash {
	// The plane shrunk to 32x32 by cell means; a cell is at least one
	// pixel (cells repeat pixels on a plane under 32 wide or high).
	var x0, x1 [hashSide]int
	for x := range hashSide {
		x0[x] = x * g.w / hashSide
		x1[x] = min(max((x+1)*g.w/hashSide, x0[x]+1), g.w)
	}
	var small [hashSide][hashSide]float64
	for y := range hashSide {
		y0, y1 := y*g.h/hashSide, max((y+1)*g.h/hashSide, y*g.h/hashSide+1)
		y1 = min(y1, g.h)
		var sums [hashSide]int
		for yy := y0; yy < y1; yy++ {
			row := g.pix[yy*g.w : (yy+1)*g.w]
			for x := range hashSide {
				sums[x] += sumBytes(row[x0[x]:x1[x]])
			}
		}
		for x := range hashSide {
			if n := (y1 - y0) * (x1[x] - x0[x]); n > 0 {
				small[y][x] = float64(sums[x]) / float64(n)
			}
		}
	}
	// Separable DCT, only the 8 lowest frequencies in each direction.
	var rows [hashSide][8]float64
	for y := range hashSide {
		for u := range 8 {
			var s float64
			for x := range hashSide {
				s += small[y][x] * dctCos[u][x]
			}
			rows[y][u] = s
		}
	}
	var coef [64]float64
	for v := range 8 {
		for u := range 8 {
			var s float64
			for y := range hashSide {
				s += rows[y][u] * dctCos[v][y]
			}
			coef[v*8+u] = s
		}
	}
	// Median of the 63 AC coefficients (the DC term is the mean brightness):
	// with an odd count, the smallest value with half of them at or below.
	var ac [63]float64
	copy(ac[:], coef[1:])
	slices.Sort(ac[:])
	med := stat.Quantile(0.5, stat.Empirical, ac[:], nil)
	var h Hash
	for i := 1; i < 64; i++ {
		if coef[i] > med {
			h |= 1 << uint(i)
		}
	}
	return h
}

// HashImage computes the perceptual hash of img, the same way Check hashes
// outputs, so a reference hashed once can be compared with every attempt.
func HashImage(img image.Image) Hash {
	return phash(toWork(img, defaultWorkSide, nil))
}

// HashBytes decodes b (refusing more than maxPixels, see Decode) and hashes
// it; a PNG goes straight to its work plane (pngWork).
func HashBytes(b []byte, maxPixels int) (Hash, error) {
	r, err := measureReference(b, maxPixels)
	return r.Hash, err
}

// measureReference decodes b (refusing more than maxPixels) and measures it
// on the default work plane, as the checks measure outputs.
func measureReference(b []byte, maxPixels int) (Reference, error) {
	var g gray
	ok := false
	if format := Sniff(b); format == FormatPNG || format == FormatJPEG {
		g, _, _, ok = streamWork(b, format, maxPixels, defaultWorkSide, nil)
	}
	if !ok {
		img, _, err := Decode(b, maxPixels)
		if err != nil {
			return Reference{}, err
		}
		g = toWork(img, defaultWorkSide, nil)
	}
	_, lap := stats(g)
	return Reference{Hash: phash(g), Sharpness: lap}, nil
}

// sumBytes returns the sum of p's values, 8 bytes at a time: the byte pairs
// of each word added in 16-bit lanes, the lanes by one multiplication.
func sumBytes(p []uint8) int {
	const lanes, ones = 0x00ff00ff00ff00ff, 0x0001000100010001
	s := 0
	for ; len(p) >= 8; p = p[8:] {
		x := binary.LittleEndian.Uint64(p)
		s += int(((x & lanes) + (x >> 8 & lanes)) * ones >> 48)
	}
	for _, v := range p {
		s += int(v)
	}
	return s
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
