package datasets_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
)

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "rules.json")
	doc, err := datasets.PolicyFile("rules")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := datasets.LoadPolicy(good)
	if err != nil || p.Name != "rules" {
		t.Fatalf("LoadPolicy(rules file) = %v, %v", p, err)
	}
	if _, err := datasets.LoadPolicy(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadPolicy(broken file) error = %v, want one naming the file", err)
	}
	if _, err := datasets.LoadPolicy(filepath.Join(dir, "absent.json")); !os.IsNotExist(err) {
		t.Errorf("LoadPolicy(absent) error = %v, want not-exist", err)
	}
}

func TestPolicyDoc(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give    string
		want    string // prefix of the document
		wantErr bool
	}{
		{give: file, want: `{"x":1}`},
		{give: "explore", want: "{"},
		{give: "no-such-policy", wantErr: true},
	}
	for _, tt := range tests {
		b, err := datasets.PolicyDoc(tt.give)
		if (err != nil) != tt.wantErr || !strings.HasPrefix(string(b), tt.want) {
			t.Errorf("PolicyDoc(%q) = %.20q, %v", tt.give, b, err)
		}
	}
}

func TestLoadWorkload(t *testing.T) {
	items, err := datasets.Generate(3, 50)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := datasets.WriteWorkload(f, items); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := datasets.LoadWorkload(path)
	if err != nil || len(got) != len(items) || got[7].Request.Prompt != items[7].Request.Prompt {
		t.Fatalf("LoadWorkload = %d items, %v; want the %d written", len(got), err, len(items))
	}
}

func TestLoadCatalog(t *testing.T) {
	c, err := datasets.LoadCatalog("")
	if err != nil || len(c.Models) == 0 {
		t.Fatalf(`LoadCatalog("") = %d models, %v`, len(c.Models), err)
	}
	bad := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(bad, []byte(`{"models":[{"name":""}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.LoadCatalog(bad); err == nil {
		t.Error("LoadCatalog(invalid catalog) succeeded")
	}
}

// TestWritePolicy: a written policy is read back as the same version, in
// a directory WritePolicy made.
func TestWritePolicy(t *testing.T) {
	p, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policies", "candidate.json")
	if err := datasets.WritePolicy(path, p); err != nil {
		t.Fatalf("WritePolicy: %v", err)
	}
	back, err := datasets.LoadPolicy(path)
	if err != nil || back.Version != p.Version || back.Checksum != p.Checksum {
		t.Errorf("LoadPolicy after WritePolicy = %v, %v; want version %s", back, err, p.Version)
	}
}
