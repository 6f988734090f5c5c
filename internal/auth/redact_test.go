package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/auth"
)

func TestRedact(t *testing.T) {
	tok, err := auth.Mint([]byte("0123456789abcdef0123456789abcdef"), auth.MintClaims{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Headers that are JSON objects not starting with {" and a token
	// whose header is not recognizable at all.
	spaced := b64([]byte(`{ "alg": "HS256" }`)) + "." + b64([]byte(`{"sub":"alice"}`)) + ".c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	newline := b64([]byte("{\n\"alg\":\"HS256\"}")) + "." + b64([]byte(`{"sub":"alice"}`)) + "."
	opaque := "QUJDREVGR0hJSktMTU5PUFFS.U1RVVldYWVphYmNkZWZnaGlq.a2xtbm9wcXJzdHV2d3h5ejAx"
	jwe := "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXZpdml2aXZpdg.Y2lwaGVydGV4dA.dGFndGFndGFn"
	for _, c := range []struct{ in, want string }{
		{"/ws/agent?token=" + tok, "/ws/agent?token=REDACTED"},
		{"/ws/agent?a=1&token=x&b=2", "/ws/agent?a=1&token=REDACTED&b=2"},
		{"/ws/agent?access_token=" + tok, "/ws/agent?access_token=REDACTED"},
		{"/ws/agent?id_token=abc&x=1", "/ws/agent?id_token=REDACTED&x=1"},
		{"/ws/agent?TOKEN=" + tok, "/ws/agent?TOKEN=REDACTED"},
		{"/ws/agent?Token=opaque-value", "/ws/agent?Token=REDACTED"},
		{"/ws/agent?jwt=" + tok, "/ws/agent?jwt=REDACTED"},
		{"/ws/agent;token=" + tok, "/ws/agent;token=REDACTED"},
		{"/ws/agent;token=abc?x=1", "/ws/agent;token=REDACTED?x=1"},
		{"/api/milestones/" + tok + "/terminal", "/api/milestones/REDACTED/terminal"},
		{"/" + tok, "/REDACTED"},
		{"/x?since=5&t=" + tok, "/x?since=5&t=REDACTED"},
		{"/x?password=hunter2&api_key=k1&client_secret=s", "/x?password=REDACTED&api_key=REDACTED&client_secret=REDACTED"},
		{"Authorization: Bearer " + tok, "Authorization: Bearer REDACTED"},
		{"authorization: bearer opaque123", "authorization: bearer REDACTED"},
		{"Sec-WebSocket-Protocol: tether.v1, tether.token." + tok, "Sec-WebSocket-Protocol: tether.v1, tether.token.REDACTED"},
		{"auth: invalid_token: token " + tok + " is malformed", "auth: invalid_token: token REDACTED is malformed"},
		{"/x/" + spaced, "/x/REDACTED"},
		{"/x/" + newline + "/y", "/x/REDACTED/y"},
		{"/x/" + opaque, "/x/REDACTED"},
		{"/x/" + jwe, "/x/REDACTED"},
		// Nothing credential-like: unchanged.
		{"/api/milestones/x/terminal?since=5", "/api/milestones/x/terminal?since=5"},
		{"/healthz", "/healthz"},
		{"dial tcp: lookup nats-1.internal.example.com: no such host", "dial tcp: lookup nats-1.internal.example.com: no such host"},
		{"tether v1.2.3 on go1.26.8", "tether v1.2.3 on go1.26.8"},
		{"/assets/index-BxK3vQ9a.js", "/assets/index-BxK3vQ9a.js"},
		{"", ""},
	} {
		got := auth.Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if sig := tok[strings.LastIndex(tok, ".")+1:]; strings.Contains(got, sig) {
			t.Errorf("Redact(%q) kept the token's signature", c.in)
		}
	}
}
