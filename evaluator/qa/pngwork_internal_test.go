package qa

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/lab/labtest"
)

// testImage fills a w×h image of the given model with content that makes
// the PNG encoder pick every row filter: noise, flat runs and gradients.
func testImage(model string, w, h int, seed uint64) image.Image {
	r := rand.New(rand.NewPCG(seed, 7))
	var img interface {
		image.Image
		Set(x, y int, c color.Color)
	}
	switch model {
	case "gray":
		img = image.NewGray(image.Rect(0, 0, w, h))
	case "rgba": // opaque: encoded as RGB
		img = image.NewRGBA(image.Rect(0, 0, w, h))
	case "nrgba": // translucent: encoded as RGBA
		img = image.NewNRGBA(image.Rect(0, 0, w, h))
	case "gray16": // 16-bit: not pngWork's
		img = image.NewGray16(image.Rect(0, 0, w, h))
	case "paletted":
		img = image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 128}})
	}
	for y := range h {
		band := (y / 7) % 3
		for x := range w {
			var c color.NRGBA
			switch band {
			case 0:
				c = color.NRGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32())}
			case 1:
				c = color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 200}
			default:
				c = color.NRGBA{40, 90, uint8(x / 16 * 16), 255}
			}
			if model == "rgba" {
				c.A = 255
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawPNG writes an 8-bit, non-interlaced PNG of colour type ctype from
// unfiltered rows, each row given filter filters[y%len(filters)]: for the
// colour type Go's encoder never writes (grey+alpha) and every filter on
// purpose.
func rawPNG(w, h int, ctype byte, bpp int, pix []byte, filters []byte) []byte {
	var raw bytes.Buffer
	prev := make([]byte, w*bpp)
	for y := range h {
		row := pix[y*w*bpp : (y+1)*w*bpp]
		ft := filters[y%len(filters)]
		raw.WriteByte(ft)
		for i, v := range row {
			var a, b, c byte
			if i >= bpp {
				a, c = row[i-bpp], prev[i-bpp]
			}
			b = prev[i]
			switch ft {
			case 1:
				v -= a
			case 2:
				v -= b
			case 3:
				v -= byte((int(a) + int(b)) / 2)
			case 4:
				pa, pb, pc := abs(int(b)-int(c)), abs(int(a)-int(c)), abs(int(a)+int(b)-2*int(c))
				switch {
				case pa <= pb && pa <= pc:
					v -= a
				case pb <= pc:
					v -= b
				default:
					v -= c
				}
			}
			raw.WriteByte(v)
		}
		prev = row
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		td := append([]byte(typ), data...)
		out.Write(td)
		binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(td))
		out.Write(n[:])
	}
	hdr := make([]byte, 13)
	binary.BigEndian.PutUint32(hdr[0:], uint32(w))
	binary.BigEndian.PutUint32(hdr[4:], uint32(h))
	hdr[8], hdr[9] = 8, ctype
	chunk("IHDR", hdr)
	zb := z.Bytes()
	half := len(zb) / 2 // two IDAT chunks, split mid-stream
	chunk("IDAT", zb[:half])
	chunk("IDAT", zb[half:])
	chunk("IEND", nil)
	return out.Bytes()
}

// TestPNGWorkMatchesDecode: pngWork's plane is, byte for byte, toWork's of
// the image png.Decode returns, at every work side, and Check's result is
// CheckImage's on the decoded image.
func TestPNGWorkMatchesDecode(t *testing.T) {
	labtest.Heavy(t) // decodes hundreds of images: minutes under -race, and sequential
	type tc struct {
		name string
		b    []byte
	}
	var cases []tc
	for _, model := range []string{"gray", "rgba", "nrgba"} {
		for _, sz := range [][2]int{{1024, 1024}, {700, 300}, {513, 5}, {1, 2000}, {37, 23}, {1500, 1000}} {
			cases = append(cases, tc{fmt.Sprintf("%s-%dx%d", model, sz[0], sz[1]), encodePNG(t, testImage(model, sz[0], sz[1], uint64(sz[0])))})
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, ct := range []struct {
		ctype byte
		bpp   int
	}{{0, 1}, {2, 3}, {4, 2}, {6, 4}} {
		w, h := 301, 257
		pix := make([]byte, w*h*ct.bpp)
		for i := range pix {
			pix[i] = byte(r.Uint32() >> (i % 5)) // some runs, some noise
		}
		cases = append(cases, tc{fmt.Sprintf("raw-ctype%d-all-filters", ct.ctype), rawPNG(w, h, ct.ctype, ct.bpp, pix, []byte{0, 1, 2, 3, 4})})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := png.Decode(bytes.NewReader(c.b))
			if err != nil {
				t.Fatal(err)
			}
			// 150 halves the raw images (odd width and height, every
			// colour type, the 2x2 path); 512 halves the 1024 px ones
			for _, side := range []int{512, 150, 100, 7, 0} {
				want := toWork(img, side, nil)
				got, w, h, ok := pngWork(c.b, side, nil)
				if !ok || w != img.Bounds().Dx() || h != img.Bounds().Dy() || !reflect.DeepEqual(got, want) {
					t.Fatalf("side %d: pngWork = %dx%d plane %dx%d ok %v; want toWork's %dx%d plane of the decoded image", side, w, h, got.w, got.h, ok, want.w, want.h)
				}
			}
			ch := New(Thresholds{})
			spec := Spec{Width: img.Bounds().Dx(), Height: img.Bounds().Dy(), Format: "png"}
			if got, want := ch.Check(c.b, spec), ch.CheckImage(img, FormatPNG, spec); !reflect.DeepEqual(got, want) {
				t.Errorf("Check = %+v\nCheckImage(png.Decode) = %+v", got, want)
			}
		})
	}
}

