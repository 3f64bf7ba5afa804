package server

import (
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
)

// NewQA makes the automated QA checker an Inspector.
func NewQA(c *qa.Checker) Inspector { return qaInspector{c} }

// ImageInspector is an Inspector that can take the decoded image an
// in-process provider returned with the bytes (providers.Image.Decoded)
// instead of decoding the bytes again.
type ImageInspector interface {
	InspectImage(img providers.Image, spec QASpec) QAVerdict
}

var _ ImageInspector = qaInspector{}

type qaInspector struct{ c *qa.Checker }

func (a qaInspector) Inspect(img []byte, spec QASpec) QAVerdict {
	return verdict(a.c.Check(img, a.spec(spec)))
}

// InspectImage measures the provider's decoded image when it has one
// (qa.Checker.CheckDecoded), else decodes the bytes.
func (a qaInspector) InspectImage(img providers.Image, spec QASpec) QAVerdict {
	return verdict(a.c.CheckDecoded(img.Bytes, img.Decoded, a.spec(spec)))
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
