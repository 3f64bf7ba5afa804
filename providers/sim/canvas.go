package sim

import (
	"encoding/binary"
	"image"
	"image/color"
	"math/rand/v2"

	"github.com/routelab/routelab/evaluator/qa"
)

// canvas is an opaque RGBA raster (alpha always 255) with the few drawing
// operations the renderer needs, written against the pixel slice for speed.
type canvas struct {
	w, h int
	pix  []uint8
	// rep > 1 makes the canvas stand for a larger picture, outW×outH, whose
	// pixel (x, y) is pix's (x/rep, y/rep): the drawn detail scaled up by
	// repeating pixels, never materialised (see repeated).
	rep        int
	outW, outH int
}

// size is the size of the picture c stands for.
func (c *canvas) size() (int, int) {
	if c.rep > 1 {
		return c.outW, c.outH
	}
	return c.w, c.h
}

// repeated returns c standing for the w×h picture that repeats each of its
// pixels f×f times (w <= f·c.w, h <= f·c.h).
func (c *canvas) repeated(f, w, h int) *canvas {
	return &canvas{w: c.w, h: c.h, pix: c.pix, rep: f, outW: w, outH: h}
}

// flat returns the picture c stands for as a plain canvas.
func (c *canvas) flat() *canvas {
	if c.rep <= 1 {
		return c
	}
	out := newCanvas(c.outW, c.outH)
	stride := 4 * c.outW
	for y := range c.outH {
		dst := out.pix[y*stride : (y+1)*stride]
		if y%c.rep != 0 {
			copy(dst, out.pix[(y-1)*stride:y*stride])
			continue
		}
		src := c.pix[(y/c.rep)*4*c.w:]
		for x := range c.outW {
			i := 4 * (x / c.rep)
			binary.LittleEndian.PutUint32(dst[4*x:], binary.LittleEndian.Uint32(src[i:]))
		}
	}
	return out
}

// image returns the picture c stands for, sharing its pixels: an NRGBA
// (opaque, so NRGBA and RGBA agree) or, for a repeated canvas, an image QA
// recognises as pixel-repeated (qa.PixelRepeated).
func (c *canvas) image() image.Image {
	small := &image.NRGBA{Pix: c.pix, Stride: 4 * c.w, Rect: image.Rect(0, 0, c.w, c.h)}
	if c.rep <= 1 {
		return small
	}
	return &repeatedImage{small: small, f: c.rep, rect: image.Rect(0, 0, c.outW, c.outH)}
}

// repeatedImage is a picture drawn small and scaled up by repeating each
// pixel f×f times.
type repeatedImage struct {
	small *image.NRGBA
	f     int
	rect  image.Rectangle
}

var _ qa.PixelRepeated = (*repeatedImage)(nil)

func (m *repeatedImage) ColorModel() color.Model { return color.NRGBAModel }
func (m *repeatedImage) Bounds() image.Rectangle { return m.rect }
func (m *repeatedImage) At(x, y int) color.Color {
	if !(image.Point{x, y}.In(m.rect)) {
		return color.NRGBA{}
	}
	return m.small.NRGBAAt(x/m.f, y/m.f)
}

// Repeated implements qa.PixelRepeated.
func (m *repeatedImage) Repeated() (image.Image, int) { return m.small, m.f }

func newCanvas(w, h int) *canvas {
	w, h = max(w, 1), max(h, 1)
	return &canvas{w: w, h: h, pix: make([]uint8, 4*w*h)}
}

func (c *canvas) set(x, y int, col [3]uint8) {
	i := 4 * (y*c.w + x)
	c.pix[i], c.pix[i+1], c.pix[i+2], c.pix[i+3] = col[0], col[1], col[2], 255
}

// gradient fills the canvas top to bottom from a to b.
func (c *canvas) gradient(a, b [3]uint8) {
	for y := range c.h {
		t := y * 256 / c.h
		col := [3]uint8{mix(a[0], b[0], t), mix(a[1], b[1], t), mix(a[2], b[2], t)}
		row := c.pix[4*y*c.w : 4*(y+1)*c.w]
		for x := 0; x < len(row); x += 4 {
			row[x], row[x+1], row[x+2], row[x+3] = col[0], col[1], col[2], 255
		}
	}
}

func mix(a, b uint8, t int) uint8 { return uint8((int(a)*(256-t) + int(b)*t) >> 8) }

func (c *canvas) fillRect(x0, y0, x1, y1 int, col [3]uint8) {
	x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, c.w), min(y1, c.h)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			c.set(x, y, col)
		}
	}
}

