package qa

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
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
//
// Every row must be inflated and unfiltered (the Up, Average and Paeth
// filters predict from the row above), so the cost is in doing each pass
// once and cheaply: klauspost's inflater over one contiguous stream, the
// Adler-32 of each row while it is in cache, the filters a pixel (or 8
// bytes) at a time, luma only for the rows and columns the plane covers,
// and every buffer pooled.
func pngWork(b []byte, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
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
	ws := pngWorkspaces.Get().(*pngWorkspace)
	defer ws.put()
	z := ws.stream(idat)
	// The zlib wrapper (RFC 1950) as compress/zlib reads it: deflate, no
	// preset dictionary, a valid header check; Adler-32 of the data last.
	if len(z) < 2+4 || z[0]&0x0f != 8 || z[0]>>4 > 7 || z[1]&0x20 != 0 || (uint16(z[0])<<8|uint16(z[1]))%31 != 0 {
		return gray{}, 0, 0, false
	}
	ws.src.Reset(z[2:])
	if ws.inflate == nil {
		ws.inflate = flate.NewReader(&ws.src)
	} else if err := ws.inflate.(flate.Resetter).Reset(&ws.src, nil); err != nil {
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
	cr, pr := ws.rows(rowSize)
	lum := grow(&ws.luma, ow*f)
	acc := grow32(&ws.acc, ow)
	div := newDivider(uint32(f * f))
	sum := uint32(1) // Adler-32
	for y := range h {
		if _, err := io.ReadFull(ws.inflate, cr); err != nil {
			return gray{}, 0, 0, false
		}
		sum = adler32Update(sum, cr)
		if !unfilter(cr[0], cr[1:], pr[1:], bpp) {
			return gray{}, 0, 0, false
		}
		cr, pr = pr, cr
		oy := y / f
		if oy >= oh {
			continue // rows past the plane's last block are read, not measured
		}
		row := pr[1:] // the row just unfiltered
		first := y%f == 0
		switch {
		case f == 1:
			lumaOf(row, bpp, g.pix[oy*ow:(oy+1)*ow])
			continue
		case f == 2:
			// A 1024 px output's plane: each pair of rows is measured
			// once both are unfiltered (the one above is still in cr).
			if !first {
				lumaBlocks2(cr[1:], row, bpp, g.pix[oy*ow:(oy+1)*ow])
			}
			continue
		default:
			lumaOf(row, bpp, lum) // as far as the plane reaches
			for ox := range acc {
				var s uint32
				for _, v := range lum[ox*f : (ox+1)*f] {
					s += uint32(v)
				}
				if first {
					acc[ox] = s
				} else {
					acc[ox] += s
				}
			}
		}
		if y%f == f-1 {
			dst := g.pix[oy*ow : (oy+1)*ow]
			for ox, a := range acc[:len(dst)] {
				dst[ox] = uint8(div.div(a + div.d/2))
			}
		}
	}
	// Nothing may follow the pixels in the deflate stream (image/png: too
	// much pixel data), and after it only the Adler-32 of all the rows
	// (image/png reads the stream to its end, which checks it).
	var one [1]byte
	if k, err := io.ReadFull(ws.inflate, one[:]); k != 0 || err != io.EOF {
		return gray{}, 0, 0, false
	}
	var tail [4]byte
	if k, _ := io.ReadFull(&ws.src, tail[:]); k != 4 || ws.src.Len() != 0 || binary.BigEndian.Uint32(tail[:]) != sum {
		return gray{}, 0, 0, false
	}
	return g, w, h, true
}

// unfilter undoes row filter ft on cdat given the previous row pdat (zero
// for the first row), as image/png does; false for an unknown filter.
func unfilter(ft byte, cdat, pdat []byte, bpp int) bool {
	switch ft {
	case 0:
	case 1:
		filterSub(cdat, bpp)
	case 2:
		filterUp(cdat, pdat)
	case 3:
		filterAverage(cdat, pdat, bpp)
	case 4:
		filterPaeth(cdat, pdat, bpp)
	default:
		return false
	}
	return true
}

// filterSub adds to each byte the one bpp to its left. RGB and RGBA rows
// keep the pixel to the left in registers: read back from the row, each
// byte would wait for the store of the one before it.
func filterSub(cdat []byte, bpp int) {
	switch {
	case bpp == 3 && len(cdat) >= 3:
		a0, a1, a2 := cdat[0], cdat[1], cdat[2]
		for i := 3; i+3 <= len(cdat); i += 3 {
			cd := cdat[i : i+3 : i+3]
			a0, a1, a2 = a0+cd[0], a1+cd[1], a2+cd[2]
			cd[0], cd[1], cd[2] = a0, a1, a2
		}
	case bpp == 4 && len(cdat) >= 4:
		a0, a1, a2, a3 := cdat[0], cdat[1], cdat[2], cdat[3]
		for i := 4; i+4 <= len(cdat); i += 4 {
			cd := cdat[i : i+4 : i+4]
			a0, a1, a2, a3 = a0+cd[0], a1+cd[1], a2+cd[2], a3+cd[3]
			cd[0], cd[1], cd[2], cd[3] = a0, a1, a2, a3
		}
	default:
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += cdat[i-bpp]
		}
	}
}

