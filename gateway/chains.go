package gateway

import (
	"context"
	"time"

	"github.com/routelab/routelab/gateway/bounded"
)

// chains remembers recent outputs so an edit can name its parent_id. This
// replica's copy is bounded by count and by the image bytes it holds (a
// vendor's PNG is megabytes: 4,096 of them would be gigabytes); with a
// shared ChainStore (Deps.Chains) an edit reaches its parent on any
// replica: serve's replicas keep nodes where they were made and ask each
// other (server.PeerChains); a store that keeps nodes (redisstate) gets
// each one, image included. A parent in neither answers
// parent_not_found and the client sends the image as a reference. A node's
// ancestors stay reachable from it (cleanest walks back through them)
// while it is kept.
type chains struct {
	c *bounded.LRU[string, *chainNode]
}

type chainNode struct {
	id       string
	tenant   string
	parent   *chainNode // nil when unknown here: parentID names it
	parentID string
	depth    int
	image    []byte
	score    float64 // QA score; higher is cleaner
	model    string
	root     bool // a reset started a new segment here
}

func newChains(size int, maxBytes int64) *chains {
	return &chains{c: bounded.New[string](size, maxBytes, func(n *chainNode) int64 { return int64(len(n.image)) })}
}

// add remembers n (ids are unique: request ids).
func (c *chains) add(n *chainNode) { c.c.Put(n.id, n) }

func (c *chains) get(id string) (*chainNode, bool) { return c.c.Get(id) }

// chainNodeOf is a node read from the shared store.
func chainNodeOf(n ChainNode) *chainNode {
	return &chainNode{id: n.ID, tenant: n.Tenant, parentID: n.Parent, depth: n.Depth, image: n.Image, score: n.Score, model: n.Model, root: n.Root}
}

// chainNode finds id here, then in the shared store. A store that cannot
// be reached counts as not found (chains fail open: the edit is refused
// as if the parent were unknown, the replica keeps serving).
func (g *Gateway) chainNode(ctx context.Context, id string) (*chainNode, bool) {
	if n, ok := g.chains.get(id); ok {
		return n, true
	}
	if g.deps.Chains == nil {
		return nil, false
	}
	sn, ok, err := g.deps.Chains.Chain(ctx, id)
	if err != nil {
		g.m.stateFallback.WithLabelValues("chain").Inc()
		g.log.Warn("edit chain store unavailable: parent looked up on this replica only", "parent_id", id, "err", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	n := chainNodeOf(sn)
	g.chains.add(n)
	return n, true
}

// keepChain remembers n here and, with a shared store, there. A failed
// write is logged and counted: the edit of n then works on this replica
// only.
func (g *Gateway) keepChain(ctx context.Context, n *chainNode) {
	g.chains.add(n)
	if g.deps.Chains == nil {
		return
	}
	sn := ChainNode{ID: n.id, Tenant: n.tenant, Parent: n.parentID, Depth: n.depth, Score: n.score, Model: n.model, Root: n.root, Image: n.image}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.deps.Chains.PutChain(wctx, sn); err != nil {
		g.m.stateFallback.WithLabelValues("chain").Inc()
		g.log.Warn("edit chain store unavailable: this output can be edited on this replica only", "request_id", n.id, "err", err)
	}
}

// maxChainWalk bounds cleanest's walk: a chain's ids come from stored
// records, and a loop among them must not hang a request.
const maxChainWalk = 256

// LocalChainNode is chain node id as this replica holds it, image
// included, for another replica editing it (server.PeerChains there asks
// every replica).
func (g *Gateway) LocalChainNode(id string) (ChainNode, bool) {
	n, ok := g.chains.get(id)
	if !ok || n.image == nil {
		return ChainNode{}, false
	}
	return ChainNode{ID: n.id, Tenant: n.tenant, Parent: n.parentID, Depth: n.depth, Score: n.score, Model: n.model, Root: n.root, Image: n.image}, true
}

// cleanest returns the node with the best QA score from n back to the root
// of its chain; on ties the shallower one, which has drifted least. An
// ancestor not held here is looked up by id (on this replica, then in the
// shared store); the walk ends at the first one missing.
func (g *Gateway) cleanest(ctx context.Context, n *chainNode) *chainNode {
	best := n
	for p, steps := n, 0; p != nil && steps < maxChainWalk; steps++ {
		if p.score > best.score || (p.score == best.score && p.depth < best.depth) {
			best = p
		}
		next := p.parent
		if next == nil && p.parentID != "" {
			next, _ = g.chainNode(ctx, p.parentID)
		}
		p = next
	}
	return best
}
