// Package testutil wraps the loopback swarm of package swarm for tests:
// its helpers fail a testing.TB instead of returning errors and register
// their clean-up with it. It adds leechers with any storage, an HTTP
// handler served over a memory leecher (Serve, shared by the tests of
// stream and reliability), HTTP requests (NewRequest, Fetch), external
// programs (RequireProgram, Run), condition waits, byte comparisons and
// leak checks.
//
// A typical test:
//
//	spec := testutil.Spec{Name: "movie.mkv", Length: 32 << 20, PieceLength: 1 << 20}
//	seeder := testutil.NewSeeder(t, spec)
//	leecher := testutil.NewLeecher(t, st) // st: the storage under test, owned by the test
//	tor := testutil.AddTorrent(t, leecher, seeder.MetaInfo, seeder)
//	r := tor.NewReader()
//	defer r.Close()
//	testutil.Equal(t, testutil.ReadAll(t, time.Minute, r), testutil.Content(spec))
//
// Every client runs on 127.0.0.1 with a kernel-chosen port and no DHT,
// trackers, PEX, uTP, IPv6, UPnP, webtorrent or webseeds (see Config). All
// helpers register their clean-up with testing.TB.Cleanup, so clients are
// closed in reverse order of creation when the test ends; storages passed in
// by the caller are never closed here.
//
// Helpers that take a testing.TB fail the test (tb.Fatalf) on error and so
// must be called from the test's own goroutine, as with tb.FailNow; the data
// functions (Data, Source, Content) are safe for concurrent use. Programs
// (cmd/bench, the demo) use package swarm directly.
//
// The package has no package-level mutable state.
package testutil
