package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server/client"
)

// request is what the fake admin API saw.
type request struct {
	method, path, auth, actor, body string
}

func fakeAdmin(t *testing.T, status int, answer string) (*httptest.Server, chan request) {
	t.Helper()
	seen := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- request{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("x-routelab-actor"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestAct(t *testing.T) {
	srv, seen := fakeAdmin(t, http.StatusOK, `{"id":"exp-1","status":"running","traffic":0.05}`)
	c := client.New(srv.URL, "tok", "cli:ana")
	s, err := c.Act(context.Background(), "exp 1", "ramp", "healthy", 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "exp-1" || s.Traffic != 0.05 {
		t.Errorf("Act = %+v", s)
	}
	got := <-seen
	want := request{"POST", "/admin/experiments/exp%201/ramp", "Bearer tok", "cli:ana", `{"reason":"healthy","traffic":0.05}`}
	if got != want {
		t.Errorf("request = %+v, want %+v", got, want)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		want   string
		api    bool // an *APIError
	}{
		{"explained", 400, `{"error":{"code":"invalid_spec","message":"arms must differ","field":"arms"}}`, "invalid_spec (HTTP 400) arms: arms must differ", true},
		{"not explained", 502, `bad gateway`, "admin API GET /admin/experiments/x: HTTP 502: bad gateway", false},
	}
	for _, tt := range tests {
		srv, _ := fakeAdmin(t, tt.status, tt.answer)
		_, err := client.New(srv.URL, "tok", "").Experiment(context.Background(), "x")
		var apiErr *client.APIError
		if err == nil || err.Error() != tt.want || errors.As(err, &apiErr) != tt.api {
			t.Errorf("%s: error = %v, want %q (APIError %v)", tt.name, err, tt.want, tt.api)
		}
	}
}

func TestStageRefusesAnotherVersion(t *testing.T) {
	srv, _ := fakeAdmin(t, http.StatusOK, `{"version":"other-2"}`)
	p := mustPolicy(t)
	_, err := client.New(strings.TrimPrefix(srv.URL, "http://"), "tok", "").Stage(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `staged "other-2"`) {
		t.Errorf("Stage answered with another version: %v", err)
	}
}

func mustPolicy(t *testing.T) *router.Policy {
	t.Helper()
	p, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
