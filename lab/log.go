package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"io"

	"github.com/routelab/routelab/datasets"
)

// LogSummary is what a logged run served.
type LogSummary struct {
	Requests int
	Success  float64 // share of requests served with an output that passed QA
	MeanCost float64 // USD per request
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
	var succ, cost float64
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
		if res.Served() && res.Outcome.QAPass {
			succ++
		}
		cost += res.Decision.CostUSD
	}
	if err := bw.Flush(); err != nil {
		return LogSummary{}, err
	}
	n := float64(max(len(items), 1))
	return LogSummary{Requests: len(items), Success: succ / n, MeanCost: cost / n}, nil
}
