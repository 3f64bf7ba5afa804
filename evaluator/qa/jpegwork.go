package qa

import (
	"sync"

	"github.com/routelab/routelab/evaluator/qa/internal/jpegluma"
)

// jpegWork decodes b, a JPEG, straight into the luma work plane that
// toWork(jpeg.Decode(b), maxSide, buf) makes: the same values, from the Y
// plane alone. image/jpeg decodes all three components into a new image
// (1.6 MB for a 1024x1024 4:2:0 picture); jpegluma, its fork, still
// Huffman-decodes them all (a scan interleaves them) but transforms and
// stores only Y, into a plane its pooled Decoder keeps. ok is false for
// whatever jpegluma declines (CMYK, RGB-coded) and for any error, so the
// caller decodes b with image/jpeg instead, which reports the error as it
// always did. The caller checks MaxPixels first (DecodeConfig).
func jpegWork(b []byte, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
	dec := jpegDecoders.Get().(*jpegluma.Decoder)
	defer func() {
		dec.Trim(maxPooled)
		jpegDecoders.Put(dec)
	}()
	y, err := dec.Decode(b, 0)
	if err != nil {
		return gray{}, 0, 0, false
	}
	ow, oh, f := workSize(y.Width, y.Height, maxSide)
	g = newGray(ow, oh, buf)
	lumaBlocks(y.Pix, y.Stride, g, f)
	return g, y.Width, y.Height, true
}

var jpegDecoders = sync.Pool{New: func() any { return new(jpegluma.Decoder) }}

// streamWork makes the work plane of b, a PNG or JPEG by Sniff, without
// the decoded image (pngWork, jpegWork); ok is false for another format
// or when the reader declines b. The caller checks MaxPixels first.
func streamWork(b []byte, format string, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
	switch format {
	case FormatPNG:
		return pngWork(b, maxSide, buf)
	case FormatJPEG:
		return jpegWork(b, maxSide, buf)
	}
	return gray{}, 0, 0, false
}
