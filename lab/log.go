package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"io"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers/sim"
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
	Requests int
	Success  float64 // share served with an output that passed QA
	Hidden   float64 // share served with an output whose hidden quality is a success
	// Judged counts the requests whose served image QA's legibility check
	// read (those of Config.OCRSample's prompts); JudgedSuccess and JudgedHidden are
	// the two shares on them alone.
	Judged        int
	JudgedSuccess float64
	JudgedHidden  float64
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
	var text TextSummary
	var textSucc, textHidden, judgedSucc, judgedHidden float64
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
		ok := res.Served() && res.Outcome.QAPass
		truth := res.Served() && res.Quality >= sim.SuccessQuality
		if ok {
			succ++
		}
		if truth {
			hidden++
		}
		if res.Text != nil {
			text.Requests++
			if res.Text.Judged {
				text.Judged++
				if ok {
					judgedSucc++
				}
				if truth {
					judgedHidden++
				}
			}
			if ok {
				textSucc++
			}
			if truth {
				textHidden++
			}
		}
		cost += res.Decision.CostUSD
	}
	if err := bw.Flush(); err != nil {
		return LogSummary{}, err
	}
	n := float64(max(len(items), 1))
	if text.Requests > 0 {
		text.Success, text.Hidden = textSucc/float64(text.Requests), textHidden/float64(text.Requests)
	}
	if text.Judged > 0 {
		text.JudgedSuccess, text.JudgedHidden = judgedSucc/float64(text.Judged), judgedHidden/float64(text.Judged)
	}
	return LogSummary{Requests: len(items), Success: succ / n, Hidden: hidden / n, MeanCost: cost / n,
		Text: text, TextQA: l.TextQA(), OCR: l.TextStats()}, nil
}
