package qa

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"testing"
)

// The passes of a PNG's check one by one, at the sizes of a 1024x1024 RGB
// image (3073-byte rows, a 512x512 plane), to measure each in isolation.

func benchRows(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32() >> 28) // small residuals, as filtered rows have
	}
	return p
}

func BenchmarkAdler32(b *testing.B) {
	p := benchRows(1024 * (1 + 1024*3))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sum := uint32(1)
		for row := p; len(row) > 0; row = row[3073:] {
			sum = adler32Update(sum, row[:3073])
		}
	}
}

func BenchmarkPaeth(b *testing.B) {
	for _, bpp := range []int{3, 4} {
		b.Run(map[int]string{3: "rgb", 4: "rgba"}[bpp], func(b *testing.B) {
			prev, cur := benchRows(1024*bpp), benchRows(1024*bpp)
			row := make([]byte, len(cur))
			b.SetBytes(int64(len(cur)))
			for b.Loop() {
				copy(row, cur)
				filterPaeth(row, prev, bpp)
			}
		})
	}
}

func BenchmarkLumaBlocks2(b *testing.B) {
	r0, r1 := benchRows(1024*3), benchRows(1024*3)
	dst := make([]uint8, 512)
	b.SetBytes(int64(2 * len(r0)))
	for b.Loop() {
		lumaBlocks2(r0, r1, 3, dst)
	}
}

func BenchmarkStats(b *testing.B) {
	img, err := png.Decode(bytes.NewReader(benchPlanePNG(b)))
	if err != nil {
		b.Fatal(err)
	}
	g := toWork(img, defaultWorkSide, nil)
	for b.Loop() {
		stats(g)
	}
}

func BenchmarkPhash(b *testing.B) {
	img, err := png.Decode(bytes.NewReader(benchPlanePNG(b)))
	if err != nil {
		b.Fatal(err)
	}
	g := toWork(img, defaultWorkSide, nil)
	for b.Loop() {
		phash(g)
	}
}

// benchPlanePNG is a 1024x1024 PNG of noise, flat runs and gradients.
func benchPlanePNG(b *testing.B) []byte { return encodePNG(b, testImage("rgba", 1024, 1024, 1)) }
