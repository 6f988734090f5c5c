package milestones

import (
	"context"
	"errors"
	"io"

	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
)

// frame is one thing a terminal client is sent: output, replay, the size,
// or the exit.
type frame struct {
	typ   string // protocol.TypeOutput, TypeReplay, TypeSize or TypeExit
	data  []byte
	end   int64  // offset just after data (for exit: the final offset)
	start *int64 // set on the first frame of a replay
	// exit
	code   int
	signal string
	// size
	cols, rows uint16
}

// source is where a client's terminal lives: a session on this node, or a
// relay to the node that runs it. Both give the same frames, so a client
// cannot tell them apart.
type source interface {
	// next returns the next frame; after the exit frame, io.EOF.
	next(ctx context.Context) (frame, error)
	// input, resize and signal return "" or an error code.
	input(data []byte) string
	resize(cols, rows uint16) string
	signal(name string) string
	close()
}

// peer is anything attached to a live session that must hear about size
// changes: a local WebSocket connection or a relay to another node.
type peer interface {
	Send(typ string, v any) bool
}

// feed turns a terminal client's chunks into frames. A replay (on attach
// without an exact offset, or after falling out of the ring) is marked as
// such up to the offset at which it began, so clients can tell it from
// live output.
type feed struct {
	l         *live
	client    *terminal.Client
	attachAt  int64
	replaying bool
	replayEnd int64
	ended     bool
}

func (f *feed) next(ctx context.Context) (frame, error) {
	if f.ended {
		return frame{}, io.EOF
	}
	// Chunks never end inside a UTF-8 character while more output can
	// follow, so each is valid text on its own when the output is.
	ch, err := f.client.Next(ctx)
	if errors.Is(err, io.EOF) {
		f.ended = true
		if f.l.endedByNode() {
			// The program did not exit: this node ended it on its way
			// down. Its clients are told node_down, as when a node dies.
			return frame{}, errNodeDown
		}
		st, _ := f.l.sess.ExitStatus()
		return frame{typ: protocol.TypeExit, code: st.Code, signal: st.Signal, end: f.client.Offset()}, nil
	}
	if err != nil {
		return frame{}, err
	}
	fr := frame{typ: protocol.TypeOutput, data: ch.Data, end: ch.End()}
	switch {
	case ch.Replay:
		f.replaying = true
		f.replayEnd = max(f.attachAt, f.l.sess.Offset())
		fr.typ = protocol.TypeReplay
		off := ch.Offset
		fr.start = &off
		fr.data = append(append([]byte(nil), ch.Prefix...), ch.Data...)
	case f.replaying && ch.Offset < f.replayEnd:
		fr.typ = protocol.TypeReplay
	default:
		f.replaying = false
	}
	return fr, nil
}

// localSource is a client of a session running on this node.
type localSource struct {
	feed
	svc  *Service
	peer peer
}

// attachLocal attaches p to the session at since (-1: a replay).
func (l *live) attachLocal(p peer, since int64) (*localSource, error) {
	client, err := l.sess.Attach(since)
	if err != nil {
		return nil, err
	}
	ls := &localSource{feed: feed{l: l, client: client, attachAt: l.sess.Offset()}, svc: l.svc, peer: p}
	l.attach(p)
	return ls, nil
}

func (s *localSource) status() protocol.TerminalStatus {
	cols, rows := s.l.sess.Size()
	return protocol.TerminalStatus{PID: s.l.sess.PID(), Cols: cols, Rows: rows, Clients: s.l.count(), Offset: s.attachAt}
}

func (s *localSource) input(data []byte) string { return s.l.input(data) }

func (s *localSource) resize(cols, rows uint16) string { return s.l.resize(cols, rows) }

func (s *localSource) signal(name string) string { return s.l.signal(name) }

func (s *localSource) close() {
	_ = s.client.Close()
	s.l.leave(s.svc, s.peer)
}

// input, resize and signal act on the session for any client, local or
// relayed, and map errors to wire codes.
func (l *live) input(data []byte) string {
	switch err := l.sess.Write(data); {
	case errors.Is(err, terminal.ErrInputBusy), errors.Is(err, terminal.ErrInputTooLarge):
		return protocol.CodeInputBusy
	case err != nil:
		return protocol.CodeSessionEnded
	}
	return ""
}

func (l *live) resize(cols, rows uint16) string {
	if err := l.sess.Resize(cols, rows); err != nil {
		if errors.Is(err, terminal.ErrInvalidSize) {
			return protocol.CodeInvalidSize
		}
		return protocol.CodeSessionEnded
	}
	l.broadcast(protocol.TypeSize, protocol.TerminalSize{Type: protocol.TypeSize, Cols: cols, Rows: rows})
	return ""
}

func (l *live) signal(name string) string {
	sig, ok := signals[name]
	if !ok {
		return protocol.CodeInvalidSignal
	}
	if err := l.sess.Signal(sig); err != nil {
		return protocol.CodeSessionEnded
	}
	return ""
}
