package experiments_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
)

// The test vectors of docs/assignment.md, computed independently with
// Python: int.from_bytes(hashlib.sha256((salt + ":" + unit).encode()).digest()[:8], "big") % 10000
var vectors = []struct {
	salt, unit string
	want       int
}{
	{"exp-1", "user-1", 5971},
	{"exp-1", "user-2", 2809},
	{"layer.default", "user-1", 9571},
	{"ab-policies", "u42", 1005},
	{"ab-policies.p2", "u42", 8321},
	{"layer.routing", "用户-7", 6112},
	{"exp-1", "Zoë", 3403},
	{"exp-1", "😀", 7356},
	{"exp-1", "", 2786},
	{"canary-flux", "tenant-acme", 8483},
}

func TestBucketVectors(t *testing.T) {
	for _, tt := range vectors {
		if got := experiments.Bucket(tt.salt, tt.unit); got != tt.want {
			t.Errorf("Bucket(%q, %q) = %d, want %d", tt.salt, tt.unit, got, tt.want)
		}
	}
	long := string(make([]byte, 500)) // longer than the stack buffer
	if a, b := experiments.Bucket("s", long), experiments.Bucket("s", long); a != b || a < 0 || a >= experiments.Buckets {
		t.Errorf("Bucket(long) = %d, %d", a, b)
	}
}

func MustSpec(t testing.TB, id, layer string, share, traffic float64, weights ...float64) experiments.Spec {
	t.Helper()
	s := experiments.Spec{
		ID: id, Name: id, Owner: "t", Layer: layer, LayerShare: share, Traffic: traffic,
		PrimaryMetric: "success_rate", Status: experiments.StatusRunning, CreatedMS: 1,
	}
	for i, w := range weights {
		s.Arms = append(s.Arms, experiments.Arm{Name: fmt.Sprintf("arm%d", i), Weight: w})
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("spec %s: %v", id, err)
	}
	return s
}

func allocate(t testing.TB, specs ...experiments.Spec) []experiments.Spec {
	t.Helper()
	var out []experiments.Spec
	for _, s := range specs {
		if err := experiments.Allocate(&s, out); err != nil {
			t.Fatalf("Allocate(%s): %v", s.ID, err)
		}
		out = append(out, s)
	}
	return out
}

func assignAll(a *experiments.Assigner, n int) map[string]map[string]string {
	out := map[string]map[string]string{} // experiment -> unit -> arm
	var dst []experiments.Assignment
	for i := range n {
		u := fmt.Sprintf("user-%d", i)
		dst = a.Assign(dst[:0], experiments.Subject{User: u, Tenant: "acme", Mode: "generate", Tier: "standard"})
		for _, as := range dst {
			if out[as.Experiment] == nil {
				out[as.Experiment] = map[string]string{}
			}
			out[as.Experiment][u] = as.Arm
		}
	}
	return out
}

func TestLayersDisjointAndOrthogonal(t *testing.T) {
	specs := allocate(t,
		MustSpec(t, "a", "l1", 0.5, 1, 1, 1),
		MustSpec(t, "b", "l1", 0.5, 1, 1, 1),
		MustSpec(t, "c", "l2", 1, 1, 1, 1),
	)
	a := experiments.NewAssigner(specs)
	const n = 40000
	got := assignAll(a, n)
	for u := range got["a"] {
		if _, ok := got["b"][u]; ok {
			t.Fatalf("unit %s is in both experiments of layer l1", u)
		}
	}
	if len(got["a"])+len(got["b"]) != n || len(got["c"]) != n {
		t.Fatalf("coverage a %d b %d c %d, want a+b = c = %d", len(got["a"]), len(got["b"]), len(got["c"]), n)
	}
	// Orthogonality: the arm of c is independent of membership in a.
	var inA, inAarm0 float64
	for u, arm := range got["c"] {
		if _, ok := got["a"][u]; ok {
			inA++
			if arm == "arm0" {
				inAarm0++
			}
		}
	}
	if share := inAarm0 / inA; math.Abs(share-0.5) > 0.015 {
		t.Errorf("share of c's arm0 among a's units = %v, want 0.5", share)
	}
	if share := float64(len(got["a"])) / n; math.Abs(share-0.5) > 0.015 {
		t.Errorf("a's share of layer = %v, want 0.5", share)
	}
}

