package datasets

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// PartiPrompt is one prompt of PartiPrompts (google-research/parti,
// Apache-2.0; see prompts/parti/SOURCE.md) with the world task it maps to.
type PartiPrompt struct {
	Prompt    string
	Category  string
	Challenge string
	Task      string
}

// PartiPrompts loads the embedded PartiPrompts.tsv.
func PartiPrompts() ([]PartiPrompt, error) {
	b, err := files.ReadFile("prompts/parti/PartiPrompts.tsv")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var out []PartiPrompt
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // header: Prompt Category Challenge Note
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 || strings.TrimSpace(f[0]) == "" {
			continue
		}
		p := PartiPrompt{Prompt: strings.TrimSpace(f[0]), Category: f[1], Challenge: f[2]}
		p.Task = partiTask(p)
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read PartiPrompts.tsv: %w", err)
	}
	return out, nil
}

// partiTask maps a PartiPrompts category and challenge to a world task.
// This is the simulated world's truth; the router only ever sees the prompt.
func partiTask(p PartiPrompt) string {
	lp := strings.ToLower(p.Prompt)
	has := func(ws ...string) bool {
		for _, w := range ws {
			if strings.Contains(lp, w) {
				return true
			}
		}
		return false
	}
	if p.Challenge == "Writing & Symbols" && (strings.Count(lp, `"`) >= 2 || strings.Count(lp, "'") >= 2 ||
		has("says", "written", "writing", "word", "letters", "spelling", "logo", "sign ")) {
		if quotedLen(lp) > 6 {
			return "text_layout"
		}
		return "text_render"
	}
	switch {
	case p.Category == "Abstract":
		return "abstract_background"
	case has("photo", "photograph", "realistic", "dslr", "lens", "35mm", "close-up"):
		return "photoreal_hero"
	case p.Category == "People" && (p.Challenge == "Basic" || has("portrait", "face", "headshot")):
		return "avatar"
	}
	return "illustration"
}

func quotedLen(p string) int {
	_, rest, ok := strings.Cut(p, `"`)
	if !ok {
		return 0
	}
	q, _, _ := strings.Cut(rest, `"`)
	return len(strings.Fields(q))
}
