package experiments_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/routelab/routelab/experiments"
)

func TestShippedSpecsParse(t *testing.T) {
	files, _ := filepath.Glob("../datasets/experiments/*.json")
	if len(files) < 4 {
		t.Fatalf("found %d example specs, want the examples (ab-policies, canary, shadow, bandit)", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := experiments.ParseSpec(b); err != nil {
			t.Errorf("ParseSpec(%s) = %v", f, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	base := `"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1}]`
	tests := []struct {
		name, give, code, field string
	}{
		{"unknown field", `{` + base + `,"colour":"red"}`, "unknown_field", "colour"},
		{"bad json", `{` + base, "invalid_json", ""},
		{"wrong type", `{` + base + `,"traffic":"all"}`, "invalid_type", "traffic"},
		{"no name", `{"owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1}]}`, "missing_field", "name"},
		{"one arm", `{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1}]}`, "too_few_arms", "arms"},
		{"dup arm", `{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"a","weight":1}]}`, "duplicate_arm", "arms[1].name"},
		{"zero weight", `{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":0}]}`, "out_of_range", "arms[1].weight"},
		{"metric", `{"name":"n","owner":"o","primary_metric":"happiness","arms":[{"name":"a","weight":1},{"name":"b","weight":1}]}`, "unknown_metric", "primary_metric"},
		{"traffic", `{` + base + `,"traffic":1.5}`, "out_of_range", "traffic"},
		{"unit", `{` + base + `,"unit":"device"}`, "invalid_value", "unit"},
		{"guardrail", `{` + base + `,"guardrails":[{"metric":"error_rate"}]}`, "missing_field", "guardrails[0].max"},
		{"ramp order", `{` + base + `,"ramp":{"steps":[0.5,0.1],"min_duration":"1m"}}`, "out_of_range", "ramp.steps[1]"},
		{"ramp duration", `{` + base + `,"ramp":{"steps":[0.5],"min_duration":"soon"}}`, "invalid_json", ""},
		{"feature", `{` + base + `,"targeting":{"features":[{"feature":"mood","op":"eq","value":1}]}}`, "unknown_feature", "targeting.features[0].feature"},
		{"epsilon", `{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"overrides":{"epsilon":2}}]}`, "out_of_range", "arms[1].overrides.epsilon"},
		{"control", `{` + base + `,"control":"z"}`, "invalid_value", "control"},
		{"version", `{` + base + `,"schema_version":9}`, "unsupported_version", "schema_version"},
		{"latency budget", `{` + base + `,"latency_budgets_ms":{"premium":-1}}`, "out_of_range", "latency_budgets_ms.premium"},
		{"latency budget tier", `{` + base + `,"latency_budgets_ms":{"hero":1000}}`, "unknown_field", "hero"},
	}
	for _, tt := range tests {
		_, err := experiments.ParseSpec([]byte(tt.give))
		var ve *experiments.ValidationError
		if !errorsAs(err, &ve) || ve.Code != tt.code || ve.Field != tt.field {
			t.Errorf("%s: ParseSpec = %v (%+v), want code %s field %q", tt.name, err, ve, tt.code, tt.field)
		}
	}
}

func TestParseSpecDefaults(t *testing.T) {
	s, err := experiments.ParseSpec([]byte(`{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"overrides":{"model":"sim-typo","thresholds":{"premium":0.9}}}],"targeting":{"features":[{"feature":"text_heavy","op":"eq","value":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Layer != "default" || s.Traffic != 1 || s.LayerShare != 1 || s.Unit != experiments.UnitUser || s.Status != experiments.StatusDraft || s.Control != "a" || s.Phase != 1 {
		t.Errorf("defaults = %+v", s)
	}
	if s.Targeting.Features[0].Value != 1 {
		t.Errorf("boolean predicate value = %v, want 1", s.Targeting.Features[0].Value)
	}
}
