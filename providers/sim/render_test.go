package sim_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers/sim"
)

func MustDecode(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	return img
}

func TestRenderIsAPNGOfTheRequestedSize(t *testing.T) {
	for _, sz := range [][2]int{{256, 256}, {320, 180}, {64, 512}, {1, 1}} {
		b := sim.Render(`a sign that says "OPEN"`, sz[0], sz[1], 1, 1)
		img := MustDecode(t, b)
		if got := img.Bounds().Size(); got.X != sz[0] || got.Y != sz[1] {
			t.Errorf("Render(%dx%d) decodes to %v", sz[0], sz[1], got)
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	a := sim.Render("a red fox", 128, 128, 0.7, 42)
	if b := sim.Render("a red fox", 128, 128, 0.7, 42); !bytes.Equal(a, b) {
		t.Error("Render with the same arguments returned different bytes")
	}
	if b := sim.Render("a blue whale", 128, 128, 0.7, 42); bytes.Equal(a, b) {
		t.Error("Render of different prompts returned the same bytes")
	}
	if b := sim.Render("a red fox", 128, 128, 0.7, 43); bytes.Equal(a, b) {
		t.Error("Render with different seeds returned the same bytes")
	}
}

// TestQACatchesLowQuality is the contract between the renderer and QA: good
// renders pass, blurred ones fail sharpness, washed-out ones fail blank.
func TestQACatchesLowQuality(t *testing.T) {
	prompts := []string{`poster with the words "GRAND OPENING" in gold`, "abstract background", ""}
	c := qa.New(qa.Thresholds{})
	tests := []struct {
		quality  float64
		wantPass bool
		wantFail string // a check that must fail
	}{
		{1, true, ""},
		{0.7, true, ""},
		{0.5, true, ""},
		{0.3, false, "sharpness"},
		{0.15, false, "sharpness"},
		{0.02, false, "blank"},
	}
	for _, side := range []int{96, 320} {
		for _, p := range prompts {
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%d/%q/q%.2f", side, p, tt.quality), func(t *testing.T) {
					r := c.Check(sim.Render(p, side, side, tt.quality, 7), qa.Spec{Width: side, Height: side, Format: "png"})
					if r.Pass != tt.wantPass {
						t.Fatalf("QA pass = %v (%s, %+v), want %v", r.Pass, r.Reason, r.Checks, tt.wantPass)
					}
					for _, ch := range r.Checks {
						if ch.Name == tt.wantFail && ch.Pass {
							t.Errorf("QA check %s passed (%v), want it to fail", ch.Name, ch.Value)
						}
					}
				})
			}
		}
	}
}

func TestEditDriftFollowsQuality(t *testing.T) {
	refBytes := sim.Render("a portrait of a smiling woman, studio light", 256, 256, 1, 3)
	ref := MustDecode(t, refBytes)
	refHash := qa.HashImage(ref)
	c := qa.New(qa.Thresholds{})
	spec := qa.Spec{Width: 256, Height: 256, Reference: refHash, HasReference: true, PreserveSubject: true}
	for _, tt := range []struct {
		quality   float64
		wantDrift bool
	}{{1, false}, {0.6, false}, {0.2, true}, {0.05, true}} {
		r := c.Check(sim.Edit(ref, "add a red hat", 256, 256, tt.quality, 9), spec)
		var drift bool
		for _, ch := range r.Checks {
			if ch.Name == "drift" {
				drift = !ch.Pass
			}
		}
		if drift != tt.wantDrift {
			t.Errorf("Edit(q=%.2f) drift failed = %v (%+v), want %v", tt.quality, drift, r.Checks, tt.wantDrift)
		}
	}
}

// TestUpscaledRenderMeasuresAsItsDetailSize: an output larger than
// DetailSide is drawn at the detail size and scaled up by repeating pixels,
// so QA (which averages down to the same bound) measures on a 1024 px
// render exactly the luma statistics of the 512 px render of the scene.
func TestUpscaledRenderMeasuresAsItsDetailSize(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	for _, q := range []float64{1, 0.5, 0.3, 0.1} {
		big := c.Check(sim.Render("a red fox in a snowy forest", 2*sim.DetailSide, 2*sim.DetailSide, q, 3), qa.Spec{})
		small := c.Check(sim.Render("a red fox in a snowy forest", sim.DetailSide, sim.DetailSide, q, 3), qa.Spec{})
		if big.Width != 2*sim.DetailSide || big.Pass != small.Pass {
			t.Fatalf("q%.1f: 1024 px render is %dx%d pass %v, 512 px pass %v", q, big.Width, big.Height, big.Pass, small.Pass)
		}
		for i, ch := range big.Checks {
			if ch != small.Checks[i] {
				t.Errorf("q%.1f: check %s on 1024 px = %+v, on 512 px = %+v", q, ch.Name, ch, small.Checks[i])
			}
		}
	}
}

// TestEditSharpnessIsRelativeToTheReference: QA asks an edit for no more
// detail than its reference has. A good edit of a smooth reference (the
// workloads' gradient) passes sharpness, as an edit of a crisp render does;
// a blurred edit of the crisp render still fails it.
func TestEditSharpnessIsRelativeToTheReference(t *testing.T) {
	c := qa.New(qa.Thresholds{})
	refs := map[string][]byte{
		"workload": datasets.ReferencePNG(),
		"gradient": gradientPNG(t),
		"crisp":    sim.Render("a portrait of a smiling woman, studio light", 256, 256, 1, 3),
	}
	for _, tt := range []struct {
		ref       string
		quality   float64
		wantSharp bool
	}{
		{"gradient", 1, true}, {"gradient", 0.8, true}, {"workload", 1, true}, {"workload", 0.8, true}, {"workload", 0.2, false},
		{"crisp", 1, true}, {"crisp", 0.8, true}, {"crisp", 0.2, false},
	} {
		t.Run(fmt.Sprintf("%s/q%.1f", tt.ref, tt.quality), func(t *testing.T) {
			ref, err := c.Reference(refs[tt.ref])
			if err != nil {
				t.Fatal(err)
			}
			out := sim.Edit(MustDecode(t, refs[tt.ref]), "add a red hat", 512, 512, tt.quality, 9)
			r := c.Check(out, qa.Spec{Width: 512, Height: 512, IsEdit: true, RefSharpness: ref.Sharpness})
			if got := checkPassed(r, "sharpness"); got != tt.wantSharp {
				t.Errorf("sharpness passed = %v, want %v (reference %.1f, %+v)", got, tt.wantSharp, ref.Sharpness, r.Checks)
			}
		})
	}
}

func checkPassed(r qa.Result, name string) bool {
	for _, ch := range r.Checks {
		if ch.Name == name {
			return ch.Pass
		}
	}
	return false
}

// gradientPNG is a smooth 64x64 gradient: a reference with no detail.
func gradientPNG(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
