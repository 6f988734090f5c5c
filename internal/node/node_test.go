package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/node"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// httpTimeout is the idle, read and write timeout of the served test
// nodes: short, so that the tests see them expire.
const httpTimeout = 300 * time.Millisecond

// gatedAgent runs until a file named "go" appears in the directory given
// as its input, so the test decides when its operation ends.
const gatedAgent = `
agents:
  - id: gate
    operations:
      wait:
        command: [sh, -c, 'read -r in; d=$(printf %s "$in" | tr -d \"\\\"\"); while [ ! -e "$d/go" ]; do sleep 0.02; done; echo "{\"result\": \"opened\"}"']
        timeout: 30s
`

// serve starts a node on a real listener through node.Serve (the server
// tether serve runs, with its timeouts) and returns its address.
func serve(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func timeoutConfig(t *testing.T) *config.Config {
	cfg := testkit.Config(t)
	cfg.HTTPIdleTimeout, cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout = httpTimeout, httpTimeout, httpTimeout
	return cfg
}

// keepAlive opens a TCP connection, makes one GET /healthz on it and leaves
// it idle, open for reuse.
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testkit.Timeout))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tether\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %d %q, close %v; want 200 on a kept-alive connection", resp.StatusCode, body, resp.Close)
	}
	return c, br
}

// waitClosed waits (up to testkit.Timeout) for the server to close c and
// fails if it sends anything or does not close it.
func waitClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testkit.Timeout))
	b, err := br.ReadByte()
	if err == nil {
		t.Fatalf("server sent %q on an idle connection", b)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection not closed by the server within %v: %v", testkit.Timeout, err)
	}
}

// An idle keep-alive connection is closed after --http-idle-timeout, so
// that nobody holds file descriptors open without a token.
func TestIdleKeepAliveClosed(t *testing.T) {
	addr := serve(t, timeoutConfig(t))
	c, br := keepAlive(t, addr)
	start := time.Now()
	waitClosed(t, c, br)
	if d := time.Since(start); d < httpTimeout/2 {
		t.Errorf("closed after %v, before the idle timeout of %v", d, httpTimeout)
	}
}

// A client that sends part of a request body and stops is answered 408 and
// disconnected after --http-read-timeout.
func TestStalledBodyCut(t *testing.T) {
	addr := serve(t, timeoutConfig(t))
	c, err := net.DialTimeout("tcp", addr, testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.Timeout))
	tok := testkit.Token(t, "backend", "admin")
	if _, err := fmt.Fprintf(c, "POST /api/publish HTTP/1.1\r\nHost: tether\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"channel\":", tok); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within %v: %v", testkit.Timeout, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := `{"error":"request_timeout","message":"the request body did not arrive in time"}` + "\n"; resp.StatusCode != http.StatusRequestTimeout || string(body) != want {
		t.Fatalf("stalled body: %d %s, want 408 %s", resp.StatusCode, body, want)
	}
	waitClosed(t, c, br)
}

// WebSockets and Server-Sent Events streams outlive every HTTP timeout:
// gws clears the deadlines of the connections it hijacks, and the write
// deadline of a stream is renewed with each write.
func TestStreamsOutliveHTTPTimeouts(t *testing.T) {
	cfg := timeoutConfig(t)
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(gatedAgent), &doc); err != nil {
		t.Fatal(err)
	}
	cfg.Extra = doc
	addr := serve(t, cfg)
	base := "http://" + addr
	tok := testkit.Token(t, "alice", "admin")

	ws := testkit.Dial(t, "ws://"+addr+"/ws/agent", testkit.Bearer(tok))

	gate := t.TempDir()
	status, st := testkit.PostJSON(t, base+"/api/operations", tok, map[string]any{
		"operation_id": "gated-1", "agent_id": "gate", "operation_type": "wait", "input": gate,
	})
	if status != http.StatusCreated {
		t.Fatalf("start operation: %d %v", status, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/operations/gated-1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := bufio.NewReader(resp.Body)
	line, err := events.ReadString('\n') // the first event is sent at once
	if err != nil {
		t.Fatalf("read event stream: %v", err)
	}
	if !strings.HasPrefix(line, "event: ") && !strings.HasPrefix(line, "id: ") {
		t.Fatalf("event stream starts with %q", line)
	}

	// The period under test: the server closing an idle keep-alive
	// connection shows the idle timeout has passed; then every timeout
	// passes several times over while both streams stay quiet.
	c, br := keepAlive(t, addr)
	waitClosed(t, c, br)
	time.Sleep(5 * httpTimeout)

	ws.Send(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})
	if m := ws.Expect("subscribed"); m["channel"] != "room:1" {
		t.Fatalf("subscribed: %v", m)
	}
	if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(events) // the stream ends after the final event
	if err != nil {
		t.Fatalf("event stream cut: %v (read so far: %q)", err, rest)
	}
	if !strings.Contains(string(rest), "event: operation_completed\n") || !strings.Contains(string(rest), `"opened"`) {
		t.Fatalf("event stream ended without the result: %q", rest)
	}
}

// Every REST route refuses a request without a token the same way (through
// Authenticator.Authed), and the admin-only ones refuse other users.
func TestEveryRESTRouteAuthenticated(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.Pprof = true
	n := testkit.Start(t, cfg, nil)
	user := testkit.Token(t, "alice")
	for _, c := range []struct {
		method, path string
		admin        bool
	}{
		{http.MethodPost, "/api/publish", true},
		{http.MethodGet, "/api/cluster/nodes", true},
		{http.MethodGet, "/debug/pprof/", true},
		{http.MethodGet, "/debug/pprof/symbol", true},
		{http.MethodPost, "/api/operations", false},
		{http.MethodGet, "/api/operations", false},
		{http.MethodGet, "/api/operations/op-1", false},
		{http.MethodPost, "/api/operations/op-1/cancel", false},
		{http.MethodGet, "/api/operations/op-1/events", false},
		{http.MethodGet, "/api/agents", false},
		{http.MethodPost, "/api/milestones", true},
		{http.MethodGet, "/api/milestones", false},
		{http.MethodGet, "/api/milestones/ms-1", false},
		{http.MethodPost, "/api/milestones/ms-1/start", false},
		{http.MethodPost, "/api/milestones/ms-1/finish", false},
		{http.MethodDelete, "/api/milestones/ms-1", false},
		{http.MethodGet, "/api/milestones/ms-1/recording", false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
		req, _ := http.NewRequestWithContext(ctx, c.method, n.HTTP+c.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		want := `{"error":"missing_token","message":"a token is required: send it as Authorization: Bearer \u003ctoken\u003e"}` + "\n"
		if resp.StatusCode != http.StatusUnauthorized || string(body) != want || resp.Header.Get("WWW-Authenticate") != `Bearer realm="tether"` {
			t.Errorf("%s %s without a token: %d %s %q, want 401 %s", c.method, c.path, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"), want)
		}
		if c.admin {
			status, m := testkit.Do(t, c.method, n.HTTP+c.path, user, strings.NewReader("{}"))
			if status != http.StatusForbidden || m["error"] != "forbidden" || m["message"] != "this API requires the admin role" {
				t.Errorf("%s %s as a user: %d %v, want 403 forbidden", c.method, c.path, status, m)
			}
		}
	}
}
