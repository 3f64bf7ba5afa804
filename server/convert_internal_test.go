package server

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// TestConvertVendorCompressed: JPEG bytes at the asked size are encoded
// again at the asked output_compression unless the vendor encoded them at
// it; a resize encodes them again either way.
func TestConvertVendorCompressed(t *testing.T) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 64)), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		w, h             int
		vendorCompressed bool
		wantSame         bool
	}{
		{"vendor was told", 64, 64, true, true},
		{"vendor was not told", 64, 64, false, false},
		{"resized", 32, 32, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, mime, same, err := convert(b.Bytes(), tt.w, tt.h, "jpeg", FitCrop, 40, tt.vendorCompressed)
			if err != nil || mime != "image/jpeg" || same != tt.wantSame {
				t.Errorf("convert = %s, same %v, %v; want same %v", mime, same, err, tt.wantSame)
			}
		})
	}
}
