package datasets

import (
	"strings"
	"testing"
)

func TestReadExamplesLabels(t *testing.T) {
	// One logged line per case: the first attempt's status, the served model
	// and status, QA and the user's signal decide the label.
	line := func(first, served, status string, qa bool, signal string) string {
		q := "false"
		if qa {
			q = "true"
		}
		return `{"request_id":"r","tenant":"t","mode":"generate","tier":"standard","model":"` + served +
			`","propensity":0.5,"status":"` + status + `","qa_pass":` + q +
			`,"attempts":[{"model":"m1","status":"` + first + `"}],"width":1024,"height":1024,"signal":"` + signal + `"}`
	}
	tests := []struct {
		name    string
		line    string
		want    bool // an example is made
		success bool
	}{
		{"qa pass, no signal", line("ok", "m1", "ok", true, ""), true, true},
		{"qa pass, thumbs up", line("ok", "m1", "ok", true, "thumbs_up"), true, true},
		{"qa pass, thumbs down", line("ok", "m1", "ok", true, "thumbs_down"), true, false},
		{"qa pass, regenerate", line("ok", "m1", "ok", true, "regenerate"), true, false},
		{"qa fail, escalated, thumbs up on the other model", line("qa_fail", "m2", "ok", true, "thumbs_up"), true, false},
		{"timeout", line("timeout", "m2", "ok", true, ""), true, false},
		{"provider error says nothing", line("error", "m2", "ok", true, ""), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, n, err := ReadExamples(strings.NewReader(tt.line+"\n"), 1, nil)
			if err != nil || n != 1 {
				t.Fatalf("ReadExamples = %d lines, %v", n, err)
			}
			if got := len(ex) == 1; got != tt.want {
				t.Fatalf("example made = %v, want %v", got, tt.want)
			}
			if tt.want && ex[0].Success != tt.success {
				t.Errorf("success = %v, want %v", ex[0].Success, tt.success)
			}
		})
	}
}
