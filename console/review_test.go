package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

type nextItem struct {
	ID        string `json:"id"`
	Prompt    string `json:"prompt"`
	Done      bool   `json:"done"`
	Questions []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"questions"`
	Progress struct{ Done, Remaining int }   `json:"progress"`
	Mode     string                          `json:"mode"`
	RefCount int                             `json:"ref_count"`
	Refs     []struct{ URL, Caption string } `json:"refs"`
}

func (c *client) next() nextItem {
	c.t.Helper()
	resp, body := c.get("/review/next.json")
	if resp.StatusCode != 200 {
		c.t.Fatalf("next.json = %d %s", resp.StatusCode, body)
	}
	var it nextItem
	if err := json.Unmarshal([]byte(body), &it); err != nil {
		c.t.Fatal(err)
	}
	return it
}

func answers(it nextItem, v int) string {
	var parts []string
	for _, q := range it.Questions {
		x := v
		if q.Kind != "numeric" {
			x = 0
		}
		parts = append(parts, fmt.Sprintf("%q:%d", q.Name, x))
	}
	return fmt.Sprintf(`{"id":%q,"scores":{%s}}`, it.ID, strings.Join(parts, ","))
}

func TestReviewScoresReachClickHouse(t *testing.T) {
	w := mustWorld(t, 6, 50, false)
	a, b := newClient(t, w.base), newClient(t, w.base)
	a.login("rev")
	b.login("xss")
	seen := map[string]string{}
	for i := 0; i < 4; i++ {
		ia, ib := a.next(), b.next()
		if ia.ID == ib.ID {
			t.Fatalf("both reviewers hold %s at once", ia.ID)
		}
		if again := a.next(); again.ID != ia.ID {
			t.Errorf("reload gave %s, want the leased %s", again.ID, ia.ID)
		}
		if prev, ok := seen[ia.ID]; ok {
			t.Errorf("%s given again (first to %s)", ia.ID, prev)
		}
		seen[ia.ID] = "rev"
		resp, body := a.postJSON("/review/submit", answers(ia, 4))
		if resp.StatusCode != 200 {
			t.Fatalf("submit = %d %s", resp.StatusCode, body)
		}
		resp, body = a.postJSON("/review/submit", answers(ia, 4))
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("second submit of %s = %d %s, want 409", ia.ID, resp.StatusCode, body)
		}
	}
	if got := w.db.Query(t, "SELECT count() FROM reviews FINAL WHERE reviewer = 'rev' AND kind = 'score'"); got != "4" {
		t.Errorf("rev's scores in ClickHouse = %s, want 4", got)
	}
	if got := w.db.Query(t, "SELECT countIf(has(score_names, 'overall') AND has(score_values, 4)) FROM reviews WHERE reviewer = 'rev'"); got != "4" {
		t.Errorf("rev's rows with overall=4 = %s, want 4", got)
	}
	// Bad answers are 400 with a code and field, never stored.
	it := a.next()
	for give, want := range map[string]string{
		`{"id":"` + it.ID + `","scores":{"overall":9}}`: "score_out_of_range",
		`{"id":"` + it.ID + `","scores":{}}`:            "missing_score",
		`{"id":"nope","scores":{}}`:                     "unknown_item",
		`not json`:                                      "bad_json",
	} {
		resp, body := a.postJSON("/review/submit", give)
		if resp.StatusCode/100 != 4 || !strings.Contains(body, want) {
			t.Errorf("submit %s = %d %s, want 4xx %s", give, resp.StatusCode, body, want)
		}
	}
	// A restarted console (new in-memory queues) never re-queues scored items.
	c2, base2 := mustConsole(t, w.c.Deps())
	if err := c2.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	a2 := newClient(t, base2)
	a2.login("rev")
	for i := 0; i < 20; i++ {
		it := a2.next()
		if it.Done {
			break
		}
		if seen[it.ID] != "" {
			t.Fatalf("after restart rev got %s again", it.ID)
		}
		a2.postJSON("/review/skip", `{"id":"`+it.ID+`"}`)
	}
}

// TestReviewShowsReferences: a sampled edit's stored reference is shown
// next to the output on the review page and over both sides of a pair.
func TestReviewShowsReferences(t *testing.T) {
	w := mustWorld(t, 8, 0, false) // prompts 3 and 7 are edits of a reference
	rev := newClient(t, w.base)
	rev.login("rev")
	edits := 0
	for i := 0; i < 16; i++ {
		it := rev.next()
		if it.Done {
			break
		}
		if it.Mode == "edit" {
			edits++
			if it.RefCount != 1 || len(it.Refs) != 1 || !strings.HasPrefix(it.Refs[0].URL, "/blob/") {
				t.Fatalf("edit item %s: ref_count %d refs %+v, want its one stored reference", it.ID, it.RefCount, it.Refs)
			}
			resp, img := rev.get(it.Refs[0].URL)
			if resp.StatusCode != 200 || !strings.HasPrefix(img, "\x89PNG") {
				t.Errorf("GET %s = %d (%d bytes), want the PNG", it.Refs[0].URL, resp.StatusCode, len(img))
			}
			if _, page := rev.get("/review"); !strings.Contains(page, `<figure class="ref"><img src="`+it.Refs[0].URL+`"`) {
				t.Errorf("review page of edit %s does not show its reference", it.ID)
			}
		} else if len(it.Refs) != 0 {
			t.Errorf("generate item %s has refs %+v", it.ID, it.Refs)
		}
		rev.postJSON("/review/skip", `{"id":"`+it.ID+`"}`)
	}
	if edits == 0 { // seeded earlier reviews take some items off rev's queue
		t.Errorf("saw no edit item")
	}
	withRefs := 0
	for i := 0; i < 8; i++ {
		_, page := rev.get("/pairwise")
		if strings.Contains(page, "No pairs left") {
			break
		}
		if strings.Contains(page, `id="refs"`) {
			withRefs++
		}
		id := regexp.MustCompile(`data-id="([^"]+)"`).FindStringSubmatch(page)
		if id == nil {
			t.Fatalf("pairwise page without a pair:\n%s", page)
		}
		rev.postJSON("/pairwise/submit", `{"id":"`+id[1]+`","choice":"skip"}`)
	}
	if withRefs != 2 {
		t.Errorf("pairs showing a shared reference = %d, want 2 (the two edit prompts)", withRefs)
	}
}
