package conn_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/testkit"
)

// nopSession ignores messages: ping, the benchmarked one, is answered by
// the connection layer itself.
type nopSession struct{}

func (nopSession) Handle(*conn.Conn, protocol.Envelope) {}
func (nopSession) Closed()                              {}

// benchServer serves a bare endpoint on the connection layer alone (no
// NATS), with the default limits but no rate limit.
func benchServer(b *testing.B) (url, tok string) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := auth.NewVerifier(ctx, auth.Config{Secret: []byte(testkit.Secret)})
	if err != nil {
		b.Fatal(err)
	}
	s := conn.NewServer(v, conn.Options{
		AuthTimeout: 10 * time.Second, PingInterval: 25 * time.Second, IdleTimeout: time.Minute,
		WriteTimeout: 10 * time.Second, MaxMessageSize: 1 << 20, SendQueue: 256, MaxConnsPerUser: 1 << 20,
	})
	srv := httptest.NewServer(s.Handler(&conn.Endpoint{Name: "bench", Open: func(*conn.Conn) conn.Session { return nopSession{} }}))
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
		srv.Close()
		v.Close()
		cancel()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), testkit.Token(b, "bench")
}

// BenchmarkPingRoundTrip is one ping → pong through the connection layer
// (decode, rate and expiry checks, encode, the send queue), client included.
func BenchmarkPingRoundTrip(b *testing.B) {
	url, tok := benchServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, testkit.Bearer(tok))
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	b.ReportAllocs()
	id := 0
	for b.Loop() {
		id++
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":`+strconv.Itoa(id)+`}`)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is one authenticated connection opened and closed:
// HTTP upgrade, token verification, registration, and teardown.
func BenchmarkHandshake(b *testing.B) {
	url, tok := benchServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		c, _, err := websocket.Dial(ctx, url, testkit.Bearer(tok))
		if err != nil {
			b.Fatal(err)
		}
		c.CloseNow()
	}
}
