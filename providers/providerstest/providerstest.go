// Package providerstest has test doubles for providers.Provider.
package providerstest

import (
	"context"
	"sync"

	"github.com/routelab/routelab/providers"
)

// Scripted is a provider that returns the scripted errors in order (nil for a
// success with one image), then repeats the last one, and records every
// request. Safe for concurrent use.
type Scripted struct {
	ProviderName string
	Script       []error

	mu    sync.Mutex
	calls []providers.Request
}

var _ providers.Provider = (*Scripted)(nil)

// Name returns ProviderName, or "scripted".
func (s *Scripted) Name() string {
	if s.ProviderName == "" {
		return "scripted"
	}
	return s.ProviderName
}

// Generate returns the next scripted outcome.
func (s *Scripted) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, req)
	s.mu.Unlock()
	var err error
	if len(s.Script) > 0 {
		err = s.Script[min(n, len(s.Script)-1)]
	}
	if err != nil {
		return providers.Result{}, err
	}
	return providers.Result{Images: []providers.Image{{Bytes: []byte("img"), MIME: "image/png"}}}, nil
}

// Calls returns the requests seen so far.
func (s *Scripted) Calls() []providers.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]providers.Request(nil), s.calls...)
}