// filterAverage adds the mean of the bytes to the left and above; RGB and
// RGBA rows keep the pixel to the left in registers, as filterSub.
func filterAverage(cdat, pdat []byte, bpp int) {
	pdat = pdat[:len(cdat)]
	for i := range min(bpp, len(cdat)) {
		cdat[i] += pdat[i] / 2
	}
	switch {
	case bpp == 3 && len(cdat) >= 3:
		a0, a1, a2 := uint(cdat[0]), uint(cdat[1]), uint(cdat[2])
		for i := 3; i+3 <= len(cdat); i += 3 {
			cd, pd := cdat[i:i+3:i+3], pdat[i:i+3:i+3]
			a0 = ((a0+uint(pd[0]))/2 + uint(cd[0])) & 0xff
			a1 = ((a1+uint(pd[1]))/2 + uint(cd[1])) & 0xff
			a2 = ((a2+uint(pd[2]))/2 + uint(cd[2])) & 0xff
			cd[0], cd[1], cd[2] = uint8(a0), uint8(a1), uint8(a2)
		}
	case bpp == 4 && len(cdat) >= 4:
		a0, a1, a2, a3 := uint(cdat[0]), uint(cdat[1]), uint(cdat[2]), uint(cdat[3])
		for i := 4; i+4 <= len(cdat); i += 4 {
			cd, pd := cdat[i:i+4:i+4], pdat[i:i+4:i+4]
			a0 = ((a0+uint(pd[0]))/2 + uint(cd[0])) & 0xff
			a1 = ((a1+uint(pd[1]))/2 + uint(cd[1])) & 0xff
			a2 = ((a2+uint(pd[2]))/2 + uint(cd[2])) & 0xff
			a3 = ((a3+uint(pd[3]))/2 + uint(cd[3])) & 0xff
			cd[0], cd[1], cd[2], cd[3] = uint8(a0), uint8(a1), uint8(a2), uint8(a3)
		}
	default:
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
		}
	}
}

// filterUp adds the row above, 8 bytes at a time, four words a turn.
func filterUp(cdat, pdat []byte) {
	pdat = pdat[:len(cdat)]
	i := 0
	for ; i+32 <= len(cdat); i += 32 {
		c, p := cdat[i:i+32:i+32], pdat[i:i+32:i+32]
		a0 := addBytes(binary.LittleEndian.Uint64(c[0:]), binary.LittleEndian.Uint64(p[0:]))
		a1 := addBytes(binary.LittleEndian.Uint64(c[8:]), binary.LittleEndian.Uint64(p[8:]))
		a2 := addBytes(binary.LittleEndian.Uint64(c[16:]), binary.LittleEndian.Uint64(p[16:]))
		a3 := addBytes(binary.LittleEndian.Uint64(c[24:]), binary.LittleEndian.Uint64(p[24:]))
		binary.LittleEndian.PutUint64(c[0:], a0)
		binary.LittleEndian.PutUint64(c[8:], a1)
		binary.LittleEndian.PutUint64(c[16:], a2)
		binary.LittleEndian.PutUint64(c[24:], a3)
	}
	for ; i < len(cdat); i++ {
		cdat[i] += pdat[i]
	}
}

