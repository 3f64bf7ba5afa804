package qa_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
)

// scene draws a sharp test picture: a gradient, filled shapes and a grid of
// small "glyph" blocks, placed by seed.
func scene(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(40 + 120*y/h), uint8(80 + 100*x/w), 160, 255})
		}
	}
	for range 6 {
		cx, cy, rad := int(r.Float64()*float64(w)), int(r.Float64()*float64(h)), int((0.03+r.Float64()/4)*float64(w))
		c := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
		for y := max(cy-rad, 0); y < min(cy+rad, h); y++ {
			for x := max(cx-rad, 0); x < min(cx+rad, w); x++ {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) < rad*rad {
					img.SetRGBA(x, y, c)
				}
			}
		}
	}
	for y := h * 3 / 4; y < h*3/4+12 && y < h; y++ {
		for x := w / 10; x < w*9/10; x++ {
			if (x/3)%4 != 3 && (y/3)%2 == 0 {
				img.SetRGBA(x, y, color.RGBA{10, 10, 10, 255})
			}
		}
	}
	return img
}

func uniform(w, h int, c color.RGBA, noise int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			d := 0
			if noise > 0 {
				d = r.IntN(2*noise+1) - noise
			}
			img.SetRGBA(x, y, color.RGBA{clamp(int(c.R) + d), clamp(int(c.G) + d), clamp(int(c.B) + d), 255})
		}
	}
	return img
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }

