package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// expAdminOpts are the flags every admin CLI command of experiments takes.
// The admin API is found from --admin-url/--admin-token, then
// ROUTELAB_ADMIN_URL/ROUTELAB_ADMIN_TOKEN, then dev.json under --data-dir
// (what `routelab dev` writes).
type expAdminOpts struct {
	url, token, dataDir string
}

func expAdminFlags(fs *pflag.FlagSet) *expAdminOpts {
	o := &expAdminOpts{}
	fs.StringVar(&o.url, "admin-url", "", "admin API base URL (env ROUTELAB_ADMIN_URL; default from dev.json)")
	fs.StringVar(&o.token, "admin-token", "", "admin token (env ROUTELAB_ADMIN_TOKEN; default from dev.json)")
	fs.StringVar(&o.dataDir, "data-dir", "./.routelab", "routelab dev data dir holding dev.json (env ROUTELAB_DATA_DIR)")
	return o
}

func (o *expAdminOpts) resolve(fs *pflag.FlagSet, env Env) (*expAdminClient, error) {
	envDefault(fs, env, "admin-url", "ROUTELAB_ADMIN_URL")
	envDefault(fs, env, "admin-token", "ROUTELAB_ADMIN_TOKEN")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	var err error
	if o.url, o.token, err = resolveAdmin(o.url, o.token, o.dataDir); err != nil {
		return nil, err
	}
	if o.url == "" || o.token == "" {
		return nil, errors.New(noAdminHelp)
	}
	return &expAdminClient{base: strings.TrimRight(o.url, "/"), token: o.token, actor: env.Getenv("USER"), http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// expAdminClient calls the admin API.
type expAdminClient struct {
	base, token, actor string
	http               *http.Client
}

// apiError is the admin API's error body.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	if e.Field != "" {
		s += " " + e.Field
	}
	return s + ": " + e.Message
}

func (c *expAdminClient) do(ctx context.Context, method, path string, body []byte, out any) error {
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
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error apiError `json:"error"`
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
	return json.Unmarshal(b, out)
}