// addBytes adds the eight bytes of a and b lane by lane, modulo 256.
func addBytes(a, b uint64) uint64 {
	const lo, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	return ((a & lo) + (b & lo)) ^ ((a ^ b) & hi)
}

// divider divides by d, a block's pixel count, by a multiplication: the
// plane's rows would otherwise pay a hardware division per pixel (f is not
// a constant). Exact for d < 1<<16 and x < 1<<24 (x <= 255*d + d/2).
type divider struct {
	d uint32
	m uint64
}

func newDivider(d uint32) divider { return divider{d: d, m: 1<<40/uint64(d) + 1} }

func (v divider) div(x uint32) uint32 {
	if v.d >= 1<<16 {
		return x / v.d
	}
	return uint32(uint64(x) * v.m >> 40)
}

// pngWorkspace is what one pngWork call needs besides the plane, pooled:
// the inflater (its 32 kB window and Huffman tables), the IDAT data made
// one stream (klauspost's inflater reads a *bytes.Reader fastest), two
// rows, one row of luma and the block sums.
type pngWorkspace struct {
	src     bytes.Reader
	inflate io.ReadCloser
	joined  []byte
	row     []byte
	luma    []uint8
	acc     []uint32
}

var pngWorkspaces = sync.Pool{New: func() any { return new(pngWorkspace) }}

// maxPooled bounds what a pooled workspace keeps of a large image: beyond
// it the buffers are dropped, not held for the next one.
const maxPooled = 16 << 20

func (ws *pngWorkspace) put() {
	ws.src.Reset(nil)
	if cap(ws.joined) > maxPooled {
		ws.joined = nil
	}
	if cap(ws.row) > maxPooled {
		ws.row = nil
	}
	if cap(ws.luma) > maxPooled || cap(ws.acc) > maxPooled/4 {
		ws.luma, ws.acc = nil, nil
	}
	pngWorkspaces.Put(ws)
}

// stream returns the IDAT chunks' data as one slice: the chunk itself
// when there is one, else joined into the workspace's buffer.
func (ws *pngWorkspace) stream(idat [][]byte) []byte {
	if len(idat) == 1 {
		return idat[0]
	}
	n := 0
	for _, c := range idat {
		n += len(c)
	}
	j := ws.joined[:0]
	if cap(j) < n {
		j = make([]byte, 0, n)
	}
	for _, c := range idat {
		j = append(j, c...)
	}
	ws.joined = j
	return j
}

// rows returns two zeroed rows of n bytes (the row above the first is zero).
func (ws *pngWorkspace) rows(n int) (cur, prev []byte) {
	r := grow(&ws.row, 2*n)
	clear(r)
	return r[:n], r[n:]
}

func grow(b *[]uint8, n int) []uint8 {
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	return (*b)[:n]
}

func grow32(b *[]uint32, n int) []uint32 {
	if cap(*b) < n {
		*b = make([]uint32, n)
	}
	return (*b)[:n]
}

// lumaTable holds luma's three products, the rounding folded into red's:
// luma(r, g, b) = (t[0][r] + t[1][g] + t[2][b]) >> 16, by three loads
// where luma takes three multiplications (the fewer ports of the two).
var lumaTable = func() (t [3][256]uint32) {
	for v := range uint32(256) {
		t[0][v] = 19595*v + 1<<15
		t[1][v] = 38470 * v
		t[2][v] = 7471 * v
	}
	return t
}()

