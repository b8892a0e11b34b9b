package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// This file is what the server does about web pages (docs/security.md):
//
//   - Host: a request is answered only when its Host is an IP literal,
//     localhost (or a name under .localhost) or one of GuardConfig.Hostnames
//     (-hostnames). A DNS-rebinding page reaches the server under a name of
//     its own, which is none of these: 403.
//   - Cross-site requests: a method other than GET, HEAD and OPTIONS from a
//     page of another origin gets 403 (http.CrossOriginProtection), unless
//     that origin is one of GuardConfig.CORSOrigins (-cors-origin). A
//     cross-site GET passes (players embed stream URLs), but CrossSite tells
//     the routes that add torrents to refuse it (CheckAdd).
//   - CORS: the origins of GuardConfig.CORSOrigins get CORS answers, and
//     their preflights are answered here, before authentication (a browser
//     sends no credentials in a preflight).
//   - Framing: every answer forbids framing by another origin
//     (X-Frame-Options and CSP frame-ancestors).

// GuardConfig is what a Guard admits.
type GuardConfig struct {
	// Hostnames are the names besides IP literals and localhost that the
	// server answers to in Host (-hostnames). A name starting with "." or
	// "*." admits every name under it; "*" admits any Host.
	Hostnames []string
	// CORSOrigins are the origins (scheme://host[:port]) of the web apps
	// whose pages may call the server (-cors-origin).
	CORSOrigins []string
	// Credentials says that the server asks for credentials (-auth): CORS
	// answers allow the allowed origins to send them.
	Credentials bool
}

// Guard holds the protections of GuardConfig. Its configuration never
// changes after NewGuard; it is safe for concurrent use.
type Guard struct {
	anyHost  bool
	names    map[string]bool // exact names, lower case
	suffixes []string        // ".example.com": every name under it
	origins  map[string]bool // allowed origins, as browsers send them
	cred     bool
	cop      *http.CrossOriginProtection
}

// NewGuard returns the Guard of cfg, or an error naming the flag of a
// malformed host name or origin.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	g := &Guard{names: map[string]bool{}, origins: map[string]bool{}, cred: cfg.Credentials,
		cop: http.NewCrossOriginProtection()}
	for _, h := range cfg.Hostnames {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		switch {
		case h == "*":
			g.anyHost = true
		case h == "" || strings.ContainsAny(h, "/:@ \t[]"):
			return nil, fmt.Errorf("-hostnames: %q is not a host name", h)
		case strings.HasPrefix(h, "*."):
			g.suffixes = append(g.suffixes, h[1:])
		case strings.HasPrefix(h, "."):
			g.suffixes = append(g.suffixes, h)
		default:
			g.names[h] = true
		}
	}
	for _, o := range cfg.CORSOrigins {
		norm, err := guardOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("-cors-origin: %w", err)
		}
		if err := g.cop.AddTrustedOrigin(norm); err != nil {
			return nil, fmt.Errorf("-cors-origin: %w", err)
		}
		g.origins[norm] = true
	}
	g.cop.SetDenyHandler(http.HandlerFunc(guardDenyCrossSite))
	return g, nil
}

// guardOrigin returns the origin o as browsers send it in Origin: lower-case
// scheme and host, no trailing slash, no default port.
func guardOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(o), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return u.Scheme + "://" + host, nil
}

// Wrap returns h behind the guard: Host validation, framing headers, CORS
// (preflights are answered here), cross-site refusals, in that order. Put it
// outermost, around authentication too, so that preflights (which carry no
// credentials) are answered and a rebinding page learns nothing.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	protected := g.cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.HostAllowed(r.Host) {
			name := guardHostname(r.Host)
			http.Error(w, fmt.Sprintf("403 Forbidden: this server does not answer to the name %q; "+
				"if it is its name, start it with -hostnames %s", name, name), http.StatusForbidden)
			return
		}
		hdr := w.Header()
		hdr.Set("X-Frame-Options", "SAMEORIGIN")
		hdr.Set("Content-Security-Policy", "frame-ancestors 'self'")
		hdr.Set("Referrer-Policy", "same-origin") // URLs carry the token
		origin := r.Header.Get("Origin")
		if origin != "" {
			hdr.Add("Vary", "Origin")
		}
		allowed := origin != "" && g.origins[origin]
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			g.preflight(w, r, allowed)
			return
		}
		if allowed {
			g.corsHeaders(hdr, origin)
		}
		ctx := context.WithValue(r.Context(), guardKey{}, guardVerdict{crossSite: g.crossSite(r)})
		protected.ServeHTTP(w, r.WithContext(ctx))
	})
}

