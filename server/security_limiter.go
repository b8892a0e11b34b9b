package server

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Defaults of LoginLimits.
const (
	DefaultLoginFailures = 10
	DefaultLoginWindow   = 10 * time.Minute
	DefaultLoginBan      = 15 * time.Minute
)

// guardMaxAddrs bounds the addresses a LoginLimiter remembers.
const guardMaxAddrs = 4096

// LoginLimits configures a LoginLimiter; a zero field takes its default.
type LoginLimits struct {
	Failures int           // failed authentications from one address that ban it
	Window   time.Duration // within which the failures count
	Ban      time.Duration // how long a banned address is refused (-auth-ban)
	Logger   *slog.Logger  // where a ban is logged, once; nil logs nothing
}

// LoginLimiter brakes the guessing of credentials: after Failures failed
// authentications from one address within Window, that address is refused
// with 429 for Ban, whatever it sends. An IPv6 address counts with its
// whole /64. It remembers at most a few thousand addresses, forgetting
// expired ones first. Time is the time package's (testing/synctest moves
// it in tests). It is safe for concurrent use.
type LoginLimiter struct {
	limits LoginLimits // never changes after NewLoginLimiter

	mu    sync.Mutex // guards the field below
	addrs map[netip.Prefix]*guardFailures
}

// guardFailures is what a LoginLimiter knows of one address.
type guardFailures struct {
	n      int       // failures since first
	first  time.Time // of the failures counted
	banned time.Time // refused until then
}

// NewLoginLimiter returns a LoginLimiter with limits.
func NewLoginLimiter(limits LoginLimits) *LoginLimiter {
	if limits.Failures <= 0 {
		limits.Failures = DefaultLoginFailures
	}
	if limits.Window <= 0 {
		limits.Window = DefaultLoginWindow
	}
	if limits.Ban <= 0 {
		limits.Ban = DefaultLoginBan
	}
	return &LoginLimiter{limits: limits, addrs: map[netip.Prefix]*guardFailures{}}
}

// guardPrefix returns the key of a request's RemoteAddr: the address, or
// the /64 of an IPv6 address. ok is false for an address it cannot parse.
func guardPrefix(remoteAddr string) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(remoteAddr)
		if err != nil {
			return netip.Prefix{}, false
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	a := ap.Addr().Unmap().WithZone("")
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p, true
}

// Banned returns how long the client at remoteAddr stays refused, 0 if it
// is not.
func (l *LoginLimiter) Banned(remoteAddr string) time.Duration {
	p, ok := guardPrefix(remoteAddr)
	if !ok {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.addrs[p]; f != nil && now.Before(f.banned) {
		return f.banned.Sub(now)
	}
	return 0
}

// Fail counts a failed authentication from remoteAddr and returns how long
// it is now banned, 0 if it is not. The ban is logged when it begins.
func (l *LoginLimiter) Fail(remoteAddr string) time.Duration {
	p, ok := guardPrefix(remoteAddr)
	if !ok {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	f := l.addrs[p]
	if f == nil {
		if len(l.addrs) >= guardMaxAddrs {
			l.forgetLocked(now)
		}
		if len(l.addrs) >= guardMaxAddrs {
			l.mu.Unlock()
			return 0 // so many addresses guess at once that a ban per address would not help
		}
		f = &guardFailures{}
		l.addrs[p] = f
	}
	if now.Before(f.banned) {
		left := f.banned.Sub(now)
		l.mu.Unlock()
		return left
	}
	if f.n == 0 || now.Sub(f.first) > l.limits.Window {
		f.n, f.first = 0, now
	}
	f.n++
	banned := f.n >= l.limits.Failures
	if banned {
		f.n, f.banned = 0, now.Add(l.limits.Ban)
	}
	l.mu.Unlock()
	if !banned {
		return 0
	}
	if l.limits.Logger != nil {
		l.limits.Logger.Warn("refusing an address after failed authentications",
			"addr", p.String(), "failures", l.limits.Failures, "within", l.limits.Window, "for", l.limits.Ban)
	}
	return l.limits.Ban
}

// Succeed forgets the failures of remoteAddr, unless it is banned.
func (l *LoginLimiter) Succeed(remoteAddr string) {
	p, ok := guardPrefix(remoteAddr)
	if !ok {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.addrs[p]; f != nil && !now.Before(f.banned) {
		delete(l.addrs, p)
	}
}

// forgetLocked drops the addresses neither banned nor with failures in
// the window.
func (l *LoginLimiter) forgetLocked(now time.Time) {
	for p, f := range l.addrs {
		if !now.Before(f.banned) && now.Sub(f.first) > l.limits.Window {
			delete(l.addrs, p)
		}
	}
}

// Refuse answers a banned client: 429 with Retry-After, in whole seconds.
func (l *LoginLimiter) Refuse(w http.ResponseWriter, left time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64((left+time.Second-1)/time.Second), 10))
	http.Error(w, "429 Too Many Requests: too many failed authentications from this address; try again later",
		http.StatusTooManyRequests)
}