// lumaOf writes the luma of each pixel of row into dst (len(dst) pixels),
// as lumaRow does for the image image/png decodes: grey is the value itself,
// grey+alpha's luma(v, v, v) is v, RGB and RGBA ignore alpha.
func lumaOf(row []uint8, bpp int, dst []uint8) {
	tr, tg, tb := &lumaTable[0], &lumaTable[1], &lumaTable[2]
	switch bpp {
	case 1:
		copy(dst, row)
	case 2:
		for x := range dst {
			dst[x] = row[2*x]
		}
	case 3:
		row = row[:3*len(dst)]
		for x := range dst {
			q := row[3*x : 3*x+3 : 3*x+3]
			dst[x] = uint8((tr[q[0]] + tg[q[1]] + tb[q[2]]) >> 16)
		}
	case 4:
		row = row[:4*len(dst)]
		for x := range dst {
			q := row[4*x : 4*x+4 : 4*x+4]
			dst[x] = uint8((tr[q[0]] + tg[q[1]] + tb[q[2]]) >> 16)
		}
	}
}

// lumaBlocks2 writes into dst the mean luma of each 2x2 block of rows r0
// and r1 (as toWork rounds it): the plane at half size, which a 1024 px
// output has, from both rows at once, without a row of sums in between.
func lumaBlocks2(r0, r1 []uint8, bpp int, dst []uint8) {
	tr, tg, tb := &lumaTable[0], &lumaTable[1], &lumaTable[2]
	switch bpp {
	case 3:
		r0, r1 = r0[:6*len(dst)], r1[:6*len(dst)]
		for ox := range dst {
			p := r0[6*ox : 6*ox+6 : 6*ox+6]
			q := r1[6*ox : 6*ox+6 : 6*ox+6]
			s := (tr[p[0]]+tg[p[1]]+tb[p[2]])>>16 + (tr[p[3]]+tg[p[4]]+tb[p[5]])>>16 +
				(tr[q[0]]+tg[q[1]]+tb[q[2]])>>16 + (tr[q[3]]+tg[q[4]]+tb[q[5]])>>16
			dst[ox] = uint8((s + 2) >> 2)
		}
	case 4:
		r0, r1 = r0[:8*len(dst)], r1[:8*len(dst)]
		for ox := range dst {
			p := r0[8*ox : 8*ox+8 : 8*ox+8]
			q := r1[8*ox : 8*ox+8 : 8*ox+8]
			s := (tr[p[0]]+tg[p[1]]+tb[p[2]])>>16 + (tr[p[4]]+tg[p[5]]+tb[p[6]])>>16 +
				(tr[q[0]]+tg[q[1]]+tb[q[2]])>>16 + (tr[q[4]]+tg[q[5]]+tb[q[6]])>>16
			dst[ox] = uint8((s + 2) >> 2)
		}
	default: // grey (+alpha): the luma is the grey value
		r0, r1 = r0[:2*bpp*len(dst)], r1[:2*bpp*len(dst)]
		for ox := range dst {
			i := 2 * bpp * ox
			s := uint32(r0[i]) + uint32(r0[i+bpp]) + uint32(r1[i]) + uint32(r1[i+bpp])
			dst[ox] = uint8((s + 2) >> 2)
		}
	}
}

