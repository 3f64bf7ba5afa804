package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
)

// QA is automated QA on a returned image. ctx bounds any wait (the
// legibility check's OCR).
type QA interface {
	Check(ctx context.Context, img providers.Image, spec QASpec) qa.Result
}

// QASpec is what the bytes should be.
type QASpec struct {
	Width, Height   int
	Format          string // png | jpeg | webp
	Reference       []byte // image the edit started from, for drift and sharpness
	PreserveSubject bool
	// Text is the words the prompt asks to render (router.TargetTexts);
	// Tier picks the legibility threshold.
	Text []string
	Tier string
}

// NewQA makes the automated QA checker the gateway's QA, without the
// legibility check.
func NewQA(c *qa.Checker) QA { return checker{c: c} }

// NewTextQA is NewQA with the legibility check for prompts with target
// text. An OCR failure or timeout is logged and leaves the verdict to the
// other checks: an OCR outage must not fail every poster.
func NewTextQA(c *qa.Checker, t *qa.TextChecker, log *slog.Logger) QA {
	return checker{c: c, text: t, log: log}
}

type checker struct {
	c    *qa.Checker
	text *qa.TextChecker
	log  *slog.Logger
}

// Check measures the provider's decoded image when it has one
// (providers.Image.Decoded, an in-process render), else decodes the bytes;
// results are cached by the provider's digest when it gave one, else by a
// hash of the bytes (qa.Checker.CheckDecoded). The legibility check runs
// only on images the other checks could decode.
func (a checker) Check(ctx context.Context, img providers.Image, spec QASpec) qa.Result {
	s := qa.Spec{Width: spec.Width, Height: spec.Height, Format: spec.Format, PreserveSubject: spec.PreserveSubject}
	if spec.Reference != nil {
		if ref, err := a.c.Reference(spec.Reference); err == nil {
			s.IsEdit, s.RefSharpness = true, ref.Sharpness
			if spec.PreserveSubject {
				s.Reference, s.HasReference = ref.Hash, true
			}
		}
	}
	r := a.c.CheckDecoded(img.Bytes, img.Decoded, img.Digest, s)
	if a.text == nil || len(spec.Text) == 0 || r.Width == 0 {
		return r
	}
	t, err := a.text.Check(ctx, img.Bytes, img.Decoded, img.Digest, spec.Text, spec.Tier)
	if errors.Is(err, qa.ErrNoReadableText) {
		return r
	}
	if err != nil {
		a.log.Warn("legibility check skipped", "err", err)
		return r
	}
	r.AddText(t)
	return r
}
