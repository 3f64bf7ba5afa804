package sim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

func fixed(v sim.Outcome) sim.Oracle {
	return sim.OracleFunc(func(context.Context, providers.Request, time.Duration) sim.Outcome { return v })
}

// recordSleep records the waits instead of sleeping.
type recordSleep struct{ waits []time.Duration }

func (r *recordSleep) Sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func TestGenerateSuccess(t *testing.T) {
	rec := &recordSleep{}
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 0.9, Latency: 2800 * time.Millisecond, CostUSD: 0.04}),
		sim.Options{LatencyScale: 0.5, Sleep: rec.Sleep})
	res, err := p.Generate(context.Background(), providers.Request{Model: "fast", Prompt: "a cat", Width: 320, Height: 200, N: 2})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 2 || res.CostUSD != 0.04 || res.Latency != 2800*time.Millisecond {
		t.Fatalf("Generate = %d images, cost %v, latency %v; want 2, 0.04, 2.8s", len(res.Images), res.CostUSD, res.Latency)
	}
	for _, im := range res.Images {
		if got := MustDecode(t, im.Bytes).Bounds().Size(); got.X != 320 || got.Y != 200 || im.MIME != "image/png" {
			t.Errorf("image %v %s, want 320x200 image/png", got, im.MIME)
		}
		if im.Base64 != base64.StdEncoding.EncodeToString(im.Bytes) {
			t.Errorf("Base64 is not the image's base64 (%d chars for %d bytes)", len(im.Base64), len(im.Bytes))
		}
	}
	if bytes.Equal(res.Images[0].Bytes, res.Images[1].Bytes) {
		t.Error("the two images of one call are identical, want different seeds")
	}
	if len(rec.waits) != 1 || rec.waits[0] != 1400*time.Millisecond {
		t.Errorf("waited %v, want [1.4s] (latency × scale)", rec.waits)
	}
	again, err := p.Generate(context.Background(), providers.Request{Model: "fast", Prompt: "a cat", Width: 320, Height: 200, N: 2})
	if err != nil || !bytes.Equal(again.Images[0].Bytes, res.Images[0].Bytes) {
		t.Errorf("same request again: err %v, same bytes %v; want the cached render", err, err == nil && bytes.Equal(again.Images[0].Bytes, res.Images[0].Bytes))
	}
}

func TestGenerateDefaultSize(t *testing.T) {
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 1}), sim.Options{})
	res, err := p.Generate(context.Background(), providers.Request{Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := MustDecode(t, res.Images[0].Bytes).Bounds().Size(); got.X != 256 || got.Y != 256 {
		t.Errorf("default size %v, want 256x256", got)
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		give       providers.ErrorKind
		wantStatus int
		wantRetry  bool
	}{
		{providers.KindRateLimited, 429, true},
		{providers.KindUnavailable, 503, true},
		{providers.KindTimeout, 504, true},
		{providers.KindContentPolicy, 400, false},
		{providers.KindBadRequest, 400, false},
		{providers.KindAuth, 401, false},
	}
	for _, tt := range tests {
		p := sim.New(fixed(sim.Outcome{ErrKind: tt.give, Latency: time.Second}), sim.Options{Name: "simx"})
		_, err := p.Generate(context.Background(), providers.Request{Prompt: "x"})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != tt.give || pe.Status != tt.wantStatus || pe.Provider != "simx" || pe.Retryable() != tt.wantRetry {
			t.Errorf("Generate with verdict %s = %v, want *providers.Error kind %s status %d retryable %v", tt.give, err, tt.give, tt.wantStatus, tt.wantRetry)
			continue
		}
		if (pe.RetryAfter > 0) != (tt.give == providers.KindRateLimited) {
			t.Errorf("verdict %s: RetryAfter %v", tt.give, pe.RetryAfter)
		}
	}
}

func TestGenerateRespectsContext(t *testing.T) {
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 1, Latency: time.Hour}), sim.Options{LatencyScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Generate(ctx, providers.Request{Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindTimeout {
		t.Fatalf("Generate past the deadline = %v, want a timeout *providers.Error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Generate returned after %v, want soon after the 20ms deadline", el)
	}
}

func TestGenerateEdit(t *testing.T) {
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 1}), sim.Options{})
	ref := sim.Render("a portrait", 128, 128, 1, 1)
	res, err := p.Generate(context.Background(), providers.Request{Mode: "edit", Prompt: "add a hat", References: [][]byte{ref}, Width: 128, Height: 128})
	if err != nil || len(res.Images) != 1 {
		t.Fatalf("Generate(edit) = %v, %v", res, err)
	}
	_, err = p.Generate(context.Background(), providers.Request{Mode: "edit", Prompt: "add a hat", References: [][]byte{[]byte("not an image")}})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindBadRequest {
		t.Errorf("Generate(edit, bad reference) = %v, want a bad_request *providers.Error", err)
	}
}

