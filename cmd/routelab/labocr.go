package main

import (
	"fmt"
	flag "github.com/spf13/pflag"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/lab"
)

// textQAFlags are the flags of the commands that build labs: serve's
// legibility check on or off, and the share of requests it reads.
type textQAFlags struct {
	on     *bool
	sample *float64
}

// addTextQAFlags adds --text-qa and --text-qa-sample to fs; sample is the
// command's default share.
func addTextQAFlags(fs *flag.FlagSet, sample float64) textQAFlags {
	return textQAFlags{
		on:     fs.Bool("text-qa", true, "run serve's OCR legibility QA in the lab when tesseract is on PATH: lettering a simulated model garbled fails QA with text_illegible and escalates, as in production (false: no legibility check, as before OCR)"),
		sample: fs.Float64("text-qa-sample", sample, "share of prompts whose outputs the legibility check reads, drawn by a hash of the prompt (a Tesseract reading costs ~0.3 s of CPU and nearly every output with text is a distinct image); 1 = all"),
	}
}

// configure sets cfg's OCR from the flags: a Tesseract, one process at a
// time (a lab serves one request at a time), or none when --text-qa=false
// or no tesseract is installed. It says which on env's stderr, under name.
func (f textQAFlags) configure(env Env, name string, cfg *lab.Config) error {
	if *f.sample <= 0 || *f.sample > 1 {
		return fmt.Errorf("--text-qa-sample must be in (0, 1], got %g", *f.sample)
	}
	if !*f.on {
		fmt.Fprintf(env.Stderr, "%s: text QA off (--text-qa=false): no legibility check; text figures are the hidden truth alone\n", name)
		return nil
	}
	bin, err := tesseract.Find()
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: text QA off: %v\n", name, err)
		return nil
	}
	cfg.OCR, cfg.OCRSample = tesseract.New(bin, 1, tesseract.PSMSparse), *f.sample
	fmt.Fprintf(env.Stderr, "%s: text QA on: %s reads the lettering of outputs whose prompt asks for words, on %.0f%% of prompts (by prompt hash)\n", name, bin, 100**f.sample)
	return nil
}

// writeTextSummary prints a lab run's text figures: success as QA
// observed it next to the hidden truth, and what OCR cost.
func writeTextSummary(env Env, name string, s lab.LogSummary) {
	fmt.Fprintf(env.Stderr, "%s: %s; all requests: QA %.3f vs hidden truth %.3f\n", name, s.Text.Line(s.TextQA), s.Success, s.Hidden)
	if s.TextQA {
		fmt.Fprintf(env.Stderr, "%s: %s\n", name, ocrLine(s.OCR))
	}
}

// ocrLine says what the legibility checks cost.
func ocrLine(s qa.TextStats) string {
	return fmt.Sprintf("OCR: %d legibility checks, %d images read by tesseract, %d from the cache of readings, %d failed readings",
		s.Checks, s.Reads, s.Checks-s.Reads-s.Errors, s.Errors)
}
