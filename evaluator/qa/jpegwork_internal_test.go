package qa

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/lab/labtest"
)

// jpegFixtures are Go's JPEG test images kept by jpegluma (every chroma
// subsampling, progressive, restart intervals, grey, CMYK, RGB-coded).
func jpegFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("internal/jpegluma/testdata/*.jpeg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	m := map[string][]byte{}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkAsBefore is Check's result on b as it was before jpegWork: image/jpeg's
// image measured by CheckImage, or its error.
func checkAsBefore(ch *Checker, b []byte, s Spec) Result {
	img, format, err := Decode(b, ch.t.MaxPixels)
	if err != nil {
		return Result{Format: format, Checks: []events.QACheck{{Name: CheckFormat}}, Reason: "format: " + err.Error()}
	}
	return ch.CheckImage(img, format, s)
}

// TestJPEGWorkMatchesDecode: jpegWork's plane is, byte for byte, toWork's
// of the image jpeg.Decode returns, at every work side (full size, and
// blocks of 2, 3 and more, of sizes that are not multiples of 8 or 16),
// and Check's result is CheckImage's on the decoded image.
func TestJPEGWorkMatchesDecode(t *testing.T) {
	labtest.Heavy(t) // decodes each image at five sides: seconds under -race
	cases := map[string][]byte{}
	for name, b := range jpegFixtures(t) {
		if name != "video-001.cmyk.jpeg" && name != "video-001.rgb.jpeg" {
			cases[name] = b
		}
	}
	for _, model := range []string{"gray", "rgba"} {
		for _, sz := range [][2]int{{1024, 1024}, {700, 300}, {513, 5}, {1, 2000}, {37, 23}, {1500, 1000}} {
			img := testImage(model, sz[0], sz[1], uint64(sz[0]))
			for _, q := range []int{50, 95} {
				cases[fmt.Sprintf("%s-%dx%d-q%d", model, sz[0], sz[1], q)] = encodeJPEG(t, img, q)
			}
		}
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			for _, side := range []int{512, 150, 100, 40, 7, 0} {
				want := toWork(img, side, nil)
				got, w, h, ok := jpegWork(b, 0, side, nil)
				if !ok || w != img.Bounds().Dx() || h != img.Bounds().Dy() || !reflect.DeepEqual(got, want) {
					t.Fatalf("side %d: jpegWork = %dx%d plane %dx%d ok %v; want toWork's %dx%d plane of the decoded image", side, w, h, got.w, got.h, ok, want.w, want.h)
				}
			}
			ch := New(Thresholds{})
			spec := Spec{Width: img.Bounds().Dx(), Height: img.Bounds().Dy(), Format: "jpeg"}
			if got, want := ch.Check(b, spec), ch.CheckImage(img, FormatJPEG, spec); !reflect.DeepEqual(got, want) {
				t.Errorf("Check = %+v\nCheckImage(jpeg.Decode) = %+v", got, want)
			}
		})
	}
}

// TestJPEGWork is TestJPEGWorkMatchesDecode's quick part, for the race
// pass: a fixture of each kind at the default side and one that averages
// 3x3 blocks, through Check and Reference.
func TestJPEGWork(t *testing.T) {
	fx := jpegFixtures(t)
	for _, name := range []string{"video-001.q50.420.jpeg", "video-001.q50.444.progressive.jpeg", "video-001.restart2.jpeg", "video-005.gray.q50.jpeg"} {
		b := fx[name]
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, side := range []int{512, 75, 50} { // blocks of 1, 2 and 3
			got, _, _, ok := jpegWork(b, 0, side, nil)
			if want := toWork(img, side, nil); !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s side %d: jpegWork's plane (ok %v) is not toWork's of jpeg.Decode", name, side, ok)
			}
		}
		ch := New(Thresholds{})
		if got, want := ch.Check(b, Spec{Width: 150, Height: 103}), checkAsBefore(ch, b, Spec{Width: 150, Height: 103}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Check = %+v\nthrough image/jpeg %+v", name, got, want)
		}
		ref, err := New(Thresholds{}).Reference(b)
		if want := (Reference{Hash: phash(toWork(img, defaultWorkSide, nil)), Sharpness: ch.CheckImage(img, FormatJPEG, Spec{}).Sharpness}); err != nil || ref != want {
			t.Errorf("%s: Reference = %+v, %v; want %+v", name, ref, err, want)
		}
	}
}

// TestJPEGWorkDeclines: JPEGs jpegWork does not cover, or that image/jpeg
// refuses, go back to image/jpeg (ok false), so Check reports what it
// always did.
func TestJPEGWorkDeclines(t *testing.T) {
	fx := jpegFixtures(t)
	good := fx["video-001.q50.420.jpeg"]
	cases := map[string][]byte{
		"cmyk":         fx["video-001.cmyk.jpeg"],
		"rgb":          fx["video-001.rgb.jpeg"],
		"truncated":    good[:len(good)/2],
		"no EOI":       good[:len(good)-2],
		"header only":  good[:600],
		"bad marker":   append(bytes.Clone(good[:len(good)-2]), 0xff, 0x01, 0, 2),
		"not a JPEG":   []byte("GIF89a"),
		"SOI only":     []byte{0xff, 0xd8, 0xff},
		"missing ff00": func() []byte { b := bytes.Clone(good); b[len(b)-40] = 0xff; b[len(b)-39] = 0x17; return b }(),
	}
	// the pixel bound, and an empty frame (height 0 in its SOF)
	big := New(Thresholds{MaxPixels: 150*103 - 1})
	if got, want := big.Check(good, Spec{}), checkAsBefore(big, good, Spec{}); !reflect.DeepEqual(got, want) || !strings.Contains(got.Reason, ErrTooManyPixels.Error()) {
		t.Errorf("over MaxPixels: Check = %+v, want %+v", got, want)
	}
	i := bytes.Index(good, []byte{0xff, 0xc0})
	empty := bytes.Clone(good)
	empty[i+5], empty[i+6] = 0, 0
	cases["empty"] = empty
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, ok := jpegWork(b, 0, 512, nil); ok {
				t.Fatal("jpegWork accepted it")
			}
			ch := New(Thresholds{})
			if got, want := ch.Check(b, Spec{}), checkAsBefore(ch, b, Spec{}); !reflect.DeepEqual(got, want) {
				t.Errorf("Check = %+v, want %+v", got, want)
			}
		})
	}
}