// boxBlur blurs img with a (2r+1)-wide box, horizontally then vertically,
// passes times (edges clamp).
func boxBlur(src *image.RGBA, r, passes int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	cur := append([]uint8(nil), src.Pix...)
	tmp := make([]uint8, len(cur))
	blur1 := func(dst, in []uint8, n, step, lineStep, lines int) {
		for l := range lines {
			base := l * lineStep
			for i := range n {
				var s [3]int
				for d := -r; d <= r; d++ {
					j := base + min(max(i+d, 0), n-1)*step
					s[0] += int(in[j])
					s[1] += int(in[j+1])
					s[2] += int(in[j+2])
				}
				o := base + i*step
				k := 2*r + 1
				dst[o], dst[o+1], dst[o+2], dst[o+3] = uint8(s[0]/k), uint8(s[1]/k), uint8(s[2]/k), 255
			}
		}
	}
	for range passes {
		blur1(tmp, cur, w, 4, 4*w, h) // rows
		blur1(cur, tmp, h, 4*w, 4, w) // columns
	}
	return &image.RGBA{Pix: cur, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
}

func MustPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func MustJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func MustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bomb is a valid PNG signature and IHDR declaring w×h, with no pixel data.
func bomb(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestCheck(t *testing.T) {
	sharp := scene(256, 256, 1)
	sharpPNG := MustPNG(t, sharp)
	ref, err := qa.HashBytes(sharpPNG, 0)
	if err != nil {
		t.Fatal(err)
	}
	preserve := func(s qa.Spec) qa.Spec { s.Reference, s.HasReference, s.PreserveSubject = ref, true, true; return s }
	sq := qa.Spec{Width: 256, Height: 256}

	tests := []struct {
		name     string
		give     []byte
		spec     qa.Spec
		wantPass bool
		wantFail []string // names of failing checks
	}{
		{"sharp png", sharpPNG, sq, true, nil},
		{"sharp jpeg", MustJPEG(t, sharp, 85), sq, true, nil},
		{"larger same aspect", MustPNG(t, scene(512, 512, 1)), sq, true, nil},
		{"no size asked", MustPNG(t, scene(300, 200, 2)), qa.Spec{}, true, nil},
		{"format asked matches", sharpPNG, qa.Spec{Format: "png"}, true, nil},
		{"format asked differs: passes, to transcode", sharpPNG, qa.Spec{Format: "webp"}, true, nil},
		{"webp decodes", MustRead(t, "video-001.lossy.webp"), qa.Spec{Width: 150, Height: 103, Format: "webp"}, true, nil},
		{"not an image", []byte("<html>rate limited</html>"), sq, false, []string{"format"}},
		{"truncated png", sharpPNG[:len(sharpPNG)/2], sq, false, []string{"format"}},
		{"empty", nil, sq, false, []string{"format"}},
		{"decompression bomb", bomb(100_000, 100_000), sq, false, []string{"format"}},
		{"uniform", MustPNG(t, uniform(256, 256, color.RGBA{200, 200, 200, 255}, 0, 1)), sq, false, []string{"blank", "sharpness"}},
		{"near uniform with noise", MustPNG(t, uniform(256, 256, color.RGBA{240, 240, 240, 255}, 2, 1)), sq, false, []string{"blank"}},
		{"near uniform jpeg", MustJPEG(t, uniform(256, 256, color.RGBA{30, 30, 30, 255}, 1, 1), 70), sq, false, []string{"blank", "sharpness"}},
		{"blurred", MustPNG(t, boxBlur(sharp, 2, 3)), sq, false, []string{"sharpness"}},
		{"smaller", MustPNG(t, scene(128, 128, 1)), sq, false, []string{"size"}},
		{"wrong aspect", MustPNG(t, scene(256, 160, 1)), sq, false, []string{"size", "aspect"}},
		{"subject kept, re-encoded", MustJPEG(t, sharp, 60), preserve(sq), true, nil},
		{"subject kept, slight blur", MustPNG(t, boxBlur(sharp, 1, 1)), preserve(sq), true, nil},
		{"subject changed", MustPNG(t, scene(256, 256, 99)), preserve(sq), false, []string{"drift"}},
		{"drift ignored without preserve", MustPNG(t, scene(256, 256, 99)), qa.Spec{Width: 256, Height: 256, Reference: ref, HasReference: true}, true, nil},
	}
	c := qa.New(qa.Thresholds{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Check(tt.give, tt.spec)
			var failed []string
			for _, ch := range got.Checks {
				if !ch.Pass {
					failed = append(failed, ch.Name)
				}
			}
			if got.Pass != tt.wantPass || strings.Join(failed, ",") != strings.Join(tt.wantFail, ",") {
				t.Errorf("Check(%s) = pass %v failed %v (%s; checks %+v), want pass %v failed %v",
					tt.name, got.Pass, failed, got.Reason, got.Checks, tt.wantPass, tt.wantFail)
			}
			if got.Pass != (got.Reason == "") {
				t.Errorf("Check(%s): pass %v with reason %q", tt.name, got.Pass, got.Reason)
			}
			if got.Score < 0 || got.Score > 1 || (got.Pass && got.Score < 0.5) {
				t.Errorf("Check(%s).Score = %v, want in [0,1] and >= 0.5 when passing", tt.name, got.Score)
			}
		})
	}
}

func TestDecodeRefusesBombBeforeDecoding(t *testing.T) {
	_, _, err := qa.Decode(bomb(50_000, 50_000), 40_000_000)
	if !errors.Is(err, qa.ErrTooManyPixels) {
		t.Fatalf("Decode(bomb) error = %v, want ErrTooManyPixels", err)
	}
	_, _, err = qa.Decode([]byte("GIF89a......"), 0)
	if !errors.Is(err, qa.ErrUnknownFormat) {
		t.Fatalf("Decode(gif) error = %v, want ErrUnknownFormat", err)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		give []byte
		want string
	}{
		{MustPNG(t, scene(8, 8, 1)), "png"},
		{MustJPEG(t, scene(8, 8, 1), 90), "jpeg"},
		{MustRead(t, "blue-purple-pink.lossy.webp"), "webp"},
		{[]byte("RIFF\x00\x00\x00\x00WAVE"), ""},
		{[]byte{0xff, 0xd8}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := qa.Sniff(tt.give); got != tt.want {
			t.Errorf("Sniff(%q...) = %q, want %q", tt.give[:min(len(tt.give), 12)], got, tt.want)
		}
	}
}

func TestHashDistance(t *testing.T) {
	webp, err := qa.HashBytes(MustRead(t, "video-001.lossy.webp"), 0)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := qa.Decode(MustRead(t, "video-001.lossy.webp"), 0)
	if err != nil {
		t.Fatal(err)
	}
	pngOfSame, err := qa.HashBytes(MustJPEG(t, img, 50), 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := qa.HashBytes(MustRead(t, "blue-purple-pink.lossy.webp"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := webp.Distance(pngOfSame); d > 4 {
		t.Errorf("distance(webp, its jpeg re-encode) = %d, want <= 4", d)
	}
	if d := webp.Distance(other); d < 20 {
		t.Errorf("distance(video-001, blue-purple-pink) = %d, want >= 20", d)
	}
	a, b := scene(256, 256, 1), scene(512, 512, 1)
	if d := qa.HashImage(a).Distance(qa.HashImage(b)); d > 8 {
		t.Errorf("distance(scene 256, scene 512) = %d, want <= 8 (resize invariant)", d)
	}
}

func TestEvent(t *testing.T) {
	r := qa.New(qa.Thresholds{}).Check(MustPNG(t, uniform(64, 64, color.RGBA{0, 0, 0, 255}, 0, 1)), qa.Spec{})
	ev := r.Event(qaHeader(), "m1", 2)
	if ev.Pass || ev.Model != "m1" || ev.Attempt != 2 || len(ev.Checks) != len(r.Checks) || ev.Reason == "" || ev.RequestID != "req-1" {
		t.Errorf("Event() = %+v, want a failing QA event for m1 attempt 2 with the checks and reason", ev)
	}
}

func qaHeader() events.Header { return events.Header{EventID: "e1", RequestID: "req-1", Tenant: "t"} }

func TestCachedEqualsUncached(t *testing.T) {
	plain, cached := qa.New(qa.Thresholds{}), qa.New(qa.Thresholds{}).WithCache(4)
	imgs := [][]byte{MustPNG(t, scene(64, 64, 1)), MustPNG(t, uniform(64, 64, color.RGBA{9, 9, 9, 255}, 0, 1))}
	for range 3 {
		for _, b := range imgs {
			spec := qa.Spec{Width: 64, Height: 64}
			want := plain.Check(b, spec)
			got := cached.Check(b, spec)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cached Check differs (-want +got):\n%s", diff)
			}
			got.Checks[0].Pass = !got.Checks[0].Pass // must not leak into the cache
		}
	}
}

func TestHashReference(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	b := MustPNG(t, scene(64, 64, 5))
	want, err := qa.HashBytes(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := c.HashReference(b); err != nil || got != want {
			t.Errorf("HashReference = %x, %v; want %x", got, err, want)
		}
	}
	if _, err := c.HashReference([]byte("nope")); !errors.Is(err, qa.ErrUnknownFormat) {
		t.Errorf("HashReference(garbage) error = %v, want ErrUnknownFormat", err)
	}
}

func TestCheckRef(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	ref := MustPNG(t, scene(128, 128, 1))
	other := MustPNG(t, scene(128, 128, 77))
	tests := []struct {
		name      string
		ref       []byte
		preserve  bool
		wantDrift string // "" no drift check, "pass", "fail"
	}{
		{"same subject", ref, true, "pass"},
		{"not asked to preserve", ref, false, ""},
		{"no reference", nil, true, ""},
		{"reference does not decode", []byte("junk"), true, ""},
	}
	for _, tt := range tests {
		got := c.CheckRef(MustJPEG(t, scene(128, 128, 1), 80), tt.ref, tt.preserve, qa.Spec{})
		drift := ""
		for _, ch := range got.Checks {
			if ch.Name == "drift" {
				drift = map[bool]string{true: "pass", false: "fail"}[ch.Pass]
			}
		}
		if drift != tt.wantDrift {
			t.Errorf("CheckRef(%s): drift %q, want %q", tt.name, drift, tt.wantDrift)
		}
	}
	if r := c.CheckRef(other, ref, true, qa.Spec{}); r.Pass {
		t.Errorf("CheckRef(another subject) passed: %+v", r.Checks)
	}
}

func TestFormatMismatchValue(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	b := MustJPEG(t, scene(64, 64, 1), 90)
	for _, tt := range []struct {
		give string
		want float64
	}{{"", 1}, {"jpeg", 1}, {"jpg", 1}, {"JPEG", 1}, {"png", 0.5}, {"webp", 0.5}} {
		r := c.Check(b, qa.Spec{Format: tt.give})
		if r.Checks[0].Name != "format" || !r.Checks[0].Pass || r.Checks[0].Value != tt.want {
			t.Errorf("Check(jpeg, Format %q) format check = %+v, want pass with value %v", tt.give, r.Checks[0], tt.want)
		}
	}
}

// TestCheckDecodedDecodesWhenTheHeaderDisagrees: an image whose size is not
// the one the bytes declare is not trusted; the bytes are decoded.
func TestCheckDecodedDecodesWhenTheHeaderDisagrees(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	b := MustPNG(t, scene(64, 64, 1))
	flat := image.NewNRGBA(image.Rect(0, 0, 32, 32)) // blank, and the wrong size
	spec := qa.Spec{Width: 64, Height: 64, Format: "png"}
	want := c.Check(b, spec)
	got := c.CheckDecoded(b, flat, 0, spec)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckDecoded with a mismatched image differs from Check (-want +got):\n%s", diff)
	}
	if got := c.CheckDecoded([]byte("not an image"), flat, 0, spec); got.Pass {
		t.Errorf("CheckDecoded(garbage bytes) passed: %+v", got)
	}
}

// toYCbCr converts m to Y'CbCr as a JPEG encoder does, subsampled by ratio.
func toYCbCr(m *image.RGBA, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	y := image.NewYCbCr(m.Rect, ratio)
	for py := m.Rect.Min.Y; py < m.Rect.Max.Y; py++ {
		for px := m.Rect.Min.X; px < m.Rect.Max.X; px++ {
			c := m.RGBAAt(px, py)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			y.Y[y.YOffset(px, py)] = yy
			y.Cb[y.COffset(px, py)] = cb
			y.Cr[y.COffset(px, py)] = cr
		}
	}
	return y
}

// yPlane is m's Y samples as a grey image of the same bounds.
func yPlane(m *image.YCbCr) *image.Gray {
	g := image.NewGray(m.Rect)
	for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
		for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
			g.Pix[g.PixOffset(x, y)] = m.Y[m.YOffset(x, y)]
		}
	}
	return g
}

// anyImage hides an image's concrete type, so QA reads it through At: the
// general path its fast paths must agree with.
type anyImage struct{ image.Image }

func TestFastPathsMatchTheGeneralPath(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	for _, side := range []int{100, 513, 1024, 1536} {
		rgba := scene(side, side*2/3, uint64(side))
		nrgba := image.NewNRGBA(rgba.Rect)
		copy(nrgba.Pix, rgba.Pix) // scene is opaque: the same colours
		imgs := []image.Image{rgba, nrgba, toGray(rgba)}
		// Y planes, whose luma is Y as it is (not At's RGB): decoded
		// JPEGs, every chroma subsampling, a sub-image (not at 0,0), with
		// alpha; the general path reads them as grey images of their Y.
		for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422} {
			imgs = append(imgs, toYCbCr(rgba, ratio))
		}
		jp, err := jpeg.Decode(bytes.NewReader(MustJPEG(t, rgba, 85)))
		if err != nil {
			t.Fatal(err)
		}
		r := jp.Bounds()
		imgs = append(imgs, jp, jp.(*image.YCbCr).SubImage(image.Rect(r.Min.X+3, r.Min.Y+5, r.Max.X-1, r.Max.Y-2)))
		nycc := image.NewNYCbCrA(rgba.Rect, image.YCbCrSubsampleRatio420)
		nycc.YCbCr = *toYCbCr(rgba, image.YCbCrSubsampleRatio420)
		imgs = append(imgs, nycc)
		for _, img := range imgs {
			general := image.Image(anyImage{img})
			switch m := img.(type) {
			case *image.YCbCr:
				general = anyImage{yPlane(m)}
			case *image.NYCbCrA:
				general = anyImage{yPlane(&m.YCbCr)}
			}
			want := c.CheckImage(general, qa.FormatPNG, qa.Spec{})
			got := c.CheckImage(img, qa.FormatPNG, qa.Spec{})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%d px %T: CheckImage differs from the general path (-general +fast):\n%s", side, img, diff)
			}
		}
	}
}

