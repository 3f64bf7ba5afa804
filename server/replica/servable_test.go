package replica_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/server/replica"
)

// TestStartRefusesUnservablePolicy: a policy that routes to models the
// catalog lacks is a startup error naming one, not a server answering
// every request with 503 no_model_available; the catalog's own policy
// starts.
func TestStartRefusesUnservablePolicy(t *testing.T) {
	start := func(policy string) (*replica.Replica, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return replica.Start(ctx, replica.Options{
			Addr: "127.0.0.1:0", AdminAddr: "", DataDir: t.TempDir(), Policy: policy, Catalog: "vendors",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}
	if _, err := start("rules"); err == nil || !strings.Contains(err.Error(), "sim-lite") {
		t.Errorf("Start(catalog vendors, policy rules) = %v, want an error naming sim-lite", err)
	}
	s, err := start("vendors")
	if err != nil {
		t.Fatalf("Start(catalog vendors, policy vendors): %v", err)
	}
	_ = s.Stop(context.Background(), 5*time.Second)
}
