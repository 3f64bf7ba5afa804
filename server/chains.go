package server

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// chains remembers recent outputs so an edit can name its parent_id. It is
// per replica and bounded by count and by the image bytes it holds (a
// vendor's PNG is megabytes: 4,096 of them would be gigabytes); a parent
// evicted or served by another replica answers parent_not_found and the
// client sends the image as a reference. A node's ancestors stay reachable
// from it (cleanest walks back through them) while it is kept.
type chains struct {
	c        *lru.Cache[string, *chainNode]
	bytes    atomic.Int64 // image bytes of the nodes in c
	maxBytes int64
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
	c := &chains{maxBytes: maxBytes}
	c.c, _ = lru.NewWithEvict(size, func(_ string, n *chainNode) { c.bytes.Add(-int64(len(n.image))) })
	return c
}

// add remembers n (ids are unique: request ids), then drops the oldest
// nodes while the images held pass maxBytes; n itself is always kept.
func (c *chains) add(n *chainNode) {
	c.bytes.Add(int64(len(n.image)))
	c.c.Add(n.id, n)
	for c.bytes.Load() > c.maxBytes && c.c.Len() > 1 {
		c.c.RemoveOldest()
	}
}

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
