package router_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/router"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The textbook pool-adjacent-violators example: 3,2 and 4,3 violate order
// and are pooled to their means.
func TestPAVTextbook(t *testing.T) {
	tests := []struct {
		name string
		y, w []float64
		want []float64
	}{
		{"unweighted", []float64{1, 3, 2, 4, 3, 5}, nil, []float64{1, 2.5, 2.5, 3.5, 3.5, 5}},
		{"weighted", []float64{1, 3, 2}, []float64{1, 1, 2}, []float64{1, 7.0 / 3, 7.0 / 3}},
		{"already sorted", []float64{0, 0.2, 0.9}, nil, []float64{0, 0.2, 0.9}},
		{"cascade", []float64{4, 3, 2, 1}, nil, []float64{2.5, 2.5, 2.5, 2.5}},
		{"one violation pooled", []float64{1, 3, 2, 4}, nil, []float64{1, 2.5, 2.5, 4}},
		// weighted pool: (3*1 + 1*3) / 4 = 1.5
		{"weighted pool", []float64{3, 1}, []float64{1, 3}, []float64{1.5, 1.5}},
		{"ties kept level", []float64{1, 2, 2, 3}, nil, []float64{1, 2, 2, 3}},
	}
	for _, tt := range tests {
		got := router.PAV(tt.y, tt.w)
		for i := range got {
			if !near(got[i], tt.want[i], 1e-12) {
				t.Errorf("%s: PAV(%v) = %v, want %v", tt.name, tt.y, got, tt.want)
				break
			}
		}
	}
}

func TestFitIsotonic(t *testing.T) {
	z := []float64{1, 2, 3, 4, 5, 6}
	y := []bool{false, true, false, true, true, true}
	c := router.FitIsotonic(z, y, nil)
	// blocks: {1}->0, {2,3}->0.5 at 2.5, {4,5,6}->1 at 5
	tests := []struct{ give, want float64 }{{0, 0}, {1, 0}, {2.5, 0.5}, {3.75, 0.75}, {5, 1}, {9, 1}}
	for _, tt := range tests {
		if got := c.Apply(tt.give); !near(got, tt.want, 1e-12) {
			t.Errorf("isotonic.Apply(%v) = %v, want %v (knots %v %v)", tt.give, got, tt.want, c.X, c.Y)
		}
	}
}

// Points with equal x are one point (weighted mean y): the fit does not
// depend on their order. x 1 (y 0), x 2 twice (y 1 then 0: one point 0.5
// of weight 2), x 3 (y 1): increasing already, knots at 1, 2, 3.
func TestFitIsotonicValuesTies(t *testing.T) {
	for _, ys := range [][]float64{{0, 1, 0, 1}, {0, 0, 1, 1}} {
		c := router.FitIsotonicValues([]float64{1, 2, 2, 3}, ys, nil)
		if len(c.X) != 3 || c.X[1] != 2 || !near(c.Y[1], 0.5, 1e-12) || c.Y[0] != 0 || c.Y[2] != 1 {
			t.Errorf("FitIsotonicValues(ties, y %v) = knots %v %v, want (1,0) (2,0.5) (3,1)", ys, c.X, c.Y)
		}
	}
}

// Separable data: plain maximum likelihood would diverge; Platt's smoothed
// targets make the exact optimum p(+1) = (N+ + 1)/(N+ + 2), p(-1) = 1/(N- + 2),
// that is A = ln 11, B = 0 for ten of each.
func TestPlattSeparable(t *testing.T) {
	var z []float64
	var y []bool
	for i := 0; i < 10; i++ {
		z = append(z, -1, 1)
		y = append(y, false, true)
	}
	c := router.FitPlatt(z, y, nil)
	if !near(c.A, math.Log(11), 1e-4) || !near(c.B, 0, 1e-4) {
		t.Errorf("FitPlatt(separable) = A %v B %v, want A %v B 0", c.A, c.B, math.Log(11))
	}
	if p := c.Apply(1); !near(p, 11.0/12, 1e-4) {
		t.Errorf("Apply(+1) = %v, want 11/12", p)
	}
}

// Non-separable data drawn from p = sigmoid(2z - 1): Platt recovers it.
func TestPlattNonSeparable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 50000
	z := make([]float64, n)
	y := make([]bool, n)
	for i := range z {
		z[i] = -3 + 6*r.Float64()
		y[i] = r.Float64() < 1/(1+math.Exp(-(2*z[i]-1)))
	}
	c := router.FitPlatt(z, y, nil)
	if !near(c.A, 2, 0.05) || !near(c.B, -1, 0.05) {
		t.Errorf("FitPlatt(sigmoid(2z-1) data) = A %v B %v, want about 2, -1", c.A, c.B)
	}
}

// Hand-computed: bins of width 1/15; 0.1 falls in bin 1 (rate 1/2), 0.9 in
// bin 13 (rate 1), 0.5 in bin 7 (rate 0):
// ECE = 0.4*|0.1-0.5| + 0.4*|0.9-1| + 0.2*|0.5-0| = 0.16 + 0.04 + 0.10 = 0.30;
// Brier = (0.01 + 0.81 + 0.01 + 0.01 + 0.25)/5 = 0.218.
func TestCalibrationHandComputed(t *testing.T) {
	p := []float64{0.1, 0.1, 0.9, 0.9, 0.5}
	y := []bool{false, true, true, true, false}
	ece, brier, curve := router.Calibration(p, y, nil)
	if !near(ece, 0.30, 1e-12) || !near(brier, 0.218, 1e-12) || len(curve) != 3 {
		t.Errorf("Calibration() = ECE %v Brier %v (%d bins), want 0.30 0.218 3", ece, brier, len(curve))
	}
	// Weights: doubling the weight of the 0.5/0 example.
	ece, brier, _ = router.Calibration(p, y, []float64{1, 1, 1, 1, 2})
	// ECE = (2/6)*0.4 + (2/6)*0.1 + (2/6)*0.5 = 1/3; Brier = (0.84 + 2*0.25)/6
	if !near(ece, 1.0/3, 1e-12) || !near(brier, 1.34/6, 1e-12) {
		t.Errorf("Calibration(weighted) = ECE %v Brier %v, want 1/3 and %v", ece, brier, 1.34/6)
	}
	// Perfect calibration on the bin means has ECE 0.
	if ece, _, _ := router.Calibration([]float64{0.5, 0.5}, []bool{true, false}, nil); ece != 0 {
		t.Errorf("Calibration(0.5 with rate 0.5) ECE = %v, want 0", ece)
	}
}
