// Package servertest starts a server.Server for tests.
package servertest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/routelab/routelab/server"
)

// Start serves srv's API and admin API on 127.0.0.1 listeners and returns
// their base URLs. When the test ends it shuts srv down, waiting up to wait
// (a bound so that a hang fails, not a timing budget), and fails the test
// if the shutdown or a listener returned an error.
func Start(t testing.TB, srv *server.Server, wait time.Duration) (url, adminURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done, adminDone := make(chan error, 1), make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	go func() { adminDone <- srv.ServeAdmin(aln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
		if err := <-adminDone; err != nil {
			t.Errorf("admin listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), "http://" + aln.Addr().String()
}
