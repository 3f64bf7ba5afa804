package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
)

func mustExperimentServer(t *testing.T) (*env, *experiments.Registry) {
	t.Helper()
	log := experiments.NewMemLog()
	reg := experiments.NewRegistry(log, nil, nil)
	log.Bind(reg.Apply)
	e := mustStart(t, func(s *setup) {
		s.deps.Experiments = reg
		s.gwDeps.Assigner = gateway.NewExperimentAssigner(reg.Assigner, nil)
	})
	return e, reg
}

func (e *env) admin_(t *testing.T, method, path, body string) response {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + e.admin}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	return do(t, method, e.adminURL+path, h, strings.NewReader(body))
}

const pinSpec = `{"name":"pin strong","owner":"t","layer":"models","primary_metric":"success_rate",
 "arms":[{"name":"control","weight":1},{"name":"strong","weight":1,"overrides":{"model":"strong"}}]}`

func TestExperimentAdminAndAssignment(t *testing.T) {
	e, _ := mustExperimentServer(t)
	r := e.admin_(t, "POST", "/admin/experiments", pinSpec)
	if r.status != 201 {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var s experiments.Spec
	if err := json.Unmarshal(r.body, &s); err != nil || s.ID == "" || s.Status != experiments.StatusDraft {
		t.Fatalf("create body %s: %v", r.body, err)
	}
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/start", ""); r.status != 200 {
		t.Fatalf("start = %d %s", r.status, r.body)
	}
	// read-your-writes: the next request is already assigned
	models := map[string]string{}
	for i := range 40 {
		user := fmt.Sprintf("user-%d", i)
		n := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"a red fox","user":"`+user+`"}`))
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		ev, ok := e.events.Next(ctx, events.TopicDecisions)
		cancel()
		if !ok {
			t.Fatal("no decision event")
		}
		d := ev.Value.(*events.Decision)
		if len(d.Arms) != 1 || d.Arms[0].Experiment != s.ID || d.Arms[0].Unit != user || d.Arms[0].Phase != 1 {
			t.Fatalf("decision arms = %+v", d.Arms)
		}
		if want := experiments.Bucket(s.ArmSalt(), user); d.Arms[0].Bucket != want {
			t.Fatalf("arm bucket = %d, want %d", d.Arms[0].Bucket, want)
		}
		if (d.Arms[0].Arm == "strong") != (n.Model == "strong") {
			t.Fatalf("arm %s served by %s", d.Arms[0].Arm, n.Model)
		}
		models[d.Arms[0].Arm] = n.Model
	}
	if len(models) != 2 {
		t.Fatalf("arms seen: %v", models)
	}
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/pause", `{"reason":"check"}`); r.status != 200 {
		t.Fatalf("pause = %d %s", r.status, r.body)
	}
	e.post(t, "/v1/images", `{"prompt":"a red fox","user":"user-1"}`)
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	if ev, _ := e.events.Next(ctx, events.TopicDecisions); len(ev.Value.(*events.Decision).Arms) != 0 {
		t.Fatalf("paused experiment still assigns")
	}
	r = e.admin_(t, "GET", "/admin/experiments", "")
	if r.status != 200 || !strings.Contains(string(r.body), s.ID) {
		t.Fatalf("list = %d %s", r.status, r.body)
	}
}

func TestExperimentAdminErrors(t *testing.T) {
	e, _ := mustExperimentServer(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad spec", "POST", "/admin/experiments", `{"name":"x"}`, 400, "missing_field"},
		{"unknown field", "POST", "/admin/experiments", `{"name":"x","bogus":1}`, 400, "unknown_field"},
		{"not json", "POST", "/admin/experiments", `nope`, 400, "invalid_json"},
		{"missing", "GET", "/admin/experiments/nope", ``, 404, "not_found"},
		{"missing start", "POST", "/admin/experiments/nope/start", ``, 404, "not_found"},
		{"bad action", "POST", "/admin/experiments/nope/explode", ``, 404, "not_found"},
		{"unknown model pin", "POST", "/admin/experiments", `{"name":"x","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"overrides":{"model":"sim-nope"}}]}`, 400, "unknown_model"},
	}
	for _, tt := range tests {
		r := e.admin_(t, tt.method, tt.path, tt.body)
		if r.status != tt.status || r.errorCode() != tt.code {
			t.Errorf("%s: %s %s = %d %s, want %d %s", tt.name, tt.method, tt.path, r.status, r.body, tt.status, tt.code)
		}
	}
	r := e.admin_(t, "POST", "/admin/experiments", pinSpec)
	var s experiments.Spec
	_ = json.Unmarshal(r.body, &s)
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/stop", ``); r.status != 200 {
		t.Fatalf("stop = %d", r.status)
	}
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/start", ``); r.status != 409 || r.errorCode() != "invalid_transition" {
		t.Errorf("start stopped = %d %s", r.status, r.body)
	}
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/ramp", `{"traffic":2}`); r.status != 400 {
		t.Errorf("ramp 2 = %d %s", r.status, r.body)
	}
	if r := do(t, "GET", e.adminURL+"/admin/experiments", map[string]string{"Authorization": "Bearer " + e.key}, nil); r.status != 403 {
		t.Errorf("tenant key on admin = %d", r.status)
	}
}