// TestPNGWorkDeclines: PNGs pngWork does not cover, or finds damaged, go
// back to image/png (ok false), so Check reports what it always did.
func TestPNGWorkDeclines(t *testing.T) {
	good := encodePNG(t, testImage("rgba", 64, 64, 1))
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	cases := map[string][]byte{
		"16-bit":             encodePNG(t, testImage("gray16", 64, 64, 1)),
		"paletted":           encodePNG(t, testImage("paletted", 64, 64, 1)),
		"truncated":          good[:len(good)-30],
		"no IEND":            good[:len(good)-12],
		"bad CRC":            flip(len(good) - 20),
		"trailing bytes":     append(bytes.Clone(good), 0),
		"bad IDAT data":      flip(60),
		"not a PNG":          []byte("GIF89a"),
		"no IDAT":            good[:33],
		"bad filter (ctype)": rawPNG(4, 4, 2, 3, make([]byte, 48), []byte{5}),
		// damage the chunk CRCs do not see: the zlib stream's own
		"bad Adler-32":          rezlib(good, func(z []byte) []byte { z[len(z)-1] ^= 1; return z }),
		"data after the stream": rezlib(good, func(z []byte) []byte { return append(z, 0) }),
		"preset dictionary": rezlib(good, func(z []byte) []byte {
			z[1] = z[1]&0xc0 | 0x20 // FDICT set, FCHECK made valid again
			z[1] += byte((31 - (uint16(z[0])<<8|uint16(z[1]))%31) % 31)
			return z
		}),
		"not deflate": rezlib(good, func(z []byte) []byte { z[0] = z[0]&0xf0 | 7; return z }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, ok := pngWork(b, 512, nil); ok {
				t.Fatal("pngWork accepted it")
			}
			ch := New(Thresholds{})
			got := ch.Check(b, Spec{})
			img, format, err := Decode(b, ch.t.MaxPixels)
			var want Result
			if err != nil {
				want = Result{Format: format, Checks: []events.QACheck{{Name: CheckFormat}}, Reason: "format: " + err.Error()}
			} else {
				want = ch.CheckImage(img, format, Spec{})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Check = %+v, want %+v", got, want)
			}
		})
	}
}

// rezlib returns b (a PNG) with its IDAT data replaced by edit of it,
// in one IDAT chunk with a valid CRC.
func rezlib(b []byte, edit func(z []byte) []byte) []byte {
	hdr, idat, ok := pngChunks(b)
	if !ok {
		panic("rezlib: not a PNG")
	}
	var z []byte
	for _, c := range idat {
		z = append(z, c...)
	}
	z = edit(z)
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		td := append([]byte(typ), data...)
		out.Write(td)
		binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(td))
		out.Write(n[:])
	}
	chunk("IHDR", hdr)
	chunk("IDAT", z)
	chunk("IEND", nil)
	return out.Bytes()
}

// TestAdler32: adler32Update is hash/adler32's checksum, at every length
// around its word and block boundaries, on the bytes that make its sums
// largest (all 0xff), and continued across calls (pngWork sums row by row).
func TestAdler32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 7, 8, 9, 15, 16, 17, 24, 3073, 8 << 16, 8<<16 + 5, 3 << 20}
	for range 50 {
		lengths = append(lengths, r.IntN(20000))
	}
	for _, n := range lengths {
		for _, fill := range []string{"random", "0xff"} {
			p := make([]byte, n)
			for i := range p {
				if fill == "random" {
					p[i] = byte(r.Uint32())
				} else {
					p[i] = 0xff
				}
			}
			if got, want := adler32Update(1, p), adler32.Checksum(p); got != want {
				t.Fatalf("%s %d bytes: %08x, want %08x", fill, n, got, want)
			}
			cut := n / 3
			if got, want := adler32Update(adler32Update(1, p[:cut]), p[cut:]), adler32.Checksum(p); got != want {
				t.Fatalf("%s %d bytes in two calls: %08x, want %08x", fill, n, got, want)
			}
		}
	}
}

