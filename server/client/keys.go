package client

import (
	"context"
	"net/http"
)

// Key is a tenant API key as the admin API shows it: never its hash, and
// its secret only in the answer that created it.
type Key struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Name    string `json:"name,omitempty"`
	Created int64  `json:"created"`
	Revoked bool   `json:"revoked"`
	Secret  string `json:"secret,omitempty"`
}

// CreateKey creates an API key for tenant; the returned Key carries the
// secret, shown this once.
func (c *Admin) CreateKey(ctx context.Context, tenant, name string) (Key, error) {
	var k Key
	err := c.post(ctx, "/admin/keys", map[string]string{"tenant": tenant, "name": name}, &k)
	return k, err
}

// Keys lists the API keys.
func (c *Admin) Keys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.Do(ctx, http.MethodGet, "/admin/keys", nil, &out)
	return out.Keys, err
}
