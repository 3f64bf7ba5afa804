package router_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func TestSummarize(t *testing.T) {
	p, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	s := router.Summarize(p)
	if s.Version != p.Version || len(s.Models) != len(p.Models) || len(s.Rules) != len(p.Rules) || s.ECE != nil {
		t.Errorf("Summarize(rules) = %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name":"rules"`, `"edit_depth_limit":`, `"default_model":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("summary JSON lacks %s: %s", key, b)
		}
	}
	var out bytes.Buffer
	router.WriteSummary(&out, p)
	if !strings.HasPrefix(out.String(), "policy rules\n  version  "+p.Version+"\n") || !strings.Contains(out.String(), "  rule "+p.Rules[0].Name) {
		t.Errorf("WriteSummary:\n%s", out.String())
	}
}
