package server

import (
	"bufio"
	"context"
	"slices"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/segmentio/asm/base64"

	"github.com/routelab/routelab/gateway"
)

// Streaming (stream: true on /v1/images/generations and /v1/images/edits)
// answers as Server-Sent Events in the shape of OpenAI's Images API: any
// partial images, then one "<prefix>.completed" event per image, where
// prefix is image_generation or image_edit. The request is routed, served,
// checked by QA and escalated exactly as a non-streaming one; the events
// go out when the gateway's outcome is in. The providers routelab calls
// today answer whole images (none streams partials), so the stream carries
// no partial_image events and ends with the final image, as OpenAI's
// documentation allows ("you may receive fewer partial images than
// requested"). While the request is served, a comment line every
// streamKeepAlive keeps proxies from timing the connection out, and
// notices a client that went away (the request is then cancelled).

// streamKeepAlive is how often a comment line is written while waiting.
const streamKeepAlive = 5 * time.Second

// maxPartialImages is OpenAI's bound on partial_images.
const maxPartialImages = 3

// streamEvent is one of OpenAI's image stream events. Model, CostUSD
// and Simulated are routelab's extensions on the completed event (SDKs
// keep unknown fields aside).
type streamEvent struct {
	Type              string       `json:"type"`
	B64JSON           string       `json:"b64_json"`
	Background        string       `json:"background"`
	CreatedAt         int64        `json:"created_at"`
	OutputFormat      string       `json:"output_format"`
	Quality           string       `json:"quality"`
	Size              string       `json:"size"`
	PartialImageIndex *int         `json:"partial_image_index,omitempty"`
	Usage             *streamUsage `json:"usage,omitempty"`
	Model             string       `json:"model,omitempty"`
	CostUSD           float64      `json:"cost_usd,omitempty"`
	Simulated         bool         `json:"simulated,omitempty"`
}

// streamUsage is OpenAI's token usage of a completed event. Providers
// that report no token usage (all but OpenAI's; the simulator) give zeros.
type streamUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		ImageTokens int64 `json:"image_tokens"`
		TextTokens  int64 `json:"text_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

// streamError is the data of an "error" event: its error member is what
// OpenAI's SDKs turn into a stream error.
type streamError struct {
	Type  string      `json:"type"`
	Error errorDetail `json:"error"`
}

func validateStream(r *imageRequest, j *job) error {
	if r.PartialImages != nil && (*r.PartialImages < 0 || *r.PartialImages > maxPartialImages) {
		return errField(CodeInvalidField, "partial_images", "partial_images must be between 0 and 3")
	}
	if !r.Stream {
		return nil
	}
	if r.openaiEvents == "" {
		return errField(CodeInvalidField, "stream", "stream is offered on /v1/images/generations and /v1/images/edits")
	}
	if j.responseFormat == "url" {
		return errField(CodeInvalidRespFormat, "response_format", "a stream carries images as b64_json; leave response_format out")
	}
	j.stream = r.openaiEvents
	if r.PartialImages != nil {
		j.partialImages = *r.PartialImages
	}
	return nil
}

// serveStream answers j as an event stream. The headers go out at once;
// the body is written by fasthttp after this handler returns, so nothing
// of c is used in it, and the server counts the stream as in flight until
// it ends (a drain waits for it).
func (h *handlers) serveStream(c *fiber.Ctx, j *job) error {
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: pass events through unbuffered
	h.srv.inflight.Add(1)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.srv.inflight.Add(-1)
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
		defer cancel()
		h.stream(ctx, cancel, w, j)
	})
	return nil
}

func (h *handlers) stream(ctx context.Context, cancel context.CancelFunc, w *bufio.Writer, j *job) {
	type result struct {
		o   *gateway.Outcome
		err error
	}
	// fasthttp sends the headers with the first flush: a comment line
	// (which SSE clients skip) gets them to the client now.
	_, _ = w.WriteString(": " + j.id + "\n\n")
	if err := w.Flush(); err != nil {
		return
	}
	done := make(chan result, 1)
	go func() {
		o, err := h.serve(ctx, j)
		done <- result{o, err}
	}()
	tick := time.NewTicker(streamKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_, _ = w.WriteString(": keep-alive\n\n")
			if err := w.Flush(); err != nil {
				cancel() // the client left: stop serving it
			}
		case r := <-done:
			if r.err != nil {
				e := toError(r.err)
				if e.Code == CodeInternal {
					h.log.Error("internal error", "request_id", j.id, "err", r.err)
				}
				writeEvent(w, "error", streamError{Type: "error", Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, Type: e.Code}})
				return
			}
			h.writeCompleted(w, j, r.o)
			return
		}
	}
}

// writeCompleted writes one completed event per image, converted to the
// size and format asked for as a non-streaming response is.
func (h *handlers) writeCompleted(w *bufio.Writer, j *job, o *gateway.Outcome) {
	sim := h.simulated(o.Model)
	usage := &streamUsage{}
	if u := o.Usage; u != nil {
		usage.InputTokensDetails.TextTokens, usage.InputTokensDetails.ImageTokens = u.InputTextTokens, u.InputImageTokens
		usage.InputTokens = u.InputTextTokens + u.InputImageTokens
		usage.OutputTokens = u.OutputImageTokens + u.OutputTextTokens
		usage.TotalTokens = usage.InputTokens + usage.OutputTokens
	}
	for _, im := range o.Images {
		im, _, iw, ih := h.deliverable(j, o.ID, im)
		size := strconv.Itoa(iw) + "x" + strconv.Itoa(ih)
		b64 := im.Base64
		if b64 == "" {
			buf := make([]byte, base64.StdEncoding.EncodedLen(len(im.Bytes)))
			base64.StdEncoding.Encode(buf, im.Bytes)
			b64 = string(buf)
		}
		writeEvent(w, j.stream+".completed", streamEvent{
			Type: j.stream + ".completed", B64JSON: b64, Background: "auto", CreatedAt: o.Created.Unix(),
			OutputFormat: j.format, Quality: openaiQuality(string(j.tier)), Size: size, Usage: usage,
			Model: o.Model, CostUSD: o.CostUSD / float64(max(len(o.Images), 1)), Simulated: sim,
		})
	}
}

// writeEvent writes one SSE event and flushes it; a write error means the
// client left, which the caller learns from its context or not at all.
func writeEvent(w *bufio.Writer, event string, data any) {
	b, err := gojson.Marshal(data)
	if err != nil {
		return // our own structs: cannot fail
	}
	buf := slices.Grow([]byte("event: "), len(event)+len(b)+16)
	buf = append(buf, event...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	_, _ = w.Write(buf)
	_ = w.Flush()
}