// TestCheckDecodedDigestKeysTheCache: a provider's digest stands for the
// bytes in the result cache (no hashing of the body), and without one the
// bytes themselves are the key.
func TestCheckDecodedDigestKeysTheCache(t *testing.T) {
	c := qa.New(qa.Thresholds{}).WithCache(16)
	spec := qa.Spec{Width: 64, Height: 64, Format: "png"}
	good := MustPNG(t, scene(64, 64, 1))
	broken := append([]byte(nil), good...)
	for i := len(broken) / 3; i < len(broken)/2; i++ {
		broken[i] ^= 0xff // same length, no longer decodes
	}
	if r := c.CheckDecoded(good, nil, 42, spec); !r.Pass {
		t.Fatalf("good image failed: %+v", r)
	}
	if r := c.CheckDecoded(broken, nil, 42, spec); !r.Pass {
		t.Errorf("same digest: got a fresh check (%s), want the cached pass", r.Reason)
	}
	if r := c.CheckDecoded(broken, nil, 0, spec); r.Pass {
		t.Errorf("no digest: the broken bytes passed, want them checked")
	}
	if r := c.CheckDecoded(broken, nil, 43, spec); r.Pass {
		t.Errorf("another digest: the broken bytes passed, want them checked")
	}
}

// repeated is a qa.PixelRepeated test image.
type repeated struct {
	small *image.RGBA
	f     int
	rect  image.Rectangle
}

