package qa

import (
	"image"
)

// gray is an 8-bit luma plane, row-major, stride == w.
type gray struct {
	w, h int
	pix  []uint8
}

// luma is BT.601 luma from 8-bit RGB, in fixed point.
func luma(r, g, b uint32) uint8 {
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
}

// toWork converts img to a luma plane no larger than maxSide on its longer
// side, averaging f×f blocks (f the smallest integer that fits). Every
// statistic is measured on this plane so that thresholds mean the same for a
// 256 px and a 2048 px image, and so that the cost stays bounded.
// buf is reused when large enough.
func toWork(img image.Image, maxSide int, buf []uint8) gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh, f := workSize(w, h, maxSide)
	out := newGray(ow, oh, buf)
	if r, ok := img.(PixelRepeated); ok && f > 1 && b.Min == (image.Point{}) {
		// Each f×f block repeats one pixel of the small image: the block's
		// mean luma is that pixel's luma, exactly.
		if small, rf := r.Repeated(); rf == f && small.Bounds().Min == (image.Point{}) && small.Bounds().Dx() >= ow && small.Bounds().Dy() >= oh {
			for y := range oh {
				lumaRow(small, y, out.pix[y*ow:(y+1)*ow])
			}
			return out
		}
	}
	if pix, stride, ok := lumaPix(img); ok {
		// A decoded JPEG's Y plane (or a grey image) is the luma.
		lumaBlocks(pix, stride, out, f)
		return out
	}
	if f == 1 {
		for y := range oh {
			lumaRow(img, b.Min.Y+y, out.pix[y*ow:(y+1)*ow])
		}
		return out
	}
	acc := make([]uint32, ow)
	area := uint32(f * f)
	if pix, stride, ok := rgbaPix(img); ok {
		// the same sums as the general path below, fused for 4-byte pixels
		for oy := 0; oy < oh; oy++ {
			clear(acc)
			for dy := 0; dy < f; dy++ {
				p := pix[(oy*f+dy)*stride:]
				p = p[:4*ow*f]
				for ox := range acc {
					q := p[4*ox*f : 4*(ox+1)*f]
					var s uint32
					for k := 0; k+3 < len(q); k += 4 {
						s += uint32(luma(uint32(q[k]), uint32(q[k+1]), uint32(q[k+2])))
					}
					acc[ox] += s
				}
			}
			dst := out.pix[oy*ow : (oy+1)*ow]
			for ox := range dst {
				dst[ox] = uint8((acc[ox] + area/2) / area)
			}
		}
		return out
	}
	row := make([]uint8, w)
	for oy := 0; oy < oh; oy++ {
		clear(acc)
		for dy := 0; dy < f; dy++ {
			lumaRow(img, b.Min.Y+oy*f+dy, row)
			for ox := 0; ox < ow; ox++ {
				x0 := ox * f
				for _, v := range row[x0 : x0+f] {
					acc[ox] += uint32(v)
				}
			}
		}
		dst := out.pix[oy*ow : (oy+1)*ow]
		for ox := range dst {
			dst[ox] = uint8((acc[ox] + area/2) / area)
		}
	}
	return out
}

// workSize is the work plane's size for a w×h image, ow×oh, and the side
// of the blocks averaged into each of its pixels, f: the smallest that
// brings the longer side to at most maxSide (0: no bound).
func workSize(w, h, maxSide int) (ow, oh, f int) {
	f = 1
	if maxSide > 0 {
		for max(w, h)/f > maxSide {
			f++
		}
	}
	ow, oh = w/f, h/f
	if ow == 0 || oh == 0 {
		ow, oh, f = max(w, 1), max(h, 1), 1
	}
	return ow, oh, f
}

// newGray returns an ow×oh plane in buf, reallocated when too small.
func newGray(ow, oh int, buf []uint8) gray {
	n := ow * oh
	if cap(buf) < n {
		buf = make([]uint8, n)
	}
	return gray{w: ow, h: oh, pix: buf[:n]}
}

// lumaBlocks fills out with the rounded means of the f×f blocks of a luma
// plane (pix from its top-left corner, rows stride apart): a decoded
// JPEG's Y, a grey image, or jpegWork's Y plane.
func lumaBlocks(pix []uint8, stride int, out gray, f int) {
	ow, oh := out.w, out.h
	if f == 1 {
		for y := range oh {
			copy(out.pix[y*ow:(y+1)*ow], pix[y*stride:])
		}
		return
	}
	var acc []uint32
	if f > 2 {
		acc = make([]uint32, ow)
	}
	area := uint32(f * f)
	for oy := range oh {
		dst := out.pix[oy*ow : (oy+1)*ow]
		if f == 2 {
			p := pix[2*oy*stride:][:2*ow]
			q := pix[(2*oy+1)*stride:][:2*ow]
			for ox := range dst {
				s := uint32(p[2*ox]) + uint32(p[2*ox+1]) + uint32(q[2*ox]) + uint32(q[2*ox+1])
				dst[ox] = uint8((s + 2) >> 2)
			}
			continue
		}
		clear(acc)
		for dy := range f {
			row := pix[(oy*f+dy)*stride:][:ow*f]
			for ox := range acc {
				var s uint32
				for _, v := range row[ox*f : (ox+1)*f] {
					s += uint32(v)
				}
				acc[ox] += s
			}
		}
		for ox := range dst {
			dst[ox] = uint8((acc[ox] + area/2) / area)
		}
	}
}

