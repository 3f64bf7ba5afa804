// Package consoletest seeds a ClickHouse database and a blob store with what
// the console shows: served decisions (some sampled for review, with PNG
// images), QA results, user signals and earlier reviews, written through
// ingest's own batch writer so the rows are exactly what ingest would write.
package consoletest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
)

// Models are the seeded model names (the sim catalog's).
var Models = []string{"sim-lite", "sim-fast", "sim-premium", "sim-editor", "sim-typo"}

// XSSPrompt is a stored-XSS attempt placed in one sampled output's prompt.
const XSSPrompt = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> a cat poster`

// BlobPutter stores image bytes and returns their key (blob.Store).
type BlobPutter interface {
	Put(ctx context.Context, data []byte) (string, error)
}

// Config sizes the seed.
type Config struct {
	Prompts   int // prompts with two sampled outputs each (different models)
	Traffic   int // other, unsampled decisions spread over the last Hours
	Hours     int
	Tenants   []string
	Now       time.Time
	Seed      uint64
	Reviewers []string // earlier reviewers whose scores seed the quality page
}

// Info says what was seeded.
type Info struct {
	Sampled  []string // request ids sampled for review
	XSS      string   // request id whose prompt is XSSPrompt
	Pairs    int
	Decision int
}

// Seed writes the data and returns what it wrote.
func Seed(ctx context.Context, conn driver.Conn, db string, blobs BlobPutter, cfg Config) (Info, error) {
	if cfg.Hours == 0 {
		cfg.Hours = 24
	}
	if len(cfg.Tenants) == 0 {
		cfg.Tenants = []string{"acme", "globex"}
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 99))
	b := ingest.NewBatch()
	var info Info
	sampledModel := map[string]string{}
	id := 0
	newDecision := func(ts time.Time, model string) events.Decision {
		id++
		tier := []string{"draft", "standard", "premium"}[rng.IntN(3)]
		lat := int64(math.Exp(rng.NormFloat64()*0.4 + math.Log(float64(1500+900*indexOf(model)))))
		d := events.Decision{
			Header: events.Header{EventID: fmt.Sprintf("ev-%d-%d", cfg.Seed, id), SchemaVersion: events.SchemaVersion,
				TS: ts.UnixMilli(), Tenant: cfg.Tenants[rng.IntN(len(cfg.Tenants))], RequestID: fmt.Sprintf("req-%d-%05d", cfg.Seed, id)},
			Unit: fmt.Sprintf("user-%d", rng.IntN(500)), Mode: "generate", Tier: tier, Model: model, Provider: "sim",
			PolicyVersion: "p-1", Propensity: 0.9, Status: "ok", QAPass: rng.Float64() > 0.08,
			LatencyMS: lat, CostUSD: 0.01 * float64(1+indexOf(model)), Images: 1,
			Features: events.Features{PromptLen: 40},
			Attempts: []events.Attempt{{Model: model, Provider: "sim", Status: "ok", LatencyMS: lat}},
		}
		if rng.Float64() < 0.05 {
			d.Attempts = append([]events.Attempt{{Model: model, Provider: "sim", Status: "error", Error: "upstream 503"}}, d.Attempts...)
		}
		d.Escalated = rng.Float64() < 0.04
		d.Fallback = rng.Float64() < 0.02
		if rng.Float64() < 0.3 {
			d.Arms = []events.Arm{{Experiment: "exp-typo", Arm: []string{"control", "treatment"}[rng.IntN(2)], Layer: "routing"}}
		}
		return d
	}
	subjects := []string{"a red bicycle leaning on a wall", "poster that says OPEN LATE", "portrait of an old sailor",
		"abstract gradient background", "product shot of a glass bottle", "logo with the word ROUTELAB",
		"a fox in the snow", "menu board reading COFFEE 3", "city skyline at dusk", "avatar of a smiling robot"}
	for i := 0; i < cfg.Prompts; i++ {
		prompt := fmt.Sprintf("%s, variation %d", subjects[i%len(subjects)], i)
		if i == 0 {
			prompt = XSSPrompt
		}
		m1 := Models[i%len(Models)]
		m2 := Models[(i+1+i/len(Models))%len(Models)]
		if m2 == m1 {
			m2 = Models[(i+2)%len(Models)]
		}
		// Every fourth prompt is an edit of one reference image, stored as
		// serve stores a sampled edit's references; both outputs share it.
		var refKeys []string
		if i%4 == 3 {
			ref, err := picture(i, 7, "reference")
			if err != nil {
				return info, err
			}
			key, err := blobs.Put(ctx, ref)
			if err != nil {
				return info, err
			}
			refKeys = []string{key}
		}
		for k, m := range []string{m1, m2} {
			ts := cfg.Now.Add(-time.Duration(rng.IntN(cfg.Hours*3600)) * time.Second)
			d := newDecision(ts, m)
			d.Prompt = prompt
			d.Features.TextHeavy = i%3 == 1
			if i%4 == 3 {
				d.Mode = "edit"
				d.Features.Preserve = true
				d.Features.RefCount = 1
				d.RefKeys = refKeys
			}
			img, err := picture(i, k, m)
			if err != nil {
				return info, err
			}
			key, err := blobs.Put(ctx, img)
			if err != nil {
				return info, err
			}
			d.Sampled, d.BlobKey = true, key
			b.AddDecision(&d)
			info.Sampled = append(info.Sampled, d.RequestID)
			sampledModel[d.RequestID] = m
			if i == 0 && k == 0 {
				info.XSS = d.RequestID
			}
		}
		info.Pairs++
	}
	for i := 0; i < cfg.Traffic; i++ {
		ts := cfg.Now.Add(-time.Duration(rng.IntN(cfg.Hours*3600)) * time.Second)
		m := Models[rng.IntN(len(Models))]
		d := newDecision(ts, m)
		d.Prompt = subjects[rng.IntN(len(subjects))]
		b.AddDecision(&d)
		q := events.QAResult{Header: events.Header{EventID: "qa-" + d.EventID, SchemaVersion: events.SchemaVersion, TS: d.TS, Tenant: d.Tenant, RequestID: d.RequestID},
			Model: m, Pass: d.QAPass, Score: rng.Float64(), Checks: []events.QACheck{{Name: "blank", Pass: true, Value: 0.1}}}
		b.AddQA(&q)
		if rng.Float64() < 0.3 {
			sig := []string{"thumbs_up", "thumbs_up", "thumbs_down", "download"}[rng.IntN(4)]
			s := events.Signal{Header: events.Header{EventID: "sig-" + d.EventID, SchemaVersion: events.SchemaVersion, TS: d.TS + 5000, Tenant: d.Tenant, RequestID: d.RequestID},
				Signal: sig, Value: 1}
			b.AddSignal(&s)
		}
	}
	// Earlier reviewers scored the same sampled outputs (overlap) so the
	// quality page has agreement to show.
	for ri, r := range cfg.Reviewers {
		for j, rid := range info.Sampled {
			if j%2 == 1 || j == 0 {
				continue
			}
			base := 1 + (j/2)%5
			if rng.Float64() < 0.2*float64(ri) {
				base = 1 + (base % 5)
			}
			ev := events.Review{Header: events.Header{EventID: fmt.Sprintf("rv-%s-%s", r, rid), SchemaVersion: events.SchemaVersion,
				TS: cfg.Now.Add(-time.Hour).UnixMilli(), Tenant: cfg.Tenants[0], RequestID: rid},
				Kind: "score", Reviewer: r, Rubric: "image-v1", Model: sampledModel[rid], Overlap: true,
				Scores: []events.Score{{Name: "overall", Value: float64(base)}, {Name: "adherence", Value: float64(1 + (base+ri)%5)}}}
			b.AddReview(&ev)
		}
	}
	info.Decision = id
	if err := ingest.NewWriter(conn, db).Write(ctx, b); err != nil {
		return info, fmt.Errorf("seed: %w", err)
	}
	return info, nil
}

func indexOf(m string) int {
	for i, x := range Models {
		if x == m {
			return i
		}
	}
	return 0
}

// picture renders a distinct 256x256 PNG per (prompt, side, model).
func picture(i, k int, model string) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	h := uint8(37*i + 91*k + 13*indexOf(model))
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			img.Set(x, y, color.NRGBA{R: uint8(x) ^ h, G: uint8(y) + h, B: uint8((x*y)>>6) + uint8(40*k), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
