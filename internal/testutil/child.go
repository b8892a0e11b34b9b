package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// Child is a child process a test started (StartChild), its standard
// output read line by line. It is used by the test's goroutine.
type Child struct {
	Cmd    *exec.Cmd
	Lines  <-chan string   // standard output, a line at a time; closed at EOF
	Exited <-chan struct{} // closed once the process has exited and Err is set
	err    error           // Cmd.Wait's result, set before Exited closes
}

// Err returns the process's exit error; call it after Exited closed.
func (c *Child) Err() error { return c.err }

// childGrace bounds how long the end of a test waits for a child to exit
// after stop before killing it.
const childGrace = 30 * time.Second

// StartChild starts cmd and reads its standard output into Lines; cmd.Stdout
// must be nil, cmd.Stderr is the caller's. At the end of the test, if the
// process is still running, it calls stop (nil: none), waits up to 30 s for
// the exit, then kills the process.
func StartChild(tb testing.TB, cmd *exec.Cmd, stop func()) *Child {
	tb.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", cmd.Path, err)
	}
	lines := make(chan string, 100)
	exited := make(chan struct{})
	c := &Child{Cmd: cmd, Lines: lines, Exited: exited}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		c.err = cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		go func() { // nobody reads the lines any more
			for range lines {
			}
		}()
		if stop != nil {
			stop()
		} else {
			cmd.Process.Kill()
		}
		select {
		case <-exited:
		case <-time.After(childGrace):
			cmd.Process.Kill()
			<-exited
		}
	})
	return c
}

// WaitLine returns the submatches of the next line of standard output that
// matches re (WaitLine of c.Lines).
func (c *Child) WaitLine(tb testing.TB, re *regexp.Regexp) []string {
	tb.Helper()
	return WaitLine(tb, c.Lines, re)
}

// WaitLine returns the submatches of the next line from lines that matches
// re. It fails tb if lines closes first or after a minute.
func WaitLine(tb testing.TB, lines <-chan string, re *regexp.Regexp) []string {
	tb.Helper()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				tb.Fatalf("the output ended before a line matching %v", re)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-timer.C:
			tb.Fatalf("timed out waiting for a line matching %v", re)
		}
	}
}

// Stop sends sig and fails tb unless the process then exits with status 0
// within timeout.
func (c *Child) Stop(tb testing.TB, sig os.Signal, timeout time.Duration) {
	tb.Helper()
	if err := c.Cmd.Process.Signal(sig); err != nil {
		tb.Fatal(err)
	}
	go func() {
		for range c.Lines {
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.Exited:
		if c.err != nil {
			tb.Errorf("%s after %v: %v; want exit status 0", c.Cmd.Path, sig, c.err)
		}
	case <-timer.C:
		tb.Fatalf("%s still running %v after %v", c.Cmd.Path, timeout, sig)
	}
}
