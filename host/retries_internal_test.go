package host

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuietRetries(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // lines expected, in order
	}{
		{slog.LevelWarn, []string{"level=ERROR msg=\"disk on fire\""}},
		{slog.LevelDebug, []string{"level=DEBUG msg=\"initial read failed\"", "level=ERROR msg=\"disk on fire\""}},
	} {
		var buf bytes.Buffer
		log := slog.New(quietRetries{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})}).With("torrent", "x")
		log.Error("initial read failed", "err", "not resident")
		log.Error("disk on fire")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != len(tc.want) {
			t.Fatalf("level %v: got %d lines %q; want %d", tc.level, len(lines), lines, len(tc.want))
		}
		for i, w := range tc.want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("level %v: line %d %q; want it to contain %q", tc.level, i, lines[i], w)
			}
		}
	}
}

// TestV1591ReaderRetryMessages fails when the torrent library no longer logs
// the messages QuietRetries demotes: then the workaround can go, or must
// learn the new messages.
func TestV1591ReaderRetryMessages(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/anacrolix/torrent").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "reader.go"))
	if err != nil {
		t.Fatalf("reading the library's reader.go: %v", err)
	}
	for msg := range expectedReadRetries {
		if !strings.Contains(string(src), `Error("`+msg+`"`) {
			t.Errorf("reader.go no longer logs %q at Error level", msg)
		}
	}
}
