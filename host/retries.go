package host

import (
	"context"
	"log/slog"
)

// expectedReadRetries are the messages anacrolix/torrent v1.59.1's reader
// logs at Error level on each failed attempt to read a piece the storage no
// longer holds. With memory storage that is expected: a piece the client
// still believes complete may have been evicted before the storage's
// notification reached the client, and the reader retries until the piece
// is downloaded again. Shown as errors they would alarm users for nothing.
var expectedReadRetries = map[string]bool{
	"initial read failed":                 true,
	"read failed after reader reset":      true,
	"read failed after completion resync": true,
}

// QuietRetries returns a slog.Handler that demotes the torrent reader's
// expected retry errors over memory storage to Debug and passes everything
// else to h unchanged. It is safe for concurrent use if h is.
func QuietRetries(h slog.Handler) slog.Handler { return quietRetries{h} }

type quietRetries struct{ slog.Handler }

func (h quietRetries) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelError && expectedReadRetries[r.Message] {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietRetries) WithAttrs(as []slog.Attr) slog.Handler {
	return quietRetries{h.Handler.WithAttrs(as)}
}

func (h quietRetries) WithGroup(name string) slog.Handler {
	return quietRetries{h.Handler.WithGroup(name)}
}
