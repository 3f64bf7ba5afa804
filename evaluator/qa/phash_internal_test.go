package qa

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat"
)

// phashByDefinition is phash as first written: each cell's mean pixel by
// pixel, then the same DCT and median.
func phashByDefinition(g gray) Hash {
	var small [hashSide][hashSide]float64
	for y := range hashSide {
		y0, y1 := y*g.h/hashSide, max((y+1)*g.h/hashSide, y*g.h/hashSide+1)
		for x := range hashSide {
			x0, x1 := x*g.w/hashSide, max((x+1)*g.w/hashSide, x*g.w/hashSide+1)
			var s, n int
			for yy := y0; yy < y1 && yy < g.h; yy++ {
				for _, v := range g.pix[yy*g.w+x0 : yy*g.w+min(x1, g.w)] {
					s += int(v)
					n++
				}
			}
			if n > 0 {
				small[y][x] = float64(s) / float64(n)
			}
		}
	}
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

// TestPhashMatchesTheDefinition: phash's cell sums (8 bytes at a time)
// give the hash the pixel-by-pixel means give, on planes of every shape:
// narrower and lower than the 32 cells, not multiples of them, and full
// of the largest values.
func TestPhashMatchesTheDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	for _, sz := range [][2]int{{1, 1}, {7, 40}, {31, 33}, {32, 32}, {100, 3}, {512, 512}, {333, 97}, {513, 257}} {
		for _, kind := range []string{"noise", "0xff", "gradient"} {
			g := gray{w: sz[0], h: sz[1], pix: make([]uint8, sz[0]*sz[1])}
			for i := range g.pix {
				switch kind {
				case "noise":
					g.pix[i] = uint8(r.Uint32())
				case "0xff":
					g.pix[i] = 0xff
				default:
					g.pix[i] = uint8((i%g.w)*255/g.w + (i/g.w)%7)
				}
			}
			if got, want := phash(g), phashByDefinition(g); got != want {
				t.Errorf("%dx%d %s: phash = %016x, want %016x", sz[0], sz[1], kind, uint64(got), uint64(want))
			}
		}
	}
}
