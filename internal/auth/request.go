package auth

import (
	"net/http"
	"strings"
)

// SubprotocolTokenPrefix marks a token offered as a WebSocket subprotocol.
// Browsers cannot set headers on a WebSocket handshake, so a browser client
// offers "tether.v1, tether.token.<jwt>" in Sec-WebSocket-Protocol. The
// server must select only "tether.v1" in its answer: echoing the token
// entry would send the credential back and log it in proxies.
const SubprotocolTokenPrefix = "tether.token."

// Token sources reported by TokenFromRequest.
const (
	// SourceHeader is an "Authorization: Bearer <jwt>" header.
	SourceHeader = "header"
	// SourceSubprotocol is a SubprotocolTokenPrefix entry in
	// Sec-WebSocket-Protocol.
	SourceSubprotocol = "subprotocol"
	// SourceQuery is a ?token= query parameter. It is the least safe
	// source, since URLs end up in access logs and browser history, and is
	// therefore tried last.
	SourceQuery = "query"
)

// TokenFromRequest returns the bearer token of r and where it was found,
// trying in order the Authorization header, the WebSocket subprotocols and
// the token query parameter. It returns "", "" when none holds a non-empty
// token. A non-Bearer Authorization header is ignored, not an error, so a
// proxy's Basic credentials do not hide a token given another way.
func TokenFromRequest(r *http.Request) (token, source string) {
	if scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if tok = strings.TrimSpace(tok); tok != "" {
			return tok, SourceHeader
		}
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), SubprotocolTokenPrefix); ok && tok != "" {
				return tok, SourceSubprotocol
			}
		}
	}
	if r.URL != nil {
		if tok := r.URL.Query().Get("token"); tok != "" {
			return tok, SourceQuery
		}
	}
	return "", ""
}
