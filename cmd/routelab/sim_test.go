package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/lab/labtest"
)

// routelab sim says whether text QA ran and prints the text figures: with
// tesseract, success as OCR QA observed it next to the hidden truth and
// what OCR read; with --text-qa=false, no legibility check.
func TestLabSimTextQA(t *testing.T) {
	labtest.Heavy(t) // 80 lab requests, a hundredfold slower under -race
	if _, err := tesseract.Find(); err != nil {
		t.Skipf("%v; make test installs it", err)
	}
	dir := t.TempDir()
	w := filepath.Join(dir, "w.jsonl")
	mustRun(t, "workload", "generate", "--seed", "4", "--n", "40", "--out", w)
	explore := filepath.Join("..", "..", "datasets", "policies", "explore.json")
	for _, tt := range []struct {
		flag string
		want []string
	}{
		{"--text-qa-sample=1", []string{"sim: text QA on: ", "success as observed by OCR QA", "images read by tesseract, ", "0 failed readings"}},
		{"--text-qa=false", []string{"sim: text QA off (--text-qa=false)", "success as observed by QA without a legibility check"}},
	} {
		var out, errb bytes.Buffer
		args := []string{"sim", "--workload", w, "--policy", explore, "--out", filepath.Join(dir, "logged.jsonl"), tt.flag}
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("routelab %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		for _, s := range tt.want {
			if !strings.Contains(errb.String(), s) {
				t.Errorf("sim %s: stderr lacks %q:\n%s", tt.flag, s, errb.String())
			}
		}
	}
}
