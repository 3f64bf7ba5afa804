package qa

// The PNG path as it was before pngWork was made faster (3aa3de2..4d1bbd4):
// the baseline BenchmarkCheckVsDecode measures in the same run, and an
// oracle TestPNGWorkMatchesBefore compares with.

import (
	"compress/zlib"
	"encoding/binary"
	"io"
	"sync"
)

// pngWork decodes b, a PNG, straight into the luma work plane that
// toWork(png.Decode(b), maxSide, buf) makes, row by row: the same values,
// without the decoded image (4 MB of RGBA for a 1024x1024 picture, zeroed,
// written, then read again by toWork). It covers what image generators
// send, 8-bit grey, grey+alpha, RGB and RGBA without interlacing; ok is
// false for any other PNG and for any PNG it finds damaged (a bad CRC or
// zlib checksum, too little or too much pixel data, no IEND), so the caller
// decodes it with image/png instead, which reports the error as it always
// did. It reads the header, so the caller checks MaxPixels first
// (DecodeConfig).
func pngWorkV1(b []byte, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
	hdr, idat, ok := pngChunks(b)
	if !ok {
		return gray{}, 0, 0, false
	}
	w, h = int(binary.BigEndian.Uint32(hdr[0:4])), int(binary.BigEndian.Uint32(hdr[4:8]))
	depth, ctype, interlace := hdr[8], hdr[9], hdr[12]
	var bpp int // bytes per pixel
	switch ctype {
	case 0:
		bpp = 1
	case 2:
		bpp = 3
	case 4:
		bpp = 2
	case 6:
		bpp = 4
	}
	if depth != 8 || bpp == 0 || interlace != 0 || hdr[10] != 0 || hdr[11] != 0 || w <= 0 || h <= 0 {
		return gray{}, 0, 0, false
	}
	zr := zlibReadersV1.Get().(*zlibReaderV1)
	defer zlibReadersV1.Put(zr)
	zr.chunks.reset(idat)
	if zr.r == nil {
		r, err := zlib.NewReader(&zr.chunks)
		if err != nil {
			return gray{}, 0, 0, false
		}
		zr.r = r
	} else if err := zr.r.(zlib.Resetter).Reset(&zr.chunks, nil); err != nil {
		return gray{}, 0, 0, false
	}

	// The work plane's geometry, as toWork computes it.
	f := 1
	if maxSide > 0 {
		for max(w, h)/f > maxSide {
			f++
		}
	}
	ow, oh := w/f, h/f
	if ow == 0 || oh == 0 {
		ow, oh, f = max(w, 1), max(h, 1), 1
	}
	n := ow * oh
	if cap(buf) < n {
		buf = make([]uint8, n)
	}
	g = gray{w: ow, h: oh, pix: buf[:n]}

	rowSize := 1 + w*bpp
	rows := make([]uint8, 2*rowSize)
	cr, pr := rows[:rowSize], rows[rowSize:]
	acc := make([]uint32, ow)
	area := uint32(f * f)
	for y := range h {
		if _, err := io.ReadFull(zr.r, cr); err != nil {
			return gray{}, 0, 0, false
		}
		cdat, pdat := cr[1:], pr[1:]
		switch cr[0] { // the filters as image/png undoes them
		case 0:
		case 1:
			for i := bpp; i < len(cdat); i++ {
				cdat[i] += cdat[i-bpp]
			}
		case 2:
			for i, p := range pdat {
				cdat[i] += p
			}
		case 3:
			for i := range bpp {
				cdat[i] += pdat[i] / 2
			}
			for i := bpp; i < len(cdat); i++ {
				cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
			}
		case 4:
			filterPaethV1(cdat, pdat, bpp)
		default:
			return gray{}, 0, 0, false
		}
		cr, pr = pr, cr
		oy := y / f
		if oy >= oh {
			continue // rows past the plane's last block are read, not measured
		}
		row := pr[1:] // the row just unfiltered
		if f == 1 {
			lumaOfV1(row, bpp, g.pix[oy*ow:(oy+1)*ow])
			continue
		}
		if y%f == 0 {
			clear(acc)
		}
		for ox := range acc {
			q := row[ox*f*bpp : (ox+1)*f*bpp]
			var s uint32
			switch bpp {
			case 1:
				for _, v := range q {
					s += uint32(v)
				}
			case 2:
				for k := 0; k < len(q); k += 2 {
					s += uint32(q[k])
				}
			case 3:
				for k := 0; k+2 < len(q); k += 3 {
					s += uint32(luma(uint32(q[k]), uint32(q[k+1]), uint32(q[k+2])))
				}
			case 4:
				for k := 0; k+3 < len(q); k += 4 {
					s += uint32(luma(uint32(q[k]), uint32(q[k+1]), uint32(q[k+2])))
				}
			}
			acc[ox] += s
		}
		if y%f == f-1 {
			dst := g.pix[oy*ow : (oy+1)*ow]
			for ox := range dst {
				dst[ox] = uint8((acc[ox] + area/2) / area)
			}
		}
	}
	// Nothing may follow the pixels, and reading to the end checks the
	// zlib checksum (as image/png does).
	var one [1]byte
	if k, err := io.ReadFull(zr.r, one[:]); k != 0 || err != io.EOF {
		return gray{}, 0, 0, false
	}
	return g, w, h, true
}

