// Package reliability holds memtorrent's fault, hostile-peer, interop, fuzz
// and soak tests. It has no non-test code: everything is in _test.go files,
// run by
//
//	go test -race ./reliability/
//
// Every test runs a loopback swarm (127.0.0.0/8 only) of anacrolix/torrent
// clients, with a leecher whose storage is a memory.Client and a
// stream.Handler served over HTTP by an httptest server, and checks what a
// media player would see: the exact bytes of the file, never an early EOF,
// never a 5xx other than 503, and the storage's bound (Resident <= Capacity)
// at every sample. Goroutine leaks fail the package (goleak in TestMain).
//
// The faults:
//
//   - TestCorruptingPeer: a seeder on 127.0.0.2 serves flipped bytes for
//     some pieces; the leecher must stream exact bytes from a good seeder
//     and ban the bad one (the library bans by IP, which is why the bad
//     seeder needs an address of its own).
//   - TestPeerLoss: the only seeder goes away mid-stream; the HTTP response
//     waits and resumes, exact, when another seeder of the same data
//     connects.
//   - TestDropWhileReading: a torrent dropped while HTTP reads of it are in
//     flight; the reads fail, its sessions end and its buffers return to the
//     pool.
//   - TestShrinkWhileStreaming: the capacity cut to a quarter mid-stream.
//   - TestSeederLoss: qBittorrent's process restarted on its port, or its
//     connection closed, mid-stream with a CPU burner on every core; the
//     stream resumes within 10 s of the seeder being back.
//   - TestRealSeeders: qBittorrent, aria2 and Transmission each seeding;
//     after a full pass through a quarter cache (65 pieces, and 64 pieces
//     of 1 MiB added by magnet) a seek's first byte comes within 10 s.
//   - TestRealSoak: the three seeding at once; random Range reads, full
//     passes and drop/re-adds from a printed seed (-soak.real=DURATION for
//     a long run), no read waiting more than 15 s.
//   - TestTransmissionInterop: a transmission-daemon seeder (Debian's
//     Transmission 3.00), across the 512-request boundary. Skipped outside
//     CI when transmission-daemon is not installed; fails in CI (CI=true).
//   - FuzzHandlerRequest: arbitrary paths and Range headers against a
//     Handler serving a complete torrent and a torrent with no peers.
//   - TestQoEShort: real seeders (qBittorrent, aria2, Transmission) behind
//     proxies that make their lines slow and uneven, one line stalled for
//     15 s, and a player model: no stall over 10 s, every byte exact.
//     TestQoE -qoe runs the full scenarios of docs/qoe.md side by side
//     with the anacrolix baseline.
//   - TestQoEMulti: issue 20's two viewers, shortened: files of one
//     torrent from the same seeders, the second viewer 15 s after the
//     first, both on one server: neither stalls over 10 s, every byte exact.
//   - TestSoak: random seeks over HTTP for -soak (default 0: skipped),
//     sampling RSS, Go heap and goroutines every second; the summary goes to
//     the test log and to -soak.out. go test's default -timeout (10m) is
//     shorter than a real soak: go test ./reliability -run TestSoak
//     -soak=20m -timeout 30m -soak.out docs/soak.md
//
// Data is small (a few MiB in 256 KiB pieces) so that the package runs in
// a reasonable time on two shared cores under -race. Tests wait on
// conditions with timeouts, never on sleeps.
package reliability
