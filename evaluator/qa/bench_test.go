package qa_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/evaluator/qa"
)

// BenchmarkCheck measures QA on the request path against the baseline of
// only decoding the same bytes with the standard library (ns/op of the
// Decode sub-benchmark); the extra cost of QA is Check minus Decode.
func BenchmarkCheck(b *testing.B) {
	c := qa.New(qa.Thresholds{})
	for _, side := range []int{256, 1024} {
		img := scene(side, side, 1)
		ref := qa.HashImage(img)
		for _, format := range []string{"png", "jpeg"} {
			var buf []byte
			if format == "png" {
				buf = MustPNG(b, img)
			} else {
				buf = MustJPEG(b, img, 85)
			}
			spec := qa.Spec{Width: side, Height: side, Reference: ref, HasReference: true, PreserveSubject: true}
			b.Run(fmt.Sprintf("%s-%d/Decode", format, side), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if format == "png" {
						_, err = png.Decode(bytes.NewReader(buf))
					} else {
						_, err = jpeg.Decode(bytes.NewReader(buf))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s-%d/Check", format, side), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if r := c.Check(buf, spec); !r.Pass {
						b.Fatal(r.Reason)
					}
				}
			})
		}
	}
}

// BenchmarkCheckCached is Check with WithCache on repeated bytes (the
// zero-latency simulator case), against the uncached Check in the same run.
func BenchmarkCheckCached(b *testing.B) {
	img := scene(256, 256, 1)
	buf := MustPNG(b, img)
	spec := qa.Spec{Width: 256, Height: 256}
	for _, tc := range []struct {
		name string
		c    *qa.Checker
	}{{"uncached", qa.New(qa.Thresholds{})}, {"cached", qa.New(qa.Thresholds{}).WithCache(128)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := tc.c.Check(buf, spec); !r.Pass {
					b.Fatal(r.Reason)
				}
			}
		})
	}
}

// BenchmarkCheckVsDecode interleaves, in every iteration, the baselines
// (png.Decode or jpeg.Decode of the bytes alone; Check's path before the
// faster pngWork, qa.CheckPNGBefore, or before jpegWork, CheckImage of
// qa.Decode) and Check, so a loaded machine slows them alike, and reports
// each one's CPU time per image (the goroutine is held on one thread,
// whose CPU time is read: time waiting for a core is not counted) and
// Check's ratio to each. The images: the scene Check passes, a photo-like
// one (noise on the scene: what a real output's PNG is made of, mostly
// Paeth rows and far more compressed bytes; in a JPEG, few blocks without
// AC coefficients), and the peer bench's gradient.
func BenchmarkCheckVsDecode(b *testing.B) {
	c := qa.New(qa.Thresholds{})
	for _, side := range []int{256, 1024} {
		for _, kind := range []string{"png", "png-photo", "png-gradient", "jpeg", "jpeg-photo"} {
			var buf []byte
			switch kind {
			case "png-gradient": // the peer bench's mock image; fails QA (smooth)
				buf = gradientPNG(b, side)
			case "png-photo", "jpeg-photo":
				img := scene(side, side, 1)
				grain(img, 12, 5)
				buf = MustPNG(b, img)
				if kind == "jpeg-photo" {
					buf = MustJPEG(b, img, 85)
				}
			case "jpeg":
				buf = MustJPEG(b, scene(side, side, 1), 85)
			default:
				buf = MustPNG(b, scene(side, side, 1))
			}
			decode, checkBefore := png.Decode, qa.CheckPNGBefore
			if strings.HasPrefix(kind, "jpeg") {
				decode, checkBefore = jpeg.Decode, checkJPEGBefore
			}
			spec := qa.Spec{Width: side, Height: side}
			want := c.Check(buf, spec)
			b.Run(fmt.Sprintf("%s-%d", kind, side), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var dec, before, chk time.Duration
				for b.Loop() {
					t0 := qa.ThreadCPU()
					if _, err := decode(bytes.NewReader(buf)); err != nil {
						b.Fatal(err)
					}
					t1 := qa.ThreadCPU()
					if r := checkBefore(c, buf, spec); r.Pass != want.Pass || r.Score != want.Score {
						b.Fatalf("before: %+v, now %+v", r, want)
					}
					t2 := qa.ThreadCPU()
					if r := c.Check(buf, spec); r.Pass != want.Pass {
						b.Fatal(r.Reason)
					}
					t3 := qa.ThreadCPU()
					dec += t1 - t0
					before += t2 - t1
					chk += t3 - t2
				}
				n := float64(b.N)
				b.ReportMetric(float64(dec)/n, "decode-cpu-ns/op")
				b.ReportMetric(float64(before)/n, "before-cpu-ns/op")
				b.ReportMetric(float64(chk)/n, "check-cpu-ns/op")
				b.ReportMetric(float64(chk)/float64(dec), "check/decode")
				b.ReportMetric(float64(chk)/float64(before), "check/before")
			})
		}
	}
}

// checkJPEGBefore is Check on an unseen JPEG as it was before jpegWork:
// image/jpeg's image measured by CheckImage.
func checkJPEGBefore(c *qa.Checker, b []byte, s qa.Spec) qa.Result {
	img, format, err := qa.Decode(b, c.Thresholds().MaxPixels)
	if err != nil {
		return qa.Result{Reason: err.Error()}
	}
	return c.CheckImage(img, format, s)
}

// grain adds uniform noise of +-amp to every channel, as film grain or a
// photo's texture does: it makes PNG's filters and deflate work as on a
// real output.
func grain(img *image.RGBA, amp int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 9))
	for i := range img.Pix {
		if i%4 == 3 {
			continue
		}
		img.Pix[i] = clamp(int(img.Pix[i]) + r.IntN(2*amp+1) - amp)
	}
}

// gradientPNG is the image the peer bench's mock returns (-px 1024).
func gradientPNG(tb testing.TB, px int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, px, px))
	for y := range px {
		for x := range px {
			img.Set(x, y, color.RGBA{uint8(x * 255 / px), uint8(y * 255 / px), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkCheckUnseen is QA on an image it has not seen (no result cache):
// the peer bench's 1024x1024 gradient, against png.Decode alone.
func BenchmarkCheckUnseen(b *testing.B) {
	buf := gradientPNG(b, 1024)
	c := qa.New(qa.Thresholds{})
	spec := qa.Spec{Width: 1024, Height: 1024, Format: "png"}
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Check(buf, spec)
		}
	})
}
