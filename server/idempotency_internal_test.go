package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIdempotencyByteBound: stored responses are dropped oldest first once
// their bytes pass the bound (a dropped key runs again), requests still in
// flight are not counted, and failures are forgotten.
func TestIdempotencyByteBound(t *testing.T) {
	ctx := context.Background()
	i := newIdempotency(100, 1000)
	run := func(key string, body int) bool {
		c, err := i.Begin(ctx, key, requestSum("r", []byte(key)))
		if err != nil {
			t.Fatal(err)
		}
		if c.Owner {
			var resp []byte
			if body >= 0 {
				resp = make([]byte, body)
			}
			_ = i.Finish(ctx, key, c, resp)
		}
		return c.Owner
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
	c, _ := i.Begin(ctx, "pending", requestSum("r", nil)) // in flight: counts nothing yet
	if i.c.Bytes() != 900 {
		t.Errorf("bytes %d with one in flight, want 900", i.c.Bytes())
	}
	_ = i.Finish(ctx, "pending", c, nil) // failed: forgotten
	if _, ok := i.c.Peek("pending"); ok || i.c.Bytes() != 900 {
		t.Errorf("failed request kept %v, bytes %d", ok, i.c.Bytes())
	}
}

// TestSavedResponseRoundTrip: a stored response decodes to what was kept.
func TestSavedResponseRoundTrip(t *testing.T) {
	want := &savedResponse{status: 200, ctype: "application/json", headers: [][2]string{{"x-routelab-request-id", "req_1"}, {"x-routelab-model", ""}}, body: []byte(`{"images":[]}`)}
	got, err := decodeResponse(want.encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(savedResponse{})); d != "" {
		t.Errorf("decode(encode(r)) differs (-want +got):\n%s", d)
	}
	if _, err := decodeResponse([]byte{0xff}); err == nil {
		t.Error("decode of a truncated record: no error")
	}
}
