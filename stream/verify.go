package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// Values of Options.Verify.
const (
	// VerifyStrict serves only pieces that passed their hash check: the
	// first byte of a piece waits for the whole piece.
	VerifyStrict = "strict"
	// VerifyPlayhead serves the piece at a session's playhead chunk by
	// chunk as its bytes arrive, before its hash check, when that piece is
	// incomplete; every other piece is served only once verified. A piece
	// served so that later fails its hash is counted
	// (Status.UnverifiedFailed), logged at Warn and downloaded again; the
	// bytes the player already got from it were wrong.
	VerifyPlayhead = "playhead"
)

// leafHashWait is how long a read under VerifyPlayhead of a v2 or hybrid
// torrent's piece serves only bytes proven by leaf hashes before it serves
// unverified ones too (see readEarly).
const leafHashWait = time.Second

// checkVerify returns an error unless v is a value of Options.Verify.
func checkVerify(v string) error {
	switch v {
	case VerifyStrict, VerifyPlayhead:
		return nil
	}
	return fmt.Errorf("stream: Verify %q: want %q or %q", v, VerifyStrict, VerifyPlayhead)
}

// readEarly is readPiece at the playhead under VerifyPlayhead, and for v2
// and hybrid torrents (proven): an incomplete piece's written bytes from
// off on are returned as soon as there are any (memory.Torrent.ReadUnverified),
// or with proven only those its leaf hashes prove (memory.Torrent.ReadVerified:
// each 16 KiB block that matches its BEP 52 hash, which the host fetches
// when the storage asks, see host.Options.LeafHashes); a complete
// piece's as readPiece does. It waits for the piece's state to change or
// for a write to it (or its leaf hashes). off is an offset in the torrent;
// s.mt must not be nil.
//
// Under VerifyPlayhead a v2 or hybrid torrent's piece is read proven for
// leafHashWait from the session's first read of it: its leaf hashes take
// one round trip to a peer that has them, its first block at least as
// long, so that the player gets proven blocks when the swarm can prove
// them and unverified ones only when it cannot. Once a piece's wait ended
// without its hashes the session stops waiting, until a piece has them.
func (s *session) readEarly(ctx context.Context, p []byte, off int64, proven bool) (int, error) {
	t := s.key.t
	i, off, p, err := pieceSpan(t, p, off)
	if err != nil || len(p) == 0 {
		return 0, err
	}
	if s.leaves && i != s.gracePiece {
		s.gracePiece, s.graceEnd = i, time.Now()
		if !s.noLeafHashes {
			s.graceEnd = s.graceEnd.Add(leafHashWait)
		}
	}
	piece := t.Piece(i)
	var changes <-chan torrent.PieceStateChange
	for {
		select {
		case <-t.Closed():
			return 0, ErrDropped
		default:
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if piece.State().Complete {
			if n, _ := piece.Storage().ReadAt(p, off); n > 0 {
				return n, nil
			}
			// Lost to an eviction: wait for it again, as readPiece does.
		}
		// Taken before the read, so that a write after it wakes the wait.
		written := s.mt.Written(i)
		// Asked before the read: leaf hashes once set stay, so bytes
		// read after a yes were proven (a read from a leaf whose hash is
		// known returns only proven bytes); after a no they count as
		// unverified even if the hash came in between.
		hadLeaves := s.mt.HasLeafHash(i, off)
		var n int
		var err error
		useProven := proven || (s.leaves && time.Now().Before(s.graceEnd))
		if s.leaves {
			s.noLeafHashes = !hadLeaves && !useProven
		}
		if useProven {
			n, err = s.mt.ReadVerified(i, off, p)
		} else {
			n, err = s.mt.ReadUnverified(i, off, p)
		}
		switch {
		case errors.Is(err, memory.ErrClosed):
			return 0, ErrDropped
		case err != nil:
			return 0, fmt.Errorf("stream: reading piece %d before its hash: %w", i, err)
		case n > 0 && (hadLeaves || useProven):
			s.h.leafVerifiedBytes.Add(int64(n))
			return n, nil
		case n > 0:
			s.ts.servedUnverified(t, i)
			s.h.unverifiedBytes.Add(int64(n))
			return n, nil
		}
		if changes == nil {
			sub := t.SubscribePieceStateChanges()
			defer sub.Close() // once: changes is set from now on
			changes = sub.Values
			continue
		}
		if err := waitWrite(ctx, t, changes, i, written); err != nil {
			return 0, err
		}
	}
}

// waitWrite is waitChange that also returns when written is closed.
func waitWrite(ctx context.Context, t *torrent.Torrent, changes <-chan torrent.PieceStateChange, i int, written <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Closed():
			return ErrDropped
		case <-written:
			return nil
		case c, ok := <-changes:
			switch {
			case !ok:
				return ErrDropped
			case c.Index == i:
				return nil
			}
		}
	}
}

// servedUnverified records that bytes of piece i of t were served before
// its hash check. The piece stays wanted (see want) until it is complete,
// so that if it fails its hash the client downloads it again even after
// the playhead left it.
func (ts *torState) servedUnverified(t *torrent.Torrent, i int) {
	ts.prioMu.Lock()
	defer ts.prioMu.Unlock()
	if _, ok := ts.unverified[i]; ok {
		return
	}
	ts.unverified[i] = struct{}{}
	ts.applyLocked(t, i)
}

// pruneUnverifiedLocked forgets the pieces served before their hash that
// are now complete, and sets their priority to what the sessions want.
// ts.prioMu must be held.
func (ts *torState) pruneUnverifiedLocked(t *torrent.Torrent) {
	for i := range ts.unverified {
		if t.Piece(i).State().Complete {
			delete(ts.unverified, i)
			ts.applyLocked(t, i)
		}
	}
}

// applyLocked sets the priority of piece i of t to ts.want(i) if it
// changed. ts.prioMu must be held.
func (ts *torState) applyLocked(t *torrent.Torrent, i int) {
	want := ts.want(i)
	if want == ts.applied[i] {
		return
	}
	if want == torrent.PiecePriorityNone {
		delete(ts.applied, i)
	} else {
		ts.applied[i] = want
	}
	select {
	case <-t.Closed():
	default:
		t.Piece(i).SetPriority(want)
	}
}

// unverifiedFailed is the memory.Torrent.OnUnverifiedFailure of the
// torrents the Handler serves with VerifyPlayhead.
func (h *Handler) unverifiedFailed(ih string) func(piece int) {
	return func(piece int) {
		h.unverifiedFails.Add(1)
		h.log.Warn("stream: a piece served before its hash check failed it; the player got wrong bytes, downloading it again",
			"infohash", ih, "piece", piece)
	}
}
