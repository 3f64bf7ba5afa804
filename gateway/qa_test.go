package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

// colorOCR reads text by the colour of the image's first pixel (the test
// providers draw solid images), recording every call.
type colorOCR struct {
	mu    sync.Mutex
	texts map[color.NRGBA]string
	err   error
	calls int
}

func (o *colorOCR) Read(_ context.Context, b []byte) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.err != nil {
		return "", o.err
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	r, g, bl, _ := img.At(0, 0).RGBA()
	return o.texts[color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}], nil
}

var (
	red  = color.NRGBA{200, 0, 0, 255}
	blue = color.NRGBA{0, 0, 200, 255}
)

// textGateway routes to "fast" (red images) then "strong" (blue), with the
// legibility check reading through ocr. The pixel checks are off: the test
// providers draw solid images.
func textGateway(t *testing.T, ocr qa.OCR) (*gateway.Gateway, *gatewaytest.Producer) {
	t.Helper()
	sink := gatewaytest.NewProducer(64)
	check := qa.New(qa.Thresholds{MinStdDev: -1, MinSharpness: -1})
	g := gateway.New(gateway.Config{SampleRate: -1}, gateway.Deps{
		Policy: &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
		Providers: map[string]providers.Provider{
			"fast":   &gatewaytest.Provider{Model: "fast", Color: red},
			"strong": &gatewaytest.Provider{Model: "strong", Color: blue},
		},
		QA:     gateway.NewTextQA(check, qa.NewTextChecker(ocr, qa.TextThresholds{}), slog.New(slog.NewTextHandler(io.Discard, nil))),
		Events: sink,
	})
	return g, sink
}

func qaEvents(sink *gatewaytest.Producer) []*events.QAResult {
	var out []*events.QAResult
	for _, e := range sink.Events() {
		if q, ok := e.Value.(*events.QAResult); ok {
			out = append(out, q)
		}
	}
	return out
}

// TestIllegibleTextEscalates: garbled lettering from the first model fails
// QA with text_illegible and escalates; the QA events record what OCR read
// and the score.
func TestIllegibleTextEscalates(t *testing.T) {
	ocr := &colorOCR{texts: map[color.NRGBA]string{red: "GKAMD 0PEHNC", blue: "GRAND OPENING"}}
	g, sink := textGateway(t, ocr)
	req := request(gateway.NewIDs().Next(), "acme")
	req.Prompt = "A poster that says \u201cGRAND OPENING\u201d"
	o, err := g.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Escalated || o.Model != "strong" || !o.QAPass {
		t.Errorf("Serve = model %s escalated %v qa pass %v, want strong, true, true", o.Model, o.Escalated, o.QAPass)
	}
	evs := qaEvents(sink)
	if len(evs) != 2 {
		t.Fatalf("%d QA events, want 2", len(evs))
	}
	first, second := evs[0], evs[1]
	if first.Pass || first.OCRText != "GKAMD 0PEHNC" || !bytes.HasPrefix([]byte(first.Reason), []byte(qa.ReasonTextIllegible)) {
		t.Errorf("first QA event = pass %v ocr %q reason %q, want a text_illegible failure", first.Pass, first.OCRText, first.Reason)
	}
	if !second.Pass || second.OCRText != "GRAND OPENING" {
		t.Errorf("second QA event = pass %v ocr %q, want a pass reading GRAND OPENING", second.Pass, second.OCRText)
	}
	last := second.Checks[len(second.Checks)-1]
	if last.Name != qa.CheckText || last.Value != 1 {
		t.Errorf("second QA event's last check = %+v, want text with value 1", last)
	}
}

// TestTextCheckOnlyWithTargetText: a prompt that asks for no lettering is
// never sent to OCR, and an OCR failure leaves the verdict to the other
// checks.
func TestTextCheckOnlyWithTargetText(t *testing.T) {
	tests := []struct {
		name, prompt string
		ocrErr       error
		wantCalls    int
	}{
		{"no text asked", "a vintage poster of a stop sign", nil, 0},
		{"ocr down", "a sign that says 'OPEN'", errors.New("engine crashed"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ocr := &colorOCR{err: tt.ocrErr}
			g, sink := textGateway(t, ocr)
			req := request(gateway.NewIDs().Next(), "acme")
			req.Prompt = tt.prompt
			o, err := g.Serve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if o.Model != "fast" || o.Escalated || !o.QAPass {
				t.Errorf("Serve = model %s escalated %v pass %v, want fast, false, true", o.Model, o.Escalated, o.QAPass)
			}
			if ocr.calls != tt.wantCalls {
				t.Errorf("OCR calls = %d, want %d", ocr.calls, tt.wantCalls)
			}
			for _, q := range qaEvents(sink) {
				for _, c := range q.Checks {
					if c.Name == qa.CheckText {
						t.Errorf("QA event has a text check %+v, want none", c)
					}
				}
			}
		})
	}
}
