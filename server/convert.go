package server

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"

	"github.com/gen2brain/webp"
	xdraw "golang.org/x/image/draw"

	"github.com/routelab/routelab/evaluator/qa"
)

// convertPixels bounds what the server decodes to convert: the largest
// vendor outputs are ~16 Mpx (4096x4096); 40 Mpx is QA's own bound.
const convertPixels = 40_000_000

// Default qualities when the request gives no output_compression: JPEG
// at 90 is visually lossless for photos at a fifth of PNG's bytes; WebP at
// 90 likewise (100 would switch libwebp to lossless, 5-10x slower).
const (
	defaultJPEGQuality = 90
	defaultWebPQuality = 90
)

var mimeOf = map[string]string{qa.FormatPNG: "image/png", qa.FormatJPEG: "image/jpeg", qa.FormatWebP: "image/webp"}

// Fit policies: how an image of another aspect than asked becomes the
// size asked for.
const (
	FitCrop   = "crop"   // scale to cover w×h, cut the centre of the longer side (default)
	FitPad    = "pad"    // scale to fit inside w×h, centred on transparent padding (white in JPEG)
	FitNative = "native" // deliver the vendor's size as it is, only converting the format
)

// convert returns b at w×h (when both are positive and fit is not native)
// encoded as format (png | jpeg | webp) with its MIME type, and whether
// that is b itself. Vendors answer at their native sizes (Gemini: 1248x832
// for a 3:2 request): the image is scaled to the size asked for, by the
// fit policy when its aspect differs. Formats: vendors answer in the format they like (Gemini and Ideogram send
// PNG whatever was asked, the simulator sends PNG for webp), and the
// client gets what it asked for. compression (0-100, -1 = not given) is
// output_compression: the JPEG or WebP quality; bytes already in the asked
// lossy format are re-encoded only when it is given and below 100, unless
// the vendor encoded them at it (vendorCompressed: it was told). Bytes
// already right are returned as they are.
func convert(b []byte, w, h int, format, fit string, compression int, vendorCompressed bool) (_ []byte, mime string, same bool, _ error) {
	if fit == FitNative {
		w, h = 0, 0
	}
	have := qa.Sniff(b)
	if have == "" {
		return nil, "", false, fmt.Errorf("convert to %s: unrecognised image bytes", format)
	}
	cfg, _, err := qa.DecodeConfig(b, convertPixels)
	if err != nil {
		return nil, "", false, fmt.Errorf("convert %s to %s: %w", have, format, err)
	}
	resize := w > 0 && h > 0 && (cfg.Width != w || cfg.Height != h)
	if !resize && have == format && (format == qa.FormatPNG || compression < 0 || compression >= 100 || vendorCompressed) {
		return b, mimeOf[have], true, nil
	}
	img, _, err := qa.Decode(b, convertPixels)
	if err != nil {
		return nil, "", false, fmt.Errorf("convert %s to %s: %w", have, format, err)
	}
	if resize && fit == FitPad {
		img = fitPad(img, w, h)
	} else if resize {
		img = fitCrop(img, w, h)
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	switch format {
	case qa.FormatPNG:
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	case qa.FormatJPEG:
		q := defaultJPEGQuality
		if compression >= 0 {
			q = max(compression, 1)
		}
		err = jpeg.Encode(&buf, onWhite(img), &jpeg.Options{Quality: q})
	case qa.FormatWebP:
		q := defaultWebPQuality
		if compression >= 0 {
			q = max(compression, 1)
		}
		err = webp.Encode(&buf, img, webp.Options{Quality: q, Method: 2})
	default:
		return nil, "", false, fmt.Errorf("convert to %q: unknown format", format)
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("encode %s: %w", format, err)
	}
	return buf.Bytes(), mimeOf[format], false, nil
}

// onWhite flattens an image with transparency onto white: JPEG has no
// alpha, and image/jpeg would otherwise keep the colour values under
// transparent pixels (often black).
func onWhite(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	dst := image.NewRGBA(img.Bounds())
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), img, img.Bounds().Min, draw.Over)
	return dst
}

// fitCrop scales img to w×h, cutting the centre of the longer side first
// when the aspects differ.
func fitCrop(img image.Image, w, h int) image.Image {
	src := img.Bounds()
	sw, sh := src.Dx(), src.Dy()
	if sw*h > sh*w { // wider than asked: crop the sides
		cw := sh * w / h
		src.Min.X += (sw - cw) / 2
		src.Max.X = src.Min.X + cw
	} else if sw*h < sh*w { // taller: crop top and bottom
		ch := sw * h / w
		src.Min.Y += (sh - ch) / 2
		src.Max.Y = src.Min.Y + ch
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(dst, dst.Bounds(), img, src, xdraw.Src, nil)
	return dst
}

// fitPad scales img to fit inside w×h and centres it on a transparent
// canvas of w×h: nothing of the vendor's image is cut.
func fitPad(img image.Image, w, h int) image.Image {
	src := img.Bounds()
	sw, sh := src.Dx(), src.Dy()
	dw, dh := w, sh*w/sw // as wide as asked
	if dh > h {          // too tall: as high as asked
		dw, dh = sw*h/sh, h
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h)) // zero: transparent
	at := image.Rect((w-dw)/2, (h-dh)/2, (w-dw)/2+dw, (h-dh)/2+dh)
	xdraw.BiLinear.Scale(dst, at, img, src, xdraw.Src, nil)
	return dst
}
