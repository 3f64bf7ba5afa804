package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// drawn answers every call of the world with a fixed quality per model,
// so a test picks which model garbles the lettering.
type drawn struct {
	w       *sim.World
	quality map[string]float64
}

func (d drawn) Call(c sim.Call) sim.Outcome {
	o := d.w.Call(c)
	o.ErrKind, o.CostUSD = "", 0.01
	o.Latency = 500 * time.Millisecond
	o.Quality = d.quality[c.Model]
	o.Success = o.Quality >= sim.SuccessQuality
	return o
}

func mustTesseract(t *testing.T) qa.OCR {
	t.Helper()
	bin, err := tesseract.Find()
	if err != nil {
		t.Skipf("%v; make test installs it", err)
	}
	return tesseract.New(bin, 1, tesseract.PSMSparse)
}

// TestTextQAInTheLab: a poster pinned to the cheap generalist, whose
// hidden draw garbles the lettering (a failure the pixel checks pass),
// fails the lab's QA with text_illegible as Tesseract reads it and
// escalates to a model that draws the words; the QA events record what
// OCR read, and the result keeps QA's observation beside the hidden
// truth. Without OCR the garbled poster is served.
func TestTextQAInTheLab(t *testing.T) {
	ocr := mustTesseract(t)
	p, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	cat := router.Catalog{Models: p.Models}
	world := sim.NewWorld(cat, 1)
	caller := drawn{w: world, quality: map[string]float64{"sim-lite": 0.6}}
	for _, m := range p.Models {
		if m.Name != "sim-lite" {
			caller.quality[m.Name] = 0.95
		}
	}
	req := router.Request{ID: "poster-1", Mode: router.ModeGenerate, Prompt: `A poster that says "GRAND OPENING"`,
		Width: 1024, Height: 1024, Tier: router.TierStandard, Pin: "sim-lite"}
	for _, tt := range []struct {
		name string
		ocr  qa.OCR
	}{{"without OCR", nil}, {"with OCR", ocr}} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lab.New(lab.Config{Catalog: cat, World: world, Caller: caller, Seed: 1, OCR: tt.ocr}, p)
			if err != nil {
				t.Fatal(err)
			}
			res := l.Serve(context.Background(), req)
			if !res.Served() {
				t.Fatalf("not served: %+v", res.Err)
			}
			if res.Text == nil {
				t.Fatal("no text result for a prompt with target text")
			}
			if tt.ocr == nil {
				if res.Outcome.Model != "sim-lite" || res.Text.Judged || res.Text.Hidden {
					t.Errorf("without OCR: served by %s, text %+v; want sim-lite's garbled poster, unjudged", res.Outcome.Model, *res.Text)
				}
				return
			}
			if res.Outcome.Model == "sim-lite" || !res.Outcome.Escalated || !res.Outcome.QAPass {
				t.Errorf("with OCR: served by %s, escalated %v, QA pass %v; want an escalation past sim-lite that passes",
					res.Outcome.Model, res.Outcome.Escalated, res.Outcome.QAPass)
			}
			if len(res.QA) < 2 {
				t.Fatalf("%d QA events, want sim-lite's and the escalation's", len(res.QA))
			}
			first, last := res.QA[0], res.QA[len(res.QA)-1]
			if first.Model != "sim-lite" || first.Pass || !strings.HasPrefix(first.Reason, qa.ReasonTextIllegible) {
				t.Errorf("first QA event: model %s pass %v reason %q; want sim-lite failing %s", first.Model, first.Pass, first.Reason, qa.ReasonTextIllegible)
			}
			if first.OCRText == "" || qa.Legibility(first.OCRText, []string{"GRAND OPENING"}) >= 0.8 {
				t.Errorf("first QA event: OCR read %q, want garbled lettering on record", first.OCRText)
			}
			if qa.Legibility(last.OCRText, []string{"GRAND OPENING"}) < 0.9 {
				t.Errorf("served image's QA event: OCR read %q, want GRAND OPENING", last.OCRText)
			}
			if tx := res.Text; !tx.Judged || !tx.Legible || !tx.Hidden || tx.Read != last.OCRText {
				t.Errorf("text result %+v, want judged legible, hidden success, read %q", *tx, last.OCRText)
			}
			if s := l.TextStats(); s.Reads != 2 || s.Errors != 0 {
				t.Errorf("TextStats = %+v, want 2 images read, no errors", s)
			}
		})
	}
}

// TestTextTally: requests without target text are not counted; QA's
// observation and the truth are summed apart, on all text requests and on
// those OCR read.
func TestTextTally(t *testing.T) {
	served := func(qaPass bool, quality float64, judged bool) lab.Result {
		return lab.Result{Outcome: &gateway.Outcome{QAPass: qaPass}, Quality: quality, Text: &lab.TextResult{Judged: judged}}
	}
	var tl lab.TextTally
	for _, r := range []lab.Result{
		{Outcome: &gateway.Outcome{QAPass: true}, Quality: 0.9}, // no target text
		served(true, 0.9, true),                                 // legible, a success
		served(false, 0.5, true),                                // illegible, a failure
		served(true, 0.5, false),                                // not read: QA passed a failure
		{Text: &lab.TextResult{}},                               // not served
	} {
		tl.Add(&r)
	}
	want := lab.TextSummary{Requests: 4, Success: 0.5, Hidden: 0.25, Judged: 2, JudgedSuccess: 0.5, JudgedHidden: 0.5}
	if got := tl.Summary(); got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
}