func TestRaisingTrafficKeepsUnits(t *testing.T) {
	low := allocate(t, MustSpec(t, "canary", "l", 1, 0.05, 1, 1))
	high := allocate(t, MustSpec(t, "canary", "l", 1, 0.5, 1, 1))
	gl := assignAll(experiments.NewAssigner(low), 20000)["canary"]
	gh := assignAll(experiments.NewAssigner(high), 20000)["canary"]
	if len(gl) == 0 || len(gh) < 9*len(gl) {
		t.Fatalf("units at 5%% = %d, at 50%% = %d", len(gl), len(gh))
	}
	for u, arm := range gl {
		if gh[u] != arm {
			t.Fatalf("unit %s moved from %s to %q when traffic rose", u, arm, gh[u])
		}
	}
}

func TestSplittingLayerKeepsRunningExperiments(t *testing.T) {
	first := allocate(t, MustSpec(t, "a", "l", 0.3, 1, 1, 1))
	before := assignAll(experiments.NewAssigner(first), 20000)["a"]
	both := allocate(t, first[0], MustSpec(t, "b", "l", 0.4, 1, 1, 1, 1))
	after := assignAll(experiments.NewAssigner(both), 20000)
	if len(after["b"]) == 0 {
		t.Fatal("new experiment got no units")
	}
	if len(before) != len(after["a"]) {
		t.Fatalf("a had %d units, has %d after the split", len(before), len(after["a"]))
	}
	for u, arm := range before {
		if after["a"][u] != arm {
			t.Fatalf("unit %s moved from %s to %q", u, arm, after["a"][u])
		}
	}
}

func TestAllocateLayerFull(t *testing.T) {
	specs := allocate(t, MustSpec(t, "a", "l", 0.6, 1, 1, 1))
	s := MustSpec(t, "b", "l", 0.5, 1, 1, 1)
	err := experiments.Allocate(&s, specs)
	var ve *experiments.ValidationError
	if !errorsAs(err, &ve) || ve.Code != "layer_full" {
		t.Fatalf("Allocate over a full layer = %v, want layer_full", err)
	}
	// a stopped experiment frees its range
	specs[0].Status = experiments.StatusStopped
	if err := experiments.Allocate(&s, specs); err != nil || s.Buckets.Start != 0 {
		t.Fatalf("Allocate after stop = %v, %+v", err, s.Buckets)
	}
}

func TestReweightStartsNewPhase(t *testing.T) {
	cur := allocate(t, MustSpec(t, "a", "l", 1, 1, 1, 1))[0]
	next := cur.Clone()
	next.Arms[1].Weight = 3
	now := time.UnixMilli(5000)
	got, err := experiments.Update(cur, next, now)
	if err != nil || got.Phase != 2 || got.PhaseStarted != 5000 {
		t.Fatalf("Update(reweight) = phase %d started %d, %v; want phase 2", got.Phase, got.PhaseStarted, err)
	}
	if got.ArmSalt() == cur.ArmSalt() {
		t.Errorf("new phase kept arm salt %q", got.ArmSalt())
	}
	same := cur.Clone()
	same.Hypothesis = "edited text"
	got, err = experiments.Update(cur, same, now)
	if err != nil || got.Phase != 1 {
		t.Fatalf("Update(text only) = phase %d, %v; want phase 1", got.Phase, err)
	}
	drop := cur.Clone()
	drop.Arms = append(drop.Arms, experiments.Arm{Name: "arm2", Weight: 1})
	if got, _ := experiments.Update(cur, drop, now); got.Phase != 2 {
		t.Errorf("adding an arm: phase %d, want 2", got.Phase)
	}
}

