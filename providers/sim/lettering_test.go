package sim_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/lab/labtest"
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

// TestLabOCRQAAgreesWithTruth calibrates the QA signal itself: simulated
// calls on text prompts, each rendered at its drawn quality and read by
// Tesseract, and text_illegible (legibility below the standard threshold)
// set against the hidden truth (the call's Success). It logs precision and
// recall of text_illegible and holds both at 0.9 or more. A heavy run (a
// Tesseract process per image): make test-heavy runs it.
func TestLabOCRQAAgreesWithTruth(t *testing.T) {
	labtest.Heavy(t)
	bin, err := tesseract.Find()
	if err != nil {
		t.Skipf("%v; make test installs it", err)
	}
	cat, err := datasets.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	w := sim.NewWorld(cat, 1)
	ocr := tesseract.New(bin, 2, tesseract.PSMSparse)
	min := qa.DefaultTextThresholds().Standard
	prompts := []string{
		"A poster that says \u201cGRAND OPENING\u201d", `A storefront sign reading "FRESH BREAD"`,
		"A banner with the words 'SUMMER SALE' in bold letters", `A coffee cup labeled "MORNING"`,
		`A book cover titled "OCEAN DREAMS"`, "a t-shirt with Carpe Diem written on it",
		`a yellow sticky note with 'BUY MILK' written on it`, `A green sign that says "Very Deep Learning"`,
	}
	type call struct {
		truthFail, flagged bool
		err                error
	}
	calls := make(chan call, 64)
	n := 0
	for _, model := range []string{"sim-lite", "sim-fast", "sim-typo", "sim-premium"} {
		for i, p := range prompts {
			o := w.Call(sim.Call{RequestID: fmt.Sprintf("cal-%d", i), Model: model, Mode: "generate", Prompt: p, Width: 512, Height: 512})
			if o.ErrKind != "" {
				continue
			}
			n++
			go func() {
				read, err := ocr.Read(context.Background(), sim.Render(p, 512, 512, o.Quality, uint64(i)))
				calls <- call{truthFail: !o.Success, flagged: qa.Legibility(read, router.TargetTexts(p)) < min, err: err}
			}()
		}
	}
	var tp, fp, fn int
	for range n {
		c := <-calls
		if c.err != nil {
			t.Fatal(c.err)
		}
		switch {
		case c.flagged && c.truthFail:
			tp++
		case c.flagged:
			fp++
		case c.truthFail:
			fn++
		}
	}
	precision, recall := float64(tp)/float64(max(tp+fp, 1)), float64(tp)/float64(max(tp+fn, 1))
	t.Logf("text_illegible vs hidden truth over %d calls: %d true, %d false positives, %d missed; precision %.2f recall %.2f", n, tp, fp, fn, precision, recall)
	if tp+fn == 0 || precision < 0.9 || recall < 0.9 {
		t.Errorf("precision %.2f recall %.2f (of %d failures), want both >= 0.9", precision, recall, tp+fn)
	}
}
