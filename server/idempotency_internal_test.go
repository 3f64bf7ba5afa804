package server

import (
	"fmt"
	"testing"
)

// TestIdempotencyByteBound: stored responses are dropped oldest first once
// their bytes pass the bound (a dropped key runs again), requests still in
// flight are not counted, and failures are forgotten.
func TestIdempotencyByteBound(t *testing.T) {
	i := newIdempotency(100, 1000)
	run := func(key string, body int) bool {
		e, _, owner := i.begin(key, "r", []byte(key))
		if owner {
			var resp *savedResponse
			if body >= 0 {
				resp = &savedResponse{status: 200, body: make([]byte, body)}
			}
			i.finish(key, e, resp)
		}
		return owner
	}
	for k := range 5 {
		run(fmt.Sprint(k), 300)
	}
	if i.c.Bytes() != 900 || i.c.Len() != 3 {
		t.Fatalf("after five 300-byte responses: %d bytes in %d entries, want 900 in 3", i.c.Bytes(), i.c.Len())
	}
	if run("4", 300) {
		t.Error("a kept key ran again")
	}
	if !run("0", 300) {
		t.Error("a dropped key did not run again")
	}
	e, _, _ := i.begin("pending", "r", nil) // in flight: counts nothing yet
	if i.c.Bytes() != 900 {
		t.Errorf("bytes %d with one in flight, want 900", i.c.Bytes())
	}
	i.finish("pending", e, nil) // failed: forgotten
	if _, ok := i.c.Peek("pending"); ok || i.c.Bytes() != 900 {
		t.Errorf("failed request kept %v, bytes %d", ok, i.c.Bytes())
	}
}
