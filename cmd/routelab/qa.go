package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/routelab/routelab/evaluator/qa"
)

// qaFileResult is one file's verdict in `routelab qa --json`.
type qaFileResult struct {
	File   string     `json:"file"`
	Pass   bool       `json:"pass"`
	Score  float64    `json:"score"`
	Reason string     `json:"reason,omitempty"`
	Format string     `json:"format,omitempty"`
	Width  int        `json:"width,omitempty"`
	Height int        `json:"height,omitempty"`
	PHash  string     `json:"phash,omitempty"`
	Checks []qaCheckJ `json:"checks"`
}

type qaCheckJ struct {
	Name  string  `json:"name"`
	Pass  bool    `json:"pass"`
	Value float64 `json:"value"`
}

func runQA(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("qa", `Run serve's automated QA on image files: format by magic bytes and a pixel limit
checked before decoding, size and aspect against --width/--height, blank (luma
std-dev), sharpness (variance of the Laplacian) and, with --reference, subject drift
(pHash distance). Thresholds and their reasons: docs/providers.md. Exits 1 when a
file fails QA.

  routelab qa --width 1024 --height 1024 out.png
  routelab qa --reference before.png --json after.png`)
	fs.SetOutput(env.Stderr)
	width := fs.Int("width", 0, "requested width (0: skip the size and aspect checks)")
	height := fs.Int("height", 0, "requested height")
	format := fs.String("format", "", "expected format: png, jpeg or webp (empty: any)")
	reference := fs.String("reference", "", "image the output must preserve the subject of (enables the drift check)")
	asJSON := fs.Bool("json", false, "print one JSON object with every file's checks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return fmt.Errorf("qa: give at least one image file")
	}
	switch strings.ToLower(*format) {
	case "", "png", "jpeg", "jpg", "webp":
	default:
		return fmt.Errorf("qa: --format %q: want png, jpeg or webp", *format)
	}
	checker := qa.New(qa.Thresholds{})
	spec := qa.Spec{Width: *width, Height: *height, Format: strings.ToLower(*format)}
	if *reference != "" {
		b, err := os.ReadFile(*reference)
		if err != nil {
			return fmt.Errorf("qa: %w", err)
		}
		h, err := checker.HashReference(b)
		if err != nil {
			return fmt.Errorf("qa: reference %s: %w", *reference, err)
		}
		spec.Reference, spec.HasReference, spec.PreserveSubject = h, true, true
	}
	var results []qaFileResult
	failed := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("qa: %w", err)
		}
		r := checker.Check(b, spec)
		fr := qaFileResult{File: f, Pass: r.Pass, Score: r.Score, Reason: r.Reason, Format: r.Format, Width: r.Width, Height: r.Height}
		if r.Width > 0 {
			fr.PHash = fmt.Sprintf("%016x", uint64(r.Hash))
		}
		for _, c := range r.Checks {
			fr.Checks = append(fr.Checks, qaCheckJ{Name: c.Name, Pass: c.Pass, Value: c.Value})
		}
		results = append(results, fr)
		if !r.Pass {
			failed++
		}
		if !*asJSON {
			verdict := "pass"
			if !r.Pass {
				verdict = "FAIL " + r.Reason
			}
			fmt.Fprintf(env.Stdout, "%s: %s %dx%d score %.3f: %s\n", f, r.Format, r.Width, r.Height, r.Score, verdict)
			for _, c := range r.Checks {
				fmt.Fprintf(env.Stdout, "  %-10s %-5v %g\n", c.Name, c.Pass, c.Value)
			}
		}
	}
	if *asJSON {
		out, err := json.Marshal(map[string]any{"files": len(files), "failed": failed, "results": results})
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(out))
	}
	if failed > 0 {
		return fmt.Errorf("qa: %d of %d file(s) failed QA", failed, len(files))
	}
	return nil
}
