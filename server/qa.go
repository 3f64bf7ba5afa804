package server

import (
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
)

// NewQA makes the automated QA checker an Inspector.
func NewQA(c *qa.Checker) Inspector { return qaInspector{c} }

// ImageInspector is an Inspector that can use what the provider knows of
// its bytes: the decoded image of an in-process provider
// (providers.Image.Decoded) instead of decoding the bytes again, its digest
// (providers.Image.Digest) instead of hashing them for the result cache.
type ImageInspector interface {
	InspectImage(img providers.Image, spec QASpec) QAVerdict
}

var _ ImageInspector = qaInspector{}

type qaInspector struct{ c *qa.Checker }

func (a qaInspector) Inspect(img []byte, spec QASpec) QAVerdict {
	return verdict(a.c.Check(img, a.spec(spec)))
}

// InspectImage measures the provider's decoded image when it has one, else
// decodes the bytes; results are cached by the provider's digest when it
// gave one, else by a hash of the bytes (qa.Checker.CheckDecoded).
func (a qaInspector) InspectImage(img providers.Image, spec QASpec) QAVerdict {
	return verdict(a.c.CheckDecoded(img.Bytes, img.Decoded, img.Digest, a.spec(spec)))
}

func (a qaInspector) spec(spec QASpec) qa.Spec {
	s := qa.Spec{Width: spec.Width, Height: spec.Height, Format: spec.Format, PreserveSubject: spec.PreserveSubject}
	if spec.PreserveSubject && spec.Reference != nil {
		if h, err := a.c.HashReference(spec.Reference); err == nil {
			s.Reference, s.HasReference = h, true
		}
	}
	return s
}

func verdict(r qa.Result) QAVerdict {
	return QAVerdict{Pass: r.Pass, Score: r.Score, Checks: r.Checks, Reason: r.Reason}
}
