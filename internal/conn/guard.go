package conn

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// The frame guard refuses a frame whose declared payload length is too large
// before gws reads it. gws v1.8.9 parses a 64-bit length into an int: a
// length with the top bit set turns negative, passes its size check, and
// slicing a buffer with it panics, which would take the whole process down
// on one frame sent before authentication. The guard sits between the socket
// and gws: it walks the client's frame headers as bytes pass through Read
// and, on a length above the limit, writes a close frame 1009 itself and
// fails the read, so gws never sees that length.
//
// Rules:
//   - The guard reads headers byte by byte only; payload bytes are skipped
//     by count, so a large message costs one subtraction per Read.
//   - A refused header is never handed to gws, not even its last byte:
//     gws's read fails with ErrFrameTooLarge before it can parse the length.
//   - gws writes each frame with one Write call on the net.Conn; the guard's
//     Write holds a mutex for the call, so its close frame never lands
//     inside another frame. After the close, every write is dropped.

// ErrFrameTooLarge is the read error the guard gives gws once a client
// declared a frame longer than the maximum message size.
var ErrFrameTooLarge = errors.New("frame declares a payload longer than the maximum message size")

// errGuardClosed is returned for writes after the guard's close frame.
var errGuardClosed = errors.New("connection closed after an oversized frame")

// closeTooLargeReason is the reason of the guard's close frame: the same
// text gws sends when it refuses a message assembled from fragments as too
// large, so that a client sees one reason for one condition.
const closeTooLargeReason = "gws: message too large"

// frame header states of the guard.
const (
	stHead    = iota // byte 0: FIN, RSV, opcode
	stLen            // byte 1: MASK, 7-bit length
	stExt            // 2 or 8 bytes of extended length
	stMask           // 4 mask-key bytes
	stPayload        // payload bytes to skip
	stRefused        // a frame was refused; reads fail
)

// frameGuard is the net.Conn gws reads from and writes to.
type frameGuard struct {
	net.Conn
	max          uint64
	writeTimeout time.Duration
	onRefuse     func(declared uint64)
	// pending holds bytes the HTTP server had read past the request
	// before the hijack; they are passed on (and checked) first.
	pending []byte

	// read side: only gws's read loop calls Read.
	state   int
	need    int    // header bytes still expected in stExt or stMask
	masked  bool   // the current frame carries a mask key
	length  uint64 // declared length being assembled
	payload uint64 // payload bytes still to skip

	wmu     sync.Mutex // one frame per Write; guards refused
	refused bool
}

// Read reads from the socket and checks the frame headers in what it read.
func (g *frameGuard) Read(p []byte) (int, error) {
	if g.state == stRefused {
		return 0, ErrFrameTooLarge
	}
	var n int
	var err error
	if len(g.pending) > 0 {
		n = copy(p, g.pending)
		g.pending = g.pending[n:]
		if len(g.pending) == 0 {
			g.pending = nil
		}
	} else {
		n, err = g.Conn.Read(p)
	}
	if ok, at := g.scan(p[:n]); !ok {
		g.refuse()
		return at, ErrFrameTooLarge
	}
	return n, err
}

// scan advances the header state machine over b. It reports false, and how
// many bytes of b may still be handed on, when a frame declares too much.
func (g *frameGuard) scan(b []byte) (bool, int) {
	for i := 0; i < len(b); {
		switch g.state {
		case stPayload:
			rest := uint64(len(b) - i)
			if g.payload > rest {
				g.payload -= rest
				return true, 0
			}
			i += int(g.payload)
			g.payload = 0
			g.state = stHead
		case stHead:
			i++
			g.state = stLen
		case stLen:
			c := b[i]
			i++
			g.masked = c&0x80 != 0
			g.length = 0
			switch l := c & 0x7f; l {
			case 126:
				g.state, g.need = stExt, 2
			case 127:
				g.state, g.need = stExt, 8
			default:
				g.length = uint64(l)
				if !g.headerDone() {
					return false, i - 1
				}
			}
		case stExt:
			g.length = g.length<<8 | uint64(b[i])
			i++
			if g.need--; g.need == 0 && !g.headerDone() {
				return false, i - 1
			}
		case stMask:
			// Skip what is there of the mask key at once.
			k := min(g.need, len(b)-i)
			i += k
			if g.need -= k; g.need == 0 {
				g.startPayload()
			}
		}
	}
	return true, 0
}

// headerDone checks the declared length once it is complete and moves on to
// the mask key or the payload. It reports false for a length over the limit;
// the top bit set (a negative int in gws) is always over it.
func (g *frameGuard) headerDone() bool {
	if g.length > g.max {
		return false
	}
	if g.masked {
		g.state, g.need = stMask, 4
		return true
	}
	g.startPayload()
	return true
}

func (g *frameGuard) startPayload() {
	if g.length == 0 {
		g.state = stHead
		return
	}
	g.state, g.payload = stPayload, g.length
}

// refuse writes the close frame 1009 and makes every later write fail.
func (g *frameGuard) refuse() {
	declared := g.length
	g.state = stRefused
	g.wmu.Lock()
	if !g.refused {
		g.refused = true
		frame := make([]byte, 0, 4+len(closeTooLargeReason))
		frame = append(frame, 0x88, byte(2+len(closeTooLargeReason)), 1009>>8, 1009&0xff)
		frame = append(frame, closeTooLargeReason...)
		if g.writeTimeout > 0 {
			_ = g.Conn.SetWriteDeadline(time.Now().Add(g.writeTimeout))
		}
		_, _ = g.Conn.Write(frame)
	}
	g.wmu.Unlock()
	if g.onRefuse != nil {
		g.onRefuse(declared)
	}
}

// Write writes one frame (gws never splits one over two calls) unless the
// guard has closed the connection.
func (g *frameGuard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.refused {
		return 0, errGuardClosed
	}
	return g.Conn.Write(p)
}

// guardWriter is the http.ResponseWriter handed to gws's Upgrader: its
// Hijack returns the socket wrapped in a frameGuard.
type guardWriter struct {
	http.ResponseWriter
	guard *frameGuard
}

// Hijack implements http.Hijacker.
func (w *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("conn: the response writer cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	g := w.guard
	g.Conn = nc
	// gws drops the returned reader; bytes a client sent right behind its
	// request would be lost with it, so the guard hands them on.
	if k := brw.Reader.Buffered(); k > 0 {
		g.pending, _ = brw.Reader.Peek(k)
		g.pending = append([]byte(nil), g.pending...)
	}
	return g, brw, nil
}
