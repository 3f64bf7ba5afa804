package router_test

import (
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

// FuzzParsePolicy: a policy document comes from outside (a push to the
// admin API, a file): ParsePolicy must not panic, and a policy it accepts
// must survive its own JSON round trip with the same version and checksum.
func FuzzParsePolicy(f *testing.F) {
	for _, name := range datasets.PolicyNames() {
		b, err := datasets.PolicyFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","rules":[{"name":"r","model":"m"}]}`))
	f.Add([]byte(`{"checksum":"00"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := router.ParsePolicy(b)
		if err != nil {
			return
		}
		out, err := p.JSON()
		if err != nil {
			t.Fatalf("JSON of an accepted policy: %v", err)
		}
		q, err := router.ParsePolicy(out)
		if err != nil {
			t.Fatalf("ParsePolicy(JSON(p)) = %v for an accepted policy\n%s", err, out)
		}
		if q.Version != p.Version || q.Checksum != p.Checksum {
			t.Fatalf("round trip: version %q checksum %q, want %q %q", q.Version, q.Checksum, p.Version, p.Checksum)
		}
	})
}

// FuzzTargetTexts: prompts come from outside. Extraction must not panic,
// and every target must be a non-empty, space-trimmed piece of the prompt.
func FuzzTargetTexts(f *testing.F) {
	for _, s := range []string{`a sign that says "OPEN"`, "a mug with \u2018Don\u2019t\u2019", "\u300c\u55b6\u696d\u300d", "a t-shirt with Carpe Diem written on it", `'"'`, "\xff\"x\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		var feat router.Features
		router.Extract(&router.Request{Prompt: p}, 0, &feat)
		for i := 0; i < feat.NTargets; i++ {
			s := feat.Target(p, i)
			if s == "" || strings.Trim(s, " ") != s || !strings.Contains(p, s) {
				t.Fatalf("target %d of %q = %q", i, p, s)
			}
		}
	})
}
