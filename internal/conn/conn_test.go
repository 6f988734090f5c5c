package conn_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func agentURL(n *testkit.Node) string { return n.WS + "/ws/agent" }

// Each of the three handshake token sources authenticates the connection,
// and the seed's flow (auth message on an authenticated connection) answers
// auth_success with the subject and an RFC 3339 expiry as the first frame.
func TestHandshakeTokenSources(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	tok := testkit.Token(t, "test_user_123")
	cases := map[string]func() *testkit.Client{
		"query": func() *testkit.Client { return testkit.Dial(t, agentURL(n)+"?token="+tok, nil) },
		"bearer": func() *testkit.Client {
			return testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
		},
		"subprotocol": func() *testkit.Client {
			c := testkit.Dial(t, agentURL(n), &websocket.DialOptions{Subprotocols: []string{"tether.v1", auth.SubprotocolTokenPrefix + tok}})
			if got := c.C.Subprotocol(); got != "tether.v1" {
				t.Fatalf("negotiated subprotocol %q, want tether.v1 (never the token)", got)
			}
			return c
		},
	}
	for name, dial := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial()
			m := c.Auth(tok)
			if m["user_id"] != "test_user_123" {
				t.Fatalf("user_id = %v", m["user_id"])
			}
			exp, err := time.Parse(time.RFC3339, m["expires_at"].(string))
			if err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > time.Hour {
				t.Fatalf("expires_at = %v (%v)", m["expires_at"], err)
			}
			c.Send(map[string]any{"type": "ping", "id": "p"})
			if m := c.Expect("pong"); m["id"] != "p" {
				t.Fatalf("pong id = %v", m["id"])
			}
		})
	}
}

// A connection without a token authenticates with its first message, and
// the server sends nothing before auth_success.
func TestFirstMessageAuth(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), nil)
	c.Send(map[string]any{"type": "auth", "token": testkit.Token(t, "alice"), "id": 7})
	m := c.Read()
	if m["type"] != "auth_success" || m["user_id"] != "alice" || m["id"] != float64(7) {
		t.Fatalf("first frame = %v, want auth_success for alice with id 7", m)
	}
	c.Send(map[string]any{"type": "hello", "content": "after auth"})
	if m := c.Expect("message_ack"); m["content"] != "after auth" {
		t.Fatalf("ack = %v", m)
	}
}

func TestHandshakeRejections(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.JWTIssuer = "tether-tests"
	n := testkit.Start(t, cfg, nil)
	now := time.Now()
	mint := func(c auth.MintClaims) string {
		if c.Issuer == "" {
			c.Issuer = "tether-tests"
		}
		return testkit.Mint(t, c)
	}
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x", "exp": now.Add(time.Hour).Unix(), "iss": "tether-tests"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "iss": "tether-tests"}).SignedString([]byte(testkit.Secret))
	wrongKey, _ := auth.Mint([]byte(strings.Repeat("k", 40)), auth.MintClaims{Subject: "x", TTL: time.Hour, Issuer: "tether-tests"})
	notYet, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "iss": "tether-tests", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(30 * time.Minute).Unix()}).SignedString([]byte(testkit.Secret))
	// The body carries the fixed sentence of auth.Public, never the
	// verifier's detail (which quotes the token's parse error).
	const invalid = "the token is not valid"
	cases := []struct {
		name, token, reason, message string
	}{
		{"garbage", "invalid.jwt.token", "invalid_token", invalid},
		{"expired", mint(auth.MintClaims{Subject: "x", TTL: time.Minute, Now: now.Add(-2 * time.Hour)}), "token_expired", "the token has expired"},
		{"wrong key", wrongKey, "invalid_token", invalid},
		{"alg none", noneTok, "invalid_token", invalid},
		{"no exp", noExp, "missing_exp", "the token has no exp claim; Tether refuses tokens that never expire"},
		{"not yet valid", notYet, "token_not_yet_valid", "the token is not valid yet"},
		{"wrong issuer", testkit.Mint(t, auth.MintClaims{Subject: "x", TTL: time.Hour, Issuer: "someone-else"}), "invalid_issuer", "the token's issuer is not accepted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := testkit.DialBody(t, agentURL(n)+"?token="+tc.token, nil)
			if status != http.StatusUnauthorized || body["error"] != tc.reason || body["message"] != tc.message {
				t.Fatalf("got %d %v, want 401 %s %q", status, body, tc.reason, tc.message)
			}
		})
	}
	metrics := n.Metrics(t)
	if !strings.Contains(metrics, `tether_auth_failures_total{reason="token_expired"} 1`) {
		t.Fatalf("auth failure metric missing:\n%s", grep(metrics, "auth_failures"))
	}
}

