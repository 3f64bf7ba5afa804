package console

import (
	"context"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/evaluator/review"
)

// legacyRate weighs reviews of outputs logged before sampling rates were
// recorded (migration 0055): the default review rate.
const legacyRate = 0.05

// modelScore is one model's reviewed outputs and their mean overall score,
// unweighted and weighted by the inverse of each output's sampling rate:
// failure audits over-sample QA failures, escalations and resets, which
// drag the unweighted mean down; the weighted one estimates the model's
// served outputs as they are.
type modelScore struct {
	Model              string
	Reviewed, Audited  int // Audited: reviewed outputs that failed QA
	Mean, WeightedMean float64
}

func modelScores(overall map[string][]float64, items map[string]Output) []modelScore {
	type acc struct {
		n, audited  int
		sx, swx, sw float64
	}
	by := map[string]*acc{}
	for id, vs := range overall {
		o, ok := items[id]
		if !ok || o.Shadow || len(vs) == 0 {
			continue
		}
		x := 0.0
		for _, v := range vs {
			x += v
		}
		x /= float64(len(vs))
		a := by[o.Model]
		if a == nil {
			a = &acc{}
			by[o.Model] = a
		}
		rate := o.SampleRate
		if rate <= 0 {
			rate = legacyRate
		}
		a.n++
		if !o.QAPass {
			a.audited++
		}
		a.sx += x
		a.swx += x / rate
		a.sw += 1 / rate
	}
	out := make([]modelScore, 0, len(by))
	for m, a := range by {
		out = append(out, modelScore{Model: m, Reviewed: a.n, Audited: a.audited, Mean: a.sx / float64(a.n), WeightedMean: a.swx / a.sw})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

type questionAgreement struct {
	Name              string
	Ordinal, Interval float64
	Items             int
}

func (c *Console) qualityPage(ctx *fiber.Ctx) error {
	if c.deps.Data == nil {
		return errNoData
	}
	since := c.deps.Now().Add(-30 * 24 * time.Hour)
	js, err := c.deps.Data.Judgements(ctx.UserContext(), since)
	if err != nil {
		return err
	}
	byQuestion := map[string][]review.ScoreRecord{}
	var cmps []review.Comparison
	humanOverall, humanLegibility := map[string][]float64{}, map[string][]float64{}
	for _, j := range js {
		switch j.Kind {
		case "score":
			for i, n := range j.Names {
				if i < len(j.Values) {
					byQuestion[n] = append(byQuestion[n], review.ScoreRecord{Reviewer: j.Reviewer, Item: j.RequestID, Value: j.Values[i], At: time.UnixMilli(int64(j.TSMS))})
					switch n {
					case "overall":
						humanOverall[j.RequestID] = append(humanOverall[j.RequestID], j.Values[i])
					case "legibility":
						humanLegibility[j.RequestID] = append(humanLegibility[j.RequestID], j.Values[i])
					}
				}
			}
		case "pairwise":
			w := map[string]string{"left": "a", "right": "b"}[j.Preference]
			if w == "" {
				w = "tie"
			}
			if j.Model != "" && j.OtherModel != "" {
				cmps = append(cmps, review.Comparison{A: j.Model, B: j.OtherModel, Winner: w})
			}
		}
	}
	overall := review.Agree(byQuestion["overall"], review.Ordinal, 5)
	var questions []questionAgreement
	for _, q := range review.DefaultRubric().Scores {
		if q.Kind != review.Numeric {
			continue
		}
		ord := review.Agree(byQuestion[q.Name], review.Ordinal, 1<<30)
		itv := review.Agree(byQuestion[q.Name], review.Interval, 1<<30)
		questions = append(questions, questionAgreement{Name: q.Label, Ordinal: ord.Alpha, Interval: itv.Alpha, Items: ord.AlphaItems})
	}
	// QA versus people, on outputs both judged: human = mean overall score.
	var qaPass []bool
	var human []float64
	c.mu.Lock()
	scores := modelScores(humanOverall, c.itemCache)
	for id, vs := range humanOverall {
		o, ok := c.itemCache[id]
		if !ok {
			continue
		}
		s := 0.0
		for _, v := range vs {
			s += v
		}
		qaPass = append(qaPass, o.QAPass)
		human = append(human, s/float64(len(vs)))
	}
	c.mu.Unlock()
	ocr, err := c.ocrVersusPeople(ctx.UserContext(), since, humanLegibility)
	if err != nil {
		return err
	}
	ratings, _ := review.BradleyTerry(cmps, 1.96)
	return c.render(ctx, "quality", "Reviewers", fiber.Map{
		"Overall": overall, "Questions": questions, "QA": review.CompareQA(qaPass, human, 3),
		"Ratings": ratings, "Comparisons": len(cmps), "Judgements": len(js), "Since": since.Format("2006-01-02"),
		"ModelScores": scores, "OCR": ocr,
	})
}

// ocrVersus is OCR legibility QA against the reviewers' legibility scores
// on the same served outputs (item 4 of the text issue: is the QA signal
// itself right?).
type ocrVersus struct {
	review.QAAgreement
	// Correlation is Spearman's rank correlation of the OCR score (1 - CER)
	// with the mean legibility score; NaN under 3 outputs.
	Correlation float64
	// Disagreements are the outputs where they differ most, for a look.
	Disagreements []ocrDisagreement
}

type ocrDisagreement struct {
	RequestID, Read string
	OCRPass         bool
	OCRScore, Human float64
}

// ocrVersusPeople compares each reviewed text output's legibility check
// with the mean of its reviewers' legibility scores (human pass >= 3).
func (c *Console) ocrVersusPeople(ctx context.Context, since time.Time, legibility map[string][]float64) (ocrVersus, error) {
	var out ocrVersus
	if len(legibility) == 0 {
		return out, nil
	}
	checks, err := c.deps.Data.OCRChecks(ctx, since)
	if err != nil {
		return out, err
	}
	var (
		pass          []bool
		human, scores []float64
	)
	for id, vs := range legibility {
		ch, ok := checks[id]
		if !ok || len(vs) == 0 {
			continue
		}
		h := stat.Mean(vs, nil)
		pass, human, scores = append(pass, ch.Pass), append(human, h), append(scores, ch.Score)
		if ch.Pass != (h >= 3) {
			out.Disagreements = append(out.Disagreements, ocrDisagreement{RequestID: id, Read: ch.Read, OCRPass: ch.Pass, OCRScore: ch.Score, Human: h})
		}
	}
	out.QAAgreement = review.CompareQA(pass, human, 3)
	out.Correlation = spearman(scores, human)
	sort.Slice(out.Disagreements, func(i, j int) bool {
		a, b := out.Disagreements[i], out.Disagreements[j]
		return math.Abs(a.OCRScore*4+1-a.Human) > math.Abs(b.OCRScore*4+1-b.Human)
	})
	out.Disagreements = out.Disagreements[:min(len(out.Disagreements), 10)]
	return out, nil
}

// spearman is the rank correlation of x and y (ties take their mean rank),
// NaN for fewer than 3 pairs.
func spearman(x, y []float64) float64 {
	if len(x) < 3 {
		return math.NaN()
	}
	return stat.Correlation(ranks(x), ranks(y), nil)
}

func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}
