package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/server"
)

const adminToken = "test-admin-token"

// chAuditor writes audit events with ingest's writer (Kafka + ingest in
// production).
type chAuditor struct{ w *ingest.Writer }

func (a chAuditor) Audit(ctx context.Context, action, subject, actor string, body []byte) {
	b := ingest.NewBatch()
	ev := events.Audit{Header: events.Header{EventID: fmt.Sprintf("au-%d", time.Now().UnixNano()), SchemaVersion: events.SchemaVersion,
		TS: time.Now().UnixMilli(), Tenant: "routelab"}, Action: action, Subject: subject, Actor: actor, Body: string(body)}
	b.AddAudit(&ev)
	_ = a.w.Write(ctx, b)
}

// chProducer is serve's event producer in these tests: audit events go
// straight into ClickHouse with ingest's writer (Kafka + ingest in
// production), before the admin call returns.
type chProducer struct {
	t testing.TB
	w *ingest.Writer
}

func (p chProducer) Enqueue(topic, key string, ev any) {
	a, ok := ev.(*events.Audit)
	if !ok {
		return
	}
	b := ingest.NewBatch()
	b.AddAudit(a)
	if err := p.w.Write(context.Background(), b); err != nil {
		p.t.Errorf("write audit %s: %v", a.Action, err)
	}
}

