package jpegluma_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/evaluator/qa/internal/jpegluma"
)

// smooth is a 1024x1024 picture as generators make them: gradients,
// flat areas, hard edges and a little grain.
func smooth() *image.RGBA {
	const n = 1024
	r := rand.New(rand.NewPCG(7, 7))
	m := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			c := color.RGBA{uint8(x / 4), uint8(y / 4), 160, 255}
			if (x-500)*(x-500)+(y-400)*(y-400) < 200*200 {
				c = color.RGBA{230, 200, uint8(x ^ y), 255}
			}
			g := r.IntN(7) - 3
			c.R, c.G = uint8(int(c.R)+g), uint8(int(c.G)+g)
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// BenchmarkDecode: Decode against image/jpeg's on the same bytes, in the
// same run (compare ratios: the machine is shared).
func BenchmarkDecode(b *testing.B) {
	img := smooth()
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"colour", img}, {"grey", grey(img)}} {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, tc.img, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run(tc.name+"/image-jpeg", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, half := range []func(int, int) bool{never, always} {
			name := "/jpegluma"
			if half(0, 0) {
				name += "-half"
			}
			b.Run(tc.name+name, func(b *testing.B) {
				b.ReportAllocs()
				var dec jpegluma.Decoder
				for b.Loop() {
					if _, err := dec.Decode(data, 0, half); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
