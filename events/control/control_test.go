package control_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/events/control"
)

type mapGetter map[string]string

func (m mapGetter) Get(key string) ([]byte, bool) {
	v, ok := m[key]
	return []byte(v), ok
}

func TestLivePolicyPromoteAndRollback(t *testing.T) {
	var rec control.LivePolicy
	for _, v := range []string{"v1", "v2", "v2", "v3"} {
		rec = rec.Promote(v)
	}
	// Promoting the live version again adds nothing to the history.
	if want := (control.LivePolicy{Version: "v3", History: []string{"v1", "v2"}}); !cmp.Equal(rec, want) {
		t.Fatalf("after pushes v1 v2 v2 v3: %+v, want %+v", rec, want)
	}
	before := rec
	back, ok := rec.Rollback()
	if want := (control.LivePolicy{Version: "v2", History: []string{"v1"}}); !ok || !cmp.Equal(back, want) {
		t.Fatalf("Rollback() = %+v, %v; want %+v, true", back, ok, want)
	}
	if !cmp.Equal(rec, before) {
		t.Errorf("Rollback changed its receiver: %+v, was %+v", rec, before)
	}
	back, _ = back.Rollback()
	if _, ok := back.Rollback(); ok || back.Version != "v1" {
		t.Errorf("after two rollbacks: %+v, and another rollback ok=%v; want v1 live and no further rollback", back, ok)
	}
}

func TestLivePolicyHistoryCapped(t *testing.T) {
	var rec control.LivePolicy
	n := control.PolicyHistory + 5
	for i := range n {
		rec = rec.Promote(fmt.Sprint("v", i))
	}
	if len(rec.History) != control.PolicyHistory || rec.History[0] != fmt.Sprint("v", n-1-control.PolicyHistory) {
		t.Errorf("history after %d pushes: %d entries from %s; want the last %d before the live one", n, len(rec.History), rec.History[0], control.PolicyHistory)
	}
}

// TestLivePolicyWireForm pins the record's JSON: serve writes it, and a
// console or CLI of another build reads it from the same topic.
func TestLivePolicyWireForm(t *testing.T) {
	b, err := control.LivePolicy{Version: "v2", History: []string{"v1"}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"version":"v2","history":["v1"]}`; got != want {
		t.Errorf("Encode() = %s, want %s", got, want)
	}
	tests := []struct {
		name    string
		topic   mapGetter
		want    control.LivePolicy
		ok, err bool
	}{
		{"no live record", mapGetter{}, control.LivePolicy{}, false, false},
		{"live record", mapGetter{control.PolicyLiveKey: string(b)}, control.LivePolicy{Version: "v2", History: []string{"v1"}}, true, false},
		{"first push, no history", mapGetter{"live": `{"version":"v1"}`}, control.LivePolicy{Version: "v1"}, true, false},
		{"damaged record", mapGetter{"live": `{"version":`}, control.LivePolicy{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := control.ReadLivePolicy(tt.topic)
			if !cmp.Equal(got, tt.want) || ok != tt.ok || (err != nil) != tt.err {
				t.Errorf("ReadLivePolicy = %+v, %v, %v; want %+v, %v, error %v", got, ok, err, tt.want, tt.ok, tt.err)
			}
		})
	}
}

func TestPolicyDocKeys(t *testing.T) {
	key := control.PolicyDocKey("2026-12-01.3")
	if key != "policy/2026-12-01.3" {
		t.Errorf("PolicyDocKey = %q, want policy/2026-12-01.3 (the key earlier builds wrote)", key)
	}
	if v, ok := control.PolicyVersionOfKey(key); !ok || v != "2026-12-01.3" {
		t.Errorf("PolicyVersionOfKey(%q) = %q, %v", key, v, ok)
	}
	if _, ok := control.PolicyVersionOfKey(control.PolicyLiveKey); ok {
		t.Errorf("the live record's key is taken for a document key")
	}
	if got := control.APIKeyKey("k1"); got != "key/k1" {
		t.Errorf("APIKeyKey = %q, want key/k1 (the key earlier builds wrote)", got)
	}
}
