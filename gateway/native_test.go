package gateway_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

// fixedSize answers every request with a w×h PNG, as a vendor that
// generates at its own native sizes does.
type fixedSize struct{ w, h int }

func (p fixedSize) Name() string { return "fixed" }

func (p fixedSize) Generate(context.Context, providers.Request) (providers.Result, error) {
	img := image.NewGray(image.Rect(0, 0, p.w, p.h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return providers.Result{}, err
	}
	return providers.Result{Images: []providers.Image{{Bytes: buf.Bytes(), MIME: "image/png"}}}, nil
}

// TestQAJudgesTheNativeSize: a 3:2 request to the Gemini model of the
// shipped vendors catalog, answered at Gemini's native 1248x832, passes QA
// without escalating; a square answer to it still fails QA's aspect check.
func TestQAJudgesTheNativeSize(t *testing.T) {
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	const model = "gemini-2.5-flash-image"
	tests := []struct {
		name     string
		w, h     int
		wantPass bool
	}{
		{"native 3:2", 1248, 832, true},
		{"square for 3:2", 1024, 1024, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := gatewaytest.NewProducer(16)
			g := gateway.New(gateway.Config{SampleRate: -1, MaxEscalations: -1}, gateway.Deps{
				Policy:    &gatewaytest.Router{Model: model, Version: "p1"},
				Providers: map[string]providers.Provider{model: fixedSize{tt.w, tt.h}},
				QA:        gateway.NewQA(qa.New(qa.Thresholds{MinStdDev: -1, MinSharpness: -1})),
				Sizes:     &cat,
				Events:    sink,
			})
			req := request(gateway.NewIDs().Next(), "acme")
			req.Width, req.Height = 1536, 1024
			o, err := g.Serve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			evs := qaEvents(sink)
			if o.QAPass != tt.wantPass || len(evs) != 1 || evs[0].Pass != tt.wantPass {
				t.Fatalf("QA pass = %v (events %+v), want %v", o.QAPass, evs, tt.wantPass)
			}
			if !tt.wantPass && !bytes.Contains([]byte(evs[0].Reason), []byte(qa.CheckAspect)) {
				t.Errorf("QA reason = %q, want an aspect failure", evs[0].Reason)
			}
		})
	}
}

// billed answers like fixedSize, with a cost from the vendor's usage.
type billed struct{ fixedSize }

func (p billed) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	res, err := p.fixedSize.Generate(ctx, req)
	res.CostUSD, res.CostSource = 0.1248, providers.CostUsage
	res.Usage = &providers.Usage{OutputImageTokens: 4160}
	return res, err
}

// TestAttemptCostSource: each attempt says where its cost comes from, the
// vendor's usage or the catalog, and the outcome keeps the usage of the
// images it returns.
func TestAttemptCostSource(t *testing.T) {
	for _, tt := range []struct {
		p    providers.Provider
		want string
	}{{billed{fixedSize{1024, 1024}}, providers.CostUsage}, {fixedSize{1024, 1024}, providers.CostCatalog}} {
		g := gateway.New(gateway.Config{SampleRate: -1, MaxEscalations: -1}, gateway.Deps{
			Policy:    &gatewaytest.Router{Model: "m", Version: "p1"},
			Providers: map[string]providers.Provider{"m": tt.p},
			QA:        gateway.NewQA(qa.New(qa.Thresholds{MinStdDev: -1, MinSharpness: -1})),
			Events:    gatewaytest.NewProducer(16),
		})
		o, err := g.Serve(context.Background(), request(gateway.NewIDs().Next(), "acme"))
		if err != nil {
			t.Fatal(err)
		}
		if len(o.Attempts) != 1 || o.Attempts[0].CostSource != tt.want || (tt.want == providers.CostUsage) != (o.Usage != nil) {
			t.Errorf("attempts %+v, usage %v, want cost_source %s", o.Attempts, o.Usage, tt.want)
		}
	}
}
