package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserResult is the last stdout line of e2e/run.mjs.
type browserResult struct {
	OK      bool `json:"ok"`
	Results []struct {
		Name     string   `json:"name"`
		OK       bool     `json:"ok"`
		MS       int      `json:"ms"`
		Error    string   `json:"error"`
		Scored   []string `json:"scored"`
		Answered []string `json:"answered"`
	} `json:"results"`
}

// runBrowser runs the Playwright scenarios against base. The tools come
// from `make test` (chromium from apt, playwright-core from npm ci); without
// them the test is skipped and says which is missing.
func runBrowser(t *testing.T, base string, scenarios []string, extraEnv ...string) browserResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("browser tests need node (make test installs it): ", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		for _, c := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
			if _, err := os.Stat(c); err == nil {
				chromium = c
				break
			}
		}
	}
	if chromium == "" {
		t.Skip("browser tests need chromium: apt-get install -y chromium (make test does)")
	}
	if _, err := os.Stat("e2e/node_modules/playwright-core"); err != nil {
		t.Skip("browser tests need playwright-core: (cd console/e2e && npm ci) (make test does)")
	}
	shots, _ := filepath.Abs(filepath.Join("e2e", "screenshots"))
	users, _ := json.Marshal(map[string][2]string{
		"admin": {"ada", "ada-password"}, "engineer": {"eng", "eng-password"},
		"reviewer": {"rev", "rev-password"}, "xss": {"xss", "xss-password"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = "e2e"
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+base, "CHROMIUM="+chromium, "SCREENSHOT_DIR="+shots,
		"E2E_USERS="+string(users), "E2E_SCENARIOS="+strings.Join(scenarios, ","))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res browserResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("run.mjs: %v (%v)\nstdout: %s\nstderr: %s", err, runErr, stdout.String(), stderr.String())
	}
	for _, r := range res.Results {
		if r.OK {
			t.Logf("browser %s ok in %d ms", r.Name, r.MS)
			if testing.Verbose() {
				t.Log(stderr.String())
			}
		} else {
			t.Errorf("browser %s failed: %s\nrun.mjs stderr:\n%s", r.Name, r.Error, stderr.String())
		}
	}
	if len(res.Results) != len(scenarios) {
		t.Errorf("ran %d browser scenarios, want %d\nstderr: %s", len(res.Results), len(scenarios), stderr.String())
	}
	t.Logf("screenshots in %s", shots)
	return res
}

// TestBrowser drives the console in headless chromium over seeded
// ClickHouse data: stored XSS stays inert, a reviewer scores ten items with
// the keyboard alone (and the scores land in ClickHouse), a pairwise round,
// an engineer's pages with data, a bandit's weights over time and a shadow
// experiment's comparison, a canary made with the experiment form, a
// reviewer refused engineer/admin pages.
func TestBrowser(t *testing.T) {
	w := mustWorld(t, 16, 200, true, true) // scores through Kafka and ingest
	eng := newClient(t, w.base)
	eng.login("eng")
	spec := mustExperiment(t, eng, w.db, w.c.Deps().Control)
	bandit, shadow := seedBandit(t, eng, w), seedShadow(t, eng, w)
	pages := append(engineerPages, "/experiments/"+spec.ID, "/experiments/"+bandit.ID, "/experiments/"+shadow.ID)
	models, _ := json.Marshal([]string{"sim-lite", "sim-fast", "sim-premium", "sim-editor", "sim-typo"})
	scen := []string{"csp_and_login", "stored_xss_inert", "review_keyboard", "pairwise_round", "engineer_pages", "learning_experiments", "experiment_form", "reviewer_refused_admin"}
	if s := os.Getenv("E2E_ONLY"); s != "" {
		scen = strings.Split(s, ",")
	}
	res := runBrowser(t, w.base, scen,
		"E2E_REVIEW_N=10", "E2E_PAIRS_N=3", "E2E_MODELS="+string(models), "E2E_ENGINEER_PAGES="+strings.Join(pages, ","),
		"E2E_BANDIT_PAGE=/experiments/"+bandit.ID, "E2E_SHADOW_PAGE=/experiments/"+shadow.ID)
	var scored, answered []string
	for _, r := range res.Results {
		scored = append(scored, r.Scored...)
		answered = append(answered, r.Answered...)
	}
	if os.Getenv("E2E_ONLY") != "" {
		return
	}
	if len(scored) != 10 {
		t.Fatalf("browser scored %d items, want 10", len(scored))
	}
	in := "'" + strings.Join(scored, "','") + "'"
	w.waitRows(t, "SELECT uniqExact(request_id) FROM reviews FINAL WHERE reviewer = 'rev' AND kind = 'score' AND request_id IN ("+in+")", "10")
	w.waitRows(t, "SELECT count() FROM reviews FINAL WHERE reviewer = 'rev' AND kind = 'pairwise' AND preference IN ('left','right','tie') AND model != other_model", "3")
}

// engineerPages are the pages the browser test opens as an engineer (and
// checks a reviewer is refused).
var engineerPages = []string{"/dashboards", "/quality", "/experiments", "/policy"}
