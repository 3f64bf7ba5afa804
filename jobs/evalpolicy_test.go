package jobs_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/lab/labtest"
)

// EvalPolicy runs the policy and every baseline on the same requests: the
// policy first, the oracle last with no regret, and the targets computed.
func TestEvalPolicy(t *testing.T) {
	p, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(5, 400)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := jobs.EvalPolicy(context.Background(), p, items, jobs.EvalConfig{WorldSeed: 7, Workers: 2, Frontier: true, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Policies {
		names = append(names, r.Name)
	}
	want := 3 + len(p.Models) + 1
	if len(names) != want || names[0] != "explore" || names[1] != "rules-only" || names[2] != "random" ||
		!strings.HasPrefix(names[3], "always:") || names[len(names)-1] != "oracle" {
		t.Fatalf("rows = %v, want explore, rules-only, random, always:* x%d, oracle", names, len(p.Models))
	}
	oracle := rep.Policies[len(rep.Policies)-1]
	if oracle.Regret != 0 || oracle.SuccessRate < rep.Policies[0].SuccessRate {
		t.Errorf("oracle regret %v success %v, policy success %v: the oracle is the ceiling", oracle.Regret, oracle.SuccessRate, rep.Policies[0].SuccessRate)
	}
	if rep.Requests != 400 || rep.Calibration.N == 0 || rep.Calibration.N > 400 || rep.Frontier != nil {
		t.Errorf("requests %d, calibration n %d, frontier %v; want 400, (0, 400] and none (no classifier)", rep.Requests, rep.Calibration.N, rep.Frontier)
	}
	for _, k := range []string{"best_single", "within_1pt_of_best", "beats_rules_only", "ece_at_most_0.03"} {
		if _, ok := rep.Targets[k]; !ok {
			t.Errorf("targets lack %s: %v", k, rep.Targets)
		}
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "\nrouter ") || !strings.Contains(b.String(), "\noracle ") || !strings.Contains(b.String(), "calibration of explore: ECE ") {
		t.Errorf("WriteText lacks the table header:\n%s", b.String())
	}
}

// readsNothing is an OCR that finds no text in any image: QA calls every
// output illegible.
type readsNothing struct{}

func (readsNothing) Read(context.Context, []byte) (string, error) { return "", nil }

// TestLabEvalTextRouting: the shipped default policy sends the requests with
// words to render to a text-capable model whenever one may serve them, and
// keeps the typography specialist for them; OCR QA reading the simulated
// outputs with real Tesseract agrees with the hidden draws.
func TestLabEvalTextRouting(t *testing.T) {
	labtest.Heavy(t) // every baseline over 800 requests, and 80 renders read by OCR
	p, err := datasets.Policy("default")
	if err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(5, 800)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jobs.EvalConfig{WorldSeed: 7, Workers: 2, Progress: t.Logf}
	bin, err := tesseract.Find()
	if err != nil {
		t.Fatalf("%v (make test installs it)", err)
	}
	cfg.OCR, cfg.OCRSample = tesseract.New(bin, 2, tesseract.PSMSparse), 40
	rep, err := jobs.EvalPolicy(context.Background(), p, items, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Text
	if strings.Join(tr.TextCapable, ",") != "sim-premium,sim-typo" || strings.Join(tr.Specialists, ",") != "sim-typo" {
		t.Errorf("text-capable %v, specialists %v; want sim-premium and sim-typo, and sim-typo", tr.TextCapable, tr.Specialists)
	}
	if tr.WithText < 50 || tr.WithTextEligible > tr.WithText || tr.WithText+tr.WithoutText != 800 {
		t.Fatalf("with text %d (eligible %d), without %d of 800", tr.WithText, tr.WithTextEligible, tr.WithoutText)
	}
	if tr.WithTextToCapable < 0.9 || tr.WithoutTextToSpecialist > 0.1 {
		t.Errorf("text to text-capable %.3f (want >= 0.9), no text to the specialist %.3f (want <= 0.1)", tr.WithTextToCapable, tr.WithoutTextToSpecialist)
	}
	o := tr.OCR
	if o == nil || o.Checked < 30 || o.Agreement < 0.9 || o.Errors > 0 {
		t.Fatalf("OCR agreement %+v, want 30+ text outputs read, agreeing with the hidden draw 90%%+", o)
	}
	if o.Recall < 0.9 {
		t.Errorf("text_illegible found %.2f of the failed draws, want 0.9+", o.Recall)
	}
	if o.Sampled != 40 || o.Reads == 0 || o.Reads+o.CacheHits < o.Checked {
		t.Errorf("OCR sample %d, %d reads, %d cache hits for %d checked outputs; want 40 sampled, every check read or cached", o.Sampled, o.Reads, o.CacheHits, o.Checked)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "text routing of default") || !strings.Contains(b.String(), "success as observed by OCR QA") {
		t.Errorf("WriteText lacks the text section:\n%s", b.String())
	}

	// An OCR that reads nothing calls every output illegible: every
	// failed draw found (recall 1), precision and agreement the hidden
	// failure rate.
	cfg.OCR = readsNothing{}
	rep, err = jobs.EvalPolicy(context.Background(), p, items, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Text.OCR; o == nil || o.OCRPass != 0 || o.Recall != 1 || math.Abs(o.Precision-(1-o.HiddenSuccess)) > 1e-9 || math.Abs(o.Agreement-(1-o.HiddenSuccess)) > 1e-9 {
		t.Errorf("OCR that reads nothing: %+v, want pass 0, recall 1, precision and agreement 1 - hidden success", o)
	}
}
