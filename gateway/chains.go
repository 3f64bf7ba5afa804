package gateway

import "github.com/routelab/routelab/gateway/bounded"

// chains remembers recent outputs so an edit can name its parent_id. It is
// per replica and bounded by count and by the image bytes it holds (a
// vendor's PNG is megabytes: 4,096 of them would be gigabytes); a parent
// evicted or served by another replica answers parent_not_found and the
// client sends the image as a reference. A node's ancestors stay reachable
// from it (cleanest walks back through them) while it is kept.
type chains struct {
	c *bounded.LRU[string, *chainNode]
}

type chainNode struct {
	id     string
	tenant string
	parent *chainNode
	depth  int
	image  []byte
	score  float64 // QA score; higher is cleaner
	root   bool    // a reset started a new segment here
}

func newChains(size int, maxBytes int64) *chains {
	return &chains{c: bounded.New[string](size, maxBytes, func(n *chainNode) int64 { return int64(len(n.image)) })}
}

// add remembers n (ids are unique: request ids).
func (c *chains) add(n *chainNode) { c.c.Put(n.id, n) }

func (c *chains) get(id string) (*chainNode, bool) { return c.c.Get(id) }

// cleanest returns the node with the best QA score from n back to the root
// of its chain; on ties the shallower one, which has drifted least.
func (c *chains) cleanest(n *chainNode) *chainNode {
	best := n
	for p := n; p != nil; p = p.parent {
		if p.score > best.score || (p.score == best.score && p.depth < best.depth) {
			best = p
		}
	}
	return best
}
