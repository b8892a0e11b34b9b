package server_test

import (
	"net/netip"
	"testing"

	"github.com/memtorrent/memtorrent/server"
)

func TestCheckExposure(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
	for _, tc := range []struct {
		listen, auth string
		allow        []netip.Prefix
		exposed      bool
	}{
		{"127.0.0.1:8080", "", nil, false},
		{"127.1.2.3:0", "", nil, false},
		{"[::1]:8080", "", nil, false},
		{"localhost:8080", "", nil, false},
		{"[::ffff:127.0.0.1]:8080", "", nil, false},
		{":8080", "", nil, true},
		{"0.0.0.0:8080", "", nil, true},
		{"[::]:8080", "", nil, true},
		{"192.168.1.2:8080", "", nil, true},
		{"media.lan:8080", "", nil, true},
		{"no port", "", nil, true},
		{":8080", "kodi:pass", nil, false},
		{"0.0.0.0:8080", "", lan, false},
	} {
		err := server.CheckExposure(tc.listen, tc.auth, tc.allow)
		if got := err != nil; got != tc.exposed {
			t.Errorf("CheckExposure(%q, %q, %v) = %v; want exposed %v", tc.listen, tc.auth, tc.allow, err, tc.exposed)
		}
	}
}