func TestBudgetIsSimulatedTime(t *testing.T) {
	now := time.Now()
	var got []time.Duration
	o := sim.OracleFunc(func(_ context.Context, _ providers.Request, budget time.Duration) sim.Outcome {
		got = append(got, budget)
		return sim.Outcome{Success: true, Quality: 1}
	})
	rec := &recordSleep{}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(5*time.Second))
	defer cancel()
	for _, scale := range []float64{1, 0.01, 0} {
		p := sim.New(o, sim.Options{LatencyScale: scale, Now: func() time.Time { return now }, Sleep: rec.Sleep})
		if _, err := p.Generate(ctx, providers.Request{Prompt: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sim.New(o, sim.Options{}).Generate(context.Background(), providers.Request{Prompt: "x"}); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{5 * time.Second, 500 * time.Second, 5 * time.Second, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("budgets (-want +got):\n%s", diff)
	}
}

// slowWorld stands for a scenario's changed world: every call takes 20 s.
type slowWorld struct{ w *sim.World }

func (s slowWorld) Call(c sim.Call) sim.Outcome {
	if c.DeadlineMS > 0 && c.DeadlineMS < 20_000 {
		return sim.Outcome{ErrKind: providers.KindTimeout, Latency: time.Duration(c.DeadlineMS) * time.Millisecond}
	}
	return s.w.Call(c)
}

func TestWorldOracleTimesOutPastTheBudget(t *testing.T) {
	world := sim.NewWorld(datasets.MustCatalog(), 1)
	p := sim.New(sim.WorldOracle(slowWorld{world}), sim.Options{LatencyScale: 0})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := p.Generate(ctx, providers.Request{RequestID: "r", Model: "sim-fast", Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindTimeout {
		t.Fatalf("Generate with a 1 s budget on a 20 s model = %v, want timeout", err)
	}
}

func TestVariantsAndCacheBound(t *testing.T) {
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 0.9}), sim.Options{Variants: 3, CacheBytes: 1})
	distinct := map[string]bool{}
	for seed := range uint64(12) {
		res, err := p.Generate(context.Background(), providers.Request{Model: "m", Prompt: "a cat", Seed: seed, Width: 64, Height: 64})
		if err != nil {
			t.Fatal(err)
		}
		distinct[string(res.Images[0].Bytes)] = true
	}
	if len(distinct) != 3 {
		t.Errorf("12 seeds gave %d distinct pictures, want the 3 variants", len(distinct))
	}
	// Quality from 0.8 up renders the same picture.
	a, _ := sim.New(fixed(sim.Outcome{Success: true, Quality: 0.81}), sim.Options{}).Generate(context.Background(), providers.Request{Prompt: "a cat"})
	b, _ := sim.New(fixed(sim.Outcome{Success: true, Quality: 1}), sim.Options{}).Generate(context.Background(), providers.Request{Prompt: "a cat"})
	if !bytes.Equal(a.Images[0].Bytes, b.Images[0].Bytes) {
		t.Error("quality 0.81 and 1 rendered differently")
	}
}

func TestGenerateJPEG(t *testing.T) {
	p := sim.New(fixed(sim.Outcome{Success: true, Quality: 1}), sim.Options{})
	res, err := p.Generate(context.Background(), providers.Request{Prompt: "x", OutputFormat: "jpeg", Width: 64, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Images[0].Bytes; res.Images[0].MIME != "image/jpeg" || len(b) < 3 || b[0] != 0xff || b[1] != 0xd8 {
		t.Errorf("output_format jpeg gave %s starting % x", res.Images[0].MIME, b[:min(len(b), 4)])
	}
}