func TestAuthTimeoutCloses4001(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.AuthTimeout = 200 * time.Millisecond
	n := testkit.Start(t, cfg, nil)
	c := testkit.Dial(t, agentURL(n), nil)
	start := time.Now()
	if reason := c.ExpectClose(4001); reason != "auth_timeout" {
		t.Fatalf("reason %q", reason)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the auth timeout", d)
	}
}

func TestFirstMessageAuthRefused(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	t.Run("bad token", func(t *testing.T) {
		c := testkit.Dial(t, agentURL(n), nil)
		c.Send(map[string]any{"type": "auth", "token": "invalid.jwt.token", "id": 3})
		// Only the fixed sentence: the parser's text ("token is malformed:
		// could not JSON decode header: …") stays in the log.
		m := c.Expect("auth_error")
		if got := testkit.Fields(m, "id", "code", "message"); got != `id=3 code=invalid_token message=the token is not valid ` {
			t.Fatalf("auth_error: %s", got)
		}
		if reason := c.ExpectClose(4001); reason != "invalid_token" {
			t.Fatalf("close reason %q", reason)
		}
	})
	t.Run("message before auth", func(t *testing.T) {
		c := testkit.Dial(t, agentURL(n), nil)
		c.Send(map[string]any{"type": "ping"})
		if reason := c.ExpectClose(4001); reason != "authentication required" {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("other subject after handshake", func(t *testing.T) {
		c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "alice")))
		c.Send(map[string]any{"type": "auth", "token": testkit.Token(t, "bob")})
		if m := c.Expect("auth_error"); m["code"] != "subject_mismatch" {
			t.Fatalf("auth_error = %v", m)
		}
		c.ExpectClose(4001)
	})
}

// Expiry is enforced on a live connection: at exp the server sends expired
// and closes 4001 within 100 ms.
func TestExpiryMidConnection(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	// exp has one-second precision: pick a TTL that lands 1 to 2 s ahead.
	tok := testkit.Mint(t, auth.MintClaims{Subject: "test_user_123", TTL: 2 * time.Second})
	c := testkit.Dial(t, agentURL(n)+"?token="+tok, nil)
	m := c.Auth(tok)
	exp, _ := time.Parse(time.RFC3339, m["expires_at"].(string))
	got := c.Expect("expired")
	at := time.Now()
	if got["type"] != "expired" {
		t.Fatalf("got %v", got)
	}
	if late := at.Sub(exp); late < 0 || late > 100*time.Millisecond {
		t.Fatalf("expired arrived %v after exp, want within [0, 100ms]", late)
	}
	if reason := c.ExpectClose(4001); reason != "token_expired" {
		t.Fatalf("reason %q", reason)
	}
}