func (c *canvas) fillCircle(cx, cy, r int, col [3]uint8) {
	for y := max(cy-r, 0); y < min(cy+r+1, c.h); y++ {
		dy := y - cy
		for x := max(cx-r, 0); x < min(cx+r+1, c.w); x++ {
			dx := x - cx
			if dx*dx+dy*dy <= r*r {
				c.set(x, y, col)
			}
		}
	}
}

// fillTriangle fills the triangle with the edge-function test.
func (c *canvas) fillTriangle(x0, y0, x1, y1, x2, y2 int, col [3]uint8) {
	minX, maxX := max(min(x0, x1, x2), 0), min(max(x0, x1, x2), c.w-1)
	minY, maxY := max(min(y0, y1, y2), 0), min(max(y0, y1, y2), c.h-1)
	edge := func(ax, ay, bx, by, px, py int) int { return (bx-ax)*(py-ay) - (by-ay)*(px-ax) }
	area := edge(x0, y0, x1, y1, x2, y2)
	if area == 0 {
		return
	}
	for y := minY; y <= maxY; y++ {
		for x := minX; x <= maxX; x++ {
			a, b, d := edge(x1, y1, x2, y2, x, y), edge(x2, y2, x0, y0, x, y), edge(x0, y0, x1, y1, x, y)
			if (area > 0 && a >= 0 && b >= 0 && d >= 0) || (area < 0 && a <= 0 && b <= 0 && d <= 0) {
				c.set(x, y, col)
			}
		}
	}
}

// marks draws three lines of word-like bars in the lower quarter: the look
// of text without its content.
func (c *canvas) marks(r *rand.Rand, col [3]uint8) {
	unit := max(min(c.w, c.h)/64, 1)
	y := c.h * 3 / 4
	for range 3 {
		x := c.w / 10
		for x < c.w*9/10 {
			wl := unit * (2 + r.IntN(6))
			c.fillRect(x, y, min(x+wl, c.w*9/10), y+2*unit, col)
			x += wl + 2*unit
		}
		y += 4 * unit
	}
}

// noise adds uniform noise of ±amp to every channel. The noise repeats in
// a 64×64 tile (deterministic xorshift) so that it stays cheap to draw and to
// compress; at a glance it is still noise.
func (c *canvas) noise(amp float64, state uint64) {
	a := int(amp)
	if a <= 0 {
		return
	}
	const tile = 64
	span := uint64(2*a + 1)
	t := make([]int8, tile*tile*3)
	for i := range t {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		t[i] = int8(int(state%span) - a)
	}
	for y := range c.h {
		trow := t[(y%tile)*tile*3 : (y%tile+1)*tile*3]
		p := c.pix[4*y*c.w : 4*(y+1)*c.w]
		for x := range c.w {
			d := trow[(x%tile)*3 : (x%tile)*3+3]
			i := 4 * x
			p[i], p[i+1], p[i+2] = clampByte(int(p[i])+int(d[0])), clampByte(int(p[i+1])+int(d[1])), clampByte(int(p[i+2])+int(d[2]))
		}
	}
}

// blur is a separable box blur of the given radius, edges repeating the
// border pixel: running sums along each row, then running column sums down
// the image. Two passes (blur2) approximate a Gaussian. Sums are divided by
// multiplying with a 32-bit reciprocal, exact for these sums (s·n < 2^32).
func (c *canvas) blur(radius int) { c.blurPasses(radius, 1) }

func (c *canvas) blurPasses(radius, passes int) {
	n := uint32(2*radius + 1)
	inv := uint64(1<<32/uint64(n)) + 1
	stride := 4 * c.w
	scratch := make([]uint8, len(c.pix))
	sums := make([]uint32, stride)
	for range passes {
		for y := range c.h {
			blurRow(c.pix[y*stride:(y+1)*stride], scratch[y*stride:(y+1)*stride], c.w, radius, inv)
		}
		blurColumns(scratch, c.pix, stride, c.h, radius, inv, sums)
	}
}

// blurRow writes the box blur of src's RGB (4 bytes a pixel, length pixels)
// into dst, alpha 255: one running sum per channel, all three in one pass.
func blurRow(src, dst []uint8, length, radius int, inv uint64) {
	last := length - 1
	r, g, b := uint32(src[0])*uint32(radius+1), uint32(src[1])*uint32(radius+1), uint32(src[2])*uint32(radius+1)
	for i := 1; i <= radius; i++ {
		j := 4 * min(i, last)
		r, g, b = r+uint32(src[j]), g+uint32(src[j+1]), b+uint32(src[j+2])
	}
	for i := range length {
		d := dst[4*i : 4*i+4]
		d[0], d[1], d[2], d[3] = uint8(uint64(r)*inv>>32), uint8(uint64(g)*inv>>32), uint8(uint64(b)*inv>>32), 255
		add, sub := 4*min(i+radius+1, last), 4*max(i-radius, 0)
		r += uint32(src[add]) - uint32(src[sub])
		g += uint32(src[add+1]) - uint32(src[sub+1])
		b += uint32(src[add+2]) - uint32(src[sub+2])
	}
}

