package qa_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/routelab/routelab/evaluator/qa"
)

// FuzzDecode feeds arbitrary bytes to the reference-image decoder. It must
// not panic, and the decompression-bomb guard must hold: an image that
// decodes never has more pixels than maxPixels, whatever its header says.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.webp")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	img := image.NewNRGBA(image.Rect(0, 0, 6, 4))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 13)
	}
	var pngBuf, jpegBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		f.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, img, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(pngBuf.Bytes())
	f.Add(jpegBuf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, format, cfgErr := qa.DecodeConfig(b, maxPixels)
		img, format2, err := qa.Decode(b, maxPixels)
		if format != format2 || format != qa.Sniff(b) {
			t.Fatalf("formats: DecodeConfig %q, Decode %q, Sniff %q", format, format2, qa.Sniff(b))
		}
		if cfgErr != nil && err == nil {
			t.Fatalf("Decode accepted what DecodeConfig refused (%v)", cfgErr)
		}
		if errors.Is(cfgErr, qa.ErrTooManyPixels) != errors.Is(err, qa.ErrTooManyPixels) {
			t.Fatalf("pixel guard: DecodeConfig %v, Decode %v", cfgErr, err)
		}
		if err != nil {
			return
		}
		r := img.Bounds()
		if r.Dx()*r.Dy() > maxPixels {
			t.Fatalf("decoded %dx%d (header %dx%d), more than %d pixels", r.Dx(), r.Dy(), cfg.Width, cfg.Height, maxPixels)
		}
		if _, err := qa.HashBytes(b, maxPixels); err != nil {
			t.Fatalf("HashBytes of a decodable image: %v", err)
		}
	})
}
