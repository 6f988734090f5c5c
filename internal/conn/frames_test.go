package conn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/testkit"
)

// frameServer is a bare endpoint on the connection layer (no NATS) whose
// sessions report their end on closed: a connection's accounting is
// released by then.
type frameServer struct {
	srv    *conn.Server
	http   *httptest.Server
	addr   string
	tok    string
	closed chan struct{}
}

type signalSession struct{ closed chan struct{} }

func (signalSession) Handle(*conn.Conn, protocol.Envelope) {}
func (s signalSession) Closed()                            { s.closed <- struct{}{} }

func startFrameServer(t testing.TB, maxSize int) *frameServer {
	t.Helper()
	return startServer(t, conn.Options{MaxMessageSize: maxSize}, nil)
}

// startServer starts a bare endpoint named "frames" with the limits of
// opts where set, test defaults otherwise; open makes the sessions (nil:
// ones that signal fs.closed).
func startServer(t testing.TB, opts conn.Options, open func(fs *frameServer, c *conn.Conn) conn.Session) *frameServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := auth.NewVerifier(ctx, auth.Config{Secret: []byte(testkit.Secret)})
	if err != nil {
		t.Fatal(err)
	}
	fs := &frameServer{closed: make(chan struct{}, 64), tok: testkit.Token(t, "fuzz")}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.AuthTimeout, 10*time.Second)
	def(&opts.PingInterval, 25*time.Second)
	def(&opts.IdleTimeout, time.Minute)
	def(&opts.WriteTimeout, 5*time.Second)
	if opts.SendQueue == 0 {
		opts.SendQueue = 256
	}
	if opts.MaxConnsPerUser == 0 {
		opts.MaxConnsPerUser = 1 << 20
	}
	fs.srv = conn.NewServer(v, opts)
	fs.http = httptest.NewServer(fs.srv.Handler(&conn.Endpoint{Name: "frames", Open: func(c *conn.Conn) conn.Session {
		if open != nil {
			return open(fs, c)
		}
		return signalSession{fs.closed}
	}}))
	fs.addr = strings.TrimPrefix(fs.http.URL, "http://")
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = fs.srv.Shutdown(sctx)
		fs.http.Close()
		v.Close()
		cancel()
	})
	return fs
}

// rawDial opens a TCP connection and performs the WebSocket handshake by
// hand, authenticated with the token in the Authorization header, so that
// the test can then write any bytes at all.
func (fs *frameServer) rawDial(t testing.TB) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", fs.addr, testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(testkit.Timeout))
	req := "GET / HTTP/1.1\r\nHost: " + fs.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Authorization: Bearer " + fs.tok + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return nc, br
}

// waitClosed waits for the server to have released one connection.
func (fs *frameServer) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-fs.closed:
	case <-time.After(testkit.Timeout):
		t.Fatal("the server did not release the connection")
	}
}

// dialPinger connects a well-behaved client. It is not a testkit.Client,
// whose helpers are bound to the testing.TB that dialed it: the fuzz
// target checks it with each input's own t.
func (fs *frameServer) dialPinger(t testing.TB) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+fs.addr, testkit.Bearer(fs.tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// pingPong checks that the server still answers a well-behaved client.
func pingPong(t testing.TB, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":1}`)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("pong: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["type"] != "pong" || m["id"] != float64(1) {
		t.Fatalf("got %s (%v), want a pong with id 1", b, err)
	}
}

// crashHeader is a text frame declaring 2^63 payload bytes (then a mask
// key): gws v1.8.9 reads the length as a negative int and panics slicing a
// buffer with it, killing the process, unless the guard refuses it first.
var crashHeader = []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44}

// closeFrame is the server's (unmasked) close frame with code and reason.
func closeFrame(code uint16, reason string) []byte {
	b := []byte{0x88, byte(2 + len(reason))}
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, reason...)
}

// The exact bytes that crashed the server now get close 1009 "gws: message
// too large", and the server goes on serving everyone else.
func TestHugeFrameLengthCloses1009(t *testing.T) {
	fs := startFrameServer(t, 1<<20)
	pinger := fs.dialPinger(t)
	pingPong(t, pinger)

	nc, br := fs.rawDial(t)
	defer nc.Close()
	if _, err := nc.Write(crashHeader); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read until the server closed: %v (got % x)", err, got)
	}
	if want := closeFrame(1009, "gws: message too large"); !bytes.Equal(got, want) {
		t.Fatalf("server sent % x, want exactly the close frame % x", got, want)
	}
	fs.waitClosed(t)
	pingPong(t, pinger)
	testkit.Eventually(t, "only the pinger left", func() bool { return fs.srv.Count() == 1 })
}

// FuzzFrames writes arbitrary bytes after the handshake on a real socket
// and checks, after each input, that the server released that connection
// and still answers a ping on another one. The seeds run under go test.
func FuzzFrames(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	hdr64 := func(op byte, n uint64) []byte {
		return append(binary.BigEndian.AppendUint64([]byte{0x80 | op, 0xff}, n), mask...)
	}
	f.Add(crashHeader)
	f.Add(hdr64(0x1, 1<<64-1))
	f.Add(hdr64(0x2, 1<<63-1))
	f.Add(hdr64(0x1, 1<<20+1))                                        // just over the limit
	f.Add(append(hdr64(0x1, 4), append(mask, 'a', 'b', 'c', 'd')...)) // 64-bit form of a short length
	f.Add(hdr64(0x9, 1<<63))                                          // control frame, huge
	f.Add(hdr64(0x0, 1<<63))                                          // continuation, huge
	f.Add([]byte{0x01, 0xfe, 0xff, 0xff, 1, 2, 3, 4})                 // fragment start, 16-bit length
	f.Add([]byte{0x81, 0x7f, 0x80})                                   // unmasked, truncated length
	f.Add([]byte{0x89, 0x80, 1, 2, 3, 4})                             // ping
	f.Add([]byte{0x88, 0x82, 1, 2, 3, 4, 0x02, 0xea})                 // close 1000
	f.Add([]byte{0xf1, 0x80, 1, 2, 3, 4})                             // RSV bits
	f.Add(append([]byte{0x81, 0x8f, 0, 0, 0, 0}, `{"type":"ping"}`...))
	f.Add([]byte{})
	fs := startFrameServer(f, 1<<20)
	pinger := fs.dialPinger(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, br := fs.rawDial(t)
		defer nc.Close()
		// The server may close before everything is written.
		_, _ = nc.Write(data)
		_ = nc.(*net.TCPConn).CloseWrite()
		// Read until the server closes: after our EOF at the latest.
		if _, err := io.Copy(io.Discard, br); err != nil && !isReset(err) {
			t.Fatalf("reading until the server closed: %v", err)
		}
		fs.waitClosed(t)
		pingPong(t, pinger)
	})
}

// isReset reports a connection reset by the server, which happens when it
// closes with bytes of ours still unread.
func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset by peer")
}
