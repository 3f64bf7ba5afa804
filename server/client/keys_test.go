package client_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/routelab/routelab/server/client"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	srv, seen := fakeAdmin(t, http.StatusCreated, `{"id":"key_1","tenant":"acme","created":1800000000,"revoked":false,"secret":"rl_s"}`)
	k, err := client.New(srv.URL, "tok", "cli:ana").CreateKey(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if want := (client.Key{ID: "key_1", Tenant: "acme", Created: 1800000000, Secret: "rl_s"}); k != want {
		t.Errorf("CreateKey = %+v, want %+v", k, want)
	}
	if got, want := <-seen, (request{"POST", "/admin/keys", "Bearer tok", "cli:ana", `{"name":"ci","tenant":"acme"}`}); got != want {
		t.Errorf("create request = %+v, want %+v", got, want)
	}

	srv, seen = fakeAdmin(t, http.StatusOK, `{"keys":[{"id":"key_1","tenant":"acme","created":1,"revoked":true}]}`)
	keys, err := client.New(srv.URL, "tok", "").Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != (client.Key{ID: "key_1", Tenant: "acme", Created: 1, Revoked: true}) {
		t.Errorf("Keys = %+v", keys)
	}
	if got := <-seen; got.method != "GET" || got.path != "/admin/keys" {
		t.Errorf("list request = %+v", got)
	}
}
