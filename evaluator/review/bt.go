package review

import (
	"errors"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// Comparison is one blind pairwise judgement between two models: Winner is
// "a", "b" or "tie".
type Comparison struct {
	A, B   string
	Winner string
}

// Rating is one model's Bradley-Terry strength. Theta is the log-strength,
// centred so the ratings sum to zero; Lo/Hi is its confidence interval from
// the observed Fisher information. Elo is the same on the familiar scale
// (400/ln 10 per unit of theta around 1000) with its interval.
type Rating struct {
	Model          string
	Theta, SE      float64
	Lo, Hi         float64
	Elo            float64
	EloLo, EloHi   float64
	Wins, Losses   float64
	Ties, Compared int
}

// ErrNoComparisons is returned when there is nothing to rate.
var ErrNoComparisons = errors.New("no pairwise comparisons")

// BradleyTerry fits P(i beats j) = p_i/(p_i+p_j) by maximum likelihood with
// Hunter's (2004) MM iteration; a tie counts as half a win for each side. z is
// the normal quantile of the interval (1.96 for 95%). A tiny symmetric prior
// (0.01 pseudo-wins each way between every pair) keeps the MLE finite when a
// model won or lost everything. Ratings are sorted strongest first.
func BradleyTerry(cs []Comparison, z float64) ([]Rating, error) {
	if len(cs) == 0 {
		return nil, ErrNoComparisons
	}
	names := map[string]int{}
	var order []string
	id := func(s string) int {
		if i, ok := names[s]; ok {
			return i
		}
		names[s] = len(order)
		order = append(order, s)
		return names[s]
	}
	for _, c := range cs {
		id(c.A)
		id(c.B)
	}
	k := len(order)
	w := make([][]float64, k) // w[i][j]: wins of i over j
	for i := range w {
		w[i] = make([]float64, k)
	}
	out := make([]Rating, k)
	for i, n := range order {
		out[i].Model = n
	}
	for _, c := range cs {
		a, b := names[c.A], names[c.B]
		if a == b {
			continue
		}
		out[a].Compared++
		out[b].Compared++
		switch c.Winner {
		case "a":
			w[a][b]++
			out[a].Wins++
			out[b].Losses++
		case "b":
			w[b][a]++
			out[b].Wins++
			out[a].Losses++
		default:
			w[a][b] += 0.5
			w[b][a] += 0.5
			out[a].Ties++
			out[b].Ties++
		}
	}
	const prior = 0.01
	n := make([][]float64, k) // n[i][j]: comparisons between i and j
	W := make([]float64, k)
	for i := 0; i < k; i++ {
		n[i] = make([]float64, k)
		for j := 0; j < k; j++ {
			if i != j {
				w[i][j] += prior
			}
		}
	}
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			n[i][j] = w[i][j] + w[j][i]
			W[i] += w[i][j]
		}
	}
	p := make([]float64, k)
	for i := range p {
		p[i] = 1
	}
	for iter := 0; iter < 10000; iter++ {
		maxd := 0.0
		next := make([]float64, k)
		for i := 0; i < k; i++ {
			den := 0.0
			for j := 0; j < k; j++ {
				if i != j && n[i][j] > 0 {
					den += n[i][j] / (p[i] + p[j])
				}
			}
			if den > 0 {
				next[i] = W[i] / den
			} else {
				next[i] = p[i]
			}
		}
		// Normalise to geometric mean 1 (sum of log-strengths zero).
		g := 0.0
		for i := range next {
			g += math.Log(next[i])
		}
		g = math.Exp(g / float64(k))
		for i := range next {
			next[i] /= g
			maxd = math.Max(maxd, math.Abs(next[i]-p[i]))
		}
		p = next
		if maxd < 1e-12 {
			break
		}
	}
	// Observed information for theta = log p; it is singular (adding a
	// constant to every theta changes nothing), so the covariance of the
	// sum-to-zero parameterisation is its pseudo-inverse.
	h := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			v := n[i][j] * p[i] * p[j] / ((p[i] + p[j]) * (p[i] + p[j]))
			h.SetSym(i, j, -v)
			h.SetSym(i, i, h.At(i, i)+v)
			h.SetSym(j, j, h.At(j, j)+v)
		}
	}
	cov := pseudoInverse(h)
	const eloScale = 400 / math.Ln10
	for i := range out {
		th := math.Log(p[i])
		se := math.Sqrt(math.Max(cov.At(i, i), 0))
		out[i].Theta, out[i].SE = th, se
		out[i].Lo, out[i].Hi = th-z*se, th+z*se
		out[i].Elo = 1000 + eloScale*th
		out[i].EloLo, out[i].EloHi = 1000+eloScale*out[i].Lo, 1000+eloScale*out[i].Hi
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Theta > out[j].Theta })
	return out, nil
}

// pseudoInverse inverts a symmetric positive semi-definite matrix on its
// range via its eigendecomposition.
func pseudoInverse(h *mat.SymDense) *mat.Dense {
	k, _ := h.Dims()
	var eig mat.EigenSym
	out := mat.NewDense(k, k, nil)
	if !eig.Factorize(h, true) {
		return out
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	maxv := 0.0
	for _, v := range vals {
		maxv = math.Max(maxv, v)
	}
	for e, v := range vals {
		if v <= 1e-10*maxv {
			continue
		}
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				out.Set(i, j, out.At(i, j)+vecs.At(i, e)*vecs.At(j, e)/v)
			}
		}
	}
	return out
}
