package qa_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
)

func TestLegibility(t *testing.T) {
	tests := []struct {
		read string
		want []string
		give float64
	}{
		{"GRAND OPENING", []string{"GRAND OPENING"}, 1},
		{"  grand\nopening!\n", []string{"Grand Opening"}, 1},
		{"OPENING\n~ ~\nGRAND", []string{"GRAND OPENING"}, 1},       // sparse text comes in any order
		{"ye LEAMO OPEN os", []string{"GRAND OPENING"}, 1 - 7.0/12}, // GRAND: 4 edits from LEAM; OPENING: 3 insertions after OPEN
		{"GRAND OPEM", []string{"GRAND OPENING"}, 1 - 4.0/12},       // OPEM -> OPENING: 1 substitution, 3 insertions
		{"", []string{"SALE"}, 0},                                   // nothing read
		{"anything", []string{"!!!"}, 1},                            // nothing to read
		{"Dont Panic", []string{"Don\u2019t Panic!"}, 1},            // punctuation is not scored
		{"OPEN CLOSED", []string{"OPEN", "CLOSED"}, 1},              // several targets
		{"\u55b6\u696d\u4e2d", []string{"\u55b6\u696d\u4e2d"}, 1},   // beyond Latin
		{"XXXXXXXXXXXXXXXX", []string{"ABC"}, 0},                    // nothing alike
		{"SUMMERX SAL", []string{"SUMMER SALE"}, 1 - 2.0/10},        // a letter too many counts as one too few
		{"SUM MER SALE", []string{"SUMMER SALE"}, 1},                // a word split in two
	}
	for _, tt := range tests {
		got := qa.Legibility(tt.read, tt.want)
		if math.Abs(got-tt.give) > 1e-9 {
			t.Errorf("Legibility(%q, %q) = %v, want %v", tt.read, tt.want, got, tt.give)
		}
	}
}

// fakeOCR reads a fixed text, counting calls; block makes it wait for ctx.
type fakeOCR struct {
	text  string
	block bool
	calls atomic.Int64
}

func (f *fakeOCR) Read(ctx context.Context, img []byte) (string, error) {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return f.text, nil
}

func TestTextCheckerThresholdsByTier(t *testing.T) {
	// "GRAND OPNNG": two letters of twelve missing, legibility 0.833.
	tests := []struct {
		read, tier string
		wantPass   bool
	}{
		{"GRAND OPNNG", "draft", true},
		{"GRAND OPNNG", "standard", true},
		{"GRAND OPNNG", "premium", false},
		{"GRAND OPENING", "premium", true},
		{"GKAMD OPFNNG", "draft", false},
	}
	for _, tt := range tests {
		c := qa.NewTextChecker(&fakeOCR{text: tt.read}, qa.TextThresholds{})
		r, err := c.Check(context.Background(), []byte("img"), nil, 0, []string{"GRAND OPENING"}, tt.tier)
		if err != nil {
			t.Fatal(err)
		}
		if r.Pass != tt.wantPass {
			t.Errorf("Check(read %q, tier %s) pass = %v (score %v), want %v", tt.read, tt.tier, r.Pass, r.Score, tt.wantPass)
		}
		if !r.Pass && !strings.HasPrefix(r.Reason, qa.ReasonTextIllegible+": ") {
			t.Errorf("Check(read %q) reason = %q, want it to start with %s", tt.read, r.Reason, qa.ReasonTextIllegible)
		}
		if r.Read != tt.read {
			t.Errorf("Check(read %q) Read = %q", tt.read, r.Read)
		}
	}
}

