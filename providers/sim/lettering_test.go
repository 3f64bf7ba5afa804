package sim_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// TestLetteringReadByTesseract is the contract between the renderer and
// OCR QA: a successful render's lettering passes the legibility check at
// the premium threshold, a failed one's fails it at the draft threshold.
// Renders and Tesseract are deterministic, so the outcomes are too.
func TestLetteringReadByTesseract(t *testing.T) {
	bin, err := tesseract.Find()
	if err != nil {
		t.Skipf("%v; make test installs it", err)
	}
	ocr := tesseract.New(bin, 2, tesseract.PSMSparse)
	th := qa.DefaultTextThresholds()
	prompts := []string{
		"A poster that says \u201cGRAND OPENING\u201d",
		"A banner with the words 'SUMMER SALE' in bold letters",
		`The saying "BE EXCELLENT TO EACH OTHER" written in a stained glass window.`,
		"a t-shirt with Carpe Diem written on it",
	}
	tests := []struct {
		quality     float64
		wantLegible bool
	}{
		{sim.SuccessQuality, true},
		{0.6, false},
		{0.3, false},
	}
	type result struct {
		prompt, read string
		quality      float64
		wantLegible  bool
		err          error
	}
	results := make(chan result, len(tests)*len(prompts))
	n := 0
	for _, tt := range tests {
		for i, p := range prompts {
			n++
			go func() { // the reader's pool runs two at a time
				b := sim.Render(p, 512, 512, tt.quality, uint64(i+1))
				read, err := ocr.Read(context.Background(), b)
				results <- result{p, read, tt.quality, tt.wantLegible, err}
			}()
		}
	}
	for range n {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		l := qa.Legibility(res.read, router.TargetTexts(res.prompt))
		if res.wantLegible && l < th.Premium || !res.wantLegible && l >= th.Draft {
			t.Errorf("Render(%q, quality %.2f): Tesseract read %q, legibility %.2f; want legible %v", res.prompt, res.quality, res.read, l, res.wantLegible)
		}
	}
}
