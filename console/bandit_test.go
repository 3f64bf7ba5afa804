package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/ingest"
)

// TestBanditExperimentPage: a bandit's page analyses it by the logged
// propensities and says so, shows the weights in force, and shows none of
// the fixed-split tables.
func TestBanditExperimentPage(t *testing.T) {
	w := mustWorld(t, 2, 20, true)
	eng := newClient(t, w.base)
	eng.login("eng")
	spec := seedBandit(t, eng, w)
	resp, body := eng.get("/experiments/" + spec.ID)
	if resp.StatusCode != 200 || !contains(body, `id="bandit-method"`, "logged propensities", `id="bandit-arms"`, `id="bandit-weights"`, "<td>text</td><td>0.200 · 0.800</td>") {
		t.Errorf("bandit page = %d, want the propensity analysis and the weights:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `id="treatments"`) || strings.Contains(body, "sample ratio mismatch") {
		t.Errorf("bandit page shows fixed-split statistics:\n%s", body)
	}
	resp, svg := eng.get("/experiments/" + spec.ID + "/weights.svg")
	if resp.StatusCode != 200 || !contains(svg, "<svg", "Bandit weights in force", "text typo", "text fast") {
		t.Errorf("weights.svg = %d, want a chart of text fast and text typo:\n%.2000s", resp.StatusCode, svg)
	}
}

// seedBandit starts a contextual bandit of two arms whose text stratum is
// at 0.2/0.8, with 200 logged decisions at those propensities and two
// audited re-weightings (the weights over time: 0.5/0.5, then 0.2/0.8).
func seedBandit(t testing.TB, eng *client, w *world) experiments.Spec {
	t.Helper()
	spec := startExperiment(t, eng, `{"name":"bandit models","owner":"eng","layer":"bandit","unit":"request","kind":"bandit",
		"bandit":{"strata":["group"],"weights":{"text":[0.2,0.8]}},
		"arms":[{"name":"fast","weight":1,"overrides":{"model":"sim-fast"}},{"name":"typo","weight":1,"overrides":{"model":"sim-typo"}}],"primary_metric":"success_rate"}`)
	b := ingest.NewBatch()
	start := time.Now() // after the start: in the phase
	for i := range 200 {
		arm, p := "typo", 0.8
		if i%5 == 0 {
			arm, p = "fast", 0.2
		}
		id := fmt.Sprintf("bandit-req-%d", i)
		b.AddDecision(&events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: start.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli(), Tenant: "acme", RequestID: id},
			Status: "ok", QAPass: arm == "typo" || i%2 == 0, Images: 1,
			Arms: []events.Arm{{Experiment: spec.ID, Arm: arm, Layer: "bandit", Phase: 1, Unit: id, Propensity: p, Stratum: "text"}}})
	}
	for e, w := range [][]float64{{0.5, 0.5}, {0.2, 0.8}} {
		sp := spec
		sp.Bandit = &experiments.Bandit{Epoch: e + 1, Weights: map[string][]float64{"text": w}}
		raw, _ := json.Marshal(sp)
		at := start.Add(time.Duration(e-2) * time.Minute) // two and one minute ago
		b.AddAudit(&events.Audit{Header: events.Header{EventID: fmt.Sprintf("rw-%d", e), SchemaVersion: events.SchemaVersion, TS: at.UnixMilli(), Tenant: "routelab"},
			Action: "bandit.reweight", Subject: spec.ID, Actor: "monitor", Body: string(raw)})
	}
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestShadowExperimentPage: a shadow experiment's page compares live and
// shadow per feature group on the pairs.
func TestShadowExperimentPage(t *testing.T) {
	w := mustWorld(t, 2, 20, true)
	eng := newClient(t, w.base)
	eng.login("eng")
	spec := seedShadow(t, eng, w)
	resp, body := eng.get("/experiments/" + spec.ID)
	if resp.StatusCode != 200 || !contains(body, `id="shadow-strata"`, "<td>text</td><td>20</td><td>50.0%</td><td>100.0%</td>") {
		t.Errorf("shadow page = %d, want 20 text pairs, QA pass 50%% live vs 100%% shadow:\n%s", resp.StatusCode, body)
	}
}

