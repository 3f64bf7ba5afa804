package sim

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/adler32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"testing"
)

// The fast encoder's output decodes (with image/png) to exactly the canvas's
// pixels, for renders, edits and odd sizes; a canvas with transparency still
// round-trips (through image/png).
func TestEncodePNGRoundTrips(t *testing.T) {
	cases := []*canvas{
		draw(`a sign that says "OPEN" in a red forest`, 257, 131, 1, 7),
		draw("a blurred grey thing", 64, 200, 0.1, 3),
		draw("x", 1, 1, 0.5, 1),
		renderCanvas(nil, "an upscaled render with repeated rows", 1024, 1024, 0.9, 2),
		renderCanvas(nil, "upscaled by three, rows repeated unevenly", 1536, 1024, 0.3, 5),
		renderCanvas(nil, "repeats cut short at the right and bottom edges", 1030, 700, 0.6, 6),
	}
	tr := newCanvas(5, 4)
	tr.pix[3] = 255
	tr.pix[4], tr.pix[7] = 10, 128
	cases = append(cases, tr)
	for _, c := range cases {
		b := encode(c)
		if err := zlibChecksumOK(b); err != nil {
			t.Fatalf("%dx%d: %v", c.w, c.h, err)
		}
		c = c.flat() // the picture a repeated canvas stands for
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%dx%d: decode: %v", c.w, c.h, err)
		}
		if got := img.Bounds(); got != image.Rect(0, 0, c.w, c.h) {
			t.Fatalf("bounds %v, want %dx%d", got, c.w, c.h)
		}
		for y := range c.h {
			for x := range c.w {
				i := 4 * (y*c.w + x)
				want := [4]uint8{c.pix[i], c.pix[i+1], c.pix[i+2], c.pix[i+3]}
				n := image.NewNRGBA(image.Rect(0, 0, 1, 1))
				n.Set(0, 0, img.At(x, y))
				if got := [4]uint8(n.Pix); got != want {
					t.Fatalf("%dx%d pixel (%d,%d) = %v, want %v", c.w, c.h, x, y, got, want)
				}
			}
		}
	}
}

// BenchmarkEncodePNG: the fixed-filter encoder against image/png (BestSpeed)
// and against the same filtered rows deflated by compress/zlib (BestSpeed),
// on the same 1024 px render (drawn at DetailSide and scaled up, as served),
// in the same run: encoding alone, and encoding plus an image/png decode.
func BenchmarkEncodePNG(b *testing.B) {
	c := renderCanvas(nil, `a red fox in a snowy forest, "HELLO"`, 1024, 1024, 1, 1)
	flat := c.flat() // the baselines encode the picture itself
	for _, enc := range []struct {
		name string
		f    func(*canvas) []byte
	}{
		{"baseline-image-png", func(*canvas) []byte { return encodeStd(flat) }},
		{"baseline-std-zlib", func(*canvas) []byte { return encodeStdZlib(flat) }},
		{"fixed-sub-filter", encodePNG},
	} {
		b.Run("encode/"+enc.name, func(b *testing.B) {
			for b.Loop() {
				b.SetBytes(int64(len(enc.f(c))))
			}
		})
		b.Run("encode+decode/"+enc.name, func(b *testing.B) {
			for b.Loop() {
				bs := enc.f(c)
				if _, err := png.Decode(bytes.NewReader(bs)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// encodeStdZlib is encodePNG's filtering of a plain canvas with
// compress/zlib at BestSpeed: the baseline of the deflate and checksum it
// uses.
func encodeStdZlib(c *canvas) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	row := make([]byte, 1+3*c.w)
	up := make([]byte, 1+3*c.w)
	up[0] = 2
	for y := range c.h {
		src := c.pix[4*c.w*y : 4*c.w*(y+1)]
		if y > 0 && bytes.Equal(src, c.pix[4*c.w*(y-1):4*c.w*y]) {
			w.Write(up)
			continue
		}
		row[0] = 1
		var pr, pg, pb byte
		for x := range c.w {
			r, g, bl := src[4*x], src[4*x+1], src[4*x+2]
			row[1+3*x], row[2+3*x], row[3+3*x] = r-pr, g-pg, bl-pb
			pr, pg, pb = r, g, bl
		}
		w.Write(row)
	}
	w.Close()
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(c.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(c.h))
	ihdr[8], ihdr[9] = 8, 2
	out := appendChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr[:])
	out = appendChunk(out, "IDAT", buf.Bytes())
	return appendChunk(out, "IEND", nil)
}

// adler matches hash/adler32 over data with long zero runs folded by zeros.
func TestAdlerMatchesTheStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var all []byte
	a := adler{s1: 1}
	for i := range 200 {
		if i%3 == 0 {
			n := r.IntN(20000)
			all = append(all, make([]byte, n)...)
			a.zeros(n)
			continue
		}
		p := make([]byte, r.IntN(12000))
		for j := range p {
			p[j] = byte(r.UintN(256))
		}
		all = append(all, p...)
		a.write(p)
	}
	if got, want := a.s2<<16|a.s1, adler32.Checksum(all); got != want {
		t.Errorf("adler over %d bytes = %08x, want %08x", len(all), got, want)
	}
}

// zlibChecksumOK reads the zlib stream of a PNG's IDAT chunks to its end,
// where compress/zlib checks the Adler-32.
func zlibChecksumOK(png []byte) error {
	var idat []byte
	for p := png[8:]; len(p) >= 12; {
		n := int(binary.BigEndian.Uint32(p))
		if string(p[4:8]) == "IDAT" {
			idat = append(idat, p[8:8+n]...)
		}
		p = p[12+n:]
	}
	r, err := zlib.NewReader(bytes.NewReader(idat))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r)
	return err
}
