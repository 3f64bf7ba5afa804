package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
)

// LogSummary is what a logged run served.
type LogSummary struct {
	Requests int
	Success  float64 // share of requests served with an output that passed QA
	// Hidden is the share served with an output whose hidden quality is a
	// success (sim.SuccessQuality): the truth QA observes.
	Hidden   float64
	MeanCost float64 // USD per request
	// Text holds the same figures for the requests whose prompt asks for
	// words in the image.
	Text TextSummary
	// TextQA says whether QA read the lettering (Config.OCR); OCR counts
	// its checks, reads and errors.
	TextQA bool
	OCR    qa.TextStats
}

// TextSummary is how requests with target text fared: success as QA
// observed it (its legibility check included on the requests the lab's
// OCR read) next to the hidden truth.
type TextSummary struct {
	Requests int     `json:"requests"`
	Success  float64 `json:"success_qa"`     // share served with an output that passed QA
	Hidden   float64 `json:"success_hidden"` // share served with an output whose hidden quality is a success
	// Judged counts the requests whose served image QA's legibility check
	// read (those of Config.OCRSample's prompts); JudgedSuccess and
	// JudgedHidden are the two shares on them alone.
	Judged        int     `json:"judged"`
	JudgedSuccess float64 `json:"judged_success_qa"`
	JudgedHidden  float64 `json:"judged_success_hidden"`
}

// Line says s in one line; textQA whether QA read the lettering.
func (s TextSummary) Line(textQA bool) string {
	if !textQA {
		return fmt.Sprintf("requests with target text: %d; success as observed by QA without a legibility check %.3f vs hidden truth %.3f",
			s.Requests, s.Success, s.Hidden)
	}
	return fmt.Sprintf("requests with target text: %d; success as observed by OCR QA %.3f vs hidden truth %.3f (on the %d whose image OCR read: %.3f vs %.3f)",
		s.Requests, s.Success, s.Hidden, s.Judged, s.JudgedSuccess, s.JudgedHidden)
}

// TextTally sums results into a TextSummary.
type TextTally struct{ n, succ, hidden, judged, judgedSucc, judgedHidden int }

// Add counts r when its prompt asks for words in the image.
func (t *TextTally) Add(r *Result) {
	if r.Text == nil {
		return
	}
	ok, truth := r.QAPassed(), r.Succeeded()
	t.n++
	t.succ += b2i(ok)
	t.hidden += b2i(truth)
	if r.Text.Judged {
		t.judged++
		t.judgedSucc += b2i(ok)
		t.judgedHidden += b2i(truth)
	}
}

// Summary returns the shares counted so far.
func (t *TextTally) Summary() TextSummary {
	s := TextSummary{Requests: t.n, Judged: t.judged}
	if t.n > 0 {
		s.Success, s.Hidden = float64(t.succ)/float64(t.n), float64(t.hidden)/float64(t.n)
	}
	if t.judged > 0 {
		s.JudgedSuccess, s.JudgedHidden = float64(t.judgedSucc)/float64(t.judged), float64(t.judgedHidden)/float64(t.judged)
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Log serves items in order and writes one datasets.LoggedEvent per
// request to w as JSONL: the decision serve would emit, plus width,
// height, the greedy model, the drawn quality and the simulated user's
// signal when Config.Feedback sent one (what `routelab policy train`
// reads). progress, when set, is called every 1000 requests with
// the number served so far.
func (l *Lab) Log(ctx context.Context, items []datasets.WorkItem, w io.Writer, progress func(done int)) (LogSummary, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	var succ, hidden, cost float64
	var text TextTally
	for i := range items {
		if i%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return LogSummary{}, err
			}
			if i > 0 && progress != nil {
				progress(i)
			}
		}
		it := &items[i]
		res := l.Serve(ctx, it.Request)
		ev := datasets.LoggedEvent{Decision: *res.Decision, Width: it.Request.Width, Height: it.Request.Height, Greedy: res.Route.Greedy, Quality: res.Quality}
		if res.Signal != nil {
			ev.Signal = res.Signal.Signal
		}
		if err := enc.Encode(&ev); err != nil {
			return LogSummary{}, err
		}
		if res.QAPassed() {
			succ++
		}
		if res.Succeeded() {
			hidden++
		}
		text.Add(&res)
		cost += res.Decision.CostUSD
	}
	if err := bw.Flush(); err != nil {
		return LogSummary{}, err
	}
	n := float64(max(len(items), 1))
	return LogSummary{Requests: len(items), Success: succ / n, Hidden: hidden / n, MeanCost: cost / n,
		Text: text.Summary(), TextQA: l.TextQA(), OCR: l.TextStats()}, nil
}