// filterPaeth undoes the Paeth filter on cdat, as image/png's does (the
// PNG specification's predictor). RGB and RGBA rows run their channels'
// chains side by side, which a loop per channel (image/png's) serialises.
func filterPaeth(cdat, pdat []byte, bpp int) {
	if len(cdat) < bpp || (bpp != 3 && bpp != 4) {
		filterPaethChannels(cdat, pdat, bpp)
		return
	}
	// The first pixel's predictor is the one above (a = c = 0). After it,
	// a and c (the pixel above left, the last pixel's b) stay in
	// registers, so that each channel loads only b and the filtered byte.
	for i := range bpp {
		cdat[i] += pdat[i]
	}
	pdat = pdat[:len(cdat)]
	switch bpp {
	case 3:
		a0, a1, a2 := int(cdat[0]), int(cdat[1]), int(cdat[2])
		c0, c1, c2 := int(pdat[0]), int(pdat[1]), int(pdat[2])
		for i := 3; i+3 <= len(cdat); i += 3 {
			cd, pd := cdat[i:i+3:i+3], pdat[i:i+3:i+3]
			b0, b1, b2 := int(pd[0]), int(pd[1]), int(pd[2])
			a0 = (paeth(a0, b0, c0) + int(cd[0])) & 0xff
			a1 = (paeth(a1, b1, c1) + int(cd[1])) & 0xff
			a2 = (paeth(a2, b2, c2) + int(cd[2])) & 0xff
			cd[0], cd[1], cd[2] = uint8(a0), uint8(a1), uint8(a2)
			c0, c1, c2 = b0, b1, b2
		}
	case 4:
		a0, a1, a2, a3 := int(cdat[0]), int(cdat[1]), int(cdat[2]), int(cdat[3])
		c0, c1, c2, c3 := int(pdat[0]), int(pdat[1]), int(pdat[2]), int(pdat[3])
		for i := 4; i+4 <= len(cdat); i += 4 {
			cd, pd := cdat[i:i+4:i+4], pdat[i:i+4:i+4]
			b0, b1, b2, b3 := int(pd[0]), int(pd[1]), int(pd[2]), int(pd[3])
			a0 = (paeth(a0, b0, c0) + int(cd[0])) & 0xff
			a1 = (paeth(a1, b1, c1) + int(cd[1])) & 0xff
			a2 = (paeth(a2, b2, c2) + int(cd[2])) & 0xff
			a3 = (paeth(a3, b3, c3) + int(cd[3])) & 0xff
			cd[0], cd[1], cd[2], cd[3] = uint8(a0), uint8(a1), uint8(a2), uint8(a3)
			c0, c1, c2, c3 = b0, b1, b2, b3
		}
	}
}

// filterPaethChannels undoes the Paeth filter one channel at a time, for
// grey and grey+alpha rows.
func filterPaethChannels(cdat, pdat []byte, bpp int) {
	for i := range bpp {
		var a, c int
		for j := i; j < len(cdat); j += bpp {
			b := int(pdat[j])
			a = (paeth(a, b, c) + int(cdat[j])) & 0xff
			cdat[j] = uint8(a)
			c = b
		}
	}
}

// paeth is the Paeth predictor of a (left), b (above) and c (above left)
// in a form equivalent to the specification's (TestPaethMatchesTheSpec
// checks all 2^24 inputs) whose chain from a is short and branch-free
// (the form stb_image uses): every row's pixels wait on their left
// neighbour, so this latency is the filter's speed.
func paeth(a, b, c int) int {
	thresh := 3*c - (a + b)
	lo, hi := min(a, b), max(a, b)
	t := c
	if hi <= thresh {
		t = lo
	}
	if thresh <= lo {
		t = hi
	}
	return t
}

func abs(x int) int {
	m := x >> 63
	return (x ^ m) - m
}

// pngChunks walks b's chunks, checking each CRC and the order image/png
// requires (IHDR first, IDATs consecutive, IEND last), and returns IHDR's
// data and the IDAT chunks' data.
func pngChunks(b []byte) (ihdr []byte, idat [][]byte, ok bool) {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(b, []byte(sig)) {
		return nil, nil, false
	}
	p := b[len(sig):]
	idatDone := false
	for len(p) >= 12 {
		n := binary.BigEndian.Uint32(p[:4])
		if uint64(n) > uint64(len(p)-12) {
			return nil, nil, false
		}
		typ, data := string(p[4:8]), p[8:8+n]
		if crc32.ChecksumIEEE(p[4:8+n]) != binary.BigEndian.Uint32(p[8+n:12+n]) {
			return nil, nil, false
		}
		p = p[12+n:]
		switch {
		case ihdr == nil && typ != "IHDR":
			return nil, nil, false
		case typ == "IHDR":
			if ihdr != nil || len(data) != 13 {
				return nil, nil, false
			}
			ihdr = data
		case typ == "IDAT":
			if idatDone {
				return nil, nil, false
			}
			idat = append(idat, data)
		case typ == "IEND":
			return ihdr, idat, len(idat) > 0 && len(p) == 0
		default:
			if len(idat) > 0 {
				idatDone = true
			}
		}
	}
	return nil, nil, false
}