// corsHeaders sets the CORS headers of an answer to the allowed origin.
func (g *Guard) corsHeaders(hdr http.Header, origin string) {
	hdr.Set("Access-Control-Allow-Origin", origin)
	if g.cred {
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	hdr.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, Retry-After")
}

// preflight answers a CORS preflight: 204 with what the allowed origin may
// send, 403 naming the flag otherwise.
func (g *Guard) preflight(w http.ResponseWriter, r *http.Request, allowed bool) {
	origin := r.Header.Get("Origin")
	if !allowed {
		http.Error(w, fmt.Sprintf("403 Forbidden: pages of %q may not call this server; "+
			"to let them, start it with -cors-origin %s", origin, origin), http.StatusForbidden)
		return
	}
	hdr := w.Header()
	g.corsHeaders(hdr, origin)
	hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Range")
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		hdr.Set("Access-Control-Allow-Private-Network", "true")
	}
	hdr.Set("Access-Control-Max-Age", "600")
	hdr.Add("Vary", "Access-Control-Request-Method")
	hdr.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}

// guardDenyCrossSite answers a state-changing request from another site.
func guardDenyCrossSite(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "403 Forbidden: a page of another site may not change this server; "+
		"to let a web app do it, start the server with -cors-origin ORIGIN", http.StatusForbidden)
}

// HostAllowed reports whether the server answers a request whose Host
// header is host (with or without a port).
func (g *Guard) HostAllowed(host string) bool {
	if g.anyHost || host == "" { // HTTP/1.0 sends no Host; a browser always does
		return true
	}
	name := guardHostname(host)
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") || g.names[name] {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// guardHostname returns the name of a Host header: lower case, without
// port, brackets or trailing dot.
func guardHostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// guardKey is the context key of a guardVerdict.
type guardKey struct{}

// guardVerdict is what Wrap decided about a request, for CrossSite.
type guardVerdict struct{ crossSite bool }

// CrossSite reports whether r comes from a page of another site that is
// not an allowed origin: Sec-Fetch-Site says cross-site or same-site, or,
// from a browser that does not send it, Origin or Referer names another
// host. A request that passed through Guard.Wrap gets its verdict, which
// knows the allowed origins; any other is judged on its headers alone.
func CrossSite(r *http.Request) bool {
	if v, ok := r.Context().Value(guardKey{}).(guardVerdict); ok {
		return v.crossSite
	}
	return (*Guard)(nil).crossSite(r)
}

// crossSite is CrossSite for g's allowed origins (none for a nil g).
func (g *Guard) crossSite(r *http.Request) bool {
	trusted := func(origin string) bool { return g != nil && g.origins[origin] }
	origin := r.Header.Get("Origin")
	referer := guardRefererOrigin(r.Header.Get("Referer"))
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default: // cross-site, same-site, or what a later browser sends
		return !trusted(origin) && !trusted(referer)
	}
	for _, o := range []string{origin, referer} {
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return !trusted(o)
		}
	}
	return false
}

// guardRefererOrigin returns the origin of a Referer URL, or "".
func guardRefererOrigin(ref string) string {
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "null" // not a URL: not this server either
	}
	return u.Scheme + "://" + u.Host
}

// ErrCrossSiteAdd is the Refusal of CheckAdd.
var ErrCrossSiteAdd error = &Refusal{Status: http.StatusForbidden,
	Reason: "a page of another site may play torrents already added, not add one; " +
		"add it from this server's own page, or start the server with -cors-origin for a web app's origin"}

// CheckAdd returns ErrCrossSiteAdd when r may not add a torrent: it comes
// from a page of another site (CrossSite). The routes that add a torrent
// on a GET (one-request play) call it before adding.
func CheckAdd(r *http.Request) error {
	if CrossSite(r) {
		return ErrCrossSiteAdd
	}
	return nil
}

// Refusal is a request the server refuses for a reason the client should
// read: the status (4xx or 5xx, never 500) and one line saying what is
// wrong. Every error the guard's checks return is a *Refusal.
type Refusal struct {
	Status int
	Reason string
}

func (e *Refusal) Error() string { return e.Reason }

// WriteRefusal answers w with the Refusal in err's chain and reports
// whether there was one.
func WriteRefusal(w http.ResponseWriter, err error) bool {
	var ref *Refusal
	if !errors.As(err, &ref) {
		return false
	}
	http.Error(w, fmt.Sprintf("%d %s: %s", ref.Status, http.StatusText(ref.Status), ref.Reason), ref.Status)
	return true
}
