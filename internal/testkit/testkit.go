// Package testkit starts real Tether nodes on real TCP for integration tests
// and gives them a real WebSocket client (coder/websocket, a different
// implementation from the server's gws) whose every receive has a deadline.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/node"
)

// Secret is the HMAC secret of test nodes.
const Secret = "test-secret-0123456789abcdef0123456789abcdef"

// Timeout bounds every single wait in tests that use this package.
const Timeout = 10 * time.Second

// Node is a running node behind an httptest.Server.
type Node struct {
	*node.Node
	Server *httptest.Server
	// HTTP is the base URL (http://127.0.0.1:port), WS the same with ws://.
	HTTP, WS string

	stopOnce sync.Once
}

// Stop shuts the node down as SIGTERM does (its operations' final events
// delivered, its connections closed with 1001) and closes its server; the
// test's end does it otherwise. Later calls do nothing.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
		n.Server.Close()
	})
}

// Config returns the configuration test nodes start from: a secret, a
// temporary data directory and the defaults otherwise.
func Config(t testing.TB) *config.Config {
	cfg := config.Defaults()
	cfg.JWTSecret = Secret
	cfg.DataDir = t.TempDir()
	cfg.NodeName = "test"
	return cfg
}

// Start starts a node with cfg (nil: Config(t)) and stops it when the test
// ends.
func Start(t testing.TB, cfg *config.Config, log *slog.Logger) *Node {
	t.Helper()
	if cfg == nil {
		cfg = Config(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	srv := httptest.NewServer(n.Handler())
	tn := &Node{Node: n, Server: srv, HTTP: srv.URL, WS: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(tn.Stop)
	return tn
}

// StartTwo starts two nodes of one cluster: a, named node-a, runs the
// embedded NATS server that b, named node-b, connects to, so that b can be
// stopped (Node.Stop) while a goes on.
func StartTwo(t testing.TB, cfgA, cfgB *config.Config) (a, b *Node) {
	t.Helper()
	cfgA.NodeName, cfgB.NodeName = "node-a", "node-b"
	cfgA.NATSListen = "127.0.0.1:0"
	a = Start(t, cfgA, nil)
	cfgB.NATSURL = a.Backbone.ClientURLWithCredentials()
	return a, Start(t, cfgB, nil)
}

// Token mints a token for sub with roles, valid for an hour.
func Token(t testing.TB, sub string, roles ...string) string {
	t.Helper()
	return Mint(t, auth.MintClaims{Subject: sub, Roles: roles, TTL: time.Hour})
}

// Mint mints a token signed with Secret.
func Mint(t testing.TB, c auth.MintClaims) string {
	t.Helper()
	tok, err := auth.Mint([]byte(Secret), c)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

// Client is a WebSocket client whose reads all have deadlines.
type Client struct {
	C   *websocket.Conn
	t   testing.TB
	ctx context.Context
}

// Dial connects to url and fails the test on error.
func Dial(t testing.TB, url string, opts *websocket.DialOptions) *Client {
	t.Helper()
	c, resp, err := TryDial(t, url, opts)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", url, err, status)
	}
	return c
}

// TryDial connects to url and returns the handshake error, if any, with the
// response whose JSON body was read into the error message.
func TryDial(t testing.TB, url string, opts *websocket.DialOptions) (*Client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	cl := &Client{C: c, t: t, ctx: context.Background()}
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl, resp, nil
}

// DialBody dials url expecting the handshake to be refused and returns the
// status code and the decoded JSON error body.
func DialBody(t testing.TB, url string, opts *websocket.DialOptions) (int, map[string]any) {
	t.Helper()
	c, resp, err := TryDial(t, url, opts)
	if err == nil {
		c.C.CloseNow()
		t.Fatalf("dial %s: handshake succeeded, want refusal", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: no HTTP response: %v", url, err)
	}
	body := map[string]any{}
	if resp.Body != nil {
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("dial %s: body %q is not JSON: %v", url, raw, err)
		}
	}
	return resp.StatusCode, body
}

// Send writes v as a JSON text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("encode: %v", err)
	}
	c.SendText(string(b))
}

// SendText writes s as a text frame.
func (c *Client) SendText(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, Timeout)
	defer cancel()
	if err := c.C.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// ReadRaw reads one frame within Timeout.
func (c *Client) ReadRaw() (websocket.MessageType, []byte, error) {
	ctx, cancel := context.WithTimeout(c.ctx, Timeout)
	defer cancel()
	return c.C.Read(ctx)
}

// Read reads one JSON frame within Timeout and fails the test otherwise.
func (c *Client) Read() map[string]any {
	c.t.Helper()
	_, b, err := c.ReadRaw()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame %q is not a JSON object: %v", b, err)
	}
	return m
}

// Expect reads one frame and fails unless its type is typ.
func (c *Client) Expect(typ string) map[string]any {
	c.t.Helper()
	m := c.Read()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want a %q message", m, typ)
	}
	return m
}

// ExpectClose reads until the connection closes and fails unless the close
// code is code; it returns the close reason.
func (c *Client) ExpectClose(code websocket.StatusCode) string {
	c.t.Helper()
	for {
		_, b, err := c.ReadRaw()
		if err == nil {
			continue // messages sent before the close
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("want close %d, got error %v (last frame %q)", code, err, b)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Reason, code)
		}
		return ce.Reason
	}
}

// Auth sends an auth message with tok and expects auth_success.
func (c *Client) Auth(tok string) map[string]any {
	c.t.Helper()
	c.Send(map[string]any{"type": "auth", "token": tok})
	return c.Expect("auth_success")
}

// Eventually polls cond every 10 ms until it holds or Timeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin is Eventually with a deadline of its own, for waits
// known to take longer than Timeout (a node creating its streams on a
// replicated NATS cluster).
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Bearer returns dial options carrying tok in the Authorization header.
func Bearer(tok string) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}}
}

// PostJSON posts body as JSON with a bearer token and decodes the response.
func PostJSON(t testing.TB, url, tok string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		r = strings.NewReader(string(raw))
	}
	return Do(t, http.MethodPost, url, tok, r)
}

// Do sends a request with a bearer token (if any) and decodes the JSON
// response.
func Do(t testing.TB, method, url, tok string, body io.Reader) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out["_raw"] = string(raw)
	}
	return resp.StatusCode, out
}

// Metrics returns the node's /metrics page.
func (n *Node) Metrics(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTP+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// WaitMetrics waits until n's /metrics page has every line of want
// exactly ("name{labels} value"), and otherwise fails naming what the page
// had instead of each line still missing.
func (n *Node) WaitMetrics(t testing.TB, what string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		page := n.Metrics(t)
		var missing []string
		for _, w := range want {
			if !strings.Contains(page, "\n"+w+"\n") {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, w := range missing {
				name, _, _ := strings.Cut(w, " ")
				fmt.Fprintf(&b, "\n  want %q; the page has:", w)
				for _, line := range strings.Split(page, "\n") {
					if strings.HasPrefix(line, name+" ") {
						fmt.Fprintf(&b, " %q", line)
					}
				}
			}
			t.Fatalf("timed out waiting for %s:%s", what, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a log or a
// process's output written by one goroutine and read by the test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Fields formats selected fields of m for error messages.
func Fields(m map[string]any, keys ...string) string {
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%v ", k, m[k])
	}
	return sb.String()
}

// GetJSON GETs url within two seconds and decodes a JSON object body. It
// fails nothing: status 0 means no answer, so it may poll a server that is
// starting or gone, from any goroutine.
func GetJSON(url string) (int, map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}
