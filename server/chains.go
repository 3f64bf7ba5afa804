package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/gateway"
)

// chainImage serves an edit-chain node made on this replica, image
// included, to another replica editing it (PeerChains there asks).
// Admin listener only: the bytes are a tenant's.
// The node's other fields ride in the X-Routelab-Chain-Node header, as
// JSON (PeerChains reads them).
func (h *handlers) chainImage(c *fiber.Ctx) error {
	n, ok := h.deps.Gateway.LocalChainNode(c.Params("id"))
	if !ok {
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no such chain node on this replica"}
	}
	meta, err := json.Marshal(n.Meta())
	if err != nil {
		return err
	}
	c.Set(headerChainNode, string(meta))
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	return c.Send(n.Image)
}

const headerChainNode = "X-Routelab-Chain-Node"

// ChainPeers fetches edit-chain nodes from the replica that made them,
// through its admin listener (GET /admin/chains/ID/image with the admin
// token every replica shares).
type ChainPeers struct {
	SelfURL string // this replica's admin URL as other replicas reach it
	Token   string
	Client  *http.Client // nil: a client with a 5 s timeout
}

// maxChainImage bounds what a peer may send: a vendor image is megabytes.
const maxChainImage = 64 << 20

// fetchNode asks owner for node id, image and fields.
func (p *ChainPeers) fetchNode(ctx context.Context, owner, id string) (gateway.ChainNode, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, owner+"/admin/chains/"+url.PathEscape(id)+"/image", nil)
	if err != nil {
		return gateway.ChainNode{}, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := client.Do(req)
	if err != nil {
		return gateway.ChainNode{}, fmt.Errorf("fetch chain node %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return gateway.ChainNode{}, errNoChainNode
	}
	if resp.StatusCode != http.StatusOK {
		return gateway.ChainNode{}, fmt.Errorf("fetch chain node %s: %s", id, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxChainImage+1))
	if err != nil {
		return gateway.ChainNode{}, fmt.Errorf("fetch chain node %s: %w", id, err)
	}
	if len(b) > maxChainImage {
		return gateway.ChainNode{}, fmt.Errorf("fetch chain node %s: over %d bytes", id, maxChainImage)
	}
	var m gateway.ChainMeta
	if h := resp.Header.Get(headerChainNode); h != "" {
		if err := json.Unmarshal([]byte(h), &m); err != nil {
			return gateway.ChainNode{}, fmt.Errorf("fetch chain node %s: %w", id, err)
		}
	}
	return m.Node(id, b), nil
}

var errNoChainNode = errors.New("no such chain node")

// ReplicaDirectory lists the replicas' admin URLs (redisstate's).
type ReplicaDirectory interface {
	Replicas(ctx context.Context) ([]string, error)
}

// PeerChains is a gateway.ChainStore that keeps nothing in the shared
// store: a node stays on the replica that made it, and a replica that
// lacks one asks every other replica in the directory, at once. An edit
// sent to another replica costs one admin call per replica; no response
// costs a store write.
type PeerChains struct {
	Peers     *ChainPeers
	Directory ReplicaDirectory
}

var _ gateway.ChainStore = (*PeerChains)(nil)

// PutChain implements gateway.ChainStore: the node stays here.
func (c *PeerChains) PutChain(context.Context, gateway.ChainNode) error { return nil }

// Chain implements gateway.ChainStore: the first replica that holds id
// answers; the others' calls are cancelled.
func (c *PeerChains) Chain(ctx context.Context, id string) (gateway.ChainNode, bool, error) {
	urls, err := c.Directory.Replicas(ctx)
	if err != nil {
		return gateway.ChainNode{}, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan gateway.ChainNode, len(urls))
	var wg sync.WaitGroup
	for _, u := range urls {
		if u == c.Peers.SelfURL {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := c.Peers.fetchNode(ctx, u, id); err == nil {
				found <- n
			}
		}()
	}
	go func() { wg.Wait(); close(found) }()
	if n, ok := <-found; ok {
		return n, true, nil
	}
	return gateway.ChainNode{}, false, nil
}
