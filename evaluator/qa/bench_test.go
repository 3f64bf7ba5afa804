package qa_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
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

// BenchmarkCheckVsDecode interleaves the baseline (png.Decode of the bytes)
// and Check in every iteration, so a loaded machine slows both alike, and
// reports each one's mean and their ratio.
func BenchmarkCheckVsDecode(b *testing.B) {
	c := qa.New(qa.Thresholds{})
	for _, side := range []int{256, 1024} {
		buf := MustPNG(b, scene(side, side, 1))
		spec := qa.Spec{Width: side, Height: side}
		b.Run(fmt.Sprintf("png-%d", side), func(b *testing.B) {
			var dec, chk time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if r := c.Check(buf, spec); !r.Pass {
					b.Fatal(r.Reason)
				}
				dec += t1.Sub(t0)
				chk += time.Since(t1)
			}
			b.ReportMetric(float64(dec.Nanoseconds())/float64(b.N), "decode-ns/op")
			b.ReportMetric(float64(chk.Nanoseconds())/float64(b.N), "check-ns/op")
			b.ReportMetric(float64(chk)/float64(dec), "check/decode")
		})
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