// seedShadow starts a shadow experiment mirroring to sim-premium, with 20
// text-heavy live requests (half pass QA) and their mirrors (all pass).
func seedShadow(t testing.TB, eng *client, w *world) experiments.Spec {
	t.Helper()
	spec := startExperiment(t, eng, `{"name":"shadow premium","owner":"eng","layer":"shadow","unit":"user","kind":"shadow",
		"shadow":{"share":0.5},"arms":[{"name":"live","weight":1},{"name":"premium","weight":1,"overrides":{"model":"sim-premium"}}],"primary_metric":"qa_pass_rate"}`)
	b := ingest.NewBatch()
	start := time.Now()
	for i := range 20 {
		id := fmt.Sprintf("shadow-live-%d", i)
		ts := start.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli()
		b.AddDecision(&events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: "acme", RequestID: id},
			Mode: "generate", Status: "ok", QAPass: i%2 == 0, CostUSD: 0.01, LatencyMS: 900, Features: events.Features{TextHeavy: true}})
		b.AddDecision(&events.Decision{Header: events.Header{EventID: id + ":shadow", SchemaVersion: events.SchemaVersion, TS: ts + 5000, Tenant: "acme", RequestID: id + ":shadow"},
			Mode: "generate", Status: "ok", QAPass: true, CostUSD: 0.16, LatencyMS: 12000, Shadow: true, LiveRequestID: id,
			Arms: []events.Arm{{Experiment: spec.ID, Arm: "premium", Layer: "shadow", Phase: 1}}})
	}
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestHoldoutExperimentPage: a holdout's page reports the cumulative effect
// of the layer's launches against it.
func TestHoldoutExperimentPage(t *testing.T) {
	w := mustWorld(t, 2, 20, true)
	eng := newClient(t, w.base)
	eng.login("eng")
	spec := startExperiment(t, eng, `{"name":"routing holdout","owner":"eng","layer":"routing","layer_share":0.05,"unit":"user","kind":"holdout",
		"arms":[{"name":"baseline","weight":1,"overrides":{"policy_version":"rules-1"}}],"primary_metric":"success_rate"}`)
	b := ingest.NewBatch()
	start := time.Now()
	for i := range 100 {
		id := fmt.Sprintf("held-%d", i)
		d := &events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: start.Add(time.Duration(i) * 10 * time.Millisecond).UnixMilli(), Tenant: "acme", RequestID: id},
			Unit: fmt.Sprintf("u%d", i/2), Status: "ok", QAPass: i%2 == 0, PolicyVersion: "trained-2"}
		if i < 20 {
			d.Arms = []events.Arm{{Experiment: spec.ID, Arm: "baseline", Layer: "routing", Phase: 1}}
			d.PolicyVersion = "rules-1"
		}
		b.AddDecision(d)
	}
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	resp, body := eng.get("/experiments/" + spec.ID)
	if resp.StatusCode != 200 || !contains(body, `id="holdout"`, "rules-1", "in 20 held-out requests (10 units)", "in 80 others (40 units)",
		`id="holdout-policies"`, "<td>trained-2</td>", `id="holdout-daily"`) {
		t.Errorf("holdout page = %d, want the report of 20 held-out requests of 10 users vs 80 of 40, by policy and day:\n%s", resp.StatusCode, body)
	}
}

// TestShadowPairsInPairwiseQueue: a mirror stored for review is paired
// with its live output in the blind pairwise queue (whatever their
// prompts' other outputs), and never enters the score queue, whose
// estimates are of live traffic.
func TestShadowPairsInPairwiseQueue(t *testing.T) {
	w := mustWorld(t, 2, 0, false)
	b := ingest.NewBatch()
	ts := time.Now().UnixMilli()
	live, mirror := "shadow-pair-live", "shadow-pair-live:shadow"
	for _, d := range []*events.Decision{
		{Header: events.Header{EventID: live, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: "acme", RequestID: live},
			Mode: "generate", Tier: "standard", Prompt: "a shop sign that says OPEN", Model: "sim-fast", Status: "ok", QAPass: true, Images: 1,
			Sampled: true, BlobKey: strings.Repeat("a", 64)},
		{Header: events.Header{EventID: mirror, SchemaVersion: events.SchemaVersion, TS: ts + 3000, Tenant: "acme", RequestID: mirror},
			Mode: "generate", Tier: "standard", Prompt: "a shop sign that says OPEN", Model: "sim-typo", Status: "ok", QAPass: true, Images: 1,
			Sampled: true, BlobKey: strings.Repeat("b", 64), Shadow: true, LiveRequestID: live,
			Arms: []events.Arm{{Experiment: "shadow-typo", Arm: "typo", Layer: "shadow", Phase: 1}}},
	} {
		b.AddDecision(d)
	}
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	rev := newClient(t, w.base)
	rev.login("rev")
	found := false
	for range 50 {
		_, page := rev.get("/pairwise")
		if strings.Contains(page, "No pairs left") {
			break
		}
		id := regexp.MustCompile(`data-id="([^"]+)"`).FindStringSubmatch(page)
		if id == nil {
			t.Fatalf("pairwise page without a pair:\n%s", page)
		}
		if id[1] == live+"~"+mirror {
			found = true
			if !contains(page, "/blob/"+strings.Repeat("a", 64), "/blob/"+strings.Repeat("b", 64)) || strings.Contains(page, "sim-typo") {
				t.Errorf("shadow pair page does not show both images blind:\n%s", page)
			}
			break
		}
		rev.postJSON("/pairwise/submit", `{"id":"`+id[1]+`","choice":"skip"}`)
	}
	if !found {
		t.Error("the live/shadow pair never reached the pairwise queue")
	}
	for range 50 {
		it := rev.next()
		if it.Done {
			break
		}
		if it.ID == mirror {
			t.Fatalf("the shadow output %s is in the score queue", mirror)
		}
		rev.postJSON("/review/skip", `{"id":"`+it.ID+`"}`)
	}
}

