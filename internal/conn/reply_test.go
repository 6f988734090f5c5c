package conn_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/testkit"
)

// replySession answers each message type with one kind of error.
type replySession struct{ closed chan struct{} }

func (s replySession) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case "request_error":
		c.ReplyError(env.ID, fmt.Errorf("decode: %w", protocol.BadRequest("field x must be a number")))
	case "other_error":
		c.ReplyError(env.ID, errors.New("nats: connection to 10.1.2.3:4222 refused"))
	case "code":
		c.ReplyCode(env.ID, protocol.CodeNotFound, "no such thing")
	}
}

func (s replySession) Closed() { s.closed <- struct{}{} }

// ReplyError tells a client its own mistake (a RequestError anywhere in
// the chain) as it is, and anything else only as internal_error with the
// fixed sentence; the detail goes to the log.
func TestReplyError(t *testing.T) {
	var logs testkit.SyncBuffer
	fs := startServer(t, conn.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(fs *frameServer, c *conn.Conn) conn.Session { return replySession{fs.closed} })
	c := testkit.Dial(t, "ws://"+fs.addr, testkit.Bearer(fs.tok))
	for _, tc := range []struct{ typ, want string }{
		{"request_error", `id=1 code=bad_request message=field x must be a number `},
		{"other_error", `id=2 code=internal_error message=the server could not complete the request; try again `},
		{"code", `id=3 code=not_found message=no such thing `},
	} {
		id := map[string]int{"request_error": 1, "other_error": 2, "code": 3}[tc.typ]
		c.Send(map[string]any{"type": tc.typ, "id": id})
		if got := testkit.Fields(c.Expect("error"), "id", "code", "message"); got != tc.want {
			t.Fatalf("%s: got %s, want %s", tc.typ, got, tc.want)
		}
	}
	if out := logs.String(); !strings.Contains(out, `msg="request failed"`) || !strings.Contains(out, "10.1.2.3:4222 refused") {
		t.Fatalf("the internal error's detail was not logged:\n%s", out)
	}
}
