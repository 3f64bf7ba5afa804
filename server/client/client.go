// Package client is the HTTP client of serve's admin API (/admin/*): the
// policy, experiment and key commands of the CLI, the offline jobs (live
// policy, push, canary) and the guardrail monitor of `routelab dev` all
// call serve through it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/router"
)

// Admin calls serve's admin API with a bearer token. Every call names its
// actor in x-routelab-actor, so the audit log says who made a change.
type Admin struct {
	base, token, actor string
	http               *http.Client
}

// New returns a client of the admin API at baseURL ("host:port" gets
// http://). actor may be empty.
func New(baseURL, token, actor string) *Admin {
	if baseURL != "" && !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	return &Admin{base: strings.TrimRight(baseURL, "/"), token: token, actor: actor, http: &http.Client{Timeout: 30 * time.Second}}
}

// URL is the admin API's base URL.
func (c *Admin) URL() string { return c.base }

// APIError is the admin API's error body, returned for a non-2xx answer
// that carries one.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	if e.Field != "" {
		s += " " + e.Field
	}
	return s + ": " + e.Message
}

// maxBody bounds an answer read into memory (an experiments list with
// reports is the largest).
const maxBody = 64 << 20

// Do sends body (nil: none) with method to path and decodes a 2xx answer
// into out (nil: discarded). A non-2xx answer is an *APIError when the
// admin API explained it, else an error quoting the body.
func (c *Admin) Do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.actor != "" {
		req.Header.Set("x-routelab-actor", c.actor)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error APIError `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("admin API %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
		}
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// post sends v as JSON.
func (c *Admin) post(ctx context.Context, path string, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodPost, path, b, out)
}

// Policy returns the live policy.
func (c *Admin) Policy(ctx context.Context) (*router.Policy, error) {
	var out struct {
		Version string          `json:"version"`
		Policy  json.RawMessage `json:"policy"`
	}
	if err := c.Do(ctx, http.MethodGet, "/admin/policy", nil, &out); err != nil {
		return nil, err
	}
	return router.ParsePolicy(out.Policy)
}

// PolicyChange is the admin API's answer to a push, stage or rollback.
type PolicyChange struct {
	Version string `json:"version"`
	Status  string `json:"status"`
}

// PushDoc publishes a policy document and makes it live on every replica.
func (c *Admin) PushDoc(ctx context.Context, doc []byte) (PolicyChange, error) {
	var out PolicyChange
	err := c.Do(ctx, http.MethodPost, "/admin/policy", doc, &out)
	return out, err
}

// Push makes p live; it returns the version live afterwards.
func (c *Admin) Push(ctx context.Context, p *router.Policy) (string, error) {
	b, err := p.JSON()
	if err != nil {
		return "", err
	}
	out, err := c.PushDoc(ctx, b)
	return out.Version, err
}

// Rollback makes the previously live policy live again.
func (c *Admin) Rollback(ctx context.Context) (PolicyChange, error) {
	var out PolicyChange
	err := c.Do(ctx, http.MethodPost, "/admin/policy/rollback", []byte("{}"), &out)
	return out, err
}

// Stage publishes p in the policies topic without making it live (a canary
// arm routes with it by version); it returns the staged version.
func (c *Admin) Stage(ctx context.Context, p *router.Policy) (string, error) {
	b, err := p.JSON()
	if err != nil {
		return "", err
	}
	var out PolicyChange
	if err := c.Do(ctx, http.MethodPost, "/admin/policy/stage", b, &out); err != nil {
		return "", err
	}
	if out.Version != p.Version {
		return "", fmt.Errorf("the admin API staged %q for %s", out.Version, p.Version)
	}
	return out.Version, nil
}

// Experiments lists experiments, newest first; status "" means all.
func (c *Admin) Experiments(ctx context.Context, status string) ([]experiments.Spec, error) {
	var out struct {
		Experiments []experiments.Spec `json:"experiments"`
	}
	err := c.Do(ctx, http.MethodGet, "/admin/experiments?status="+url.QueryEscape(status), nil, &out)
	return out.Experiments, err
}

// Experiment returns one experiment's stored spec.
func (c *Admin) Experiment(ctx context.Context, id string) (experiments.Spec, error) {
	var s experiments.Spec
	err := c.Do(ctx, http.MethodGet, "/admin/experiments/"+url.PathEscape(id), nil, &s)
	return s, err
}

// CreateExperiment stores spec as a draft and returns it with its id.
func (c *Admin) CreateExperiment(ctx context.Context, spec []byte) (experiments.Spec, error) {
	var s experiments.Spec
	err := c.Do(ctx, http.MethodPost, "/admin/experiments", spec, &s)
	return s, err
}

// Reweight sends a bandit's per-stratum outcomes; the control plane
// re-weights it when its schedule is due (experiments.Reweight) and returns
// the stored spec, re-weighted or not.
func (c *Admin) Reweight(ctx context.Context, id string, outcomes map[string][]experiments.ArmOutcomes) (experiments.Spec, error) {
	var s experiments.Spec
	err := c.post(ctx, "/admin/experiments/"+url.PathEscape(id)+"/reweight", map[string]any{"outcomes": outcomes}, &s)
	return s, err
}

// Act applies action (start, pause, stop, ramp, rollback) to experiment id
// with why as the audited reason; traffic > 0 sets a ramp's traffic (0: a
// canary's next step). It returns the stored spec afterwards.
func (c *Admin) Act(ctx context.Context, id, action, why string, traffic float64) (experiments.Spec, error) {
	body := map[string]any{"reason": why}
	if action == "ramp" {
		body["traffic"] = traffic
	}
	var s experiments.Spec
	err := c.post(ctx, "/admin/experiments/"+url.PathEscape(id)+"/"+action, body, &s)
	return s, err
}
