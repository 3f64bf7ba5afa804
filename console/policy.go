package console

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

type livePolicy struct {
	Version string          `json:"version"`
	Policy  json.RawMessage `json:"policy"`
}

type historyRow struct {
	AuditRecord
	When    string
	HasBody bool
}

// versionRow is one pushed policy version from the policies topic.
type versionRow struct {
	Version string
	State   string // live, previously live (n back), pushed
}

// DiffLine is one line of a unified line diff: Op is ' ', '+' or '-'.
type DiffLine struct {
	Op   string
	Text string
}

func (c *Console) policyPage(ctx *fiber.Ctx) error {
	data := fiber.Map{}
	var live livePolicy
	if err := c.controlCall(ctx.UserContext(), "GET", "/admin/policy", "", nil, &live); err != nil {
		data["Error"] = err.Error()
	} else {
		data["Live"] = live
		data["LiveJSON"] = pretty(live.Policy)
	}
	var hist []historyRow
	if c.deps.Data != nil {
		recs, err := c.deps.Data.Audit(ctx.UserContext(), []string{"policy.", "canary.", "jobs.recalibrate", "jobs.pipeline"}, 50)
		if err != nil {
			c.log.Warn("policy history", "err", err)
			data["HistoryError"] = "history query failed: see the console log"
		}
		for _, r := range recs {
			hist = append(hist, historyRow{AuditRecord: r, When: time.UnixMilli(int64(r.TSMS)).UTC().Format("2006-01-02 15:04:05"), HasBody: auditPolicyDoc(r.Body) != nil})
		}
	}
	data["History"] = hist
	var versions []versionRow
	if p := c.deps.Policies; p != nil {
		liveV, prev := p.Live()
		state := map[string]string{liveV: "live"}
		for i := len(prev) - 1; i >= 0; i-- {
			if _, ok := state[prev[i]]; !ok {
				state[prev[i]] = "previously live (" + strconv.Itoa(len(prev)-i) + " back)"
			}
		}
		for _, v := range p.Versions() {
			st := state[v]
			if st == "" {
				st = "pushed, never live"
			}
			versions = append(versions, versionRow{Version: v, State: st})
		}
		sort.SliceStable(versions, func(i, j int) bool { return rank(versions[i].State) < rank(versions[j].State) })
		if v := ctx.Query("version"); v != "" {
			doc, ok := p.Doc(v)
			if !ok {
				return &FieldError{Code: "unknown_version", Field: "version", Message: "no such policy version", Status: fiber.StatusNotFound}
			}
			data["DiffAgainst"] = historyRow{AuditRecord: AuditRecord{Subject: v}}
			data["Diff"] = diffLines(pretty(doc), pretty(live.Policy))
		}
	}
	data["Versions"] = versions
	if against := ctx.Query("against"); against != "" {
		for _, h := range hist {
			if h.EventID == against && h.HasBody {
				old := pretty(auditPolicyDoc(h.Body))
				data["DiffAgainst"] = h
				data["Diff"] = diffLines(old, pretty(live.Policy))
			}
		}
		if data["Diff"] == nil {
			return &FieldError{Code: "unknown_version", Field: "against", Message: "no history entry with that id and a policy body", Status: fiber.StatusNotFound}
		}
	}
	return c.render(ctx, "policy", "Policy", data)
}

func (c *Console) policyPush(ctx *fiber.Ctx) error {
	body := []byte(ctx.FormValue("policy"))
	if !json.Valid(body) {
		return &FieldError{Code: "invalid_json", Field: "policy", Message: "the policy is not valid JSON"}
	}
	if err := c.controlCall(ctx.UserContext(), "POST", "/admin/policy", currentUser(ctx).Name, body, nil); err != nil {
		return err
	}
	return ctx.Redirect("/policy", fiber.StatusSeeOther)
}

func (c *Console) policyRollback(ctx *fiber.Ctx) error {
	if err := c.controlCall(ctx.UserContext(), "POST", "/admin/policy/rollback", currentUser(ctx).Name, []byte("{}"), nil); err != nil {
		return err
	}
	return ctx.Redirect("/policy", fiber.StatusSeeOther)
}

// auditPolicyDoc is the policy document an audit body carries: the body
// itself (serve's policy.push and policy.stage) or its "policy" member
// (policy.rollback: {"from", "policy"}); nil when the body is no policy
// (a job's report), so the page offers no diff for it.
func auditPolicyDoc(body string) json.RawMessage {
	doc := json.RawMessage(body)
	var m map[string]json.RawMessage
	if json.Unmarshal(doc, &m) != nil {
		return nil
	}
	if p := m["policy"]; len(p) > 0 && p[0] == '{' {
		doc = p
		if json.Unmarshal(doc, &m) != nil {
			return nil
		}
	}
	var v string
	if json.Unmarshal(m["version"], &v) != nil || v == "" {
		return nil
	}
	return doc
}

func rank(state string) int {
	switch {
	case state == "live":
		return 0
	case strings.HasPrefix(state, "previously"):
		return 1
	}
	return 2
}

func pretty(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// diffLines is a line diff by longest common subsequence; unchanged runs
// longer than six lines are cut to three lines of context either side.
func diffLines(a, b string) []DiffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(x), len(y)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []DiffLine
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			out = append(out, DiffLine{" ", x[i]})
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, DiffLine{"+", y[j]})
			j++
		default:
			out = append(out, DiffLine{"-", x[i]})
			i++
		}
	}
	return trimContext(out, 3)
}

func trimContext(d []DiffLine, ctx int) []DiffLine {
	var out []DiffLine
	for i := 0; i < len(d); {
		if d[i].Op != " " {
			out = append(out, d[i])
			i++
			continue
		}
		j := i
		for j < len(d) && d[j].Op == " " {
			j++
		}
		if j-i > 2*ctx {
			if i > 0 {
				out = append(out, d[i:i+ctx]...)
			}
			out = append(out, DiffLine{"…", ""})
			if j < len(d) {
				out = append(out, d[j-ctx:j]...)
			}
		} else {
			out = append(out, d[i:j]...)
		}
		i = j
	}
	return out
}
