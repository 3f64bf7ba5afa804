package sim

import (
	"math/rand/v2"
	"testing"
)

// A failed draw always damages the lettering, a successful one never.
func TestGarble(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		for _, s := range []string{"OPEN", "Carpe Diem", "BE EXCELLENT TO EACH OTHER", "7"} {
			if got := garble(s, SuccessQuality, r); got != s {
				t.Errorf("garble(%q, success) = %q, want it intact", s, got)
			}
			if got := garble(s, SuccessQuality-0.01, r); got == s {
				t.Errorf("garble(%q, failure, seed %d) left it intact", s, seed)
			}
		}
	}
	if got := garble("!!! ...", 0, rand.New(rand.NewPCG(1, 1))); got != "!!! ..." {
		t.Errorf("garble(no letters) = %q, want it unchanged", got)
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		give string
		want int
	}{
		{"SALE", 1},
		{"BE EXCELLENT TO EACH OTHER", 2},
		{"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen", maxLetteringLines},
	}
	for _, tt := range tests {
		lines := wrap(tt.give)
		if len(lines) != tt.want {
			t.Errorf("wrap(%q) = %q, want %d lines", tt.give, lines, tt.want)
		}
		for _, l := range lines {
			if n := len([]rune(l)); n > maxLineRunes {
				t.Errorf("wrap(%q) line %q has %d runes > %d", tt.give, l, n, maxLineRunes)
			}
		}
	}
}
