package testutil

import (
	"net"
	"testing"
)

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// a program that takes its port on the command line.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