// lumaOf writes the luma of each pixel of row into dst (len(dst) pixels),
// as lumaRow does for the image image/png decodes: grey is the value itself,
// grey+alpha's luma(v, v, v) is v, RGB and RGBA ignore alpha.
func lumaOfV1(row []uint8, bpp int, dst []uint8) {
	switch bpp {
	case 1:
		copy(dst, row)
	case 2:
		for x := range dst {
			dst[x] = row[2*x]
		}
	case 3:
		for x := range dst {
			dst[x] = luma(uint32(row[3*x]), uint32(row[3*x+1]), uint32(row[3*x+2]))
		}
	case 4:
		for x := range dst {
			dst[x] = luma(uint32(row[4*x]), uint32(row[4*x+1]), uint32(row[4*x+2]))
		}
	}
}

// filterPaeth undoes the Paeth filter on cdat, as image/png's does (the PNG
// specification's predictor, in its optimised form).
func filterPaethV1(cdat, pdat []byte, bpp int) {
	var a, b, c, pa, pb, pc int
	for i := range bpp {
		a, c = 0, 0
		for j := i; j < len(cdat); j += bpp {
			b = int(pdat[j])
			pa = b - c
			pb = a - c
			pc = absV1(pa + pb)
			pa = absV1(pa)
			pb = absV1(pb)
			if pa <= pb && pa <= pc {
				// a
			} else if pb <= pc {
				a = b
			} else {
				a = c
			}
			a += int(cdat[j])
			a &= 0xff
			cdat[j] = uint8(a)
			c = b
		}
	}
}

// chunkReaderV1 reads the IDAT chunks' data as one stream.
type chunkReaderV1 struct{ chunks [][]byte }

func (c *chunkReaderV1) reset(chunks [][]byte) { c.chunks = chunks }

func (c *chunkReaderV1) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// ReadByte lets flate read the stream without a bufio.Reader of its own.
func (c *chunkReaderV1) ReadByte() (byte, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	v := c.chunks[0][0]
	c.chunks[0] = c.chunks[0][1:]
	return v, nil
}

// zlibReaderV1 is a pooled zlib reader (its inflater holds a 32 kB window
// and Huffman tables) with its source.
type zlibReaderV1 struct {
	chunks chunkReaderV1
	r      io.ReadCloser
}

var zlibReadersV1 = sync.Pool{New: func() any { return new(zlibReaderV1) }}

func absV1(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// checkPNGBefore is Check's path for an unseen PNG before (check with
// pngWorkV1); a zero Result when pngWorkV1 declines.
func (c *Checker) checkPNGBefore(b []byte, s Spec) Result {
	if _, _, err := DecodeConfig(b, c.t.MaxPixels); err != nil {
		return Result{}
	}
	bufp := c.buf()
	g, w, h, ok := pngWorkV1(b, c.t.WorkSide, *bufp)
	if !ok {
		c.bufs.Put(bufp)
		return Result{}
	}
	r := c.checkPlane(g, w, h, FormatPNG, s)
	*bufp = g.pix
	c.bufs.Put(bufp)
	c.rememberReference(b, r)
	return r
}
