package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Serve serves the app on ln with lingering close after a 413, 401 or 403:
// when fasthttp closes a connection whose request body it refused (too
// large, or sent without a credential: see newApp), the client may still
// be sending; closing at once would reset the connection and the
// client would see "connection reset" instead of the 413. Like nginx's
// lingering_close, the write side is shut first and unread input drained
// for a bounded time and size. Other closes are immediate, so shutdown is
// not held up by idle clients.
func (s *Server) Serve(ln net.Listener) error {
	l := newLingerListener(ln)
	s.ln.Store(l) // Shutdown may run on another goroutine at any time
	if s.closed.Load() {
		// Shutdown came first; fasthttp would forget it (its stop flag is
		// reset when it returns) and serve until the process ends.
		return l.Close()
	}
	// A Shutdown from here on finds l and closes it, so fasthttp's accept
	// loop ends (returning nil) even if its own shutdown ran before it
	// registered the listener.
	return s.App.Listener(l)
}

// ServeAdmin serves the admin API (Server.Admin) on ln, a listener of its
// own: by default on loopback, never the public port. Shutdown stops it.
func (s *Server) ServeAdmin(ln net.Listener) error {
	l := newLingerListener(ln)
	s.adminLn.Store(l)
	if s.closed.Load() {
		return l.Close()
	}
	return s.Admin.Listener(l)
}

// Shutdown drains: readiness fails and new image requests get 503 at once,
// the listeners close, in-flight requests finish, then connections still
// open (idle keep-alives) are closed. It returns when all are done or ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.closed.Store(true)
	if l := s.ln.Load(); l != nil {
		_ = l.Close()
	}
	if l := s.adminLn.Load(); l != nil {
		_ = l.Close()
	}
	done := make(chan error, 1)
	go func() {
		err := s.Admin.ShutdownWithContext(ctx)
		done <- errors.Join(err, s.App.ShutdownWithContext(ctx))
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.inflight.Load() > 0 {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	for _, l := range []*lingerListener{s.ln.Load(), s.adminLn.Load()} {
		if l != nil {
			l.closeAll()
		}
	}
	return <-done
}

func newLingerListener(ln net.Listener) *lingerListener {
	return &lingerListener{Listener: ln, slots: make(chan struct{}, 256), conns: map[*lingerConn]struct{}{}}
}

type lingerListener struct {
	net.Listener
	slots     chan struct{} // bounds connections lingering at once
	mu        sync.Mutex
	conns     map[*lingerConn]struct{}
	closeOnce sync.Once
}

// Close closes the listener once; later calls (fasthttp's shutdown after
// ours) return nil, as fasthttp treats a close error as a failed shutdown.
func (l *lingerListener) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.Listener.Close() })
	return err
}

func (l *lingerListener) closeAll() {
	l.mu.Lock()
	cs := make([]*lingerConn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		_ = c.TCPConn.Close()
	}
}

func (l *lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	lc := &lingerConn{TCPConn: tc, slots: l.slots, l: l}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

type lingerConn struct {
	*net.TCPConn
	slots  chan struct{}
	l      *lingerListener
	once   sync.Once
	linger atomic.Bool // a refusal was written: the client may still be sending
}

// refusals are the statuses of a request whose body may be left unread.
var refusals = [][]byte{[]byte("HTTP/1.1 413 "), []byte("HTTP/1.1 401 "), []byte("HTTP/1.1 403 ")}

func (c *lingerConn) Write(b []byte) (int, error) {
	for _, st := range refusals {
		if bytes.HasPrefix(b, st) {
			c.linger.Store(true)
		}
	}
	return c.TCPConn.Write(b)
}

const (
	lingerTime  = 5 * time.Second
	lingerBytes = 256 << 20
)

func (c *lingerConn) Close() error {
	var err error
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		if !c.linger.Load() {
			err = c.TCPConn.Close()
			return
		}
		select {
		case c.slots <- struct{}{}:
		default:
			err = c.TCPConn.Close()
			return
		}
		if err = c.TCPConn.CloseWrite(); err != nil {
			<-c.slots
			err = c.TCPConn.Close()
			return
		}
		go func() {
			defer func() { <-c.slots }()
			_ = c.TCPConn.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.CopyN(io.Discard, c.TCPConn, lingerBytes)
			_ = c.TCPConn.Close()
		}()
	})
	return err
}
