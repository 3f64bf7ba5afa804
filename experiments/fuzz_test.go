package experiments_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/experiments"
)

// FuzzParseSpec: experiment specs come from the admin API and files;
// ParseSpec must not panic, and a spec it accepts must parse again from
// its own JSON to the same spec.
func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("../datasets/experiments/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"e","arms":[{"name":"control","weight":50},{"name":"treatment","weight":50}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"name":"e"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := experiments.ParseSpec(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal an accepted spec: %v", err)
		}
		s2, err := experiments.ParseSpec(out)
		if err != nil {
			t.Fatalf("ParseSpec(JSON(s)) = %v for an accepted spec\n%s", err, out)
		}
		if diff := cmp.Diff(s, s2); diff != "" {
			t.Fatalf("round trip changed the spec (-first +second):\n%s", diff)
		}
	})
}
