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
// stores only Y, into a plane its pooled Decoder keeps (at half size when
// the work plane averages 2x2 blocks). ok is false for whatever jpegluma
// declines (CMYK, RGB-coded, more than maxPixels when positive, empty)
// and for any error, so the caller decodes b with image/jpeg instead,
// which reports the error as it always did.
func jpegWork(b []byte, maxPixels, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
	dec := jpegDecoders.Get().(*jpegluma.Decoder)
	defer func() {
		dec.Trim(maxPooled)
		jpegDecoders.Put(dec)
	}()
	// A plane averaged 2x2 (a 1024 px output's) is averaged as jpegluma
	// stores it.
	y, err := dec.Decode(b, maxPixels, func(w, h int) bool {
		_, _, f := workSize(w, h, maxSide)
		return f == 2
	})
	if err != nil {
		return gray{}, 0, 0, false
	}
	ow, oh, f := workSize(y.Width, y.Height, maxSide)
	g = newGray(ow, oh, buf)
	if y.Half {
		lumaBlocks(y.Pix, y.Stride, g, 1) // the means, copied
	} else {
		lumaBlocks(y.Pix, y.Stride, g, f)
	}
	return g, y.Width, y.Height, true
}

var jpegDecoders = sync.Pool{New: func() any { return new(jpegluma.Decoder) }}

// streamWork makes the work plane of b, a PNG or JPEG by Sniff, without
// the decoded image (pngWork, jpegWork), once its header passes
// DecodeConfig(b, maxPixels); ok is false for another format, a header
// that does not pass, or bytes the reader declines.
//
// A JPEG's header is checked by jpegluma instead (image/jpeg's
// DecodeConfig allocates its 13 KB decoder): it declines empty frames and
// frames over maxPixels, and what image/jpeg's DecodeConfig refuses its
// Decode refuses too (it reads the same markers up to the first scan,
// only skipping the tables Decode checks), so no JPEG jpegluma decodes
// would have failed the format check. FuzzJPEGLuma checks this.
func streamWork(b []byte, format string, maxPixels, maxSide int, buf []uint8) (g gray, w, h int, ok bool) {
	switch format {
	case FormatPNG:
		if _, _, err := DecodeConfig(b, maxPixels); err != nil {
			return gray{}, 0, 0, false
		}
		return pngWork(b, maxSide, buf)
	case FormatJPEG:
		return jpegWork(b, maxPixels, maxSide, buf)
	}
	return gray{}, 0, 0, false
}
