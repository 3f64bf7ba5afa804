// Package redistest starts a real redis-server for tests (redislocal on a
// free port in the test's temp dir), stopped when the test ends. Tests
// fail, not skip, without the binary: make test installs it (make redis).
package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/redisstate/redislocal"
)

// Start starts a redis-server for t.
func Start(t testing.TB) *redislocal.Server {
	t.Helper()
	s, err := redislocal.Start(context.Background(), redislocal.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start redis-server (make redis installs it): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}
