package gateway

import (
	"fmt"
	"testing"
)

// TestChainsByteBound: the edit-chain cache drops its oldest nodes once
// their images pass the byte bound, keeps the newest even when it alone is
// larger, and its byte count follows evictions.
func TestChainsByteBound(t *testing.T) {
	c := newChains(100, 1000)
	for i := range 5 {
		c.add(&chainNode{id: fmt.Sprint(i), image: make([]byte, 300)})
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := c.get(fmt.Sprint(i)); ok != want {
			t.Errorf("node %d kept = %v, want %v", i, ok, want)
		}
	}
	if got := c.c.Bytes(); got != 900 {
		t.Errorf("bytes = %d, want 900", got)
	}
	c.add(&chainNode{id: "big", image: make([]byte, 5000)})
	if _, ok := c.get("big"); !ok || c.c.Len() != 1 || c.c.Bytes() != 5000 {
		t.Errorf("after a node over the bound: kept %v, len %d, bytes %d; want it alone, 5000 bytes", ok, c.c.Len(), c.c.Bytes())
	}
	c = newChains(2, 1<<20) // the count bound still holds
	for i := range 3 {
		c.add(&chainNode{id: fmt.Sprint(i), image: make([]byte, 10)})
	}
	if c.c.Len() != 2 || c.c.Bytes() != 20 {
		t.Errorf("count bound: len %d, bytes %d; want 2, 20", c.c.Len(), c.c.Bytes())
	}
}
