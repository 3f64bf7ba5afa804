package gateway

import (
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
)

// QA is automated QA on a returned image.
type QA interface {
	Check(img providers.Image, spec QASpec) qa.Result
}

// QASpec is what the bytes should be.
type QASpec struct {
	Width, Height   int
	Format          string // png | jpeg | webp
	Reference       []byte // image the edit started from, for drift and sharpness
	PreserveSubject bool
}

// NewQA makes the automated QA checker the gateway's QA.
func NewQA(c *qa.Checker) QA { return checker{c} }

type checker struct{ c *qa.Checker }

// Check measures the provider's decoded image when it has one
// (providers.Image.Decoded, an in-process render), else decodes the bytes;
// results are cached by the provider's digest when it gave one, else by a
// hash of the bytes (qa.Checker.CheckDecoded).
func (a checker) Check(img providers.Image, spec QASpec) qa.Result {
	s := qa.Spec{Width: spec.Width, Height: spec.Height, Format: spec.Format, PreserveSubject: spec.PreserveSubject}
	if spec.Reference != nil {
		if ref, err := a.c.Reference(spec.Reference); err == nil {
			s.IsEdit, s.RefSharpness = true, ref.Sharpness
			if spec.PreserveSubject {
				s.Reference, s.HasReference = ref.Hash, true
			}
		}
	}
	return a.c.CheckDecoded(img.Bytes, img.Decoded, img.Digest, s)
}