func (m repeated) ColorModel() color.Model      { return color.RGBAModel }
func (m repeated) Bounds() image.Rectangle      { return m.rect }
func (m repeated) At(x, y int) color.Color      { return m.small.At(x/m.f, y/m.f) }
func (m repeated) Repeated() (image.Image, int) { return m.small, m.f }

// The pixel-repeated fast path measures exactly what reading every pixel
// does, at QA's own factor and (falling back) at another.
func TestPixelRepeatedMatchesTheGeneralPath(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	for _, tc := range []struct{ w, h, f int }{{1024, 1024, 2}, {1536, 1024, 3}, {1024, 1536, 3}, {2048, 2048, 4}, {1030, 700, 3}, {1024, 1024, 4}} {
		small := scene((tc.w+tc.f-1)/tc.f, (tc.h+tc.f-1)/tc.f, uint64(tc.w))
		img := repeated{small: small, f: tc.f, rect: image.Rect(0, 0, tc.w, tc.h)}
		want := c.CheckImage(anyImage{img}, qa.FormatPNG, qa.Spec{Width: tc.w, Height: tc.h})
		got := c.CheckImage(img, qa.FormatPNG, qa.Spec{Width: tc.w, Height: tc.h})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%dx%d repeated %d: CheckImage differs from the general path (-general +fast):\n%s", tc.w, tc.h, tc.f, diff)
		}
	}
}

