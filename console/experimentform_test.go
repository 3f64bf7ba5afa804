package console_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/routelab/routelab/experiments"
)

type checkAnswer struct {
	Valid bool `json:"valid"`
	Error *struct {
		Code, Field, Message string
	} `json:"error"`
	Spec   *experiments.Spec `json:"spec"`
	Sample *struct {
		Kind         string  `json:"kind"`
		Baseline     float64 `json:"baseline"`
		BaselineFrom string  `json:"baseline_from"`
		Alpha        float64 `json:"alpha"`
		PerArm       float64 `json:"units_per_arm"`
		Total        float64 `json:"units_total"`
		PerDay       float64 `json:"requests_per_day"`
		Days         float64 `json:"days"`
		Note         string  `json:"note"`
	} `json:"sample_size"`
}

// TestExperimentCheck: the form's check answers a spec's first problem
// with the admin API's own code, field and message, and a valid spec with
// the power calculator's sample size, its baseline from the last week's
// traffic when the form gives none, and how many days that takes.
func TestExperimentCheck(t *testing.T) {
	w := mustWorld(t, 2, 200, true)
	eng := newClient(t, w.base)
	eng.login("eng")
	valid := `{"name":"n","owner":"eng","layer":"routing","layer_share":0.5,"traffic":0.4,"unit":"user",` +
		`"arms":[{"name":"control","weight":0.5},{"name":"typo","weight":0.5},{"name":"premium","weight":0.5}],"primary_metric":"success_rate"}`
	for _, tc := range []struct {
		name, body string
		spec       string // the spec the API would be sent, for its own error
	}{
		{"zero weight", `{"spec":{"name":"n","owner":"eng","arms":[{"name":"a","weight":1},{"name":"b","weight":0}],"primary_metric":"success_rate"},"mde":0.02}`,
			`{"name":"n","owner":"eng","arms":[{"name":"a","weight":1},{"name":"b","weight":0}],"primary_metric":"success_rate"}`},
		{"unknown metric", `{"spec":{"name":"n","owner":"eng","arms":[{"name":"a","weight":1},{"name":"b","weight":1}],"primary_metric":"happiness"}}`,
			`{"name":"n","owner":"eng","arms":[{"name":"a","weight":1},{"name":"b","weight":1}],"primary_metric":"happiness"}`},
		{"unknown field", `{"spec":{"name":"n","owner":"eng","arm":[]}}`, `{"name":"n","owner":"eng","arm":[]}`},
		{"traffic as text", `{"spec":{"name":"n","owner":"eng","traffic":"lots"}}`, `{"name":"n","owner":"eng","traffic":"lots"}`},
	} {
		_, want := experiments.ParseSpec([]byte(tc.spec))
		var ve *experiments.ValidationError
		if !errors.As(want, &ve) {
			t.Fatalf("%s: ParseSpec = %v, want a validation error", tc.name, want)
		}
		resp, body := eng.postJSON("/experiments/check", tc.body)
		var a checkAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil || resp.StatusCode != 200 || a.Valid || a.Error == nil {
			t.Fatalf("%s: check = %d %s, want 200 and an error", tc.name, resp.StatusCode, body)
		}
		if a.Error.Code != ve.Code || a.Error.Field != ve.Field || a.Error.Message != ve.Message {
			t.Errorf("%s: check says %+v, the admin API %+v", tc.name, *a.Error, *ve)
		}
	}

	resp, body := eng.postJSON("/experiments/check", `{"spec":`+valid+`,"mde":0.02,"baseline":0.6}`)
	var a checkAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || resp.StatusCode != 200 || !a.Valid || a.Sample == nil {
		t.Fatalf("valid spec: check = %d %s", resp.StatusCode, body)
	}
	// Two treatments: each compared at alpha 0.025.
	want := math.Ceil(experiments.SampleSizeProportions(0.6, 0.62, 0.025, 0.8))
	if a.Sample.PerArm != want || a.Sample.Total != 3*want || a.Sample.Alpha != 0.025 || a.Sample.BaselineFrom != "form" {
		t.Errorf("sample size = %+v, want %.0f per arm at alpha 0.025 from the form's baseline", *a.Sample, want)
	}
	if !(a.Sample.PerDay > 0) || math.Abs(a.Sample.Days-math.Ceil(10*a.Sample.Total/a.Sample.PerDay)/10) > 1e-9 {
		t.Errorf("days = %v at %v requests a day, want the total over the seeded traffic's daily rate", a.Sample.Days, a.Sample.PerDay)
	}

	_, body = eng.postJSON("/experiments/check", `{"spec":`+valid+`,"mde":0.02}`)
	a = checkAnswer{}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Sample == nil || a.Sample.BaselineFrom != "last 7 days" || !(a.Sample.Baseline > 0 && a.Sample.Baseline < 1) {
		t.Errorf("no baseline in the form: %s, want the last 7 days' success rate", body)
	}

	_, body = eng.postJSON("/experiments/check", `{"spec":{"name":"b","owner":"eng","kind":"bandit","unit":"request",`+
		`"arms":[{"name":"a","weight":1},{"name":"b","weight":1}],"primary_metric":"success_rate"},"mde":0.02}`)
	a = checkAnswer{}
	if err := json.Unmarshal([]byte(body), &a); err != nil || !a.Valid || a.Sample == nil || a.Sample.PerArm != 0 || a.Sample.Note == "" {
		t.Errorf("bandit: %s, want valid with a note instead of a fixed sample size", body)
	}

	if resp, _ := newClient(t, w.base).postJSON("/experiments/check", `{"spec":{}}`); resp.StatusCode != 403 && resp.StatusCode != 401 && resp.StatusCode != 303 {
		t.Errorf("check without a session = %d, want refused", resp.StatusCode)
	}
}
