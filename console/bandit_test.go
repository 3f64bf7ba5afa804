package console_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	resp, body := eng.postJSON("/experiments", `{"name":"bandit models","owner":"eng","layer":"bandit","unit":"request","kind":"bandit",
		"bandit":{"strata":["group"],"weights":{"text":[0.2,0.8]}},
		"arms":[{"name":"fast","weight":1,"overrides":{"model":"sim-fast"}},{"name":"typo","weight":1,"overrides":{"model":"sim-typo"}}],"primary_metric":"success_rate"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create bandit = %d %s", resp.StatusCode, body)
	}
	var spec experiments.Spec
	if err := json.Unmarshal([]byte(body), &spec); err != nil {
		t.Fatal(err)
	}
	eng.get("/experiments/" + spec.ID) // a CSRF token
	if resp, body := eng.do("POST", "/experiments/"+spec.ID+"/start", nil, "application/x-www-form-urlencoded"); resp.StatusCode != 303 {
		t.Fatalf("start = %d %s", resp.StatusCode, body)
	}
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
	if err := ingest.NewWriter(w.db.Conn, w.db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	resp, body = eng.get("/experiments/" + spec.ID)
	if resp.StatusCode != 200 || !contains(body, `id="bandit-method"`, "logged propensities", `id="bandit-arms"`, `id="bandit-weights"`, "<td>text</td><td>0.200 · 0.800</td>") {
		t.Errorf("bandit page = %d, want the propensity analysis and the weights:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `id="treatments"`) || strings.Contains(body, "sample ratio mismatch") {
		t.Errorf("bandit page shows fixed-split statistics:\n%s", body)
	}
}
