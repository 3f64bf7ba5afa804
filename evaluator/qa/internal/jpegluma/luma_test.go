package jpegluma_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/routelab/routelab/evaluator/qa/internal/jpegluma"
	"github.com/routelab/routelab/lab/labtest"
)

// stdLuma is image/jpeg's luma plane of b: the Y of the *image.YCbCr, or
// the *image.Gray's values; ok is false when it returns another image type
// (CMYK, RGBA), err its error.
func stdLuma(b []byte) (l jpegluma.Luma, ok bool, err error) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return l, false, err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return jpegluma.Luma{Pix: m.Y, Width: m.Rect.Dx(), Height: m.Rect.Dy(), Stride: m.YStride}, true, nil
	case *image.Gray:
		return jpegluma.Luma{Pix: m.Pix, Width: m.Rect.Dx(), Height: m.Rect.Dy(), Stride: m.Stride}, true, nil
	}
	return l, false, nil
}

// diff describes how two planes differ, "" when their pixels are equal
// (the strides and what lies past the width may differ).
func diff(got, want jpegluma.Luma) string {
	if got.Width != want.Width || got.Height != want.Height {
		return fmt.Sprintf("size %dx%d, want %dx%d", got.Width, got.Height, want.Width, want.Height)
	}
	w, h := want.Width, want.Height
	if got.Half {
		want, w, h = halve(want), w/2, h/2
	}
	for y := range h {
		g := got.Pix[y*got.Stride:][:w]
		w := want.Pix[y*want.Stride:][:w]
		if !bytes.Equal(g, w) {
			for x := range g {
				if g[x] != w[x] {
					return fmt.Sprintf("pixel (%d,%d) = %d, want %d", x, y, g[x], w[x])
				}
			}
		}
	}
	return ""
}

// halve is l's plane of the rounded means of its 2x2 blocks, written out.
func halve(l jpegluma.Luma) jpegluma.Luma {
	w, h := l.Width/2, l.Height/2
	out := jpegluma.Luma{Pix: make([]byte, w*h), Width: l.Width, Height: l.Height, Stride: w, Half: true}
	for y := range h {
		for x := range w {
			p := l.Pix[2*y*l.Stride+2*x:]
			q := l.Pix[(2*y+1)*l.Stride+2*x:]
			out.Pix[y*w+x] = uint8((int(p[0]) + int(p[1]) + int(q[0]) + int(q[1]) + 2) >> 2)
		}
	}
	return out
}

// always and never are Decode's half.
func always(int, int) bool { return true }
func never(int, int) bool  { return false }

// fixtures reads testdata/*.jpeg (Go's image/testdata, see its README).
func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.jpeg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	m := make(map[string][]byte, len(files))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

// picture is a w×h image with edges, gradients and noise, so that every
// block has AC coefficients and some clip at 0 and 255.
func picture(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 3))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / max(w, 1)), uint8(y * 255 / max(h, 1)), uint8((x ^ y) * 8), 255}
			if (x/5+y/3)%4 == 0 {
				c = color.RGBA{255, 255, 255, 255}
			}
			if r.IntN(4) == 0 {
				c.G = uint8(r.Uint32())
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func encode(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func grey(m image.Image) *image.Gray {
	g := image.NewGray(m.Bounds())
	for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
		for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
			g.Set(x, y, m.At(x, y))
		}
	}
	return g
}

// covered is every kind of JPEG Decode must decode as image/jpeg does:
// Go's fixtures (chroma subsampling 4:4:4, 4:4:0, 4:2:2, 4:2:0, 4:1:1,
// 4:1:0, baseline and progressive, restart intervals, grey with nominal
// 2x2 sampling, DC scans apart, a progressive file whose last scans are
// cut short, which image/jpeg decodes) and Go-encoded colour (4:2:0) and grey
// JPEGs of sizes that are not multiples of 8 or 16.
// The cases are made once for the tests that use them (seconds under
// -race).
func covered(t testing.TB) map[string][]byte {
	coveredOnce.Do(func() { coveredCases = makeCovered(t) })
	return coveredCases
}

var (
	coveredOnce  sync.Once
	coveredCases map[string][]byte
)

