package experiments_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/routelab/routelab/experiments"
)

func TestReportWriteText(t *testing.T) {
	r := experiments.Report{
		Experiment: "exp-1", Name: "canary", Status: experiments.StatusRunning, Phase: 2, Traffic: 0.05,
		PrimaryMetric: "success_rate", Units: 400, Requests: 1200, SRMPValue: 0.0001, SRM: true,
		Arms: []experiments.ArmResult{{Arm: "control", Units: 200}, {Arm: "canary", Units: 200}},
		Guardrails: []experiments.GuardrailResult{
			{Arm: "canary", Metric: "error_rate", Value: 0.3, Control: 0.01, Breached: true, Ready: true, Reason: "error_rate +0.29 over +0.05"},
			{Arm: "canary", Metric: "latency_p95_ms", Value: 3000, Control: 2900},
		},
	}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{
		"exp-1  canary  [running, phase 2, traffic 0.05]",
		"SAMPLE RATIO MISMATCH",
		"canary error_rate = 0.3 (control 0.01): BREACHED: error_rate +0.29 over +0.05",
		"canary latency_p95_ms = 3000 (control 2900): not enough units yet",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteText lacks %q:\n%s", want, b.String())
		}
	}
}

func TestValidationReportWriteText(t *testing.T) {
	var b bytes.Buffer
	experiments.ValidationReport{AAFalsePositiveRate: 0.09, AATests: 1000, CICoverage: 0.95, Alpha: 0.05}.WriteText(&b)
	if !strings.Contains(b.String(), "A/A false-positive rate     0.0900 over 1000 tests   [0.04, 0.06] OUT OF BOUNDS") ||
		!strings.Contains(b.String(), "[0.94, 0.96] ok") {
		t.Errorf("WriteText:\n%s", b.String())
	}
}
