package conn_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/metrics"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/testkit"
)

// panicSession panics on demand: in Handle (the read loop), in a goroutine
// started with Conn.Go, or in Closed.
type panicSession struct {
	closed      chan struct{}
	panicClosed bool
}

func (s *panicSession) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case "boom":
		panic("boom in handle")
	case "boom_go":
		c.Go(func() { panic("boom in goroutine") })
	case "boom_closed":
		s.panicClosed = true
		c.Close(protocol.CloseNormal, "bye")
	}
}

func (s *panicSession) Closed() {
	s.closed <- struct{}{}
	if s.panicClosed {
		panic("boom in closed")
	}
}

// A panic in a connection's goroutines closes that connection alone with
// 1011, is logged with its stack and counted, and the connection's
// accounting (the user's count, the server's conns, the open gauge) is
// released once; the server and the user's other connection go on.
func TestPanicClosesOnlyThatConnection(t *testing.T) {
	var logs testkit.SyncBuffer
	m := metrics.New("")
	fs := startServer(t, conn.Options{
		MaxConnsPerUser: 2,
		Metrics:         m,
		Logger:          slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError})),
	}, func(fs *frameServer, c *conn.Conn) conn.Session { return &panicSession{closed: fs.closed} })
	pinger := fs.dialPinger(t)
	for i, tc := range []struct{ typ, code, where, value string }{
		{"boom", "1011", `in="read loop"`, "boom in handle"},
		{"boom_go", "1011", `in=goroutine`, "boom in goroutine"},
		{"boom_closed", "1000", `in="session close"`, "boom in closed"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			c := testkit.Dial(t, "ws://"+fs.addr, testkit.Bearer(fs.tok))
			c.Send(map[string]any{"type": tc.typ})
			want := websocket.StatusCode(1011)
			if tc.code == "1000" {
				want = websocket.StatusNormalClosure
			}
			if reason := c.ExpectClose(want); want == 1011 && reason != "internal_error" {
				t.Fatalf("close reason %q, want internal_error", reason)
			}
			fs.waitClosed(t)
			// The user had two slots, one used by the pinger: this
			// connection's slot was released, or a new one is refused.
			testkit.Eventually(t, "the accounting released", func() bool { return fs.srv.Count() == 1 })
			again := testkit.Dial(t, "ws://"+fs.addr, testkit.Bearer(fs.tok))
			again.C.CloseNow()
			fs.waitClosed(t)
			pingPong(t, pinger)
			if got := metricValue(t, m, "tether_connection_panics_total"); got != float64(i+1) {
				t.Fatalf("tether_connection_panics_total = %v, want %d", got, i+1)
			}
			out := logs.String()
			for _, want := range []string{`msg="panic in connection" endpoint=frames`, tc.where + ` panic="` + tc.value + `" stack=`} {
				if !strings.Contains(out, want) {
					t.Fatalf("log lacks %s:\n%s", want, out)
				}
			}
		})
	}
	if got := metricValue(t, m, "tether_connections_open"); got != 1 {
		t.Fatalf("tether_connections_open = %v, want 1 (the pinger)", got)
	}
}

// metricValue is the value of the metric name for endpoint "frames" (0 if
// it has no such series yet).
func metricValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == "frames" {
					if s.Counter != nil {
						return s.Counter.GetValue()
					}
					return s.Gauge.GetValue()
				}
			}
		}
	}
	return 0
}
