package router_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/routelab/routelab/router"
)

func TestExtractKeywords(t *testing.T) {
	tests := []struct {
		give       string
		want       []string
		wantQuoted int
	}{
		{`A storefront sign that says "OPEN LATE"`, []string{"text"}, 2},
		{"Photo of a perfume bottle, studio lighting", []string{"photo", "product"}, 0},
		{"Make it look like a watercolor", []string{"edit_verb", "style"}, 0},
		{"Profile picture of a fox", []string{"portrait"}, 0},
		{"A restaurant MENU listing ramen", []string{"layout"}, 0},
		{"a dog", nil, 0},
	}
	for _, tt := range tests {
		var f router.Features
		router.Extract(&router.Request{Mode: router.ModeGenerate, Prompt: tt.give}, 0, &f)
		if diff := cmp.Diff(tt.want, f.KeywordList()); diff != "" {
			t.Errorf("Extract(%q) keywords (-want +got):\n%s", tt.give, diff)
		}
		if f.Quoted != tt.wantQuoted {
			t.Errorf("Extract(%q) quoted words = %d, want %d", tt.give, f.Quoted, tt.wantQuoted)
		}
	}
}

// Long prompts keep their base features: n-grams stop before the budget.
func TestExtractLongPrompt(t *testing.T) {
	long := ""
	for i := 0; i < 200; i++ {
		long += "word" + string(rune('a'+i%26)) + " "
	}
	var f router.Features
	router.Extract(&router.Request{Mode: router.ModeEdit, Prompt: long + " poster", RefCount: 2, EditDepth: 3}, 3, &f)
	if f.Words != 201 {
		t.Errorf("Words = %d, want 201", f.Words)
	}
	if !f.Has(router.KWText) {
		t.Errorf("keyword text not found at the end of a long prompt")
	}
	if f.N > len(f.Idx) {
		t.Fatalf("N = %d beyond capacity", f.N)
	}
}

func TestExtractNoAlloc(t *testing.T) {
	req := router.Request{Mode: router.ModeGenerate, Prompt: `Photo of a neon sign that says "HELLO" in a rainy alley`, Width: 1536, Height: 1024}
	var f router.Features
	if n := testing.AllocsPerRun(100, func() { router.Extract(&req, 0, &f) }); n != 0 {
		t.Errorf("Extract allocates %v times per call, want 0", n)
	}
}