func TestRefresh(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	short := testkit.Mint(t, auth.MintClaims{Subject: "alice", TTL: 2 * time.Second})
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(short))
	first := c.Auth(short)
	oldExp, _ := time.Parse(time.RFC3339, first["expires_at"].(string))

	// Refusals leave the connection as it was.
	c.Send(map[string]any{"type": "refresh", "token": testkit.Token(t, "mallory"), "id": 1})
	if m := c.Expect("refresh_error"); m["code"] != "subject_mismatch" || m["id"] != float64(1) {
		t.Fatalf("refresh for another subject: %v", m)
	}
	older := testkit.Mint(t, auth.MintClaims{Subject: "alice", TTL: time.Second, Now: time.Now().Add(-500 * time.Millisecond)})
	c.Send(map[string]any{"type": "refresh", "token": older, "id": 2})
	if m := c.Expect("refresh_error"); m["code"] != "older_expiry" && m["code"] != "token_expired" {
		t.Fatalf("refresh with an older expiry: %v", m)
	}
	c.Send(map[string]any{"type": "refresh", "token": "garbage", "id": 3})
	if m := c.Expect("refresh_error"); m["code"] != "invalid_token" || m["message"] != "the token is not valid" {
		t.Fatalf("refresh with garbage: %v", m)
	}

	long := testkit.Token(t, "alice")
	c.Send(map[string]any{"type": "refresh", "token": long, "id": 4})
	m := c.Expect("refresh_success")
	newExp, _ := time.Parse(time.RFC3339, m["expires_at"].(string))
	if !newExp.After(oldExp.Add(30*time.Minute)) || m["id"] != float64(4) {
		t.Fatalf("refresh_success = %v", m)
	}
	// The connection outlives the first token.
	wait := time.NewTimer(time.Until(oldExp) + 300*time.Millisecond)
	<-wait.C
	c.Send(map[string]any{"type": "ping", "id": 5})
	if m := c.Expect("pong"); m["id"] != float64(5) {
		t.Fatalf("pong = %v", m)
	}
}

func TestOriginCheck(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	tok := testkit.Token(t, "alice")
	hdr := func(origin string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}, "Authorization": {"Bearer " + tok}}}
	}
	status, body := testkit.DialBody(t, agentURL(n), hdr("https://evil.example"))
	if status != http.StatusForbidden || body["error"] != "origin_not_allowed" ||
		body["message"] != `origin "https://evil.example" is not allowed: set --public-url or --allowed-origins` {
		t.Fatalf("cross-site origin: %d %v", status, body)
	}
	// The page served by Tether itself on a loopback address (--dev) may
	// connect, and so may another loopback page (a dev server).
	testkit.Dial(t, agentURL(n), hdr(n.HTTP)).Auth(tok)
	testkit.Dial(t, agentURL(n), hdr("http://localhost:5173")).Auth(tok)

	cfg := testkit.Config(t)
	cfg.AllowedOrigins = []string{"https://app.example.com"}
	n2 := testkit.Start(t, cfg, nil)
	testkit.Dial(t, agentURL(n2), hdr("https://app.example.com")).Auth(tok)
	if status, _ := testkit.DialBody(t, agentURL(n2), hdr(n2.HTTP)); status != http.StatusForbidden {
		t.Fatalf("origin not on the list: %d", status)
	}
}

// rawHandshake sends a WebSocket handshake with the given Host and Origin
// (which an HTTP client would not let a test choose) and returns the
// status and the JSON body of the answer.
func rawHandshake(t *testing.T, n *testkit.Node, host, origin string) (int, map[string]any) {
	t.Helper()
	addr := strings.TrimPrefix(n.HTTP, "http://")
	nc, err := net.DialTimeout("tcp", addr, testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testkit.Timeout))
	req := "GET /ws/agent HTTP/1.1\r\nHost: " + host + "\r\nOrigin: " + origin + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Authorization: Bearer " + testkit.Token(t, "alice") + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: body: %v", resp.Status, err)
		}
	}
	return resp.StatusCode, body
}