// blurColumns writes the vertical box blur of src (h rows of stride bytes)
// into dst.
func blurColumns(src, dst []uint8, stride, h, radius int, inv uint64, sums []uint32) {
	row := func(y int) []uint8 { y = min(max(y, 0), h-1); return src[y*stride : (y+1)*stride] }
	clear(sums)
	for y := -radius; y <= radius; y++ {
		r := row(y)
		for i, v := range r {
			sums[i] += uint32(v)
		}
	}
	for y := range h {
		d := dst[y*stride : (y+1)*stride]
		add, sub := row(y+radius+1), row(y-radius)
		s := sums[:len(d)]
		add, sub = add[:len(d)], sub[:len(d)]
		for i := range d {
			d[i] = uint8(uint64(s[i]) * inv >> 32)
			s[i] += uint32(add[i]) - uint32(sub[i])
		}
	}
}

// washOut pulls every channel towards level, keeping the fraction contrast
// of its distance.
func (c *canvas) washOut(contrast float64, level int) {
	k := int(contrast * 256)
	for i := 0; i < len(c.pix); i += 4 {
		for j := i; j < i+3; j++ {
			c.pix[j] = clampByte(level + (int(c.pix[j])-level)*k/256)
		}
	}
}

// drawScaled draws img scaled to the canvas (nearest neighbour), reading
// RGBA and NRGBA pixels directly (what the PNG decoder returns).
func (c *canvas) drawScaled(img image.Image) {
	b := img.Bounds()
	var pix []uint8
	var stride int
	rep := 1 // source pixels per stored pixel on each axis
	switch m := img.(type) {
	case *image.RGBA:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
	case *image.NRGBA:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
	case *repeatedImage:
		// A chain's previous output: read its small picture, as At would,
		// without an interface call and an allocation per pixel.
		pix, stride, rep = m.small.Pix, m.small.Stride, m.f
	}
	for y := range c.h {
		sy := y * b.Dy() / c.h
		dst := c.pix[4*y*c.w : 4*(y+1)*c.w]
		for x := range c.w {
			sx := x * b.Dx() / c.w
			if pix != nil {
				i := sy/rep*stride + 4*(sx/rep)
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = pix[i], pix[i+1], pix[i+2], 255
				continue
			}
			r, g, bl, _ := img.At(b.Min.X+sx, b.Min.Y+sy).RGBA()
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), 255
		}
	}
}

// blend mixes o into c with weight t in [0,1].
func (c *canvas) blend(o *canvas, t float64) {
	k := int(t * 256)
	for i := range c.pix {
		c.pix[i] = uint8((int(c.pix[i])*(256-k) + int(o.pix[i])*k) >> 8)
	}
}

func clampByte(v int) uint8 { return uint8(max(0, min(255, v))) }

const grainTileSide = 16 // cells

// grainTile draws grain's tile of offsets in [-amp, amp] (xorshift from state).
func grainTile(amp int, state uint64) *[grainTileSide][grainTileSide]int {
	span := uint64(2*amp + 1)
	var t [grainTileSide][grainTileSide]int
	for y := range grainTileSide {
		for x := range grainTileSide {
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			t[y][x] = int(state%span) - amp
		}
	}
	return &t
}

// grain adds ±amp to the luma of every cell×cell block: the fine texture
// real images have, which blur removes. The values repeat in a 16×16-cell
// tile so that PNG's deflate finds the repeats and the bytes stay small.
func (c *canvas) grain(cell, amp int, state uint64) {
	t := grainTile(amp, state)
	col := make([]uint8, c.w) // tile column of each x
	for x := range col {
		col[x] = uint8((x / cell) % grainTileSide)
	}
	for y := range c.h {
		trow := &t[(y/cell)%grainTileSide]
		p := c.pix[4*y*c.w : 4*(y+1)*c.w]
		for x, tc := range col {
			d := trow[tc&(grainTileSide-1)]
			q := p[4*x : 4*x+3]
			q[0], q[1], q[2] = clampByte(int(q[0])+d), clampByte(int(q[1])+d), clampByte(int(q[2])+d)
		}
	}
}
