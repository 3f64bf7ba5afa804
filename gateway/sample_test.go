package gateway_test

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"testing"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

// TestFailureAuditsOversampled: outputs that failed QA are drawn for review
// at FailureBoost times their stratum's rate, every sampled decision
// records the rate it was drawn at, and weighting by its inverse recovers
// how many requests there were of each kind.
func TestFailureAuditsOversampled(t *testing.T) {
	store, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blue := color.NRGBA{0, 0, 200, 255}
	sink := gatewaytest.NewProducer(4096)
	g := gateway.New(gateway.Config{SampleRate: 0.1, FailureBoost: 4, MaxEscalations: -1}, gateway.Deps{
		Policy: &gatewaytest.Router{Model: "good", Version: "p1"},
		Providers: map[string]providers.Provider{
			"good": &gatewaytest.Provider{Model: "good", Color: color.NRGBA{200, 0, 0, 255}},
			"bad":  &gatewaytest.Provider{Model: "bad", Color: blue},
		},
		QA:     &gatewaytest.Inspector{Fail: map[string]bool{gatewaytest.ColorKey(blue): true}},
		Events: sink,
		Blobs:  store,
	})
	const n = 600
	for i := range 2 * n {
		r := request(fmt.Sprintf("audit-%d", i), "acme")
		if i%2 == 1 {
			r.Pin = "bad" // fails QA; served anyway as the best image
		}
		if _, err := g.Serve(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	sampled := map[bool]int{}
	weighted := map[bool]float64{}
	for _, e := range sink.Events() {
		d, ok := e.Value.(*events.Decision)
		if !ok || !d.Sampled {
			continue
		}
		want := 0.1
		if !d.QAPass {
			want = 0.4
		}
		if d.SampleRate != want {
			t.Fatalf("%s (QA pass %v) sampled at recorded rate %v, want %v", d.RequestID, d.QAPass, d.SampleRate, want)
		}
		sampled[d.QAPass]++
		weighted[d.QAPass] += 1 / d.SampleRate
	}
	// Binomial(600, 0.4) and (600, 0.1), within about 3 standard deviations.
	if sampled[false] < 200 || sampled[false] > 280 || sampled[true] < 38 || sampled[true] > 82 {
		t.Errorf("sampled %d failures and %d passes of %d each, want about 240 and 60", sampled[false], sampled[true], n)
	}
	for pass, w := range weighted {
		if math.Abs(w-n)/n > 0.3 {
			t.Errorf("QA pass %v: inverse-rate weights sum to %.0f, want about %d", pass, w, n)
		}
	}
}
