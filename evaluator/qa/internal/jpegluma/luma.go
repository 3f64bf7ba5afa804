package jpegluma

import (
	"errors"
)

// ErrNotCovered declines a JPEG whose luma this package does not decode:
// image/jpeg returns it as CMYK or RGBA (4 components, or 3 coded as RGB),
// its frame is empty or larger than the pixel bound, or no scan carries
// its first component. Decode it with image/jpeg.
var ErrNotCovered = errors.New("jpegluma: not a JPEG decoded here")

// Luma is the luma plane of a decoded JPEG of Width×Height pixels:
// Pix[y*Stride+x] for x < Width and y < Height is the Y (or grey) value
// image/jpeg decodes there. With Half (Decode's half) it is the rounded
// mean (sum+2)>>2 of the 2x2 block at (2x, 2y), for x < Width/2 and
// y < Height/2.
type Luma struct {
	Pix           []byte
	Width, Height int
	Stride        int
	Half          bool
}

// Decoder decodes JPEG luma planes. It keeps its buffers (the plane, and a
// progressive file's coefficients) from one image to the next, so it is
// not safe for concurrent use; the zero value is ready to use.
type Decoder struct {
	d decoder
}

// Decode decodes the luma plane of the JPEG b, which is valid until the
// next Decode. A frame of more than maxPixels pixels (when positive) is
// declined before any plane is allocated. half, when not nil, is asked
// with the frame's size whether to average the plane's 2x2 blocks as it
// is stored (Luma.Half): a quarter of the memory written, and no second
// pass to average them; an 8x8 block of the plane holds 4x4 whole 2x2
// blocks, so each mean is of four values of one block, as it is
// transformed. The error is ErrNotCovered (errors.Is) or one image/jpeg
// would return on the same bytes; on any error the caller decodes b with
// image/jpeg to have the image or its error, as image/jpeg words it.
func (dec *Decoder) Decode(b []byte, maxPixels int, half func(width, height int) bool) (Luma, error) {
	// Every field but the kept buffers starts as image/jpeg's new decoder:
	// a Huffman or quantization table left from the last image must not
	// stand in for one this image does not define.
	ybuf, coeffBuf := dec.d.ybuf, dec.d.coeffBuf
	dec.d = decoder{ybuf: ybuf, coeffBuf: coeffBuf, maxPixels: maxPixels, halfFor: half}
	d := &dec.d
	err := d.decode(b)
	d.halfFor = nil // not kept for the next image
	if err != nil {
		return Luma{}, err
	}
	return Luma{Pix: d.y, Width: d.width, Height: d.height, Stride: d.yStride, Half: d.half}, nil
}

// Trim drops the buffers larger than n bytes, so that a decoder kept for
// the next image does not hold on to a large one's memory.
func (dec *Decoder) Trim(n int) {
	d := &dec.d
	d.y, d.progCoeffs = nil, [maxComponents][]block{}
	if cap(d.ybuf) > n {
		d.ybuf = nil
	}
	for i, c := range d.coeffBuf {
		if cap(c)*blockSize*4 > n {
			d.coeffBuf[i] = nil
		}
	}
}

// coeffs returns n zeroed blocks for component i's progressive
// coefficients, from the kept buffer.
func (d *decoder) coeffs(i, n int) []block {
	if cap(d.coeffBuf[i]) < n {
		d.coeffBuf[i] = make([]block, n)
		return d.coeffBuf[i]
	}
	c := d.coeffBuf[i][:n]
	clear(c)
	return c
}
