package server_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPolicyStageIsNotLive stages a policy through the admin API: its
// document is in the control log under its version (where experiment arms
// find it), and the live policy does not change.
func TestPolicyStageIsNotLive(t *testing.T) {
	rules, explore := shippedPolicies(t)
	live, log, store := seededPolicyStore(t, rules)
	rulesV := live.Policy().Version
	e := mustStart(t, func(s *setup) { s.deps.Policy = store })
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}

	r := do(t, "POST", e.adminURL+"/admin/policy/stage", admin, strings.NewReader(string(explore)))
	if r.status != 200 {
		t.Fatalf("stage = %d %s", r.status, r.body)
	}
	var got struct{ Version, Status, Live string }
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "staged" || got.Live != rulesV || got.Version == rulesV {
		t.Errorf("stage answered %+v, want staged with live %s", got, rulesV)
	}
	if v := live.Policy().Version; v != rulesV {
		t.Errorf("live after stage = %s, want %s", v, rulesV)
	}
	if _, ok := log.Get("policy/" + got.Version); !ok {
		t.Errorf("no policy/%s record after stage", got.Version)
	}

	r = do(t, "POST", e.adminURL+"/admin/policy/stage", admin, strings.NewReader(`{"name":"x","version":"v","checksum":"bad"}`))
	if r.status != 400 || !strings.Contains(string(r.body), "invalid_policy") {
		t.Errorf("stage of a bad policy = %d %s, want 400 invalid_policy", r.status, r.body)
	}
}
