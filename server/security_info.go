package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/dustin/go-humanize"
)

// This file checks what clients send before the server holds it: the info
// of a .torrent, the size of a body, the number of torrents. Each check
// returns a *Refusal (400, 413 or 507 with a line naming the problem), so
// that hostile input never reaches the torrent client, whose errors the
// routes would answer with 500.

// InfoLimits bounds the info of a torrent a client adds.
type InfoLimits struct {
	MaxPieceLength int64 // bytes of one piece
	MaxLength      int64 // bytes of all files together
	MaxFiles       int
}

// DefaultInfoLimits admit every torrent seen in the wild: pieces up to
// 512 MiB, 64 TiB, 100 000 files.
var DefaultInfoLimits = InfoLimits{MaxPieceLength: 512 << 20, MaxLength: 64 << 40, MaxFiles: 100_000}

// ValidateInfo returns a Refusal when the v1 info of a torrent is
// inconsistent or beyond lim: a piece length that is not positive or too
// large, a piece hash count that does not cover the files' length, a
// negative file length, a total or a file count beyond lim, or a name or
// path component that is ".", "..", or holds a "/" or a NUL. Inconsistencies are 400, sizes beyond lim 413.
func ValidateInfo(info *metainfo.Info, lim InfoLimits) error {
	bad := func(format string, args ...any) error {
		return &Refusal{Status: http.StatusBadRequest, Reason: "torrent info: " + fmt.Sprintf(format, args...)}
	}
	tooLarge := func(format string, args ...any) error {
		return &Refusal{Status: http.StatusRequestEntityTooLarge, Reason: "torrent info: " + fmt.Sprintf(format, args...)}
	}
	if !info.HasV1() {
		return bad("no v1 pieces (BitTorrent v2-only torrents are not supported)")
	}
	if info.PieceLength <= 0 {
		return bad("piece length %d is not positive", info.PieceLength)
	}
	if info.PieceLength > lim.MaxPieceLength {
		return tooLarge("piece length %s is more than %s", humanize.IBytes(uint64(info.PieceLength)), humanize.IBytes(uint64(lim.MaxPieceLength)))
	}
	if len(info.Pieces)%20 != 0 {
		return bad("pieces is %d bytes, not a multiple of 20 (one SHA-1 per piece)", len(info.Pieces))
	}
	if len(info.Files) > lim.MaxFiles {
		return tooLarge("%d files, more than %d", len(info.Files), lim.MaxFiles)
	}
	if err := guardName("name", info.Name); err != nil {
		return bad("%v", err)
	}
	if err := guardName("name.utf-8", info.NameUtf8); err != nil {
		return bad("%v", err)
	}
	var total int64
	for i, f := range info.Files {
		if f.Length < 0 {
			return bad("file %d has length %d", i, f.Length)
		}
		if f.Length > lim.MaxLength-total {
			return tooLarge("files longer than %s", humanize.IBytes(uint64(lim.MaxLength)))
		}
		total += f.Length
		if len(f.Path) == 0 && len(f.PathUtf8) == 0 {
			return bad("file %d has no path", i)
		}
		for _, p := range [][]string{f.Path, f.PathUtf8} {
			for _, c := range p {
				if err := guardName(fmt.Sprintf("file %d path", i), c); err != nil {
					return bad("%v", err)
				}
			}
		}
	}
	if len(info.Files) == 0 {
		if info.Length < 0 {
			return bad("length %d", info.Length)
		}
		if info.Length > lim.MaxLength {
			return tooLarge("length %s, more than %s", humanize.IBytes(uint64(info.Length)), humanize.IBytes(uint64(lim.MaxLength)))
		}
		total = info.Length
	}
	if total == 0 {
		return bad("no data (length 0)")
	}
	want := (total + info.PieceLength - 1) / info.PieceLength
	if got := int64(len(info.Pieces) / 20); got != want {
		return bad("%d piece hashes, but %s in pieces of %s needs %d",
			got, humanize.IBytes(uint64(total)), humanize.IBytes(uint64(info.PieceLength)), want)
	}
	return nil
}

// guardName returns an error when the name or path component s (what
// names it) could climb out of a directory or is not one name.
func guardName(what, s string) error {
	switch {
	case s == "." || s == "..":
		return fmt.Errorf("%s has the component %q", what, s)
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("%s %q holds a slash or a NUL", what, s)
	}
	return nil
}

// DefaultMaxTorrents is the default of -max-torrents.
const DefaultMaxTorrents = 100

// CheckTorrentCount returns a Refusal (507) when a server that holds have
// torrents, at most max, cannot add one more; max <= 0 means no cap.
func CheckTorrentCount(have, max int) error {
	if max <= 0 || have < max {
		return nil
	}
	return &Refusal{Status: http.StatusInsufficientStorage,
		Reason: fmt.Sprintf("the server holds %d torrents, its most (-max-torrents %d); drop one first", have, max)}
}

// BodyError returns a Refusal (413) when err, from reading a request body,
// says that the body passed its http.MaxBytesReader limit, and otherwise
// otherwise.
func BodyError(err, otherwise error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &Refusal{Status: http.StatusRequestEntityTooLarge,
			Reason: fmt.Sprintf("the request body is larger than %s", humanize.IBytes(uint64(mb.Limit)))}
	}
	return otherwise
}
