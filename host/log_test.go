package host_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
)

// TestUseLoggerLevels checks that the level of the handler given to
// UseLogger governs the client's anacrolix/log lines: below it nothing,
// at and above it each line at its own level, and a line without a level
// at Info instead of a panic.
func TestUseLoggerLevels(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, 100} {
		t.Run(level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			cfg := torrent.NewDefaultClientConfig()
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			host.UseLogger(cfg, logger)
			if cfg.Slogger != logger {
				t.Errorf("Slogger: got %v; want the logger given", cfg.Slogger)
			}
			cfg.Logger.WithDefaultLevel(alog.Debug).Printf("a debug line")
			cfg.Logger.Levelf(alog.Warning, "a warning line")
			cfg.Logger.Levelf(alog.Error, "an error line")
			cfg.Logger.Printf("a line without a level")
			out := buf.String()
			for _, l := range []struct {
				text  string
				level slog.Level
			}{
				{`level=DEBUG msg="a debug line"`, slog.LevelDebug},
				{`level=WARN msg="a warning line"`, slog.LevelWarn},
				{`level=ERROR msg="an error line"`, slog.LevelError},
				{`level=INFO msg="a line without a level"`, slog.LevelInfo},
			} {
				if got, want := strings.Contains(out, l.text), l.level >= level; got != want {
					t.Errorf("output has %q: %v; want %v. Output:\n%s", l.text, got, want, out)
				}
			}
		})
	}
}