// mustAdminAPI serves the real server's admin API (experiments registry and
// policy store over control logs on a local kfake broker) and returns its
// URL and the broker.
func mustAdminAPI(t testing.TB, db *ingesttest.DB) (string, []string) {
	t.Helper()
	ctx := context.Background()
	b := brokertest.Start(t, broker.Config{})
	aud := chAuditor{ingest.NewWriter(db.Conn, db.Database)}
	log, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: []string{b.Addr()}, Topic: events.TopicExperiments})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	reg := experiments.NewRegistry(log, aud, nil)
	log.Subscribe(func(ch control.Change) { _ = reg.Apply(ch.Key, ch.Value) })
	plog, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: []string{b.Addr()}, Topic: events.TopicPolicies})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plog.Close() })
	pol := server.NewPolicyStore(gateway.NewLivePolicy(nil, nil), plog)
	plog.Subscribe(func(control.Change) { _ = pol.Changed() })
	for _, name := range []string{"rules", "explore"} {
		doc, err := datasets.PolicyFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pol.Push(ctx, doc); err != nil {
			t.Fatalf("push %s: %v", name, err)
		}
	}
	srv := server.New(slog.New(slog.DiscardHandler), server.Config{AdminToken: adminToken}, server.Deps{Experiments: reg, Policy: pol, Events: chProducer{t, ingest.NewWriter(db.Conn, db.Database)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeAdmin(ln) // the console talks to serve's admin listener
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String(), []string{b.Addr()}
}

// seedArms writes n decisions assigned to experiment id's arms (phase),
// treatment succeeding more often than control.
func seedArms(t testing.TB, db *ingesttest.DB, s experiments.Spec, n int) {
	t.Helper()
	b := ingest.NewBatch()
	start := time.UnixMilli(s.PhaseStarted)
	for i := 0; i < n; i++ {
		arm := s.Arms[i%len(s.Arms)].Name
		ok := i%20 < 14 // control (even i): 70% succeed
		if i%len(s.Arms) == 1 {
			ok = i%20 < 18 // treatment (odd i): 90%
		}
		d := events.Decision{Header: events.Header{EventID: fmt.Sprintf("arm-%d", i), SchemaVersion: events.SchemaVersion,
			TS: start.Add(time.Duration(i) * 30 * time.Second).UnixMilli(), Tenant: "acme", RequestID: fmt.Sprintf("arm-req-%d", i)},
			Unit: fmt.Sprintf("u%d", i), Mode: "generate", Tier: "standard", Model: "sim-fast", Status: "ok", QAPass: ok, Images: 1,
			LatencyMS: 1000, CostUSD: 0.02, Arms: []events.Arm{{Experiment: s.ID, Arm: arm, Layer: s.Layer, Phase: s.Phase, Unit: fmt.Sprintf("u%d", i)}}}
		b.AddDecision(&d)
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// mustExperiment creates and starts an experiment through the console and
// seeds decisions for its arms.
func mustExperiment(t testing.TB, eng *client, db *ingesttest.DB, admin console.Control) experiments.Spec {
	t.Helper()
	spec := startExperiment(t, eng, `{"name":"typo for text","owner":"eng","hypothesis":"h","layer":"routing","layer_share":0.5,"traffic":0.5,"unit":"user",
		"arms":[{"name":"control","weight":0.5},{"name":"treatment","weight":0.5}],"primary_metric":"success_rate","min_sample":10}`)
	eng.get("/experiments/" + spec.ID) // fresh CSRF token and the started spec
	st, raw, err := admin.Do(context.Background(), "GET", "/admin/experiments/"+spec.ID, "", nil)
	if err != nil || st != 200 {
		t.Fatalf("get spec = %d %v", st, err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	seedArms(t, db, spec, 400)
	return spec
}

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func TestExperimentAndPolicyPages(t *testing.T) {
	w := mustWorld(t, 2, 20, true)
	base := w.base
	eng := newClient(t, base)
	eng.login("eng")
	spec := mustExperiment(t, eng, w.db, w.c.Deps().Control)
	resp, body := eng.postJSON("/experiments", `{"name":""}`)
	if resp.StatusCode != 400 || !strings.Contains(body, `"code"`) {
		t.Errorf("create invalid experiment = %d %s, want 400 with the API's error", resp.StatusCode, body)
	}
	resp, body = eng.get("/experiments/" + spec.ID)
	if resp.StatusCode != 200 || !contains(body, "running", "treatment", "success_rate", "id=\"treatments\"") {
		t.Errorf("experiment page = %d, want running with results:\n%s", resp.StatusCode, body)
	}
	// 70% vs 90% success at $0.02 a request, all within the standard budget
	if !contains(body, `id="cost-speed"`, "<td>35.00</td>", "<td>45.00</td>", "<td>70.0%</td>", "<td>90.0%</td>") {
		t.Errorf("experiment page lacks the cost and speed table (35 and 45 successes per dollar, 70%% and 90%% in budget):\n%s", body)
	}
	resp, svg := eng.get("/experiments/" + spec.ID + "/effect.svg")
	if resp.StatusCode != 200 || !contains(svg, "<svg", "interval") {
		t.Errorf("effect.svg = %d (%d bytes)", resp.StatusCode, len(svg))
	}
	resp, body = eng.get("/policy")
	if resp.StatusCode != 200 || !contains(body, `<b id="live-version">explore-1</b>`, "rules-1", "previously live (1 back)", "/policy?version=rules-1") {
		t.Errorf("policy page = %d, want live explore-1 and rules-1 before it:\n%s", resp.StatusCode, body)
	}
	if resp, body = eng.get("/policy?version=rules-1"); resp.StatusCode != 200 || !contains(body, `id="diff"`, `<span class="del">-   &#34;version&#34;: &#34;rules-1&#34;`, `<span class="add">+   &#34;version&#34;: &#34;explore-1&#34;`) {
		t.Errorf("diff rules-1 -> live = %d:\n%s", resp.StatusCode, body)
	}
	// Rollback through the console moves the live version back.
	if resp, body := eng.do("POST", "/policy/rollback", nil, "application/x-www-form-urlencoded"); resp.StatusCode != 303 {
		t.Fatalf("rollback = %d %s", resp.StatusCode, body)
	}
	if _, body = eng.get("/policy"); !strings.Contains(body, `<b id="live-version">rules-1</b>`) {
		t.Errorf("after rollback the live version is not rules-1")
	}
	// Serve audited the rollback into ClickHouse; the history shows it, by
	// whom, and diffs the version it made live against live.
	m := regexp.MustCompile(`<td>policy\.rollback</td><td>rules-1</td><td>console:eng via admin</td><td><a href="/policy\?against=([^"]+)">diff with live</a>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("history after rollback has no policy.rollback of rules-1 by console:eng via admin:\n%s", body)
	}
	if resp, body := eng.get("/policy?against=" + m[1]); resp.StatusCode != 200 || !contains(body, `id="diff"`, "Diff: rules-1") || strings.Contains(body, `class="add"`) {
		t.Errorf("diff of the rolled-back-to version with live = %d, want no changes:\n%s", resp.StatusCode, body)
	}
	// A push through the console's form is audited too.
	explore, err := datasets.PolicyFile("explore")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := eng.do("POST", "/policy/push", strings.NewReader("policy="+url.QueryEscape(string(explore))), "application/x-www-form-urlencoded"); resp.StatusCode != 303 {
		t.Fatalf("push = %d %s", resp.StatusCode, body)
	}
	if _, body = eng.get("/policy"); !contains(body, `<b id="live-version">explore-1</b>`, `<td>policy.push</td><td>explore-1</td><td>console:eng via admin</td>`) {
		t.Errorf("after a push the page does not show explore-1 live and its audit row:\n%s", body)
	}
	// A reviewer cannot push.
	rev := newClient(t, base)
	rev.login("rev")
	if resp, _ := rev.do("POST", "/policy/push", strings.NewReader("policy={}"), "application/x-www-form-urlencoded"); resp.StatusCode != 403 {
		t.Errorf("reviewer push = %d, want 403", resp.StatusCode)
	}
}
