package jobs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// TextCapableP is the true success on short rendered phrases from which
// the evaluation counts a model as text-capable (the world's typography
// specialist and its premium generalist; the cheap generalists fail ~80%).
const TextCapableP = 0.8

// TextRouting is how the evaluated policy routes requests that ask for
// words in the image (router.TargetTexts finds some) and those that do
// not, and, with OCR, how QA's legibility check agrees with the hidden
// truth on the text requests.
type TextRouting struct {
	// TextCapable are the models whose true success on short phrases is
	// at least TextCapableP; Specialists those of them for which text is
	// a strength (above their mean on the other tasks): the typography
	// models, as opposed to a premium generalist good at everything.
	TextCapable []string `json:"text_capable"`
	Specialists []string `json:"typography_specialists"`
	WithText    int      `json:"requests_with_text"`
	// WithTextEligible are the requests with target text a text-capable
	// model could serve within the request's own cost, latency, size and
	// reference constraints; WithTextToCapable is the share of them routed
	// to one (WithTextToCapableAll the share of all requests with text).
	WithTextEligible     int     `json:"requests_with_text_text_capable_eligible"`
	WithTextToCapable    float64 `json:"with_text_to_text_capable"`
	WithTextToCapableAll float64 `json:"with_text_to_text_capable_all"`
	// WithoutText are the other requests; the shares of them routed to a
	// typography specialist and to any text-capable model.
	WithoutText             int     `json:"requests_without_text"`
	WithoutTextToSpecialist float64 `json:"without_text_to_typography_specialist"`
	WithoutTextToCapable    float64 `json:"without_text_to_text_capable"`
	// Elsewhere counts the requests with target text that a text-capable
	// model could have served but another did, by "model tier mode task"
	// (the hidden task), for a reader asking why.
	Elsewhere map[string]int `json:"with_text_elsewhere"`
	OCR       *OCRAgreement  `json:"ocr,omitempty"`
}

// OCRAgreement compares QA's legibility check, reading the simulated
// output with real OCR, with the hidden draw that made it.
type OCRAgreement struct {
	Checked int `json:"checked"` // text requests whose routed call returned an image
	// OCRPass is the share the legibility check passed; HiddenSuccess the
	// share whose hidden draw succeeded, on the same requests.
	OCRPass       float64 `json:"ocr_pass"`
	HiddenSuccess float64 `json:"hidden_success"`
	// Precision and Recall are those of text_illegible as a detector of a
	// failed hidden draw.
	Precision float64 `json:"illegible_precision"`
	Recall    float64 `json:"illegible_recall"`
	Agreement float64 `json:"agreement"`
	Errors    int     `json:"ocr_errors"` // checks OCR could not finish (not counted)
	// Sampled are the text requests drawn for the check (by a hash of
	// the request id); Reads the images OCR read for them, CacheHits the
	// checks answered from the cache of readings (the same image again).
	Sampled   int `json:"sampled"`
	Reads     int `json:"ocr_reads"`
	CacheHits int `json:"ocr_cache_hits"`
}

// evalText routes every job with choose and, when ocr is set, renders and
// reads sample text jobs' outputs as serve's QA would: those whose request
// ids hash lowest, a sample spread over the workload that a longer one
// keeps (and the same for every policy evaluated on it).
func evalText(ctx context.Context, w *sim.World, p *router.Policy, jobs []sim.Job, choose sim.Chooser, ocr qa.OCR, sample, workers int) (TextRouting, error) {
	var tr TextRouting
	for _, m := range p.Models {
		text := w.TrueP(m.Name, sim.TaskTextRender, 0)
		if text < TextCapableP {
			continue
		}
		tr.TextCapable = append(tr.TextCapable, m.Name)
		var other float64
		for _, t := range sim.Tasks() {
			if t != sim.TaskTextRender {
				other += w.TrueP(m.Name, t, 0) / float64(len(sim.Tasks())-1)
			}
		}
		if text > other {
			tr.Specialists = append(tr.Specialists, m.Name)
		}
	}
	var withCap, withCapEligible, withoutCap, withoutSpec int
	var texts []int
	for i := range jobs {
		j := &jobs[i]
		d := choose(j)
		capable := slices.Contains(tr.TextCapable, d.Model)
		if len(router.TargetTexts(j.Req.Prompt)) > 0 {
			tr.WithText++
			eligible := slices.ContainsFunc(d.Candidates, func(c router.Candidate) bool {
				return c.Eligible && slices.Contains(tr.TextCapable, c.Model)
			})
			if eligible {
				tr.WithTextEligible++
			}
			if capable {
				withCap++
				if eligible {
					withCapEligible++
				}
			} else if eligible {
				if tr.Elsewhere == nil {
					tr.Elsewhere = map[string]int{}
				}
				tr.Elsewhere[fmt.Sprintf("%s %s %s %s", d.Model, j.Req.Tier, j.Req.Mode, j.Task)]++
			}
			texts = append(texts, i)
		} else {
			tr.WithoutText++
			if capable {
				withoutCap++
			}
			if slices.Contains(tr.Specialists, d.Model) {
				withoutSpec++
			}
		}
	}
	if tr.WithText > 0 {
		tr.WithTextToCapableAll = float64(withCap) / float64(tr.WithText)
	}
	if tr.WithTextEligible > 0 {
		tr.WithTextToCapable = float64(withCapEligible) / float64(tr.WithTextEligible)
	}
	if tr.WithoutText > 0 {
		tr.WithoutTextToCapable = float64(withoutCap) / float64(tr.WithoutText)
		tr.WithoutTextToSpecialist = float64(withoutSpec) / float64(tr.WithoutText)
	}
	if ocr == nil || sample <= 0 {
		return tr, nil
	}
	sort.SliceStable(texts, func(a, b int) bool { return idHash(jobs[texts[a]].Req.ID) < idHash(jobs[texts[b]].Req.ID) })
	texts = texts[:min(sample, len(texts))]
	sort.Ints(texts)
	agree, err := ocrAgreement(ctx, w, jobs, texts, choose, ocr, workers)
	if err != nil {
		return tr, err
	}
	tr.OCR = &agree
	return tr, nil
}

