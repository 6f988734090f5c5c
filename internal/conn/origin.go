package conn

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The origin policy decides which browser pages may open a WebSocket.
// A browser sends Origin with every WebSocket handshake; programs send
// none and are always allowed (they need a token like everyone). In order:
//   - With AllowedOrigins set, only those origins ("*" allows any).
//   - Otherwise the origin of PublicURL, the address browsers reach Tether
//     at, is allowed;
//   - and a loopback origin (localhost, 127.0.0.0/8, [::1], any port) is
//     allowed when the request itself came to a loopback Host: the --dev
//     console on http://localhost:8000.
// The request's own Host is never trusted by itself: with DNS rebinding a
// hostile page at http://evil.example:8000 can resolve to the server's
// address, and then its Host and its Origin agree.

// OriginPolicy returns the policy above for allowed and publicURL (the
// --allowed-origins and --public-url settings): the one rule for the
// WebSocket handshake and for the CORS answers of the HTTP APIs browsers
// call from other pages (AG-UI).
func OriginPolicy(allowed []string, publicURL string) func(*http.Request) bool {
	return newOriginPolicy(allowed, publicURL).allows
}

// originPolicy is the compiled policy of a Server.
type originPolicy struct {
	any     bool            // "*" is on AllowedOrigins
	allowed map[string]bool // normalized AllowedOrigins
	public  string          // normalized origin of PublicURL, "" if unset
}

func newOriginPolicy(allowed []string, publicURL string) originPolicy {
	p := originPolicy{allowed: map[string]bool{}}
	for _, a := range allowed {
		if a == "*" {
			p.any = true
			continue
		}
		if o, ok := normalizeOrigin(a); ok {
			p.allowed[o] = true
		}
	}
	if publicURL != "" {
		p.public, _ = normalizeOrigin(publicURL)
	}
	return p
}

// allows reports whether r's Origin may connect.
func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	if p.any || len(p.allowed) > 0 {
		return p.any || p.allowed[o]
	}
	if p.public != "" && o == p.public {
		return true
	}
	u, _ := url.Parse(o)
	return isLoopback(u.Hostname()) && isLoopback((&url.URL{Host: r.Host}).Hostname())
}

// normalizeOrigin reduces a URL or an Origin header to scheme://host[:port]
// in lower case, without the scheme's default port, without a path.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host, true
}

// isLoopback reports whether host (without port or brackets) names this
// machine only.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
