package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routelab/routelab/providers/sim"
)

func TestQACommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	blurred := filepath.Join(dir, "blurred.png")
	os.WriteFile(good, sim.Render(`a sign that says "OPEN"`, 128, 128, 1, 1), 0o644)
	os.WriteFile(blurred, sim.Render(`a sign that says "OPEN"`, 128, 128, 0.2, 1), 0o644)
	getenv := func(string) string { return "" }

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"qa", "--width", "128", "--height", "128", good}, getenv, &out, &errOut); err != nil {
		t.Fatalf("qa on a good render: %v (%s)", err, out.String())
	}
	if !strings.Contains(out.String(), "pass") {
		t.Errorf("output %q", out.String())
	}

	out.Reset()
	err := run(context.Background(), []string{"qa", "--json", "--reference", good, good, blurred}, getenv, &out, &errOut)
	if err == nil {
		t.Fatal("qa with a blurred file succeeded, want an error (exit 1)")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got struct {
		Files, Failed int
		Results       []struct {
			File   string
			Pass   bool
			Checks []struct {
				Name string
				Pass bool
			}
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
	}
	if got.Files != 2 || got.Failed != 1 || !got.Results[0].Pass || got.Results[1].Pass {
		t.Errorf("qa --json = %+v, want the good file passing and the blurred one failing", got)
	}
	hasDrift := false
	for _, c := range got.Results[0].Checks {
		hasDrift = hasDrift || c.Name == "drift"
	}
	if !hasDrift {
		t.Error("--reference did not add the drift check")
	}

	for _, args := range [][]string{{"qa"}, {"qa", "--format", "gif", good}, {"qa", filepath.Join(dir, "missing.png")}} {
		if err := run(context.Background(), args, getenv, &out, &errOut); err == nil {
			t.Errorf("routelab %v succeeded, want an error", args)
		}
	}
}