func TestTargeting(t *testing.T) {
	s := MustSpec(t, "t", "l", 1, 1, 1, 1)
	s.Targeting = experiments.Targeting{
		Tenants: []string{"acme"}, Modes: []string{"edit"},
		Features: []experiments.Predicate{{Feature: "text_heavy", Op: "eq", Value: 1}, {Feature: "edit_depth", Op: "lt", Value: 5}},
	}
	a := experiments.NewAssigner(allocate(t, s))
	tests := []struct {
		name string
		give experiments.Subject
		want int
	}{
		{"match", experiments.Subject{User: "u", Tenant: "acme", Mode: "edit", TextHeavy: true, EditDepth: 2}, 1},
		{"other tenant", experiments.Subject{User: "u", Tenant: "zeta", Mode: "edit", TextHeavy: true}, 0},
		{"generate", experiments.Subject{User: "u", Tenant: "acme", Mode: "generate", TextHeavy: true}, 0},
		{"not text heavy", experiments.Subject{User: "u", Tenant: "acme", Mode: "edit"}, 0},
		{"deep edit", experiments.Subject{User: "u", Tenant: "acme", Mode: "edit", TextHeavy: true, EditDepth: 5}, 0},
		{"no unit id", experiments.Subject{Tenant: "acme", Mode: "edit", TextHeavy: true}, 0},
	}
	for _, tt := range tests {
		if got := len(a.Assign(nil, tt.give)); got != tt.want {
			t.Errorf("%s: Assign = %d assignments, want %d", tt.name, got, tt.want)
		}
	}
}

func TestAssignmentCarriesInputs(t *testing.T) {
	s := MustSpec(t, "exp-1", "default", 1, 1, 1, 1)
	a := experiments.NewAssigner(allocate(t, s))
	got := a.Assign(nil, experiments.Subject{User: "user-1"})
	// vectors: Bucket("exp-1", "user-1") = 5971 -> arm1 (buckets 5000-9999);
	// Bucket("layer.default", "user-1") = 9571.
	if len(got) != 1 || got[0].Bucket != 5971 || got[0].LayerBucket != 9571 || got[0].Arm != "arm1" || got[0].Phase != 1 || got[0].Unit != "user-1" {
		t.Fatalf("Assign(user-1) = %+v", got)
	}
}

func BenchmarkAssign(b *testing.B) {
	// 20 running experiments in 3 layers (8, 7 and 5 experiments), with
	// targeting on some; baseline: one bare Bucket hash.
	var specs []experiments.Spec
	for i := range 20 {
		l := []string{"routing", "thresholds", "models"}[min(i/7, 2)]
		s := MustSpec(b, fmt.Sprintf("exp-%02d", i), l, 0.12, 0.5+float64(i%5)/10, 1, 1, 2)
		if i%3 == 0 {
			s.Targeting.Modes = []string{"generate"}
			s.Targeting.Features = []experiments.Predicate{{Feature: "prompt_len", Op: "gt", Value: 3}}
		}
		specs = append(specs, s)
	}
	specs = allocate(b, specs...)
	a := experiments.NewAssigner(specs)
	if a.Len() != 20 {
		b.Fatalf("assigner has %d experiments", a.Len())
	}
	users := make([]string, 1024)
	for i := range users {
		users[i] = fmt.Sprintf("user-%07d", i*7919)
	}
	var base time.Duration
	b.Run("baseline-bucket", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			experiments.Bucket("layer.routing", users[i%len(users)])
		}
		base = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("assign", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]experiments.Assignment, 0, 8)
		for i := 0; b.Loop(); i++ {
			dst = a.Assign(dst[:0], experiments.Subject{User: users[i%len(users)], Tenant: "acme", Mode: "generate", Tier: "standard", PromptLen: 40})
		}
		per := b.Elapsed() / time.Duration(b.N)
		if base > 0 {
			b.ReportMetric(float64(per)/float64(base), "x-bucket")
		}
	})
}
