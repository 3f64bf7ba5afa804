package server

import (
	"io"
	"net"
	"sync"
	"time"
)

// Serve serves the app on ln with lingering close: when fasthttp closes a
// connection whose request body it refused (413), the client may still be
// sending; closing at once would reset the connection and the client
// would see "connection reset" instead of the 413. Like nginx's
// lingering_close, the write side is shut first and unread input drained
// for a bounded time and size.
func (s *Server) Serve(ln net.Listener) error {
	return s.App.Listener(&lingerListener{Listener: ln, slots: make(chan struct{}, 256)})
}

type lingerListener struct {
	net.Listener
	slots chan struct{} // bounds connections lingering at once
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
	return &lingerConn{TCPConn: tc, slots: l.slots}, nil
}

type lingerConn struct {
	*net.TCPConn
	slots chan struct{}
	once  sync.Once
}

const (
	lingerTime  = 5 * time.Second
	lingerBytes = 256 << 20
)

func (c *lingerConn) Close() error {
	var err error
	c.once.Do(func() {
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
