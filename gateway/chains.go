package gateway

import (
	"context"
	"time"

	"github.com/routelab/routelab/gateway/bounded"
)

// chains remembers recent outputs so an edit can name its parent_id. This
// replica's copy is bounded by count and by the image bytes it holds (a
// vendor's PNG is megabytes: 4,096 of them would be gigabytes); with a
// shared ChainStore (Deps.Chains) every node is also written there (with
// Deps.ChainImages its owner instead of its bytes: another replica fetches
// the image from this one), so an edit reaches its parent on any replica
// while the replica that made it holds it. A parent in neither answers
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

// chainMissWait is how long an edit whose parent the shared store lacks
// waits before looking once more: the replica that made the parent writes
// its node just after the response (redisstate's chain writer), and a
// client may send the edit to another replica at once.
const chainMissWait = 25 * time.Millisecond

// pause waits d unless ctx ends first; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// chainNode finds id here, then in the shared store. A store that cannot
// be reached counts as not found (chains fail open: the edit is refused
// as if the parent were unknown, the replica keeps serving).
func (g *Gateway) chainNode(ctx context.Context, id string) (*chainNode, bool) {
	n, ok, _ := g.lookupChain(ctx, id)
	return n, ok
}

// parentNode is chainNode for an edit's parent: when the shared store
// answers that it lacks the node, it looks once more after chainMissWait.
func (g *Gateway) parentNode(ctx context.Context, id string) (*chainNode, bool) {
	n, ok, unknown := g.lookupChain(ctx, id)
	if !ok && unknown && pause(ctx, chainMissWait) {
		n, ok, _ = g.lookupChain(ctx, id)
	}
	return n, ok
}

// lookupChain is chainNode, and whether the shared store answered that it
// does not hold id.
func (g *Gateway) lookupChain(ctx context.Context, id string) (n *chainNode, found, unknown bool) {
	if n, ok := g.chains.get(id); ok {
		return n, true, false
	}
	if g.deps.Chains == nil {
		return nil, false, false
	}
	sn, ok, err := g.deps.Chains.Chain(ctx, id)
	if err != nil {
		g.m.stateFallback.WithLabelValues("chain").Inc()
		g.log.Warn("edit chain store unavailable: parent looked up on this replica only", "parent_id", id, "err", err)
		return nil, false, false
	}
	if !ok {
		return nil, false, true
	}
	if sn.Owner != "" {
		if g.deps.ChainImages == nil || sn.Owner == g.deps.ChainImages.Self() {
			return nil, false, false // ours, and no longer held here
		}
		b, err := g.deps.ChainImages.Fetch(ctx, sn.Owner, id)
		if err != nil {
			g.log.Warn("edit chain parent's image not fetched from its replica", "parent_id", id, "owner", sn.Owner, "err", err)
			return nil, false, false
		}
		sn.Image = b
	}
	n = chainNodeOf(sn)
	g.chains.add(n)
	return n, true, false
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
	if g.deps.ChainImages != nil {
		sn.Image, sn.Owner = nil, g.deps.ChainImages.Self()
	}
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

// ChainImage is the image of chain node id made on this replica, for
// another replica editing it (Deps.ChainImages there fetches it).
func (g *Gateway) ChainImage(id string) ([]byte, bool) {
	n, ok := g.LocalChainNode(id)
	return n.Image, ok
}

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
