package loadgen

import "testing"

// TestReservoir: the bare side's samples are a uniform draw from a whole
// round, not its first responses.
func TestReservoir(t *testing.T) {
	r := newReservoir(512)
	for i := range 10000 {
		r.offer([]byte{byte(i >> 8), byte(i)})
	}
	if len(r.out) != 512 {
		t.Fatalf("kept %d, want 512", len(r.out))
	}
	seen, sum := map[int]bool{}, 0
	for _, b := range r.out {
		v := int(b[0])<<8 | int(b[1])
		seen[v] = true
		sum += v
	}
	// A uniform draw of 512 from 0..9999 has mean 4999.5, standard error 128.
	if len(seen) != 512 || sum/512 < 4500 || sum/512 > 5500 {
		t.Errorf("%d distinct, mean %d: want 512 distinct with mean near 5000", len(seen), sum/512)
	}
	few := newReservoir(512)
	for i := range 3 {
		few.offer([]byte{byte(i)})
	}
	if len(few.out) != 3 {
		t.Errorf("kept %d of 3 offered, want all", len(few.out))
	}
}