func ocrAgreement(ctx context.Context, world *sim.World, jobs []sim.Job, idx []int, choose sim.Chooser, ocr qa.OCR, workers int) (OCRAgreement, error) {
	checker := qa.NewTextChecker(ocr, qa.TextThresholds{})
	type verdict struct {
		checked, pass, hidden, err bool
	}
	out := make([]verdict, len(idx))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(workers, 1))
	for k, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func(k int, j *sim.Job) {
			defer func() { <-sem; wg.Done() }()
			d := choose(j)
			s := world.Judge(&j.Req, j.Task, &d)
			if d.Model == "" || s.Attempt.Status != "ok" {
				return // no image: nothing for OCR to read
			}
			w, h := j.Req.Width, j.Req.Height
			if w <= 0 || h <= 0 {
				w, h = 1024, 1024 // serve's default size
			}
			b, img := sim.RenderOutput(d.Model, j.Req.Prompt, w, h, s.Quality)
			res, err := checker.Check(ctx, b, img, 0, router.TargetTexts(j.Req.Prompt), string(j.Req.Tier))
			switch {
			case errors.Is(err, qa.ErrNoReadableText):
				return
			case err != nil:
				out[k].err = true
				return
			}
			out[k] = verdict{checked: true, pass: res.Pass, hidden: s.Success}
		}(k, &jobs[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return OCRAgreement{}, err
	}
	st := checker.Stats()
	a := OCRAgreement{Sampled: len(idx), Reads: int(st.Reads), CacheHits: int(st.Checks - st.Reads - st.Errors)}
	var pass, hidden, tp, fp, fn, same int
	for _, v := range out {
		if v.err {
			a.Errors++
		}
		if !v.checked {
			continue
		}
		a.Checked++
		if v.pass {
			pass++
		}
		if v.hidden {
			hidden++
		}
		if v.pass == v.hidden {
			same++
		}
		switch {
		case !v.pass && !v.hidden:
			tp++
		case !v.pass && v.hidden:
			fp++
		case v.pass && !v.hidden:
			fn++
		}
	}
	if a.Checked == 0 {
		return a, nil
	}
	n := float64(a.Checked)
	a.OCRPass, a.HiddenSuccess, a.Agreement = float64(pass)/n, float64(hidden)/n, float64(same)/n
	if tp+fp > 0 {
		a.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		a.Recall = float64(tp) / float64(tp+fn)
	}
	return a, nil
}

// writeText prints the text routing section of the report.
func (t *TextRouting) writeText(w io.Writer, policy string) {
	fmt.Fprintf(w, "text routing of %s (text-capable: %v, true success on short phrases >= %.1f; typography specialists: %v):\n",
		policy, t.TextCapable, TextCapableP, t.Specialists)
	fmt.Fprintf(w, "  requests with target text: %d; %d a text-capable model could serve within their constraints, %.1f%% of those routed to one (%.1f%% of all)\n",
		t.WithText, t.WithTextEligible, 100*t.WithTextToCapable, 100*t.WithTextToCapableAll)
	fmt.Fprintf(w, "  requests without:          %d; %.1f%% to a typography specialist, %.1f%% to any text-capable model\n",
		t.WithoutText, 100*t.WithoutTextToSpecialist, 100*t.WithoutTextToCapable)
	keys := make([]string, 0, len(t.Elsewhere))
	for k := range t.Elsewhere {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return t.Elsewhere[keys[i]] > t.Elsewhere[keys[j]] || t.Elsewhere[keys[i]] == t.Elsewhere[keys[j]] && keys[i] < keys[j]
	})
	for i, k := range keys {
		if i == 8 {
			fmt.Fprintf(w, "    ... %d more\n", len(keys)-i)
			break
		}
		fmt.Fprintf(w, "    with text, routed to %s: %d\n", k, t.Elsewhere[k])
	}
	if o := t.OCR; o != nil {
		fmt.Fprintf(w, "  text tasks' success as observed by OCR QA %.1f%% vs hidden truth %.1f%%, on %d outputs of %s (a sample of %d requests with target text by request-id hash, one call each, no escalation; %d OCR reads, %d cache hits)\n",
			100*o.OCRPass, 100*o.HiddenSuccess, o.Checked, policy, o.Sampled, o.Reads, o.CacheHits)
		fmt.Fprintf(w, "  OCR QA vs the hidden draw: text_illegible precision %.3f recall %.3f; agreement %.3f (%d OCR errors)\n",
			o.Precision, o.Recall, o.Agreement, o.Errors)
	}
}

// idHash orders requests for the OCR sample.
func idHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
