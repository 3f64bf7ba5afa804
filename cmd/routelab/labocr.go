package main

import (
	"fmt"
	flag "github.com/spf13/pflag"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/lab"
)

// textQAFlag is the flag of the commands that build labs turning serve's
// legibility check on or off.
func textQAFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("text-qa", true, "run serve's OCR legibility QA in the lab when tesseract is on PATH: lettering a simulated model garbled fails QA with text_illegible and escalates, as in production (false: text figures are the hidden truth alone)")
}

// labOCR returns the OCR the labs of command name read lettering with: a
// Tesseract, one process at a time (a lab serves one request at a time),
// or nil when on is false or no tesseract is installed. It says which on
// env's stderr.
func labOCR(env Env, name string, on bool) qa.OCR {
	if !on {
		fmt.Fprintf(env.Stderr, "%s: text QA off (--text-qa=false): text figures are the hidden truth alone\n", name)
		return nil
	}
	bin, err := tesseract.Find()
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: text QA off: %v\n", name, err)
		return nil
	}
	fmt.Fprintf(env.Stderr, "%s: text QA on: %s reads the lettering of outputs whose prompt asks for words\n", name, bin)
	return tesseract.New(bin, 1, tesseract.PSMSparse)
}

// writeTextSummary prints a lab run's text figures: success as QA
// observed it next to the hidden truth, and what OCR cost.
func writeTextSummary(env Env, name string, s lab.LogSummary) {
	qaName := "QA without a legibility check"
	if s.TextQA {
		qaName = "OCR QA"
	}
	fmt.Fprintf(env.Stderr, "%s: requests with target text: %d; success as observed by %s %.3f vs hidden truth %.3f (all requests: %.3f vs %.3f)\n",
		name, s.Text.Requests, qaName, s.Text.Success, s.Text.Hidden, s.Success, s.Hidden)
	if s.TextQA {
		fmt.Fprintf(env.Stderr, "%s: OCR: %d legibility checks, %d images read by tesseract, %d from the cache of readings, %d failed readings\n",
			name, s.OCR.Checks, s.OCR.Reads, s.OCR.Checks-s.OCR.Reads, s.OCR.Errors)
	}
}
