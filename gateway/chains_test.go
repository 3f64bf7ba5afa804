package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"sync"
	"testing"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// lateChains is a shared chain store where a node made on another replica
// lands only after the first lookup, as redisstate's chain writer stores it
// just after that replica's response.
type lateChains struct {
	mu      sync.Mutex
	lookups int
	node    gateway.ChainNode
}

func (c *lateChains) PutChain(context.Context, gateway.ChainNode) error { return nil }

func (c *lateChains) Chain(_ context.Context, id string) (gateway.ChainNode, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	if id != c.node.ID || c.lookups == 1 {
		return gateway.ChainNode{}, false, nil
	}
	return c.node, true, nil
}

// TestEditWaitsForParentInFlight: an edit of a parent the shared store does
// not hold yet looks once more before answering parent_not_found.
func TestEditWaitsForParentInFlight(t *testing.T) {
	var png0 bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	img.Set(1, 1, color.NRGBA{R: 255, A: 255})
	if err := png.Encode(&png0, img); err != nil {
		t.Fatal(err)
	}
	chains := &lateChains{node: gateway.ChainNode{ID: "req-other-replica", Tenant: "acme", Depth: 0, Score: 0.9, Model: "fast", Image: png0.Bytes()}}
	g := gateway.New(gateway.Config{SampleRate: -1}, gateway.Deps{
		Policy:    &gatewaytest.Router{Model: "fast", Version: "p1"},
		Providers: map[string]providers.Provider{"fast": &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}}},
		QA:        &gatewaytest.Inspector{},
		Events:    gatewaytest.NewProducer(64),
		Chains:    chains,
	})
	r := request(gateway.NewIDs().Next(), "acme")
	r.Mode, r.ParentID = router.ModeEdit, "req-other-replica"
	if _, err := g.Serve(context.Background(), r); err != nil {
		t.Fatalf("edit of a parent stored a moment late = %v, want it served", err)
	}
	if chains.lookups != 2 {
		t.Errorf("%d lookups of the parent, want 2", chains.lookups)
	}
	r = request(gateway.NewIDs().Next(), "acme")
	r.Mode, r.ParentID = router.ModeEdit, "req-never-made"
	var ge *gateway.Error
	if _, err := g.Serve(context.Background(), r); err == nil || !errors.As(err, &ge) || ge.Code != gateway.CodeParentNotFound {
		t.Errorf("edit of an unknown parent = %v, want parent_not_found", err)
	}
}