// DNS rebinding: a hostile page whose name resolves to Tether sends its own
// name as Host and as Origin. Agreeing with each other proves nothing.
func TestOriginPolicyDNSRebinding(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	port := n.HTTP[strings.LastIndex(n.HTTP, ":")+1:]
	cases := []struct {
		name, host, origin string
		status             int
	}{
		{"rebinding", "evil.example:" + port, "http://evil.example:" + port, http.StatusForbidden},
		{"loopback page, public Host", "tether.example.com", "http://localhost:" + port, http.StatusForbidden},
		{"loopback page, loopback Host", "localhost:" + port, "http://localhost:" + port, http.StatusSwitchingProtocols},
		{"IPv6 loopback", "[::1]:" + port, "http://[::1]:3000", http.StatusSwitchingProtocols},
		{"127.0.0.2 page on 127.0.0.1", "127.0.0.1:" + port, "http://127.0.0.2:" + port, http.StatusSwitchingProtocols},
		{"no public URL configured", "tether.example.com", "https://tether.example.com", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawHandshake(t, n, tc.host, tc.origin)
			if status != tc.status || (status == http.StatusForbidden && body["error"] != "origin_not_allowed") {
				t.Fatalf("Host %s, Origin %s: %d %v, want %d", tc.host, tc.origin, status, body, tc.status)
			}
		})
	}

	// With a public URL, its origin may connect (default port or not); a
	// loopback page may still connect on a loopback Host, nothing else.
	cfg := testkit.Config(t)
	cfg.PublicURL = "https://Tether.example.com/console/"
	n2 := testkit.Start(t, cfg, nil)
	for _, tc := range []struct {
		host, origin string
		status       int
	}{
		{"tether.example.com", "https://tether.example.com", http.StatusSwitchingProtocols},
		{"tether.example.com", "https://tether.example.com:443", http.StatusSwitchingProtocols},
		{"tether.example.com", "http://tether.example.com", http.StatusForbidden},
		{"evil.example", "https://evil.example", http.StatusForbidden},
		{"127.0.0.1", "http://localhost:8000", http.StatusSwitchingProtocols},
	} {
		if status, body := rawHandshake(t, n2, tc.host, tc.origin); status != tc.status {
			t.Fatalf("public URL set; Host %s, Origin %s: %d %v, want %d", tc.host, tc.origin, status, body, tc.status)
		}
	}
}

func TestPingPongEchoesTimestamp(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "heartbeat_test")))
	c.Send(map[string]any{"type": "ping", "id": 42, "timestamp": "2026-02-01T10:00:00Z"})
	m := c.Expect("pong")
	if m["timestamp"] != "2026-02-01T10:00:00Z" || m["id"] != float64(42) {
		t.Fatalf("pong = %v", m)
	}
	st, err := time.Parse(time.RFC3339Nano, m["server_time"].(string))
	if err != nil || time.Since(st) > time.Minute {
		t.Fatalf("server_time %v: %v", m["server_time"], err)
	}
}

// The seed sends a frame that is not JSON, then a ping, and expects the very
// next frame to be the pong.
func TestMalformedFrameGetsNoReply(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "malformed_test")))
	c.SendText("not a json message")
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
	if !strings.Contains(n.Metrics(t), `tether_bad_frames_total{endpoint="agent"} 1`) {
		t.Fatal("bad frame not counted")
	}
}

func TestTenBadFramesInARowClose4000(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "alice")))
	// Nine, then a valid message, resets the count.
	for i := 0; i < 9; i++ {
		c.SendText("{oops")
	}
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
	for i := 0; i < 10; i++ {
		c.SendText("still not json")
	}
	if reason := c.ExpectClose(4000); reason != "too many frames that are not JSON" {
		t.Fatalf("reason %q", reason)
	}
}

func TestBadRequests(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "alice")))
	cases := []struct {
		frame, msg string
		id         any
	}{
		{`{"id":5}`, "missing field type", float64(5)},
		{`{"type":5,"id":"x"}`, "field type must be a string", "x"},
		{`[1,2,3]`, "a message must be a JSON object", nil},
		{`{"type":"subscribe","channel":123,"id":6}`, "field channel must be a string", float64(6)},
		{`{"type":"ping","id":{"a":1}}`, "field id must be a string or a number", nil},
	}
	for _, tc := range cases {
		c.SendText(tc.frame)
		m := c.Expect("error")
		if m["code"] != "bad_request" || m["message"] != tc.msg || m["id"] != tc.id {
			t.Fatalf("%s → %v, want bad_request %q id %v", tc.frame, m, tc.msg, tc.id)
		}
	}
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
}

func TestOversizedFrameCloses1009(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.MaxMessageSize = 64 << 10
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "alice")
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	big, _ := json.Marshal(map[string]any{"type": "large_message", "data": strings.Repeat("x", 100_000)})
	// The server may close before the whole frame is written: that write
	// error is expected, the close frame is what matters.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	_ = c.C.Write(ctx, websocket.MessageText, big)
	if reason := c.ExpectClose(1009); reason == "" {
		t.Fatal("close 1009 without a reason")
	}
	// The server is fine: a new connection pings.
	c2 := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	c2.Send(map[string]any{"type": "ping"})
	c2.Expect("pong")
}