func makeCovered(t testing.TB) map[string][]byte {
	cases := map[string][]byte{}
	for name, b := range fixtures(t) {
		if !strings.Contains(name, "cmyk") && !strings.Contains(name, "rgb") {
			cases[name] = b
		}
	}
	for _, sz := range [][2]int{{1, 1}, {7, 9}, {8, 8}, {16, 16}, {17, 33}, {150, 103}, {255, 1}, {1, 200}, {321, 241}} {
		for _, q := range []int{10, 90, 100} {
			m := picture(sz[0], sz[1], uint64(sz[0]*sz[1]+q))
			cases[fmt.Sprintf("go-%dx%d-q%d", sz[0], sz[1], q)] = encode(t, m, q)
			cases[fmt.Sprintf("go-grey-%dx%d-q%d", sz[0], sz[1], q)] = encode(t, grey(m), q)
		}
	}
	// flat and slowly varying areas: blocks whose only coefficient is the DC
	for _, sz := range [][2]int{{150, 103}, {321, 241}} {
		m := flat(sz[0], sz[1])
		for _, q := range []int{30, 75, 95} {
			cases[fmt.Sprintf("go-flat-%dx%d-q%d", sz[0], sz[1], q)] = encode(t, m, q)
			cases[fmt.Sprintf("go-grey-flat-%dx%d-q%d", sz[0], sz[1], q)] = encode(t, grey(m), q)
		}
	}
	return cases
}

// flat is a w×h image of flat tiles of every level, from black to white,
// and slow gradients: most of its blocks are DC only.
func flat(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x/8 + y/8*(w/8+1)) * 7)
			if y > h/2 {
				v = uint8(x * 255 / w)
			}
			m.SetRGBA(x, y, color.RGBA{v, 255 - v, uint8(y * 255 / h), 255})
		}
	}
	return m
}

// TestDecodeMatchesImageJPEG: the plane is image/jpeg's Y (or grey)
// plane, byte for byte, for every JPEG it covers, and one Decoder reused
// over all of them (its buffers kept, its tables reset) decodes each as a
// new one does; and with half, the plane of the means of its 2x2 blocks.
func TestDecodeMatchesImageJPEG(t *testing.T) {
	cases := covered(t)
	var reused jpegluma.Decoder
	for _, pass := range []string{"fresh", "reused", "half", "reused"} {
		for name, b := range cases {
			want, ok, err := stdLuma(b)
			if err != nil || !ok {
				t.Fatalf("%s: image/jpeg: ok %v, %v", name, ok, err)
			}
			dec, half := &reused, never
			switch pass {
			case "fresh":
				dec, half = new(jpegluma.Decoder), nil
			case "half":
				half = always
			}
			got, err := dec.Decode(b, 0, half)
			if err != nil {
				t.Fatalf("%s (%s): %v", name, pass, err)
			}
			if d := diff(got, want); d != "" {
				t.Fatalf("%s (%s): %s", name, pass, d)
			}
		}
	}
}

// TestDecodeDeclines: what image/jpeg returns as another image than YCbCr
// or Gray, and frames over the pixel bound, are ErrNotCovered.
func TestDecodeDeclines(t *testing.T) {
	fx := fixtures(t)
	small := encode(t, picture(40, 30, 1), 80)
	for _, tc := range []struct {
		name      string
		b         []byte
		maxPixels int
	}{
		{"cmyk", fx["video-001.cmyk.jpeg"], 0},
		{"rgb", fx["video-001.rgb.jpeg"], 0},
		{"over the pixel bound", small, 40*30 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := new(jpegluma.Decoder).Decode(tc.b, tc.maxPixels, nil); !errors.Is(err, jpegluma.ErrNotCovered) {
				t.Fatalf("Decode: %v, want ErrNotCovered", err)
			}
		})
	}
	if _, err := new(jpegluma.Decoder).Decode(small, 40*30, nil); err != nil {
		t.Fatalf("at the pixel bound: %v", err)
	}
}

// TestDecodeDamaged: truncated and corrupted JPEGs give an error, never
// a panic, or when image/jpeg still decodes them (a damaged entropy-coded
// byte is often still a valid code), its plane; and an error only where
// image/jpeg has one. A sample of cut points; TestDecodeDamagedManyCuts
// tries more.
func TestDecodeDamaged(t *testing.T) {
	damaged(t, 5000, 499, 5)
	// a 0xff in the entropy-coded data not followed by 0x00 (a marker where
	// none may be), at a few places of each baseline fixture
	var dec jpegluma.Decoder
	for name, b := range fixtures(t) {
		if strings.Contains(name, "progressive") || strings.Contains(name, "cmyk") {
			continue
		}
		for _, back := range []int{40, 400, 1000} {
			c := bytes.Clone(b)
			c[len(c)-back], c[len(c)-back+1] = 0xff, 0x17
			agree(t, &dec, fmt.Sprintf("%s 0xff17 %d bytes before the end", name, back), c)
		}
	}
}

