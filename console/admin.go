package console

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
)

// Control is the control plane the experiment and policy pages act on:
// serve's admin API. Errors from the API keep its status, code and field.
type Control interface {
	Do(ctx context.Context, method, path, actor string, body []byte) (status int, resp []byte, err error)
}

// AdminClient calls serve's admin API with the admin token.
type AdminClient struct {
	base, token string
	hc          *http.Client
}

var _ Control = (*AdminClient)(nil)

// NewAdminClient talks to the admin API at base (http://host:port).
func NewAdminClient(base, token string) *AdminClient {
	return &AdminClient{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Timeout: 15 * time.Second}}
}

// Do implements Control. The console user's name goes along as the actor
// so the control plane's audit says who changed what.
func (a *AdminClient) Do(ctx context.Context, method, path, actor string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if actor != "" {
		req.Header.Set("X-Routelab-Actor", "console:"+actor)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("admin api %s %s: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// controlCall runs a call and turns an API error into a FieldError carrying
// the API's own code, field and message.
func (c *Console) controlCall(ctx context.Context, method, path, actor string, body []byte, out any) error {
	if c.deps.Control == nil {
		return &FieldError{Code: "no_admin_api", Message: "the console has no admin API configured (--admin-url)", Status: 503}
	}
	st, b, err := c.deps.Control.Do(ctx, method, path, actor, body)
	if err != nil {
		return err
	}
	if st/100 != 2 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error.Code == "" {
			e.Error.Code, e.Error.Message = "admin_api_error", fmt.Sprintf("admin API answered %d", st)
		}
		status := st
		if status >= 500 {
			status = 502
		}
		return &FieldError{Code: e.Error.Code, Field: e.Error.Field, Message: e.Error.Message, Status: status}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin api %s %s: decode: %w", method, path, err)
	}
	return nil
}

func escapePath(s string) string { return url.PathEscape(s) }
