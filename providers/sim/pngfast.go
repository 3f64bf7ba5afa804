package sim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"sync"

	"github.com/klauspost/compress/flate"
)

// encodePNG writes an opaque canvas as an 8-bit RGB PNG with the Sub filter
// on every row (Up, all zeros, on a row that repeats the one above: the
// simulator's upscaled renders) and zlib at BestSpeed: deflate from
// github.com/klauspost/compress (already in the module graph through
// kafka-go), whose level 1 deflates these rows faster than compress/flate
// for about the same size (BenchmarkEncodePNG), and the zlib wrapper written
// here so that the Adler-32 of a zero row costs nothing (adler.zeros). image/png picks a filter per row by
// trying all five (its largest cost on the serving path, with the Paeth
// rows it makes the QA decoder undo); one fixed filter keeps the file a
// plain, valid PNG at a fraction of the CPU. A canvas with any transparent
// pixel goes through image/png.
func encodePNG(c *canvas) []byte {
	if !opaque(c.pix) {
		return encodeStd(c.flat())
	}
	w, h := c.size()
	f := max(c.rep, 1)
	z := zpool.Get().(*zstate)
	defer zpool.Put(z)
	z.buf.Reset()
	z.buf.Write([]byte{0x78, 0x01}) // zlib header: deflate, 32 KiB window, fastest
	z.w.Reset(&z.buf)
	sum := adler{s1: 1}
	rowLen := 1 + 3*w
	if cap(z.row) < rowLen {
		z.row = make([]byte, rowLen)
	}
	row := z.row[:rowLen]
	clear(row) // the repeats' bytes stay zero; only each drawn pixel's are written
	if cap(z.zero) < rowLen {
		z.zero = make([]byte, rowLen)
	}
	up := z.zero[:rowLen]
	up[0] = 2 // Up: each byte minus the byte above; a repeated row is all zeros
	var prev []uint8
	for y := range h {
		src := c.pix[4*c.w*(y/f) : 4*c.w*(y/f+1)]
		if (f > 1 && y%f != 0) || (f == 1 && prev != nil && bytes.Equal(src, prev)) {
			z.w.Write(up)
			sum.write(up[:1])
			sum.zeros(rowLen - 1)
			continue
		}
		prev = src
		subRow(row, src, f, &sum)
		z.w.Write(row) // writes to a bytes.Buffer cannot fail
	}
	z.w.Close()
	z.buf.Write(binary.BigEndian.AppendUint32(nil, sum.s2<<16|sum.s1))

	out := make([]byte, 0, 8+25+12+z.buf.Len()+12)
	out = append(out, "\x89PNG\r\n\x1a\n"...)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 2 // 8 bits per sample, truecolour; default compression, filter, no interlace
	out = appendChunk(out, "IHDR", ihdr[:])
	out = appendChunk(out, "IDAT", z.buf.Bytes())
	return appendChunk(out, "IEND", nil)
}

func appendChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}

func opaque(pix []uint8) bool {
	for i := 3; i < len(pix); i += 4 {
		if pix[i] != 255 {
			return false
		}
	}
	return true
}

type zstate struct {
	buf  bytes.Buffer
	w    *flate.Writer
	row  []byte
	zero []byte // an Up-filtered row of zeros
}

var zpool = sync.Pool{New: func() any {
	z := &zstate{}
	z.w, _ = flate.NewWriter(&z.buf, flate.BestSpeed) // BestSpeed is a valid level
	return z
}}

// subRow fills row (filter byte, then 3 bytes a pixel, its repeats already
// zero) with the Sub filter of src's pixels each repeated f times: each
// byte minus the same channel of the pixel to its left, so a repeat is
// zeros. The Adler-32 of the row is folded into sum on the way (uint64
// sums cannot overflow within a row).
func subRow(row, src []uint8, f int, sum *adler) {
	row[0] = 1
	s1, s2 := uint64(sum.s1)+1, uint64(sum.s2)
	s2 += s1
	var pr, pg, pb byte
	for o, x := 1, 0; o < len(row); o, x = o+3*f, x+4 {
		p := src[x : x+3]
		dr, dg, db := p[0]-pr, p[1]-pg, p[2]-pb
		row[o], row[o+1], row[o+2] = dr, dg, db
		s1 += uint64(dr)
		s2 += s1
		s1 += uint64(dg)
		s2 += s1
		s1 += uint64(db)
		// each zero of the repeats adds s1; the last pixel may be cut
		// short by the picture's edge
		zeros := uint64(min(3*f, len(row)-o) - 3)
		s2 += s1 + zeros*s1
		pr, pg, pb = p[0], p[1], p[2]
	}
	sum.s1, sum.s2 = uint32(s1%adlerMod), uint32(s2%adlerMod)
}

// adler is a running Adler-32 (RFC 1950), the zlib stream's checksum.
type adler struct{ s1, s2 uint32 }

const (
	adlerMod  = 65521
	adlerNMax = 5552 // bytes before s2 could overflow 32 bits
)

func (a *adler) write(p []byte) {
	s1, s2 := a.s1, a.s2
	for len(p) > 0 {
		q := p[:min(len(p), adlerNMax)]
		p = p[len(q):]
		for len(q) >= 4 {
			s1 += uint32(q[0])
			s2 += s1
			s1 += uint32(q[1])
			s2 += s1
			s1 += uint32(q[2])
			s2 += s1
			s1 += uint32(q[3])
			s2 += s1
			q = q[4:]
		}
		for _, x := range q {
			s1 += uint32(x)
			s2 += s1
		}
		s1 %= adlerMod
		s2 %= adlerMod
	}
	a.s1, a.s2 = s1, s2
}

// zeros folds in n zero bytes: s1 stays, s2 grows by n·s1.
func (a *adler) zeros(n int) {
	a.s2 = uint32((uint64(a.s2) + uint64(n)%adlerMod*uint64(a.s1)) % adlerMod)
}

// encodeStd is image/png at BestSpeed, for canvases with transparency.
func encodeStd(c *canvas) []byte {
	var buf bytes.Buffer
	buf.Grow(c.w * c.h)
	img := &image.NRGBA{Pix: c.pix, Stride: 4 * c.w, Rect: image.Rect(0, 0, c.w, c.h)}
	if err := encoder.Encode(&buf, img); err != nil {
		panic("sim: png encode to memory: " + err.Error()) // cannot fail for an in-memory NRGBA
	}
	return buf.Bytes()
}
