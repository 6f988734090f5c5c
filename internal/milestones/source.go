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
//
// A snapshot replay (the screen model's current screen at an exact offset)
// becomes a size frame with the snapshot's size, then the snapshot in replay
// frames of at most terminal.MaxChunkSize bytes, the first with start, all
// with offset = start (a snapshot takes no room in the stream); output from
// that offset follows as output frames.
type feed struct {
	l         *live
	client    *terminal.Client
	attachAt  int64
	replaying bool
	replayEnd int64
	ended     bool
	queued    []frame // frames of a snapshot still to be sent
	// cols and rows are the size the client was last told (in status or a
	// size frame): a snapshot of another size is preceded by a size frame.
	cols, rows uint16
}

// newFeed returns the feed of a client just attached; its status must give
// the feed's size.
func newFeed(l *live, client *terminal.Client) feed {
	cols, rows := l.sess.Size()
	return feed{l: l, client: client, attachAt: l.sess.Offset(), cols: cols, rows: rows}
}

func (f *feed) next(ctx context.Context) (frame, error) {
	if len(f.queued) > 0 {
		fr := f.queued[0]
		f.queued = f.queued[1:]
		return fr, nil
	}
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
	case ch.Resize:
		f.cols, f.rows = ch.Cols, ch.Rows
		return frame{typ: protocol.TypeSize, cols: ch.Cols, rows: ch.Rows, end: ch.Offset}, nil
	case ch.Replay && ch.Cols > 0:
		f.replaying = false
		f.queued = snapshotFrames(f.queued[:0], ch.Prefix, ch.Offset)
		if ch.Cols != f.cols || ch.Rows != f.rows {
			f.cols, f.rows = ch.Cols, ch.Rows
			return frame{typ: protocol.TypeSize, cols: ch.Cols, rows: ch.Rows, end: ch.Offset}, nil
		}
		return f.next(ctx)
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

// snapshotFrames splits a snapshot taken at offset off into replay frames
// of at most terminal.MaxChunkSize bytes, cut between UTF-8 characters so
// that each is valid text when the snapshot is.
func snapshotFrames(dst []frame, snap []byte, off int64) []frame {
	start := off
	first := true
	for first || len(snap) > 0 {
		n := len(snap)
		if n > terminal.MaxChunkSize {
			n = terminal.MaxChunkSize
			for n > 0 && snap[n]&0xC0 == 0x80 {
				n--
			}
		}
		fr := frame{typ: protocol.TypeReplay, data: snap[:n], end: off}
		if first {
			fr.start = &start
			first = false
		}
		dst = append(dst, fr)
		snap = snap[n:]
	}
	return dst
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
	ls := &localSource{feed: newFeed(l, client), svc: l.svc, peer: p}
	l.attach(p)
	return ls, nil
}

func (s *localSource) status() protocol.TerminalStatus {
	return protocol.TerminalStatus{PID: s.l.sess.PID(), Cols: s.cols, Rows: s.rows, Clients: s.l.count(), Offset: s.attachAt}
}

func (s *localSource) input(data []byte) string { return s.l.input(data) }

func (s *localSource) resize(cols, rows uint16) string { return s.l.resize(s.client, cols, rows) }

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

// resize resizes the terminal for client c. Every client gets the new size
// as a size frame at the offset where it took effect (see
// terminal.Chunk.Resize); c itself also gets a new snapshot at the new size,
// since a client that resizes may keep its own size rather than follow size
// frames (the web console does) and must then be redrawn at it.
func (l *live) resize(c *terminal.Client, cols, rows uint16) string {
	if err := l.sess.Resize(cols, rows); err != nil {
		if errors.Is(err, terminal.ErrInvalidSize) {
			return protocol.CodeInvalidSize
		}
		return protocol.CodeSessionEnded
	}
	c.Resnapshot()
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
