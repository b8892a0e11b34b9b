package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// This file is the server's access control (issue 14, "safe on a LAN"):
//
//   - Config.Allow: a client whose address is outside every prefix gets 403 on
//     every path, before anything else is looked at.
//   - Config.Auth user:password: every request needs HTTP Basic credentials (401
//     with WWW-Authenticate without them), except that the URLs handed to
//     players that cannot send credentials (stream, one-request play and
//     playlist URLs) may carry ?token= instead.
//   - The token is random at each New (or Config.Token). A request carrying a
//     token that is not the server's gets 403, with or without Config.Auth.
//   - Wrong credentials or tokens count against the client's address: after
//     Config.AuthFailures within 10 minutes it gets 429 for Config.AuthBan
//     (LoginLimiter).
//
// Refusals carry only the status text: nothing about the torrents leaks.
// Neither the token nor credentials are ever logged: the server logs no
// request URLs.

// tokenParam is the query parameter of the token.
const tokenParam = "token"

// ParseAllow returns the prefixes of v, comma-separated CIDR prefixes or
// addresses, for Config.Allow; an error names the first part that is
// neither, or says that v holds none.
func ParseAllow(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR prefix nor an address", part)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(ps) == 0 {
		return nil, errors.New("no prefix given")
	}
	return ps, nil
}

// ValidAuth reports whether s may be Config.Auth: user:password, both
// non-empty.
func ValidAuth(s string) bool {
	user, pass, ok := strings.Cut(s, ":")
	return ok && user != "" && pass != ""
}

// ValidToken reports whether s may be Config.Token: 16 to 128 letters,
// digits, '-' or '_' (URL-safe, long enough not to be guessed).
func ValidToken(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newToken returns a random token of 128 bits.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// guard enforces the access rules above around next. Its fields never
// change; it is safe for concurrent use.
type guard struct {
	next  http.Handler
	allow []netip.Prefix
	// user and pass are SHA-256 digests of the credentials, compared in
	// constant time; auth is false without Config.Auth.
	auth       bool
	user, pass [32]byte
	token      string
	logins     *LoginLimiter // brakes guessing of credentials and tokens
}

// newGuard returns the guard of next for Config's auth, allow and token;
// logins brakes the guessing of credentials and tokens.
func newGuard(next http.Handler, auth string, allow []netip.Prefix, token string, logins *LoginLimiter) *guard {
	g := &guard{next: next, allow: allow, token: token, logins: logins}
	if user, pass, ok := strings.Cut(auth, ":"); ok {
		g.auth = true
		g.user, g.pass = sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	}
	return g
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.allowed(r.RemoteAddr) {
		httpStatus(w, http.StatusForbidden)
		return
	}
	if left := g.logins.Banned(r.RemoteAddr); left > 0 {
		g.logins.Refuse(w, left)
		return
	}
	tok, hasTok := tokenOf(r)
	if hasTok && subtle.ConstantTimeCompare([]byte(tok), []byte(g.token)) != 1 {
		g.logins.Fail(r.RemoteAddr)
		httpStatus(w, http.StatusForbidden)
		return
	}
	if g.auth && !(hasTok && tokenRoute(r)) {
		if _, _, sent := r.BasicAuth(); !g.credentials(r) {
			// Only wrong credentials count: a client first asks without.
			if sent {
				if left := g.logins.Fail(r.RemoteAddr); left > 0 {
					g.logins.Refuse(w, left)
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="memtorrent", charset="UTF-8"`)
			httpStatus(w, http.StatusUnauthorized)
			return
		}
		g.logins.Succeed(r.RemoteAddr)
	}
	g.next.ServeHTTP(w, r)
}

// allowed reports whether the client at remoteAddr may use the server.
func (g *guard) allowed(remoteAddr string) bool {
	if len(g.allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// credentials reports whether r carries the server's Basic credentials.
func (g *guard) credentials(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(u[:], g.user[:])&subtle.ConstantTimeCompare(p[:], g.pass[:]) == 1
}

// tokenOf returns the request's token parameter and whether it has one.
func tokenOf(r *http.Request) (string, bool) {
	q := r.URL.Query()
	if !q.Has(tokenParam) {
		return "", false
	}
	return q.Get(tokenParam), true
}

// tokenRoute reports whether r asks for a URL a player is handed: a
// stream, a one-request play or a playlist, which a token may open.
func tokenRoute(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p == "/stream" || strings.HasPrefix(p, "/stream/") || p == "/play" ||
		p == "/playlist" || strings.HasPrefix(p, "/playlist/")
}

// httpStatus sends code with its status text as body.
func httpStatus(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// CheckExposure returns an error naming the flags to give when a server
// listening on listen would be reachable from other machines with neither
// auth (Config.Auth) nor allow (Config.Allow). Loopback is 127.0.0.0/8, ::1
// and localhost; ":PORT", 0.0.0.0 and [::] bind every address, and host
// names other than localhost count as exposed.
func CheckExposure(listen, auth string, allow []netip.Prefix) error {
	if auth != "" || len(allow) > 0 || isLoopbackListen(listen) {
		return nil
	}
	return fmt.Errorf("-listen %s is reachable from other machines: give -auth user:password and/or -allow CIDR,... (or listen on 127.0.0.1)", listen)
}

// isLoopbackListen reports whether the listen address addr binds loopback
// only.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
