package testutil

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireProgram returns the path of the program name, found in $PATH. If
// it is missing, the test is skipped with a message naming the Debian
// package that has it; under CI=true it fails instead (real programs never
// skip in CI). Call it from the test goroutine.
func RequireProgram(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not found (install the Debian package %s): %v", name, debianPackage, err)
	}
	tb.Skipf("%s not found: install the Debian package %s", name, debianPackage)
	return ""
}

// Run runs the program name with args and returns its standard output. It
// fails the test if the program fails, runs for over a minute or writes to
// standard error (so run programs that print only errors there, as ffmpeg
// does with -v error). Call it from the test goroutine.
func Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// Buffer collects what a process or a goroutine writes, for the test to
// read. It is safe for concurrent use; the zero Buffer is empty and ready.
type Buffer struct {
	mu  sync.Mutex // guards the field below
	buf strings.Builder
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
