package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"testing"

	"github.com/routelab/routelab/events"
)

// TestSamplingStoresReferences: a sampled edit stores the references the
// model was given in the blob store and names them in the decision (the
// base image of a chained edit first), so the review UI can show them next
// to the output; a generate request has none.
func TestSamplingStoresReferences(t *testing.T) {
	blobs := mustBlobs(t)
	e := mustStart(t, func(s *setup) {
		s.deps.Blobs = blobs
		s.gw.SampleRate = 1
	})
	next := func() *events.Decision {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		defer cancel()
		ev, ok := e.events.Next(ctx, events.TopicDecisions)
		if !ok {
			t.Fatal("no decision")
		}
		return ev.Value.(*events.Decision)
	}

	gen := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"a cat","size":"64x64"}`))
	d := next()
	if !d.Sampled || len(d.RefKeys) != 0 {
		t.Fatalf("generate: sampled %v ref keys %v, want sampled with none", d.Sampled, d.RefKeys)
	}
	genKey := d.BlobKey

	ref := pngBytes(t, 48, 32)
	decodeNative(t, e.post(t, "/v1/images", `{"prompt":"make it blue","mode":"edit","size":"64x64","references":["`+base64.StdEncoding.EncodeToString(ref)+`"]}`))
	d = next()
	if !d.Sampled || len(d.RefKeys) != 1 {
		t.Fatalf("edit: sampled %v ref keys %v, want one", d.Sampled, d.RefKeys)
	}
	b, err := blobs.Get(context.Background(), d.RefKeys[0])
	if err != nil {
		t.Fatalf("reference blob %s: %v", d.RefKeys[0], err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 48 || img.Bounds().Dy() != 32 {
		t.Errorf("stored reference: %v, bounds %v; want the 48x32 reference as PNG", err, img)
	}

	// A chained edit: the model gets the parent's output first, then the
	// request's own reference.
	decodeNative(t, e.post(t, "/v1/images", `{"prompt":"now red","mode":"edit","size":"64x64","parent_id":"`+gen.ID+`","references":["`+base64.StdEncoding.EncodeToString(ref)+`"]}`))
	d = next()
	if len(d.RefKeys) != 2 || d.RefKeys[0] != genKey {
		t.Errorf("chained edit ref keys = %v, want [parent output %s, reference]", d.RefKeys, genKey)
	}
}
