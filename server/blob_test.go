package server_test

import (
	"testing"

	"github.com/routelab/routelab/blob"
)

func mustBlobs(t *testing.T) *blob.Store {
	t.Helper()
	s, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
