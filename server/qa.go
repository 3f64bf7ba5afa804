package server

import "github.com/routelab/routelab/evaluator/qa"

// NewQA makes the automated QA checker an Inspector.
func NewQA(c *qa.Checker) Inspector { return qaInspector{c} }

type qaInspector struct{ c *qa.Checker }

func (a qaInspector) Inspect(img []byte, spec QASpec) QAVerdict {
	s := qa.Spec{Width: spec.Width, Height: spec.Height, Format: spec.Format, PreserveSubject: spec.PreserveSubject}
	if spec.PreserveSubject && spec.Reference != nil {
		if h, err := a.c.HashReference(spec.Reference); err == nil {
			s.Reference, s.HasReference = h, true
		}
	}
	r := a.c.Check(img, s)
	return QAVerdict{Pass: r.Pass, Score: r.Score, Checks: r.Checks, Reason: r.Reason}
}