func TestDisconnectMessageCloses1000(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "disconnect_test")))
	c.Auth(testkit.Token(t, "disconnect_test"))
	c.Send(map[string]any{"type": "disconnect", "reason": "test"})
	c.ExpectClose(websocket.StatusNormalClosure)
	testkit.Eventually(t, "connection gone", func() bool { return n.Conns.Count() == 0 })
}

func TestRateLimit(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.RateLimit = 1
	cfg.RateBurst = 5
	n := testkit.Start(t, cfg, nil)
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "alice")))
	// 5 within the burst, then 10 refused in a row: the 15th closes.
	for i := 0; i < 15; i++ {
		c.Send(map[string]any{"type": "ping", "id": i})
	}
	for i := 0; i < 5; i++ {
		if m := c.Expect("pong"); m["id"] != float64(i) {
			t.Fatalf("pong %d = %v", i, m)
		}
	}
	for i := 5; i < 15; i++ {
		m := c.Expect("error")
		if m["code"] != "rate_limited" || m["id"] != float64(i) {
			t.Fatalf("message %d → %v, want rate_limited", i, m)
		}
	}
	if reason := c.ExpectClose(4008); reason != "rate_limited" {
		t.Fatalf("reason %q", reason)
	}
}

func TestConnectionLimitPerUser(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.MaxConnsPerUser = 2
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "alice")
	a := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	status, body := testkit.DialBody(t, agentURL(n), testkit.Bearer(tok))
	if status != http.StatusTooManyRequests || body["error"] != "too_many_connections" {
		t.Fatalf("third connection: %d %v", status, body)
	}
	// First-message auth is held to the same limit.
	c := testkit.Dial(t, agentURL(n), nil)
	c.Send(map[string]any{"type": "auth", "token": tok})
	if m := c.Expect("auth_error"); m["code"] != "too_many_connections" {
		t.Fatalf("auth_error = %v", m)
	}
	c.ExpectClose(4008)
	// Another user is unaffected, and a freed slot can be reused.
	testkit.Dial(t, agentURL(n), testkit.Bearer(testkit.Token(t, "bob"))).Auth(testkit.Token(t, "bob"))
	a.C.Close(websocket.StatusNormalClosure, "")
	testkit.Eventually(t, "a free slot for alice", func() bool {
		c, _, err := testkit.TryDial(t, agentURL(n), testkit.Bearer(tok))
		if err == nil {
			c.C.CloseNow()
		}
		return err == nil
	})
}

func TestIdleTimeout(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.PingInterval = 50 * time.Millisecond
	cfg.IdleTimeout = 400 * time.Millisecond
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "alice")

	// A client that reads answers the server's pings and stays connected.
	live := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	ctx, cancel := context.WithCancel(context.Background())
	readerDone := make(chan error, 1)
	go func() { _, _, err := live.C.Read(ctx); readerDone <- err }()

	// A silent client (never reads, so never pongs) is closed. Reading
	// would answer the pings, so wait for the server's close count first.
	silent := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	start := time.Now()
	n.WaitMetrics(t, "the idle close", `tether_closes_total{code="4008",endpoint="agent"} 1`)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
	// The client now finds the server's unanswered pings before the close
	// frame, and its library's attempt to answer them hits the closed
	// socket: all it can observe is that the connection is gone.
	if _, _, err := silent.ReadRaw(); err == nil {
		t.Fatal("the silent connection is still open")
	}
	select {
	case err := <-readerDone:
		t.Fatalf("the reading client was closed too: %v", err)
	default:
	}
	cancel()
	<-readerDone
}

