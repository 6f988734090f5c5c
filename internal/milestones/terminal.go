package milestones

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
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
	l      *live
	client *terminal.Client
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
	l, _, err := s.Start(ctx, p.id)
	switch {
	case errors.Is(err, errElsewhere):
		c.Fail(protocol.CodeNotFound, protocol.CloseNotFound, "the milestone runs on another node")
		return nil
	case err != nil:
		c.Fail(protocol.CodeMilestoneFinished, protocol.CloseNotFound, "the milestone could not run: "+err.Error())
		return nil
	}
	client, err := l.sess.Attach(since)
	if err != nil {
		c.Fail(protocol.CodeInvalidOffset, protocol.CloseBadRequest, "since is beyond the end of the output")
		return nil
	}
	t := &termSession{
		svc: s, c: c, l: l, client: client, view: p.mode == ModeView,
		binary: c.Subprotocol == protocol.SubprotocolTerminalBinary, done: make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	clients := l.attach(c)
	cols, rows := l.sess.Size()
	mode := ModeInteractive
	if t.view {
		mode = ModeView
	}
	// Everything at or before this offset that the client gets, it gets as
	// catch-up; a replay is marked as such up to here.
	at := l.sess.Offset()
	c.Send(protocol.TypeStatus, protocol.TerminalStatus{
		Type: protocol.TypeStatus, State: StatusRunning, PID: l.sess.PID(), Cols: cols, Rows: rows,
		Clients: clients, Offset: at, Mode: mode,
	})
	go t.pump(c, at)
	return t
}

// pump moves output from the session's ring to the client at the pace the
// client reads: it waits while the client's queue is full, so a slow client
// only falls behind in the ring (and then skips to a replay), never holding
// up the PTY reader or other clients.
func (t *termSession) pump(c *conn.Conn, attachedAt int64) {
	defer close(t.done)
	replaying := false // inside a replay that began at attach or after a skip
	replayEnd := int64(-1)
	for {
		if err := c.WaitQueueBelow(t.ctx, t.svc.cfg.ClientQueue); err != nil {
			return
		}
		// Chunks never end inside a UTF-8 character while more output can
		// follow, so each one is valid text on its own when the output is.
		ch, err := t.client.Next(t.ctx)
		if errors.Is(err, io.EOF) {
			st, _ := t.l.sess.ExitStatus()
			c.Send(protocol.TypeExit, protocol.TerminalExit{Type: protocol.TypeExit, Code: st.Code, Signal: st.Signal, Offset: t.client.Offset()})
			c.Close(protocol.CloseNormal, "exited")
			return
		}
		if err != nil {
			return
		}
		typ, data := protocol.TypeOutput, ch.Data
		var start *int64
		switch {
		case ch.Replay:
			replaying = true
			replayEnd = max(attachedAt, t.l.sess.Offset())
			typ = protocol.TypeReplay
			off := ch.Offset
			start = &off
			data = append(append([]byte(nil), ch.Prefix...), ch.Data...)
		case replaying && ch.Offset < replayEnd:
			typ = protocol.TypeReplay
		default:
			replaying = false
		}
		t.send(c, typ, data, ch.End(), start)
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
	msg := protocol.TerminalOutput{Type: typ, Offset: end, Start: start}
	if utf8.Valid(data) {
		msg.Data = string(data)
	} else {
		msg.Data, msg.Encoding = base64.StdEncoding.EncodeToString(data), "base64"
	}
	c.Send(typ, msg)
}

func (t *termSession) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case protocol.TypeInput:
		var req protocol.InputRequest
		if err := env.Into(&req); err != nil {
			t.reqError(c, env, err)
			return
		}
		t.input(c, env.ID, []byte(req.Data))
	case protocol.TypeResize:
		if t.view {
			t.fail(c, env, protocol.CodeReadOnly, "this client attached with mode=view")
			return
		}
		var req protocol.ResizeRequest
		if err := env.Into(&req); err != nil {
			t.reqError(c, env, err)
			return
		}
		if req.Cols < 1 || req.Cols > terminal.MaxCols || req.Rows < 1 || req.Rows > terminal.MaxRows {
			t.fail(c, env, protocol.CodeInvalidSize, "cols must be 1-1000 and rows 1-500")
			return
		}
		if err := t.l.sess.Resize(uint16(req.Cols), uint16(req.Rows)); err != nil {
			t.fail(c, env, protocol.CodeSessionEnded, "the program has ended")
			return
		}
		// The most recent resize wins; every client is told the size.
		size := protocol.TerminalSize{Type: protocol.TypeSize, Cols: uint16(req.Cols), Rows: uint16(req.Rows)}
		t.l.broadcast(protocol.TypeSize, size)
	case protocol.TypeSignal:
		if t.view {
			t.fail(c, env, protocol.CodeReadOnly, "this client attached with mode=view")
			return
		}
		var req protocol.SignalRequest
		if err := env.Into(&req); err != nil {
			t.reqError(c, env, err)
			return
		}
		sig, ok := signals[req.Signal]
		if !ok {
			t.fail(c, env, protocol.CodeInvalidSignal, "signal must be one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGKILL, SIGTSTP, SIGCONT, SIGUSR1, SIGUSR2")
			return
		}
		if err := t.l.sess.Signal(sig); err != nil {
			t.fail(c, env, protocol.CodeSessionEnded, "the program has ended")
		}
	default:
		t.fail(c, env, protocol.CodeBadRequest, "unknown message type "+strconv.Quote(env.Type))
	}
}

// input writes to the terminal; id is nil for binary input frames.
func (t *termSession) input(c *conn.Conn, id []byte, data []byte) {
	env := protocol.Envelope{ID: id}
	switch {
	case t.view:
		t.fail(c, env, protocol.CodeReadOnly, "this client attached with mode=view")
		return
	case len(data) > protocol.MaxInputBytes:
		t.fail(c, env, protocol.CodeInputTooLarge, "input is limited to 64 KiB per message; nothing was written")
		return
	}
	switch err := t.l.sess.Write(data); {
	case errors.Is(err, terminal.ErrInputBusy), errors.Is(err, terminal.ErrInputTooLarge):
		t.fail(c, env, protocol.CodeInputBusy, "the program is not reading its input; nothing was written, retry")
	case err != nil:
		t.fail(c, env, protocol.CodeSessionEnded, "the program has ended")
	}
}

func (t *termSession) reqError(c *conn.Conn, env protocol.Envelope, err error) {
	var re *protocol.RequestError
	if errors.As(err, &re) {
		t.fail(c, env, re.Code, re.Message)
		return
	}
	t.fail(c, env, protocol.CodeBadRequest, err.Error())
}

func (t *termSession) fail(c *conn.Conn, env protocol.Envelope, code, msg string) {
	c.Send(protocol.TypeError, protocol.NewError(env.ID, code, msg))
}

func (t *termSession) Closed() {
	t.cancel()
	_ = t.client.Close()
	<-t.done
	t.l.leave(t.svc, t.c)
}
