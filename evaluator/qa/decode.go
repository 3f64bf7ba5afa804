package qa

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// Image formats QA accepts, named as in output_format.
const (
	FormatPNG  = "png"
	FormatJPEG = "jpeg"
	FormatWebP = "webp"
)

var (
	// ErrUnknownFormat means the bytes are not PNG, JPEG or WebP by their magic bytes.
	ErrUnknownFormat = errors.New("not a PNG, JPEG or WebP image")
	// ErrTooManyPixels means the header declares more pixels than allowed; the
	// image body was not decoded (decompression-bomb guard).
	ErrTooManyPixels = errors.New("image has too many pixels")
)

// Sniff names the format of b by its magic bytes, or returns "".
func Sniff(b []byte) string {
	switch {
	case len(b) >= 8 && bytes.Equal(b[:8], []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff:
		return FormatJPEG
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return FormatWebP
	}
	return ""
}

// DecodeConfig sniffs the format and reads only the header. It returns
// ErrUnknownFormat, ErrTooManyPixels (when maxPixels > 0 and the declared
// width*height exceeds it) or the decoder's error.
func DecodeConfig(b []byte, maxPixels int) (image.Config, string, error) {
	format := Sniff(b)
	var (
		cfg image.Config
		err error
	)
	r := bytes.NewReader(b)
	switch format {
	case FormatPNG:
		cfg, err = png.DecodeConfig(r)
	case FormatJPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case FormatWebP:
		cfg, err = webp.DecodeConfig(r)
	default:
		return cfg, "", ErrUnknownFormat
	}
	if err != nil {
		return cfg, format, fmt.Errorf("read %s header: %w", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, format, fmt.Errorf("read %s header: empty image %dx%d", format, cfg.Width, cfg.Height)
	}
	if maxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return cfg, format, fmt.Errorf("%dx%d > %d pixels: %w", cfg.Width, cfg.Height, maxPixels, ErrTooManyPixels)
	}
	return cfg, format, nil
}

// Decode checks the header against maxPixels (see DecodeConfig) and only then
// decodes the whole image.
func Decode(b []byte, maxPixels int) (image.Image, string, error) {
	_, format, err := DecodeConfig(b, maxPixels)
	if err != nil {
		return nil, format, err
	}
	var img image.Image
	r := bytes.NewReader(b)
	switch format {
	case FormatPNG:
		img, err = png.Decode(r)
	case FormatJPEG:
		img, err = jpeg.Decode(r)
	case FormatWebP:
		img, err = webp.Decode(r)
	}
	if err != nil {
		return nil, format, fmt.Errorf("decode %s: %w", format, err)
	}
	return img, format, nil
}
