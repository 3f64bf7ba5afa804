package review

import (
	"fmt"
	"math"
)

// ScoreKind is how a rubric question is answered.
type ScoreKind string

const (
	Numeric     ScoreKind = "numeric"     // integer Min..Max
	Categorical ScoreKind = "categorical" // index into Options
	Boolean     ScoreKind = "boolean"     // 0 = no, 1 = yes
)

// ScoreDef is one rubric question. When limits it to some requests:
// "text_heavy" or "edit"; empty means always asked.
type ScoreDef struct {
	Name     string    `json:"name"`
	Label    string    `json:"label"`
	Kind     ScoreKind `json:"kind"`
	Min      int       `json:"min,omitempty"`
	Max      int       `json:"max,omitempty"`
	Options  []string  `json:"options,omitempty"`
	Help     string    `json:"help,omitempty"`
	When     string    `json:"when,omitempty"`
	Optional bool      `json:"optional,omitempty"`
}

// Rubric is a named set of score definitions.
type Rubric struct {
	Name   string     `json:"name"`
	Scores []ScoreDef `json:"scores"`
}

// DefaultRubric is the image-output rubric reviewers score by default.
func DefaultRubric() Rubric {
	return Rubric{Name: "image-v1", Scores: []ScoreDef{
		{Name: "overall", Label: "Overall quality", Kind: Numeric, Min: 1, Max: 5, Help: "1 unusable - 5 excellent"},
		{Name: "adherence", Label: "Prompt adherence", Kind: Numeric, Min: 1, Max: 5, Help: "does it show what was asked"},
		{Name: "legibility", Label: "Text legibility", Kind: Numeric, Min: 1, Max: 5, When: "text_heavy", Help: "is the requested text readable and spelled right"},
		{Name: "subject", Label: "Subject preservation", Kind: Numeric, Min: 1, Max: 5, When: "edit", Help: "is the edited subject still the same"},
		{Name: "artifacts", Label: "Artifacts", Kind: Categorical, Options: []string{"none", "minor", "major"}},
		{Name: "unsafe", Label: "Unsafe content", Kind: Boolean},
	}}
}

// For returns the questions asked for a request with these traits.
func (r Rubric) For(textHeavy, edit bool) []ScoreDef {
	var out []ScoreDef
	for _, d := range r.Scores {
		if (d.When == "text_heavy" && !textHeavy) || (d.When == "edit" && !edit) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// ValidationError is a bad answer: Code is stable, Field names the question.
type ValidationError struct {
	Code, Field, Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Check validates answers against the questions: every required question
// answered, each value in range, no unknown names.
func Check(defs []ScoreDef, answers map[string]float64) error {
	known := map[string]ScoreDef{}
	for _, d := range defs {
		known[d.Name] = d
	}
	for name := range answers {
		if _, ok := known[name]; !ok {
			return &ValidationError{"unknown_score", name, "not a question of this rubric"}
		}
	}
	for _, d := range defs {
		v, ok := answers[d.Name]
		if !ok {
			if d.Optional {
				continue
			}
			return &ValidationError{"missing_score", d.Name, "required"}
		}
		if math.IsNaN(v) || v != math.Trunc(v) {
			return &ValidationError{"bad_score", d.Name, "must be a whole number"}
		}
		lo, hi := 0.0, 1.0
		switch d.Kind {
		case Numeric:
			lo, hi = float64(d.Min), float64(d.Max)
		case Categorical:
			hi = float64(len(d.Options) - 1)
		}
		if v < lo || v > hi {
			return &ValidationError{"score_out_of_range", d.Name, fmt.Sprintf("must be in %g..%g", lo, hi)}
		}
	}
	return nil
}
