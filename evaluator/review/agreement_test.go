package review_test

import (
	"math"
	"testing"

	"github.com/routelab/routelab/evaluator/review"
)

func TestCohenKappa(t *testing.T) {
	// Wikipedia "Cohen's kappa", worked example: 50 proposals, both yes 20,
	// A yes/B no 5, A no/B yes 10, both no 15: po = 0.7, pe = 0.5, kappa = 0.4.
	var a, b []string
	add := func(n int, x, y string) {
		for i := 0; i < n; i++ {
			a, b = append(a, x), append(b, y)
		}
	}
	add(20, "yes", "yes")
	add(5, "yes", "no")
	add(10, "no", "yes")
	add(15, "no", "no")
	tests := []struct {
		name string
		a, b []string
		want float64
	}{
		{"wikipedia", a, b, 0.4},
		{"perfect", []string{"x", "y", "x"}, []string{"x", "y", "x"}, 1},
		{"constant", []string{"x", "x"}, []string{"x", "x"}, 1},
		// Chance-level disagreement: every label swapped.
		{"opposite", []string{"x", "y"}, []string{"y", "x"}, -1},
	}
	for _, tt := range tests {
		got, err := review.CohenKappa(tt.a, tt.b)
		if err != nil || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("CohenKappa(%s) = %v, %v, want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := review.CohenKappa(nil, nil); err == nil {
		t.Errorf("CohenKappa(empty) gave no error")
	}
}

func TestKrippendorffAlpha(t *testing.T) {
	// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
	// section C: 4 observers, 12 units, missing values. Published results:
	// nominal 0.743, ordinal 0.815, interval 0.849.
	nan := math.NaN()
	obs := [][]float64{
		{1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan},
		{1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3},
		{nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan},
		{1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan},
	}
	units := make([][]float64, 12)
	for u := range units {
		for _, o := range obs {
			units[u] = append(units[u], o[u])
		}
	}
	tests := []struct {
		metric review.Metric
		want   float64
	}{
		{review.Nominal, 0.743},
		{review.Ordinal, 0.815},
		{review.Interval, 0.849},
	}
	for _, tt := range tests {
		got, err := review.KrippendorffAlpha(units, tt.metric)
		if err != nil || math.Abs(got-tt.want) > 0.0005 {
			t.Errorf("KrippendorffAlpha(metric %d) = %.4f, %v, want %.3f", tt.metric, got, err, tt.want)
		}
	}
	if _, err := review.KrippendorffAlpha([][]float64{{1, nan}}, review.Nominal); err == nil {
		t.Errorf("KrippendorffAlpha(unpairable) gave no error")
	}
}
