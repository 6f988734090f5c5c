package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/tether-dev/tether/internal/auth"
)

func TestTokenFromRequest(t *testing.T) {
	cases := []struct {
		name          string
		target        string
		auth          string
		protocols     []string
		token, source string
	}{
		{name: "none", target: "/ws"},
		{name: "query", target: "/ws?token=q.q.q", token: "q.q.q", source: auth.SourceQuery},
		{name: "header", target: "/ws", auth: "Bearer h.h.h", token: "h.h.h", source: auth.SourceHeader},
		{name: "header scheme case", target: "/ws", auth: "bearer  h.h.h ", token: "h.h.h", source: auth.SourceHeader},
		{name: "subprotocol", target: "/ws", protocols: []string{"tether.v1, tether.token.s.s.s"}, token: "s.s.s", source: auth.SourceSubprotocol},
		{name: "subprotocol first", target: "/ws", protocols: []string{"tether.token.s.s.s,tether.v1"}, token: "s.s.s", source: auth.SourceSubprotocol},
		{name: "subprotocol second header", target: "/ws", protocols: []string{"tether.v1", "tether.token.s.s.s"}, token: "s.s.s", source: auth.SourceSubprotocol},
		{name: "subprotocol without token", target: "/ws", protocols: []string{"tether.v1"}},
		{name: "empty subprotocol token", target: "/ws?token=q", protocols: []string{"tether.v1, tether.token."}, token: "q", source: auth.SourceQuery},
		{name: "empty query token", target: "/ws?token="},
		{name: "header beats all", target: "/ws?token=q", auth: "Bearer h", protocols: []string{"tether.v1, tether.token.s"}, token: "h", source: auth.SourceHeader},
		{name: "subprotocol beats query", target: "/ws?token=q", protocols: []string{"tether.v1, tether.token.s"}, token: "s", source: auth.SourceSubprotocol},
		{name: "basic auth ignored", target: "/ws?token=q", auth: "Basic dXNlcjpwYXNz", token: "q", source: auth.SourceQuery},
		{name: "empty bearer ignored", target: "/ws", auth: "Bearer ", protocols: []string{"tether.token.s"}, token: "s", source: auth.SourceSubprotocol},
		{name: "bare token in header ignored", target: "/ws", auth: "h.h.h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			for _, p := range tc.protocols {
				r.Header.Add("Sec-WebSocket-Protocol", p)
			}
			token, source := auth.TokenFromRequest(r)
			if token != tc.token || source != tc.source {
				t.Errorf("TokenFromRequest = %q, %q; want %q, %q", token, source, tc.token, tc.source)
			}
		})
	}
	// The source constants are part of the wire/log vocabulary.
	if auth.SourceQuery != "query" || auth.SourceHeader != "header" || auth.SourceSubprotocol != "subprotocol" {
		t.Error("source names changed")
	}
}
