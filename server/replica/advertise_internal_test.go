package replica

import (
	"net"
	"strings"
	"testing"
)

// TestAdvertised: a listener on one address advertises it; one on every
// interface advertises an address a peer can dial, never 0.0.0.0.
func TestAdvertised(t *testing.T) {
	if got := advertised(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8081}); got != "http://127.0.0.1:8081" {
		t.Errorf("127.0.0.1:8081 advertises %s", got)
	}
	for _, ip := range []net.IP{net.IPv4zero, net.IPv6unspecified} {
		got := advertised(&net.TCPAddr{IP: ip, Port: 8081})
		if strings.Contains(got, "0.0.0.0") || strings.Contains(got, "[::]") || !strings.HasSuffix(got, ":8081") {
			t.Errorf("%s:8081 advertises %s, want a dialable address on port 8081", ip, got)
		}
	}
}