// FuzzPNGWork: pngWork never panics on any bytes, and whatever it accepts
// image/png decodes to the same plane: it may decline (the caller then
// decodes with image/png), never disagree.
func FuzzPNGWork(f *testing.F) {
	for _, model := range []string{"gray", "rgba", "nrgba"} {
		f.Add(encodePNG(f, testImage(model, 21, 13, 1)))
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, ct := range []struct {
		ctype byte
		bpp   int
	}{{0, 1}, {2, 3}, {4, 2}, {6, 4}} {
		pix := make([]byte, 9*7*ct.bpp)
		for i := range pix {
			pix[i] = byte(r.Uint32())
		}
		f.Add(rawPNG(9, 7, ct.ctype, ct.bpp, pix, []byte{0, 1, 2, 3, 4}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := DecodeConfig(b, 1<<16); err != nil {
			return // Check never calls pngWork then
		}
		for _, side := range []int{512, 4} {
			g, w, h, ok := pngWork(b, side, nil)
			if !ok {
				continue
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("pngWork accepted what image/png refuses: %v", err)
			}
			if want := toWork(img, side, nil); w != img.Bounds().Dx() || h != img.Bounds().Dy() || !reflect.DeepEqual(g, want) {
				t.Fatalf("side %d: pngWork %dx%d, plane differs from image/png's", side, w, h)
			}
		}
	})
}

// TestPaethMatchesTheSpec: paeth is the PNG specification's predictor
// (section 9.4) for every a, b, c.
func TestPaethMatchesTheSpec(t *testing.T) {
	spec := func(a, b, c int) int {
		p := a + b - c
		pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
		switch {
		case pa <= pb && pa <= pc:
			return a
		case pb <= pc:
			return b
		}
		return c
	}
	for a := range 256 {
		for b := range 256 {
			for c := range 256 {
				if got, want := paeth(a, b, c), spec(a, b, c); got != want {
					t.Fatalf("paeth(%d, %d, %d) = %d, want %d", a, b, c, got, want)
				}
			}
		}
	}
}

// TestStatsMatchesTheDefinition: stats' one-pass sums are the standard
// deviation and Laplacian variance as defined, pixel by pixel, on planes
// of every shape (1 and 2 wide or high, where there is no interior).
func TestStatsMatchesTheDefinition(t *testing.T) {
	naive := func(g gray) (float64, float64) {
		var sum, sumSq float64
		for _, v := range g.pix {
			sum += float64(v)
			sumSq += float64(v) * float64(v)
		}
		n := float64(len(g.pix))
		std := sqrt(max(sumSq/n-(sum/n)*(sum/n), 0))
		if g.w < 3 || g.h < 3 {
			return std, 0
		}
		var lSum, lSq float64
		at := func(x, y int) float64 { return float64(g.pix[y*g.w+x]) }
		for y := 1; y < g.h-1; y++ {
			for x := 1; x < g.w-1; x++ {
				l := 4*at(x, y) - at(x-1, y) - at(x+1, y) - at(x, y-1) - at(x, y+1)
				lSum += l
				lSq += l * l
			}
		}
		m := float64((g.w - 2) * (g.h - 2))
		return std, max(lSq/m-(lSum/m)*(lSum/m), 0)
	}
	r := rand.New(rand.NewPCG(8, 9))
	for _, sz := range [][2]int{{1, 1}, {1, 9}, {9, 2}, {3, 3}, {4, 7}, {512, 512}, {333, 97}} {
		for _, kind := range []string{"noise", "0xff", "edges"} {
			g := gray{w: sz[0], h: sz[1], pix: make([]uint8, sz[0]*sz[1])}
			for i := range g.pix {
				switch kind {
				case "noise":
					g.pix[i] = uint8(r.Uint32())
				case "0xff":
					g.pix[i] = 0xff
				default: // the largest Laplacians: 255 beside 0
					g.pix[i] = uint8(255 * ((i%g.w + i/g.w) % 2))
				}
			}
			gs, gl := stats(g)
			ws, wl := naive(g)
			if math.Abs(gs-ws) > 1e-9*max(1, ws) || math.Abs(gl-wl) > 1e-9*max(1, wl) {
				t.Errorf("%dx%d %s: stats = %v, %v; want %v, %v", sz[0], sz[1], kind, gs, gl, ws, wl)
			}
		}
	}
}
