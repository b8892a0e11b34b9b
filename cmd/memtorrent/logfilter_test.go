package main

import (
	"bytes"
	"log/slog"
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