// Shutdown sends 1001 to every connection and refuses new ones.
func TestGracefulShutdown(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	tok := testkit.Token(t, "alice")
	var clients []*testkit.Client
	for i := 0; i < 3; i++ {
		c := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
		c.Auth(tok)
		clients = append(clients, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- n.Conns.Shutdown(ctx)
	}()
	for _, c := range clients {
		if reason := c.ExpectClose(websocket.StatusGoingAway); reason != "server shutting down" {
			t.Fatalf("reason %q", reason)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("shutdown did not finish")
	}
	status, body := testkit.DialBody(t, agentURL(n), testkit.Bearer(tok))
	if status != http.StatusServiceUnavailable || body["error"] != "shutting_down" {
		t.Fatalf("dial during shutdown: %d %v", status, body)
	}
}

// Tokens never reach a log line, whichever way they were sent.
func TestTokensRedactedInLogs(t *testing.T) {
	var buf testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := testkit.Start(t, nil, log)
	tok := testkit.Token(t, "alice")
	c := testkit.Dial(t, agentURL(n)+"?token="+tok, nil)
	c.Auth(tok)
	c.Send(map[string]any{"type": "refresh", "token": tok})
	c.Expect("refresh_success")
	testkit.DialBody(t, agentURL(n)+"?token=bad."+tok, nil)
	c.C.Close(websocket.StatusNormalClosure, "")
	testkit.Eventually(t, "connection gone", func() bool { return n.Conns.Count() == 0 })
	out := buf.String()
	if !strings.Contains(out, "token=REDACTED") {
		t.Fatalf("no request was logged with a redacted token:\n%s", out)
	}
	if sig := tok[strings.LastIndex(tok, ".")+1:]; strings.Contains(out, sig) {
		t.Fatalf("a token leaked into the logs:\n%s", out)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	if status, body := testkit.Do(t, http.MethodGet, n.HTTP+"/healthz", "", nil); status != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v", status, body)
	}
	if status, body := testkit.Do(t, http.MethodGet, n.HTTP+"/readyz", "", nil); status != 200 || body["status"] != "ready" || body["node"] != "test" || body["nats"] != "connected" {
		t.Fatalf("readyz: %d %v", status, body)
	}
	tok := testkit.Token(t, "alice")
	c := testkit.Dial(t, agentURL(n), testkit.Bearer(tok))
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
	// A message is counted out once its write returned, which may be just
	// after the client read it.
	n.WaitMetrics(t, "the pong counted", `tether_messages_out_total{endpoint="agent",type="pong"} 1`)
	m := n.Metrics(t)
	for _, want := range []string{
		`tether_connections_open{endpoint="agent"} 1`,
		`tether_messages_in_total{endpoint="agent",type="ping"} 1`,
		`tether_messages_out_total{endpoint="agent",type="pong"} 1`,
		`tether_handshake_seconds_count 1`,
		`tether_message_seconds_count{endpoint="agent"} 1`,
		`tether_node_info{node="test"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(grep(m, "tether_"))
	}
}

// Settings come from flags, then TETHER_* variables, then the YAML file.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/tether.yaml"
	yaml := "addr: \":7000\"\nping_interval: 5s\nidle-timeout: 30s\nmax-message-size: 2MiB\nallowed-origins: [\"https://a.example\", \"https://b.example\"]\njwt-secret: " + testkit.Secret + "\nagents:\n  - id: x\n"
	if err := writeFile(file, yaml); err != nil {
		t.Fatal(err)
	}
	env := []string{"TETHER_CONFIG=" + file, "TETHER_PING_INTERVAL=7s", "TETHER_ADDR=:7001", "TETHER_OPERATION_ID=ignored"}
	cfg, err := config.Load([]string{"--addr", ":7002"}, env)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %v %v %d %v", cfg.Addr, cfg.PingInterval, cfg.IdleTimeout, cfg.MaxMessageSize, cfg.AllowedOrigins)
	want := ":7002 7s 30s 2097152 [https://a.example https://b.example]"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, ok := cfg.Extra["agents"]; !ok {
		t.Fatal("structured section agents not kept for its package")
	}
	if _, err := config.Load(nil, nil); err == nil || !strings.Contains(err.Error(), "no token key configured") {
		t.Fatalf("no key and no --dev: %v", err)
	}
	if _, err := config.Load([]string{"--jwt-secret", "short"}, nil); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("short secret: %v", err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
