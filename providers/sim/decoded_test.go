package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

// TestDecodedIsWhatTheBytesEncode: a fresh PNG render comes with the image
// it encodes, QA on it gives the verdict QA on the bytes gives, and JPEG
// (lossy) and cached renders come without one.
func TestDecodedIsWhatTheBytesEncode(t *testing.T) {
	for _, q := range []float64{1, 0.7, 0.5, 0.3, 0.15, 0.02} {
		t.Run(fmt.Sprintf("q%.2f", q), func(t *testing.T) {
			p := sim.New(sim.OracleFunc(func(context.Context, providers.Request, time.Duration) sim.Outcome {
				return sim.Outcome{Success: q >= sim.SuccessQuality, Quality: q}
			}), sim.Options{})
			req := providers.Request{Model: "m", Prompt: `a "SALE" poster in red`, Width: 640, Height: 384}
			res, err := p.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			img := res.Images[0]
			if img.Decoded == nil {
				t.Fatal("fresh PNG render has no Decoded image")
			}
			dec, _, err := qa.Decode(img.Bytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			for y := range 384 {
				for x := range 640 {
					r1, g1, b1, a1 := dec.At(x, y).RGBA()
					r2, g2, b2, a2 := img.Decoded.At(x, y).RGBA()
					if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
						t.Fatalf("pixel (%d,%d): bytes decode to %v, Decoded is %v", x, y, dec.At(x, y), img.Decoded.At(x, y))
					}
				}
			}
			spec := qa.Spec{Width: 640, Height: 384, Format: "png"}
			want := qa.New(qa.Thresholds{}).Check(img.Bytes, spec)
			got := qa.New(qa.Thresholds{}).CheckDecoded(img.Bytes, img.Decoded, img.Digest, spec)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CheckDecoded differs from Check (-bytes +decoded):\n%s", diff)
			}
			again, err := p.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if again.Images[0].Decoded != nil {
				t.Error("cached render came with a Decoded image")
			}
			req.OutputFormat = "jpeg"
			jres, err := p.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if jres.Images[0].Decoded != nil {
				t.Error("JPEG render came with a Decoded image")
			}
		})
	}
}

// TestDigestFollowsTheBytes: a render's digest is set, the same for the
// same bytes (cache hits included) and different for different bytes.
func TestDigestFollowsTheBytes(t *testing.T) {
	p := sim.New(sim.OracleFunc(func(context.Context, providers.Request, time.Duration) sim.Outcome {
		return sim.Outcome{Success: true, Quality: 1}
	}), sim.Options{Variants: 1})
	gen := func(prompt string) providers.Image {
		res, err := p.Generate(context.Background(), providers.Request{Model: "m", Prompt: prompt, Width: 128, Height: 128})
		if err != nil {
			t.Fatal(err)
		}
		return res.Images[0]
	}
	a, again, b := gen("a red fox"), gen("a red fox"), gen("a blue whale")
	if a.Digest == 0 {
		t.Fatal("render has no digest")
	}
	if again.Digest != a.Digest || string(again.Bytes) != string(a.Bytes) {
		t.Errorf("cached render: digest %x, first %x (bytes equal %v)", again.Digest, a.Digest, string(again.Bytes) == string(a.Bytes))
	}
	if b.Digest == a.Digest {
		t.Errorf("different renders share digest %x", a.Digest)
	}
}