// An output that comes back as the next edit's reference: HashReference
// gives the hash decoding the bytes gives, whether Check, CheckDecoded or
// nothing saw them first.
func TestHashReferenceOfCheckedOutputs(t *testing.T) {
	img := scene(640, 480, 9)
	pngB, jpgB := MustPNG(t, img), MustJPEG(t, img, 80)
	for _, tc := range []struct {
		name  string
		b     []byte
		check func(c *qa.Checker, b []byte)
	}{
		{"png/unchecked", pngB, func(*qa.Checker, []byte) {}},
		{"png/Check", pngB, func(c *qa.Checker, b []byte) { c.Check(b, qa.Spec{}) }},
		{"png/CheckDecoded", pngB, func(c *qa.Checker, b []byte) { c.CheckDecoded(b, img, 0, qa.Spec{}) }},
		{"jpeg/Check", jpgB, func(c *qa.Checker, b []byte) { c.Check(b, qa.Spec{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := qa.HashBytes(tc.b, 0)
			if err != nil {
				t.Fatal(err)
			}
			c := qa.New(qa.Thresholds{}).WithCache(8)
			tc.check(c, tc.b)
			if got, err := c.HashReference(tc.b); err != nil || got != want {
				t.Errorf("HashReference = %v, %v; want %v (HashBytes)", got, err, want)
			}
		})
	}
}
