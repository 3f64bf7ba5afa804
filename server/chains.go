package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// chainImage serves the image of an edit-chain node made on this replica
// to another replica editing it (gateway.ChainImages there: ChainPeers).
// Admin listener only: the bytes are a tenant's.
func (h *handlers) chainImage(c *fiber.Ctx) error {
	b, ok := h.deps.Gateway.ChainImage(c.Params("id"))
	if !ok {
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no such chain node on this replica"}
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	return c.Send(b)
}

// ChainPeers fetches edit-chain images from the replica that made them,
// through its admin listener (GET /admin/chains/ID/image with the admin
// token every replica shares).
type ChainPeers struct {
	SelfURL string // this replica's admin URL as other replicas reach it
	Token   string
	Client  *http.Client // nil: a client with a 5 s timeout
}

var _ gateway.ChainImages = (*ChainPeers)(nil)

// Self implements gateway.ChainImages.
func (p *ChainPeers) Self() string { return p.SelfURL }

// maxChainImage bounds what a peer may send: a vendor image is megabytes.
const maxChainImage = 64 << 20

// Fetch implements gateway.ChainImages.
func (p *ChainPeers) Fetch(ctx context.Context, owner, id string) ([]byte, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, owner+"/admin/chains/"+url.PathEscape(id)+"/image", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch chain image %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch chain image %s: %s", id, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxChainImage+1))
	if err != nil {
		return nil, fmt.Errorf("fetch chain image %s: %w", id, err)
	}
	if len(b) > maxChainImage {
		return nil, fmt.Errorf("fetch chain image %s: over %d bytes", id, maxChainImage)
	}
	return b, nil
}
