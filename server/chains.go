package server

import lru "github.com/hashicorp/golang-lru/v2"

// chains remembers recent outputs so an edit can name its parent_id. It is
// per replica and bounded; a parent evicted or served by another replica
// answers parent_not_found and the client sends the image as a reference.
type chains struct {
	c *lru.Cache[string, *chainNode]
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

func newChains(size int) *chains {
	c, _ := lru.New[string, *chainNode](size)
	return &chains{c: c}
}

func (c *chains) add(n *chainNode) { c.c.Add(n.id, n) }

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
