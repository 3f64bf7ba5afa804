package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/events"
)

// TestPolicyChangesAreAudited pushes, stages and rolls back policies through
// the admin API: each success is one events.Audit on routelab.audit naming
// the version, the credential with the actor header as its claim, and the
// policy document; a refused push is not audited.
func TestPolicyChangesAreAudited(t *testing.T) {
	rules, explore := shippedPolicies(t)
	live, _, store := seededPolicyStore(t, rules)
	rulesV := live.Policy().Version
	e := mustStart(t, func(s *setup) { s.deps.Policy = store })
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json", "X-Routelab-Actor": "console:eng"}

	post := func(path, body string) string {
		t.Helper()
		r := do(t, "POST", e.adminURL+path, admin, strings.NewReader(body))
		if r.status != 200 {
			t.Fatalf("POST %s = %d %s", path, r.status, r.body)
		}
		var got struct{ Version string }
		_ = json.Unmarshal(r.body, &got)
		return got.Version
	}
	exploreV := post("/admin/policy", string(explore))
	post("/admin/policy/stage", string(rules))
	if v := post("/admin/policy/rollback", "{}"); v != rulesV {
		t.Fatalf("rollback made %s live, want %s", v, rulesV)
	}
	if r := do(t, "POST", e.adminURL+"/admin/policy", admin, strings.NewReader(`{"name":"x","version":"v","checksum":"bad"}`)); r.status != 400 {
		t.Fatalf("push of a bad policy = %d, want 400", r.status)
	}

	type row struct{ Key, Action, Subject, Actor string }
	var got []row
	var audits []*events.Audit
	for _, ev := range e.events.Events() {
		if ev.Topic != events.TopicAudit {
			continue
		}
		a := ev.Value.(*events.Audit)
		audits = append(audits, a)
		got = append(got, row{ev.Key, a.Action, a.Subject, a.Actor})
	}
	want := []row{
		{"policy/" + exploreV, "policy.push", exploreV, "console:eng via admin"},
		{"policy/" + rulesV, "policy.stage", rulesV, "console:eng via admin"},
		{"policy/" + rulesV, "policy.rollback", rulesV, "console:eng via admin"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit events (-want +got):\n%s", diff)
	}
	var pushed struct{ Version string }
	if err := json.Unmarshal([]byte(audits[0].Body), &pushed); err != nil || pushed.Version != exploreV {
		t.Errorf("push audit body version = %q (%v), want the pushed policy %s", pushed.Version, err, exploreV)
	}
	var rb struct {
		From   string
		Policy struct{ Version string }
	}
	if err := json.Unmarshal([]byte(audits[2].Body), &rb); err != nil || rb.From != exploreV || rb.Policy.Version != rulesV {
		t.Errorf("rollback audit body = %s (%v), want from %s and the policy %s", audits[2].Body, err, exploreV, rulesV)
	}
	for _, a := range audits {
		if a.EventID == "" || a.TS == 0 {
			t.Errorf("audit %s has no event id or time: %+v", a.Action, a.Header)
		}
	}
}