// PixelRepeated is an image made by repeating every pixel of a smaller one
// f×f times (cropped to its bounds; both anchored at 0,0), as a renderer that
// draws small and scales up by nearest neighbour makes. When f is the factor
// QA averages blocks by, its work plane is the smaller image's luma, read
// without visiting the repeats: the same plane, exactly.
type PixelRepeated interface {
	image.Image
	Repeated() (small image.Image, f int)
}

// rgbaPix returns the pixels of an RGBA or NRGBA image from its top-left
// corner (their luma is computed alike: QA ignores alpha).
func rgbaPix(img image.Image) ([]uint8, int, bool) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		return m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, true
	case *image.NRGBA:
		return m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, true
	}
	return nil, 0, false
}

// lumaPix returns the luma samples of a YCbCr, NYCbCrA or Gray image from
// its top-left corner: its Y plane, or its grey values.
func lumaPix(img image.Image) ([]uint8, int, bool) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		return m.Y[m.YOffset(b.Min.X, b.Min.Y):], m.YStride, true
	case *image.NYCbCrA:
		return m.Y[m.YOffset(b.Min.X, b.Min.Y):], m.YStride, true
	case *image.Gray:
		return m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, true
	}
	return nil, 0, false
}

// lumaRow writes the luma of row y of img into row. Fast paths cover what the
// decoders return; the default path is correct for any image.Image.
func lumaRow(img image.Image, y int, row []uint8) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		off := m.YOffset(b.Min.X, y)
		copy(row, m.Y[off:off+len(row)])
	case *image.NYCbCrA:
		off := m.YOffset(b.Min.X, y)
		copy(row, m.Y[off:off+len(row)])
	case *image.Gray:
		off := m.PixOffset(b.Min.X, y)
		copy(row, m.Pix[off:off+len(row)])
	case *image.RGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = luma(uint32(p[4*x]), uint32(p[4*x+1]), uint32(p[4*x+2]))
		}
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = luma(uint32(p[4*x]), uint32(p[4*x+1]), uint32(p[4*x+2]))
		}
	case *image.Paletted:
		var lut [256]uint8
		for i, c := range m.Palette {
			r, g, bl, _ := c.RGBA()
			lut[i] = luma(r>>8, g>>8, bl>>8)
		}
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = lut[p[x]]
		}
	default:
		for x := range row {
			r, g, bl, _ := img.At(b.Min.X+x, y).RGBA()
			row[x] = luma(r>>8, g>>8, bl>>8)
		}
	}
}

// stats returns the standard deviation of the plane and the variance of its
// 4-neighbour Laplacian (interior pixels), in one pass over the rows.
func stats(g gray) (stddev, lapVar float64) {
	w, h := g.w, g.h
	var sum, sumSq, lSum, lSq int64
	if w < 3 || h < 3 {
		for y := range h {
			s, q := rowSums(g.pix[y*w : (y+1)*w])
			sum, sumSq = sum+s, sumSq+q
		}
	} else {
		for _, y := range []int{0, h - 1} {
			s, q := rowSums(g.pix[y*w : (y+1)*w])
			sum, sumSq = sum+s, sumSq+q
		}
		for y := 1; y < h-1; y++ {
			s, q, ls, lq := laplacianRow(g.pix[(y-1)*w:y*w], g.pix[y*w:(y+1)*w], g.pix[(y+1)*w:(y+2)*w])
			sum, sumSq, lSum, lSq = sum+s, sumSq+q, lSum+ls, lSq+lq
		}
	}
	n := float64(len(g.pix))
	mean := float64(sum) / n
	stddev = sqrt(max(float64(sumSq)/n-mean*mean, 0))
	if w < 3 || h < 3 {
		return stddev, 0
	}
	m := float64((w - 2) * (h - 2))
	lm := float64(lSum) / m
	return stddev, max(float64(lSq)/m-lm*lm, 0)
}

// rowSums returns the sum and the sum of squares of r's values.
func rowSums(r []uint8) (s, q int64) {
	for _, v := range r {
		s += int64(v)
		q += int64(v) * int64(v)
	}
	return s, q
}

// laplacianRow returns, for row mid (between up and dn, at least 3 pixels
// wide), the sum and sum of squares of its values and of its interior
// pixels' 4-neighbour Laplacian. A function of its own, the sums and the
// sliding left, centre and right pixels stay in registers.
func laplacianRow(up, mid, dn []uint8) (s, q, ls, lq int64) {
	up, dn = up[:len(mid)], dn[:len(mid)]
	l, m := int64(mid[0]), int64(mid[1])
	s, q = l+m, l*l+m*m
	for x := 1; x < len(mid)-1; x++ {
		r := int64(mid[x+1])
		v := 4*m - l - r - int64(up[x]) - int64(dn[x])
		ls += v
		lq += v * v
		s += r
		q += r * r
		l, m = m, r
	}
	return s, q, ls, lq
}
