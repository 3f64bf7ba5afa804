package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/lab/labtest"
)

// TestLabLog: one logged decision per request, in order, and a summary that
// is the mean over those lines; a cancelled run stops with its error.
func TestLabLog(t *testing.T) {
	labtest.Heavy(t)
	l, items := mustLab(t, "explore")
	items = items[:60]
	var buf bytes.Buffer
	sum, err := l.Log(context.Background(), items, &buf, nil)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	var n int
	var cost float64
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev datasets.LoggedEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if ev.RequestID != items[n].Request.ID || ev.Width != items[n].Request.Width {
			t.Errorf("line %d is request %q (width %d), want %q (width %d)", n+1, ev.RequestID, ev.Width, items[n].Request.ID, items[n].Request.Width)
		}
		cost += ev.CostUSD
		n++
	}
	if n != len(items) || sum.Requests != len(items) {
		t.Fatalf("%d lines, summary of %d requests; want %d", n, sum.Requests, len(items))
	}
	if want := cost / float64(n); math.Abs(sum.MeanCost-want) > 1e-9 || sum.Success <= 0 || sum.Success > 1 {
		t.Errorf("summary = %+v, want mean cost %g and a success rate in (0, 1]", sum, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Log(ctx, items, &buf, nil); err == nil {
		t.Error("Log on a cancelled context = nil error")
	}
}
