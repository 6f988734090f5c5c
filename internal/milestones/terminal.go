package milestones

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
)

// Attach modes.
const (
	ModeInteractive = "interactive"
	ModeView        = "view"
)

var signals = map[string]syscall.Signal{
	"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP,
	"SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL, "SIGTSTP": syscall.SIGTSTP,
	"SIGCONT": syscall.SIGCONT, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
}

type termParams struct {
	id, since, mode string
	hasSince        bool
}

// Endpoint describes /api/milestones/{id}/terminal to the connection layer.
func (s *Service) Endpoint() *conn.Endpoint {
	return &conn.Endpoint{
		Name:         "terminal",
		Subprotocols: []string{protocol.SubprotocolTerminalBinary},
		KnownTypes:   []string{protocol.TypeInput, protocol.TypeResize, protocol.TypeSignal},
		Accept: func(r *http.Request) any {
			q := r.URL.Query()
			return termParams{id: r.PathValue("id"), since: q.Get("since"), hasSince: q.Has("since"), mode: q.Get("mode")}
		},
		Open: s.open,
		Binary: func(c *conn.Conn, data []byte) {
			if t, ok := c.Session().(*termSession); ok {
				t.input(c, nil, data)
			}
		},
	}
}

// termSession is one client attached to a milestone's terminal.
type termSession struct {
	svc    *Service
	c      *conn.Conn
	src    source
	view   bool
	binary bool
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Service) open(c *conn.Conn) conn.Session {
	p := c.Params.(termParams)
	if !protocol.ValidID(p.id) {
		c.Fail(protocol.CodeInvalidMilestone, protocol.CloseBadRequest, "milestone id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
		return nil
	}
	since := int64(-1)
	if p.hasSince {
		n, err := strconv.ParseInt(p.since, 10, 64)
		if err != nil || n < 0 {
			c.Fail(protocol.CodeInvalidOffset, protocol.CloseBadRequest, "since must be a byte offset (a non-negative integer)")
			return nil
		}
		since = n
	}
	switch p.mode {
	case "", ModeInteractive, ModeView:
	default:
		c.Fail(protocol.CodeBadRequest, protocol.CloseBadRequest, "mode must be interactive or view")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, _, err := s.store.Get(ctx, p.id)
	switch {
	case errors.Is(err, ErrNotFound):
		c.Fail(protocol.CodeNotFound, protocol.CloseNotFound, "no milestone "+p.id)
		return nil
	case err != nil:
		c.Fail(protocol.CodeInternal, protocol.CloseInternal, "milestones are unavailable; retry")
		return nil
	}
	cl := c.Claims()
	if !cl.IsAdmin() && m.Owner != cl.Subject {
		c.Fail(protocol.CodeForbidden, protocol.CloseForbidden, "not your milestone")
		return nil
	}
	if m.Status == StatusFinished {
		c.Fail(protocol.CodeMilestoneFinished, protocol.CloseNotFound, "the milestone has finished")
		return nil
	}
	t := &termSession{
		svc: s, c: c, view: p.mode == ModeView,
		binary: c.Subprotocol == protocol.SubprotocolTerminalBinary, done: make(chan struct{}),
	}
	var st protocol.TerminalStatus
	l, m, err := s.Start(ctx, p.id)
	switch {
	case errors.Is(err, errElsewhere):
		// The PTY lives on another node: relay to it over NATS.
		rs, status, code, err := s.relayTo(ctx, m.Node, p.id, since)
		if err != nil {
			closeCode := protocol.CloseNotFound
			if code == protocol.CodeInvalidOffset {
				closeCode = protocol.CloseBadRequest
			}
			c.Fail(code, closeCode, err.Error())
			return nil
		}
		t.src, st = rs, status
	case errors.Is(err, errDraining):
		// 1001 like a shutdown: the client reconnects, through the load
		// balancer, to a node that is not draining.
		c.Fail(protocol.CodeNodeDraining, protocol.CloseGoingAway, "this node is draining before a restart; connect to another node")
		return nil
	case err != nil:
		c.Fail(protocol.CodeMilestoneFinished, protocol.CloseNotFound, "the milestone could not run: "+err.Error())
		return nil
	default:
		ls, err := l.attachLocal(c, since)
		if err != nil {
			c.Fail(protocol.CodeInvalidOffset, protocol.CloseBadRequest, "since is beyond the end of the output")
			return nil
		}
		t.src, st = ls, ls.status()
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	st.Type, st.State, st.Mode = protocol.TypeStatus, StatusRunning, ModeInteractive
	if t.view {
		st.Mode = ModeView
	}
	c.Send(protocol.TypeStatus, st)
	c.Go(func() { t.pump(c) })
	return t
}

// failNodeDown tells a terminal client that the node running the terminal
// ended it on its way down, and closes the connection.
func failNodeDown(c *conn.Conn) {
	c.Fail(protocol.CodeNodeDown, protocol.CloseNotFound, "the node running this terminal stopped; the milestone is interrupted")
}

// pump moves frames from the source to the client at the pace the client
// reads: it waits while the client's queue is full, so a slow client only
// falls behind in the ring (and then skips to a replay), never holding up
// the PTY reader or other clients.
func (t *termSession) pump(c *conn.Conn) {
	defer close(t.done)
	for {
		if err := c.WaitQueueBelow(t.ctx, t.svc.cfg.ClientQueue); err != nil {
			return
		}
		f, err := t.src.next(t.ctx)
		switch {
		case errors.Is(err, errNodeDown):
			failNodeDown(c)
			return
		case err != nil:
			return
		}
		switch f.typ {
		case protocol.TypeExit:
			c.Send(protocol.TypeExit, protocol.TerminalExit{Type: protocol.TypeExit, Code: f.code, Signal: f.signal, Offset: f.end})
			c.Close(protocol.CloseNormal, "exited")
			return
		case protocol.TypeSize:
			c.Send(protocol.TypeSize, protocol.TerminalSize{Type: protocol.TypeSize, Cols: f.cols, Rows: f.rows})
		default:
			t.send(c, f.typ, f.data, f.end, f.start)
		}
	}
}

// send writes one output or replay frame.
func (t *termSession) send(c *conn.Conn, typ string, data []byte, end int64, start *int64) {
	if t.binary {
		kind := byte(protocol.BinaryOutput)
		switch {
		case typ == protocol.TypeReplay && start != nil:
			kind = protocol.BinaryReplayStart
		case typ == protocol.TypeReplay:
			kind = protocol.BinaryReplayOutput
		}
		frame := make([]byte, 9+len(data))
		frame[0] = kind
		binary.BigEndian.PutUint64(frame[1:9], uint64(end))
		copy(frame[9:], data)
		c.SendBinary(typ, frame)
		return
	}
	if !utf8.Valid(data) {
		msg := protocol.TerminalOutput{Type: typ, Offset: end, Start: start, Encoding: "base64"}
		msg.Data = base64.StdEncoding.EncodeToString(data)
		c.Send(typ, msg)
		return
	}
	// Output is the bulk of what a terminal sends: encode it directly
	// rather than through encoding/json (the same bytes as TerminalOutput).
	b := make([]byte, 0, len(data)+len(data)/8+80)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","data":`...)
	b = protocol.AppendString(b, data)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, end, 10)
	if start != nil {
		b = append(b, `,"start":`...)
		b = strconv.AppendInt(b, *start, 10)
	}
	c.SendRaw(typ, append(b, '}'))
}

func (t *termSession) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case protocol.TypeInput:
		// Every keystroke comes this way: decode its data directly when
		// it is a plain JSON string, as it nearly always is.
		if data, ok := env.StringMember("data"); ok {
			t.input(c, env.ID, data)
			return
		}
		var req protocol.InputRequest
		if err := env.Into(&req); err != nil {
			c.ReplyError(env.ID, err)
			return
		}
		t.input(c, env.ID, []byte(req.Data))
	case protocol.TypeResize:
		if t.view {
			c.ReplyCode(env.ID, protocol.CodeReadOnly, "this client attached with mode=view")
			return
		}
		var req protocol.ResizeRequest
		if err := env.Into(&req); err != nil {
			c.ReplyError(env.ID, err)
			return
		}
		if req.Cols < 1 || req.Cols > terminal.MaxCols || req.Rows < 1 || req.Rows > terminal.MaxRows {
			c.ReplyCode(env.ID, protocol.CodeInvalidSize, "cols must be 1-1000 and rows 1-500")
			return
		}
		// The most recent resize wins; the session tells every client.
		if code := t.src.resize(uint16(req.Cols), uint16(req.Rows)); code != "" {
			c.ReplyCode(env.ID, code, messages[code])
		}
	case protocol.TypeSignal:
		if t.view {
			c.ReplyCode(env.ID, protocol.CodeReadOnly, "this client attached with mode=view")
			return
		}
		var req protocol.SignalRequest
		if err := env.Into(&req); err != nil {
			c.ReplyError(env.ID, err)
			return
		}
		if _, ok := signals[req.Signal]; !ok {
			c.ReplyCode(env.ID, protocol.CodeInvalidSignal, messages[protocol.CodeInvalidSignal])
			return
		}
		if code := t.src.signal(req.Signal); code != "" {
			c.ReplyCode(env.ID, code, messages[code])
		}
	default:
		c.ReplyCode(env.ID, protocol.CodeBadRequest, "unknown message type "+strconv.Quote(env.Type))
	}
}

// input writes to the terminal; id is nil for binary input frames.
func (t *termSession) input(c *conn.Conn, id []byte, data []byte) {
	switch {
	case t.view:
		c.ReplyCode(id, protocol.CodeReadOnly, "this client attached with mode=view")
		return
	case len(data) > protocol.MaxInputBytes:
		c.ReplyCode(id, protocol.CodeInputTooLarge, "input is limited to 64 KiB per message; nothing was written")
		return
	}
	if code := t.src.input(data); code != "" {
		c.ReplyCode(id, code, messages[code])
	}
}

// messages explains the error codes a source returns.
var messages = map[string]string{
	protocol.CodeInputBusy:     "the program is not reading its input; nothing was written, retry",
	protocol.CodeSessionEnded:  "the program has ended",
	protocol.CodeInvalidSignal: "signal must be one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGKILL, SIGTSTP, SIGCONT, SIGUSR1, SIGUSR2",
	protocol.CodeNodeDown:      "the node running this terminal is unreachable",
}

func (t *termSession) Closed() {
	t.cancel()
	t.src.close()
	<-t.done
}
