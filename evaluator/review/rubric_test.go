package review_test

import (
	"errors"
	"testing"

	"github.com/routelab/routelab/evaluator/review"
)

func TestRubricFor(t *testing.T) {
	r := review.DefaultRubric()
	tests := []struct {
		textHeavy, edit bool
		want            int
	}{
		{false, false, 4},
		{true, false, 5},
		{false, true, 5},
		{true, true, 6},
	}
	for _, tt := range tests {
		if got := len(r.For(tt.textHeavy, tt.edit)); got != tt.want {
			t.Errorf("For(%v, %v) has %d questions, want %d", tt.textHeavy, tt.edit, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	defs := review.DefaultRubric().For(false, false)
	tests := []struct {
		name string
		give map[string]float64
		want string // error code, "" for ok
	}{
		{"ok", map[string]float64{"overall": 4, "adherence": 5, "artifacts": 1, "unsafe": 0}, ""},
		{"missing", map[string]float64{"overall": 4, "adherence": 5, "artifacts": 1}, "missing_score"},
		{"range", map[string]float64{"overall": 6, "adherence": 5, "artifacts": 1, "unsafe": 0}, "score_out_of_range"},
		{"category", map[string]float64{"overall": 4, "adherence": 5, "artifacts": 3, "unsafe": 0}, "score_out_of_range"},
		{"fraction", map[string]float64{"overall": 4.5, "adherence": 5, "artifacts": 1, "unsafe": 0}, "bad_score"},
		{"unknown", map[string]float64{"overall": 4, "adherence": 5, "artifacts": 1, "unsafe": 0, "legibility": 3}, "unknown_score"},
	}
	for _, tt := range tests {
		err := review.Check(defs, tt.give)
		var ve *review.ValidationError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%s) = %v, want nil", tt.name, err)
		case tt.want != "" && (!errors.As(err, &ve) || ve.Code != tt.want):
			t.Errorf("Check(%s) = %v, want code %s", tt.name, err, tt.want)
		}
	}
}