// TestTextCheckerCachesReadingsByImage: OCR reads an image once; the same
// image checked against other words or at another tier is scored from the
// cached reading.
func TestTextCheckerCachesReadingsByImage(t *testing.T) {
	o := &fakeOCR{text: "SALE"}
	c := qa.NewTextChecker(o, qa.TextThresholds{})
	ctx := context.Background()
	for range 3 {
		r, err := c.Check(ctx, []byte("same bytes"), nil, 0, []string{"SALE"}, "standard")
		if err != nil || !r.Pass {
			t.Fatalf("Check(SALE) = %+v, %v; want a pass", r, err)
		}
	}
	r, err := c.Check(ctx, []byte("same bytes"), nil, 0, []string{"OPEN"}, "premium")
	if err != nil || r.Pass || r.Read != "SALE" {
		t.Errorf("Check(OPEN) of an image reading SALE = %+v, %v; want a failure that read SALE", r, err)
	}
	if _, err := c.Check(ctx, []byte("other bytes"), nil, 0, []string{"SALE"}, "standard"); err != nil {
		t.Fatal(err)
	}
	if n := o.calls.Load(); n != 2 {
		t.Errorf("OCR calls = %d, want 2 (one per distinct image)", n)
	}
	if s := c.Stats(); s != (qa.TextStats{Checks: 5, Reads: 2}) {
		t.Errorf("Stats = %+v, want 5 checks, 2 reads, no errors", s)
	}
}

func TestTextCheckerTimeLimit(t *testing.T) {
	c := qa.NewTextChecker(&fakeOCR{block: true}, qa.TextThresholds{Timeout: time.Millisecond})
	_, err := c.Check(context.Background(), []byte("img"), nil, 0, []string{"SALE"}, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check with a stuck OCR = %v, want the time limit's DeadlineExceeded", err)
	}
}

func TestAddText(t *testing.T) {
	base := func() qa.Result {
		return qa.Result{Pass: true, Score: 0.9, Checks: []events.QACheck{{Name: qa.CheckBlank, Pass: true, Value: 40}, {Name: qa.CheckSharpness, Pass: true, Value: 300}}}
	}
	r := base()
	r.AddText(qa.TextResult{Pass: false, Score: 0.3, Read: "GKAND", Reason: "text_illegible: x"})
	want := qa.Result{Pass: false, Score: 0.7, Reason: "text_illegible: x", OCRText: "GKAND", Checks: []events.QACheck{
		{Name: qa.CheckBlank, Pass: true, Value: 40}, {Name: qa.CheckSharpness, Pass: true, Value: 300}, {Name: qa.CheckText, Pass: false, Value: 0.3}}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("AddText(illegible) (-want +got):\n%s", diff)
	}
	r = base()
	r.Pass, r.Reason = false, "blank: flat"
	r.AddText(qa.TextResult{Pass: false, Score: 0.3, Reason: "text_illegible: x"})
	if r.Reason != "blank: flat; text_illegible: x" {
		t.Errorf("AddText after another failure: reason %q", r.Reason)
	}
	r = base()
	r.AddText(qa.TextResult{Pass: true, Score: 1, Read: "SALE"})
	if !r.Pass || r.Reason != "" || r.Score != 0.933 {
		t.Errorf("AddText(legible) = pass %v reason %q score %v, want true, \"\", 0.933", r.Pass, r.Reason, r.Score)
	}
}

// Words OCR's English data cannot read are left out of the check; with none
// left there is no verdict.
func TestTextCheckerOnlyReadableScripts(t *testing.T) {
	o := &fakeOCR{text: "SALE"}
	c := qa.NewTextChecker(o, qa.TextThresholds{})
	ctx := context.Background()
	if _, err := c.Check(ctx, []byte("a"), nil, 0, []string{"\u55b6\u696d\u4e2d"}, ""); !errors.Is(err, qa.ErrNoReadableText) {
		t.Errorf("Check(CJK only) = %v, want ErrNoReadableText", err)
	}
	if o.calls.Load() != 0 {
		t.Errorf("OCR ran %d times for text it cannot read", o.calls.Load())
	}
	r, err := c.Check(ctx, []byte("b"), nil, 0, []string{"SALE \u5927\u58f2\u51fa\u3057", "Caf\u00e9"}, "")
	// SALE matches; CAF\u00c9 is 3 edits from SALE: 1 - 3/8.
	if err != nil || r.Score != 0.625 {
		t.Errorf("Check(SALE + CJK, Caf\u00e9) read SALE = %+v, %v; want score 0.625 (the CJK word left out)", r, err)
	}
}
