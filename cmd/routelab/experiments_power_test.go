package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
)

func TestExperimentsPower(t *testing.T) {
	tests := []struct {
		args        []string
		wantUnits   float64
		wantPowerLo float64
		wantPowerHi float64
	}{
		// R: power.prop.test(p1 = .50, p2 = .75, power = .90) => n = 76.7
		{[]string{"--baseline", "0.5", "--mde", "0.25", "--power", "0.9"}, 77, 0.9, 0.9},
		// R: power.prop.test(n = 50, p1 = .50, p2 = .75) => power = 0.7401659
		{[]string{"--baseline", "0.5", "--mde", "0.25", "--units", "50"}, 50, 0.74016, 0.74017},
		// R: power.t.test(power = .90, delta = 1) => n = 22.02110
		{[]string{"--sd", "1", "--mde", "1", "--power", "0.9"}, 23, 0.9, 0.9},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		args := append([]string{"experiments", "power", "--json"}, tt.args...)
		if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var r powerResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.UnitsPerArm != tt.wantUnits || r.Power < tt.wantPowerLo || r.Power > tt.wantPowerHi {
			t.Errorf("power %v = %+v, want %v units, power in [%v, %v]", tt.args, r, tt.wantUnits, tt.wantPowerLo, tt.wantPowerHi)
		}
	}
	if err := run(context.Background(), []string{"experiments", "power", "--baseline", "0.9", "--mde", "0.2"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("power with baseline+mde >= 1 succeeded")
	}
}
