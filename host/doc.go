// Package host wires memtorrent's memory storage to its host library,
// github.com/anacrolix/torrent v1.59.1, and holds most workarounds of that
// version's quirks. [New] makes a torrent client over memory storage, wired
// so that the client learns of every evicted complete piece (and peers
// that support BEP 54 are told, and peers are dialled again when a wanted
// piece has no source):
//
//	cfg := torrent.NewDefaultClientConfig()
//	host.Apply(cfg)
//	hc, err := host.New(cfg, memory.Options{Capacity: 256 << 20})
//	...
//	defer hc.Close()
//
// [Apply] sets the recommended configuration (settings.go says what each
// setting works around); [Loopback] confines a client to 127.0.0.1;
// [UseLogger], [QuietRetries] and [RateLimit] make the library's logs follow
// the program's handler.
//
// Each workaround has a canary, a test that fails when the upstream code or
// behaviour it works around changes, so that an upgrade shows what can go:
// TestV1591WorkaroundCode fingerprints the upstream functions behind them,
// and TestV1591RetriesDHTAnnounceAtOnce, TestV1591ReaderRetryMessages,
// TestV1591UpdateCompletionAfterDropPanics and TestV1591HasNoDontHave
// reproduce the behaviours. docs/architecture.md lists every quirk, where it
// is handled and its canary. The package has no package-level state.
package host
