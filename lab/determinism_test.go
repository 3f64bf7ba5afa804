package lab_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// Two labs serving the same workload under the same policy give the same
// results: the lab's figures are a function of its seed.
func TestLabSameWorkloadSameResults(t *testing.T) {
	labtest.Heavy(t)
	run := func() []int64 {
		l, items := mustLab(t, "rules")
		var lat []int64
		for _, it := range items[:80] {
			res := l.Serve(context.Background(), it.Request)
			if res.Decision == nil {
				t.Fatalf("%s: no decision event", it.Request.ID)
			}
			lat = append(lat, res.Decision.LatencyMS, int64(len(res.Decision.Attempts)))
		}
		return lat
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: latency_ms/attempts %d vs %d between two runs of the same workload", i/2, a[i], b[i])
		}
	}
}

// With OCR legibility QA, two labs serving the same requests with target
// text read the same lettering and take the same escalations: Tesseract's
// readings (one thread each) are a function of the image, and the lab
// caches them by image.
func TestLabTextQASameResults(t *testing.T) {
	labtest.Heavy(t)
	ocr := mustTesseract(t)
	run := func() []string {
		p, err := datasets.Policy("explore")
		if err != nil {
			t.Fatal(err)
		}
		cat := router.Catalog{Models: p.Models}
		l, err := lab.New(lab.Config{Catalog: cat, World: sim.NewWorld(cat, 3), Seed: 3, OCR: ocr}, p)
		if err != nil {
			t.Fatal(err)
		}
		items, err := datasets.Generate(11, 400)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			if len(router.TargetTexts(it.Request.Prompt)) == 0 {
				continue
			}
			res := l.Serve(context.Background(), it.Request)
			s := fmt.Sprintf("%s: %s %d attempts", it.Request.ID, res.Decision.Model, len(res.Decision.Attempts))
			for _, q := range res.QA {
				s += fmt.Sprintf("; %s pass %v read %q", q.Model, q.Pass, q.OCRText)
			}
			out = append(out, s)
			if len(out) == 8 {
				break
			}
		}
		st := l.TextStats()
		t.Logf("text QA: %+v", st)
		if st.Reads == 0 || st.Errors != 0 {
			t.Fatalf("TextStats %+v: want images read, no failed readings", st)
		}
		return out
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d requests with target text served: want the same, at least one", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("request %d differs between two runs:\n%s\n%s", i, a[i], b[i])
		}
	}
}
