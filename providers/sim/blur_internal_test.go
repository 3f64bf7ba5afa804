package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestBlurMatchesReference checks the fast blur against the plain box blur
// it replaced (running sums with clamped indices and integer division), on
// random canvases, odd sizes and radii larger than the image.
func TestBlurMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ w, h, radius, passes int }{
		{1, 1, 1, 1}, {7, 3, 1, 2}, {64, 48, 3, 1}, {33, 65, 5, 2}, {16, 16, 20, 2}, {300, 200, 12, 2},
	} {
		t.Run(fmt.Sprintf("%dx%d/r%d/p%d", tc.w, tc.h, tc.radius, tc.passes), func(t *testing.T) {
			c := newCanvas(tc.w, tc.h)
			for i := range c.pix {
				c.pix[i] = uint8(r.IntN(256))
				if i%4 == 3 {
					c.pix[i] = 255
				}
			}
			want := &canvas{w: c.w, h: c.h, pix: append([]uint8(nil), c.pix...)}
			for range tc.passes {
				want.blurRef(tc.radius)
			}
			c.blurPasses(tc.radius, tc.passes)
			if !bytes.Equal(c.pix, want.pix) {
				for i := range c.pix {
					if c.pix[i] != want.pix[i] {
						t.Fatalf("blur pixel byte %d = %d, want %d", i, c.pix[i], want.pix[i])
					}
				}
			}
		})
	}
}

// blur is a separable box blur of the given radius (twice ≈ Gaussian):
// running sums along rows, then running column sums down the image.
func (c *canvas) blurRef(radius int) {
	tmp := make([]int, 3*c.w)
	n := 2*radius + 1
	for y := range c.h {
		blurLineRef(c.pix[4*y*c.w:4*(y+1)*c.w], 4, c.w, radius, n, tmp)
	}
	stride := 4 * c.w
	row := func(y int) []uint8 { y = min(max(y, 0), c.h-1); return c.pix[y*stride : (y+1)*stride] }
	sums := make([]int, stride)
	for y := -radius; y <= radius; y++ {
		for i, v := range row(y) {
			sums[i] += int(v)
		}
	}
	out := make([]uint8, len(c.pix))
	for y := range c.h {
		dst := out[y*stride : (y+1)*stride]
		for i := range dst {
			dst[i] = uint8(sums[i] / n)
		}
		add, sub := row(y+radius+1), row(y-radius)
		for i := range sums {
			sums[i] += int(add[i]) - int(sub[i])
		}
	}
	c.pix = out
}

// blurLine box-blurs the RGB of length pixels of line (stride bytes apart)
// with a running sum; edges repeat the border pixel.
func blurLineRef(line []uint8, stride, length, radius, n int, tmp []int) {
	at := func(i, k int) int { return int(line[stride*min(max(i, 0), length-1)+k]) }
	for k := range 3 {
		s := 0
		for i := -radius; i <= radius; i++ {
			s += at(i, k)
		}
		for i := range length {
			tmp[3*i+k] = s / n
			s += at(i+radius+1, k) - at(i-radius, k)
		}
	}
	for i := range length {
		line[stride*i], line[stride*i+1], line[stride*i+2] = uint8(tmp[3*i]), uint8(tmp[3*i+1]), uint8(tmp[3*i+2])
	}
}

// BenchmarkBlur is the two-pass blur of a 1024 px render at the radius of
// quality 0.25, against the reference implementation it replaced.
func BenchmarkBlur(b *testing.B) {
	src := draw("a red fox in a snowy forest", 1024, 1024, 1, 1)
	const radius = 3
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			c := &canvas{w: src.w, h: src.h, pix: append([]uint8(nil), src.pix...)}
			c.blurRef(radius)
			c.blurRef(radius)
		}
	})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			c := &canvas{w: src.w, h: src.h, pix: append([]uint8(nil), src.pix...)}
			c.blurPasses(radius, 2)
		}
	})
}

// grainRef is grain as first written (tile column computed per pixel).
func (c *canvas) grainRef(cell, amp int, state uint64) {
	t := grainTile(amp, state)
	for y := range c.h {
		trow := &t[(y/cell)%grainTileSide]
		p := c.pix[4*y*c.w : 4*(y+1)*c.w]
		for x := range c.w {
			d := trow[(x/cell)%grainTileSide]
			i := 4 * x
			p[i], p[i+1], p[i+2] = clampByte(int(p[i])+d), clampByte(int(p[i+1])+d), clampByte(int(p[i+2])+d)
		}
	}
}

func TestGrainMatchesReference(t *testing.T) {
	for _, cell := range []int{1, 2, 3, 4} {
		c := draw("a grey wall", 301, 97, 1, 5)
		want := &canvas{w: c.w, h: c.h, pix: append([]uint8(nil), c.pix...)}
		c.grain(cell, 6, 99)
		want.grainRef(cell, 6, 99)
		if !bytes.Equal(c.pix, want.pix) {
			t.Errorf("grain(cell %d) differs from the reference", cell)
		}
	}
}
