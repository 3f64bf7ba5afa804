package datasets

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// LoggedEvent is one line of a logged-decisions file written by `routelab
// sim`: the decision event serve would emit (events.Decision) plus what the
// lab knows beyond it: the requested size, the greedy model, the drawn
// quality and the simulated user's feedback signal. The hidden task is not
// logged.
type LoggedEvent struct {
	events.Decision
	Width   int     `json:"width,omitempty"`
	Height  int     `json:"height,omitempty"`
	Greedy  string  `json:"greedy,omitempty"`
	Quality float64 `json:"quality"`
	// Signal is the user's feedback on the served image (an events.Signal
	// kind; empty when none was sent).
	Signal string `json:"signal,omitempty"`
}

// ReadExamples decodes a logged-decisions JSONL stream into training
// examples, decoding on workers goroutines. It returns the number of lines
// read; lines whose first attempt failed at the provider are skipped (see
// router.ExampleFromDecision). Labels follow the default label definition
// (jobs.DefaultLabels), as training on ClickHouse rows does: a first
// attempt that passed QA is still a failure when the user sent a fail
// signal (events.DefaultFailSignals) on the image it returned. progress (may be nil) is called every
// 100,000 lines.
func ReadExamples(r io.Reader, workers int, progress func(lines int)) ([]router.Example, int, error) {
	if workers <= 0 {
		workers = 1
	}
	type batch struct {
		seq   int
		first int // line number of lines[0]
		lines [][]byte
	}
	type result struct {
		seq int
		ex  []router.Example
		err error
	}
	in := make(chan batch, workers*2)
	out := make(chan result, workers*2)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range in {
				res := result{seq: b.seq}
				for k, line := range b.lines {
					var e leanEvent
					if err := json.Unmarshal(line, &e); err != nil {
						res.err = fmt.Errorf("logged line %d: %w", b.first+k, err)
						break
					}
					d := e.decision()
					if x, ok := router.ExampleFromDecision(&d, e.Width, e.Height); ok {
						if slices.Contains(events.DefaultFailSignals, e.Signal) {
							x.Success = false
						}
						res.ex = append(res.ex, x)
					}
				}
				out <- res
			}
		}()
	}
	var readErr error
	lines := 0
	go func() {
		defer close(in)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<16), 1<<24)
		const size = 2048
		b := batch{first: 1}
		seq := 0
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				lines++
				continue
			}
			b.lines = append(b.lines, append([]byte(nil), sc.Bytes()...))
			lines++
			if progress != nil && lines%100000 == 0 {
				progress(lines)
			}
			if len(b.lines) == size {
				b.seq = seq
				in <- b
				seq++
				b = batch{first: lines + 1}
			}
		}
		if len(b.lines) > 0 {
			b.seq = seq
			in <- b
		}
		readErr = sc.Err()
	}()
	go func() { wg.Wait(); close(out) }()
	parts := map[int][]router.Example{}
	var firstErr error
	for res := range out {
		if res.err != nil && firstErr == nil {
			firstErr = res.err
		}
		parts[res.seq] = res.ex
	}
	if firstErr != nil {
		return nil, lines, firstErr
	}
	if readErr != nil {
		return nil, lines, fmt.Errorf("read logged events: %w", readErr)
	}
	var all []router.Example
	for s := 0; s < len(parts); s++ {
		all = append(all, parts[s]...)
	}
	return all, lines, nil
}

// leanEvent is the part of a logged decision that training reads. Decoding
// into it skips allocating candidates, keyword names and hashed n-grams,
// which halves the time to read a million lines.
type leanEvent struct {
	RequestID  string  `json:"request_id"`
	TS         int64   `json:"ts"`
	Tenant     string  `json:"tenant"`
	Unit       string  `json:"unit"`
	Mode       string  `json:"mode"`
	Tier       string  `json:"tier"`
	Prompt     string  `json:"prompt"`
	Model      string  `json:"model"`
	Propensity float64 `json:"propensity"`
	Status     string  `json:"status"`
	QAPass     bool    `json:"qa_pass"`
	Features   struct {
		RefCount   int     `json:"ref_count"`
		EditDepth  int     `json:"edit_depth"`
		Aspect     float64 `json:"aspect"`
		TextHeavy  bool    `json:"text_heavy"`
		Preserve   bool    `json:"preserve_subject"`
		MaxLatency int64   `json:"max_latency_ms"`
		MaxCostUSD float64 `json:"max_cost_usd"`
	} `json:"features"`
	Attempts []struct {
		Model  string `json:"model"`
		Status string `json:"status"`
	} `json:"attempts"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Signal string `json:"signal"`
}

func (e *leanEvent) decision() events.Decision {
	d := events.Decision{
		Header: events.Header{TS: e.TS, Tenant: e.Tenant, RequestID: e.RequestID},
		Unit:   e.Unit, Mode: e.Mode, Tier: e.Tier, Prompt: e.Prompt, Model: e.Model,
		Propensity: e.Propensity, Status: e.Status, QAPass: e.QAPass,
		Features: events.Features{
			RefCount: e.Features.RefCount, EditDepth: e.Features.EditDepth, Aspect: e.Features.Aspect,
			TextHeavy: e.Features.TextHeavy, Preserve: e.Features.Preserve,
			MaxLatency: e.Features.MaxLatency, MaxCostUSD: e.Features.MaxCostUSD,
		},
	}
	for _, a := range e.Attempts {
		d.Attempts = append(d.Attempts, events.Attempt{Model: a.Model, Status: a.Status})
	}
	return d
}
