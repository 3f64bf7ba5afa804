package server

import (
	"net/netip"
	"testing"
)

// TestPublicAddr: reference URLs reach global unicast addresses only; the
// special-purpose blocks and the IPv6 forms that lead to a private IPv4
// address through NAT64, 6to4 or an IPv4-compatible address are refused.
func TestPublicAddr(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"2002:5db8:d822::1", true}, // 6to4 of 93.184.216.34
		{"127.0.0.1", false},
		{"10.1.2.3", false},
		{"169.254.169.254", false},
		{"100.64.0.1", false},
		{"0.1.2.3", false},
		{"192.0.0.170", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"198.19.255.254", false},
		{"203.0.113.9", false},
		{"240.0.0.1", false},
		{"255.255.255.254", false},
		{"::ffff:127.0.0.1", false},
		{"::127.0.0.1", false},
		{"64:ff9b::7f00:1", false},     // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false},  // NAT64 of 169.254.169.254
		{"64:ff9b::5db8:d822", false},  // NAT64 even of a public address: the translator decides
		{"64:ff9b:1::a00:1", false},    // local-use NAT64
		{"2002:7f00:1::1", false},      // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", false},   // 6to4 of 169.254.169.254
		{"2002:c0a8:101::1", false},    // 6to4 of 192.168.1.1
		{"2001:0:4136:e378::1", false}, // Teredo
		{"2001:db8::1", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"fec0::1", false},
		{"::1", false},
		{"ff02::1", false},
	}
	for _, tt := range tests {
		if got := publicAddr(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("publicAddr(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
