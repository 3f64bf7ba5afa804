package server

import (
	"slices"
	"strconv"
	"sync"

	// AVX2/NEON base64, drop-in for encoding/base64 (same output): encoding
	// the image is the largest CPU cost of a response. Already in the module
	// graph through kafka-go.
	"github.com/segmentio/asm/base64"

	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
)

// bufs recycles response buffers: an image response is hundreds of
// kilobytes of base64, and allocating it per request is most of the GC
// work of the serving path.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

const maxPooledBuf = 8 << 20

// sendImages writes meta as a JSON object with one more member, key, holding
// the images: base64 is encoded straight into the response buffer instead of
// through encoding/json's reflection and intermediate copies. openai leaves
// out the members OpenAI's image objects do not have.
func sendImages(c *fiber.Ctx, meta any, key string, imgs []imageOut, openai bool) error {
	m, err := gojson.Marshal(meta) // byte-identical to encoding/json, faster
	if err != nil {
		return err
	}
	bp := bufs.Get().(*[]byte)
	buf := append((*bp)[:0], m[:len(m)-1]...) // drop the closing brace
	if len(m) > 2 {
		buf = append(buf, ',')
	}
	buf = append(buf, '"')
	buf = append(buf, key...)
	buf = append(buf, `":[`...)
	for i, im := range imgs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		if im.raw != nil {
			buf = append(buf, `"b64_json":"`...)
			n := base64.StdEncoding.EncodedLen(len(im.raw))
			if len(im.b64) == n {
				buf = append(buf, im.b64...) // as the provider sent it
			} else {
				buf = slices.Grow(buf, n)
				base64.StdEncoding.Encode(buf[len(buf):len(buf)+n], im.raw)
				buf = buf[:len(buf)+n]
			}
			buf = append(buf, '"')
		} else {
			buf = append(buf, `"url":`...)
			buf = strconv.AppendQuote(buf, im.URL) // URLs we build are ASCII: Go and JSON quoting agree
		}
		if !openai {
			buf = append(buf, `,"mime_type":`...)
			buf = strconv.AppendQuote(buf, im.MIMEType)
			buf = append(buf, `,"width":`...)
			buf = strconv.AppendInt(buf, int64(im.Width), 10)
			buf = append(buf, `,"height":`...)
			buf = strconv.AppendInt(buf, int64(im.Height), 10)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "]}"...)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	// SwapBody hands buf to fasthttp, which returns it to its own pool when
	// the response is written, and gives back its previous body buffer: no
	// copy of the image, and the buffers circulate between the two pools.
	old := c.Response().SwapBody(buf)
	if cap(old) >= 64<<10 && cap(old) <= maxPooledBuf {
		*bp = old[:0]
		bufs.Put(bp)
	}
	return nil
}