// TestOCRVersusPeople: the Reviewers page sets each reviewed text output's
// legibility check (its last attempt's) against the reviewers' mean
// legibility score: 3 agree legible, 1 agrees illegible, 1 passed OCR that
// people could not read; an earlier failed attempt and a shadow's check do
// not count.
func TestOCRVersusPeople(t *testing.T) {
	w := mustWorld(t, 2, 0, false)
	b := ingest.NewBatch()
	now := time.Now()
	type out struct {
		id      string
		ocrPass bool
		score   float64
		human   []float64
	}
	for i, o := range []out{
		{"ocr-1", true, 1, []float64{5, 4}}, {"ocr-2", true, 0.95, []float64{4}}, {"ocr-3", true, 1, []float64{3}},
		{"ocr-4", false, 0.2, []float64{1, 2}}, {"ocr-5", true, 0.9, []float64{1}},
	} {
		ts := now.Add(time.Duration(i) * time.Second).UnixMilli()
		hdr := func(id string) events.Header {
			return events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: "acme", RequestID: o.id}
		}
		// a failed first attempt on another model: the served output is the second
		b.AddQA(&events.QAResult{Header: hdr(o.id + "-qa0"), Model: "sim-lite", Attempt: 0, Checks: []events.QACheck{{Name: "text", Pass: false, Value: 0.1}}, OCRText: "GRNA"})
		b.AddQA(&events.QAResult{Header: hdr(o.id + "-qa1"), Model: "sim-typo", Attempt: 1, Pass: o.ocrPass,
			Checks: []events.QACheck{{Name: "blank", Pass: true, Value: 40}, {Name: "text", Pass: o.ocrPass, Value: o.score}}, OCRText: "GRAND OPENING"})
		for k, h := range o.human {
			b.AddReview(&events.Review{Header: hdr(fmt.Sprintf("%s-rev%d", o.id, k)), Kind: "score", Reviewer: fmt.Sprintf("r%d", k),
				Scores: []events.Score{{Name: "overall", Value: 4}, {Name: "legibility", Value: h}}})
		}
	}
	shadow := events.Header{EventID: "ocr-1-shadow-qa", SchemaVersion: events.SchemaVersion, TS: now.UnixMilli(), Tenant: "acme", RequestID: "ocr-1"}
	b.AddQA(&events.QAResult{Header: shadow, Model: "sim-lite", Attempt: 5, Shadow: true, Checks: []events.QACheck{{Name: "text", Pass: false}}})
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	eng := newClient(t, w.base)
	eng.login("eng")
	resp, body := eng.get("/quality")
	if resp.StatusCode != 200 || !contains(body, `id="ocr-qa"`, "<tr><th>OCR pass</th><td>3</td><td class=\"bad\">1</td></tr>",
		"<tr><th>OCR fail (text_illegible)</th><td class=\"bad\">0</td><td>1</td></tr>", "5 reviewed text outputs", `id="ocr-disagreements"`, "<td>ocr-5</td>") {
		t.Errorf("quality page = %d, want OCR against people 3/1/0/1 with ocr-5 as a disagreement:\n%s", resp.StatusCode, body)
	}
}