func TestDecodeDamagedManyCuts(t *testing.T) {
	labtest.Heavy(t) // tens of thousands of decodes: minutes under -race
	damaged(t, 1<<20, 11, 200)
}

// damaged cuts the fixtures and one size of Go's encodings (those under
// maxLen bytes) every step bytes, changes a random byte of each in flips
// copies, and checks that Decode agrees with image/jpeg on each.
func damaged(t *testing.T, maxLen, step, flips int) {
	r := rand.New(rand.NewPCG(1, 2))
	var dec jpegluma.Decoder
	for name, b := range covered(t) {
		if len(b) > maxLen || strings.HasPrefix(name, "go-") && !strings.HasPrefix(name, "go-150x103") && !strings.HasPrefix(name, "go-grey-150x103") {
			continue
		}
		for n := 0; n < len(b); n += step {
			agree(t, &dec, fmt.Sprintf("%s cut at %d", name, n), b[:n])
		}
		for range flips {
			c := bytes.Clone(b)
			i := r.IntN(len(c))
			c[i] ^= byte(1 + r.IntN(255))
			agree(t, &dec, fmt.Sprintf("%s byte %d changed", name, i), c)
		}
	}
}

// agree fails when Decode accepts b and image/jpeg does not, or their
// planes differ.
func agree(t *testing.T, dec *jpegluma.Decoder, name string, b []byte) {
	t.Helper()
	if c, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && c.Width*c.Height > 1<<22 {
		return // a changed size byte: not worth image/jpeg's allocation
	}
	half := never
	if len(b)%2 == 1 {
		half = always
	}
	got, err := dec.Decode(b, 1<<22, half)
	want, ok, stdErr := stdLuma(b)
	if err != nil {
		if ok && !errors.Is(err, jpegluma.ErrNotCovered) {
			t.Fatalf("%s: Decode: %v; image/jpeg decodes it", name, err)
		}
		return
	}
	if !ok {
		t.Fatalf("%s: Decode accepted what image/jpeg refuses or returns as another type (%v)", name, stdErr)
	}
	if d := diff(got, want); d != "" {
		t.Fatalf("%s: %s", name, d)
	}
}

// FuzzJPEGLuma: Decode never panics, and whatever it accepts image/jpeg
// decodes to the same plane: it may decline (the caller then decodes
// with image/jpeg), never disagree. What it accepts also passes
// image/jpeg's DecodeConfig, non-empty and within the pixel bound: QA
// does not call DecodeConfig before it on a JPEG.
func FuzzJPEGLuma(f *testing.F) {
	for name, b := range fixtures(f) {
		if len(b) < 8000 || strings.Contains(name, "cmyk") {
			f.Add(b)
		}
	}
	f.Add(encode(f, picture(21, 13, 1), 75))
	f.Add(encode(f, grey(picture(9, 17, 2)), 75))
	var dec jpegluma.Decoder
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, b []byte) {
		half := never
		if len(b)%2 == 1 {
			half = always
		}
		got, err := dec.Decode(b, maxPixels, half)
		c, cfgErr := jpeg.DecodeConfig(bytes.NewReader(b))
		if err == nil && (cfgErr != nil || c.Width == 0 || c.Height == 0 || c.Width*c.Height > maxPixels) {
			t.Fatalf("Decode accepted a header DecodeConfig gives as %dx%d, %v", c.Width, c.Height, cfgErr)
		}
		if cfgErr != nil || c.Width*c.Height > maxPixels {
			return // not worth image/jpeg's allocation
		}
		want, ok, stdErr := stdLuma(b)
		if err != nil {
			if ok && !errors.Is(err, jpegluma.ErrNotCovered) {
				t.Fatalf("Decode: %v; image/jpeg decodes it", err)
			}
			return
		}
		if !ok {
			t.Fatalf("Decode accepted what image/jpeg refuses or returns as another type (%v)", stdErr)
		}
		if d := diff(got, want); d != "" {
			t.Fatal(d)
		}
	})
}
