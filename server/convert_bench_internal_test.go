package server

import (
	"bytes"
	"image"
	"image/png"
	"math/rand/v2"
	"testing"
)

// BenchmarkConvert measures what the server adds when a vendor's PNG is
// not what was asked: a 1024x1024 PNG to WebP and to JPEG, and a 1248x832
// one (Gemini's 3:2) scaled to 1536x1024.
func BenchmarkConvert(b *testing.B) {
	src := func(w, h int) []byte {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < len(img.Pix); i += 4 {
			p := i / 4
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(p%w), uint8(p/w), uint8(r.IntN(32)), 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	sq, wide := src(1024, 1024), src(1248, 832)
	for _, bc := range []struct {
		name   string
		in     []byte
		w, h   int
		format string
	}{
		{"png1024-to-webp", sq, 1024, 1024, "webp"},
		{"png1024-to-jpeg", sq, 1024, 1024, "jpeg"},
		{"png1248x832-to-1536x1024-png", wide, 1536, 1024, "png"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := convert(bc.in, bc.w, bc.h, bc.format, FitCrop, -1, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
