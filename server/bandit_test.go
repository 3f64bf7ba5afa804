package server_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/experiments"
)

// TestBanditReweightAction: POST /admin/experiments/ID/reweight hands the
// outcomes to the registry, which re-weights a bandit whose schedule is due
// (here at once: every 1s and a registry clock past it) towards the arm
// that does better.
func TestBanditReweightAction(t *testing.T) {
	e, _ := mustExperimentServer(t)
	r := e.admin_(t, "POST", "/admin/experiments", `{"name":"b","owner":"t","layer":"bandit","unit":"request","primary_metric":"success_rate",
		"kind":"bandit","bandit":{"every":"1s","burn_in":10,"updated_ms":1},
		"arms":[{"name":"control","weight":1},{"name":"strong","weight":1,"overrides":{"model":"strong"}}]}`)
	if r.status != 201 {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var s experiments.Spec
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if r := e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/start", ""); r.status != 200 {
		t.Fatalf("start = %d %s", r.status, r.body)
	}
	r = e.admin_(t, "POST", "/admin/experiments/"+s.ID+"/reweight", `{"outcomes":{"":[{"n":100,"sum":20,"sum_sq":20},{"n":100,"sum":80,"sum_sq":80}]}}`)
	if r.status != 200 {
		t.Fatalf("reweight = %d %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if w := s.Bandit.Weights[""]; s.Bandit.Epoch != 1 || len(w) != 2 || w[1] < 0.9 {
		t.Errorf("after reweight: epoch %d weights %v, want epoch 1 with strong above 0.9", s.Bandit.Epoch, w)
	}
}
