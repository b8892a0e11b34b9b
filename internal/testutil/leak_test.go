package testutil

import (
	"fmt"
	"strings"
	"testing"
)

// leakRecorder catches the Error call of goleak.VerifyNone.
type leakRecorder struct {
	testing.TB
	msg string
}

func (r *leakRecorder) Helper()           {}
func (r *leakRecorder) Error(args ...any) { r.msg = fmt.Sprint(args...) }

func TestVerifyNoLeaksFindsLeak(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go func() { <-stop }()
	r := &leakRecorder{TB: t}
	VerifyNoLeaks(r)
	if !strings.Contains(r.msg, "TestVerifyNoLeaksFindsLeak") {
		t.Errorf("VerifyNoLeaks reported %q; want the leaked goroutine's stack", r.msg)
	}
}
