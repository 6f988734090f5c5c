package terminal

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/tether-dev/tether/internal/terminal/screen"
)

// DefaultScrollback is how many lines of history a session's screen model
// keeps above the screen when Options.Scrollback is zero.
const DefaultScrollback = 1000

// maxResizeQueue bounds the resizes waiting for the model to reach their
// offset; beyond it the newest size replaces the last one queued.
const maxResizeQueue = 64

// resizeEvent is a resize at a point of the output stream: the model applies
// it once it has been fed every byte before at.
type resizeEvent struct {
	at         int64
	cols, rows uint16
}

// follower keeps a screen model fed with the session's output. It reads the
// ring like a client, with its own offset, on its own goroutine: the PTY
// reader never waits for it. Bytes that leave the ring before it read them
// are copied aside by the reader into a backlog of up to maxFollowBacklog
// bytes (a copy, not a wait), so a model slower than a flood for a moment
// loses nothing. Only if it falls further behind than that does it rebuild
// the model from the oldest safe boundary still in the ring (the screen is
// then as exact as a replay of the ring can make it) and count a resync.
//
// The model is fed only up to safe boundaries known to the stream's parser
// (ground state, between characters), so whenever the follower is "at a
// safe point" its offset is one a client can continue from after a
// snapshot.
type follower struct {
	s          *stream
	notify     chan struct{}
	scrollback int

	mu      sync.Mutex // guards everything below; held while feeding one chunk or snapshotting
	model   *screen.Model
	off     int64           // offset of the next byte the model will get
	safe    bool            // off is a safe boundary (or no more output will come)
	reqs    []*modelRequest // readers waiting for a safe boundary
	resizes []resizeEvent   // in offset order, not yet applied
	done    bool            // the stream has ended and every byte was fed

	resyncs atomic.Int64
}

func newFollower(s *stream, cols, rows uint16, scrollback int) *follower {
	f := &follower{
		s:          s,
		notify:     make(chan struct{}, 1),
		scrollback: scrollback,
		model:      screen.New(int(cols), int(rows), scrollback),
		safe:       true,
	}
	return f
}

func (f *follower) wake() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// resize queues a resize taking effect after the byte at offset at-1.
func (f *follower) resize(at int64, cols, rows uint16) {
	f.mu.Lock()
	if n := len(f.resizes); n >= maxResizeQueue {
		f.resizes[n-1].cols, f.resizes[n-1].rows = cols, rows
	} else {
		f.resizes = append(f.resizes, resizeEvent{at: at, cols: cols, rows: rows})
	}
	f.mu.Unlock()
	f.wake()
}

// setSafe records whether off is a safe boundary and, if it is, serves
// the readers waiting for one. Called with mu held.
func (f *follower) setSafe(safe bool) {
	f.safe = safe
	f.serveLocked()
}

// applyResizes applies queued resizes that are due at the model's offset.
// Called with mu held.
func (f *follower) applyResizes() {
	for len(f.resizes) > 0 && f.resizes[0].at <= f.off {
		r := f.resizes[0]
		f.resizes = f.resizes[1:]
		if c, rw := f.model.Size(); c != int(r.cols) || rw != int(r.rows) {
			f.model.Resize(int(r.cols), int(r.rows))
		}
	}
	if len(f.resizes) == 0 {
		f.resizes = f.resizes[:0:cap(f.resizes)]
	}
}

// run feeds the model until the stream has ended and been fed completely.
func (f *follower) run() {
	buf := make([]byte, MaxChunkSize)
	for {
		f.mu.Lock()
		f.applyResizes()
		f.serveLocked()
		limit := int64(-1)
		if len(f.resizes) > 0 {
			limit = f.resizes[0].at
		}
		off := f.off
		f.mu.Unlock()

		r := f.s.followRead(off, limit, buf)
		f.mu.Lock()
		switch {
		case r.behind:
			// Our bytes have left the ring: start again from its oldest
			// safe boundary. RIS clears screen and history; the prefix
			// restores the modes in force there.
			f.resyncs.Add(1)
			_, _ = f.model.Write(risSeq)
			_, _ = f.model.Write(r.prefix)
			f.off = r.from
			f.setSafe(true)
		case r.n > 0:
			_, _ = f.model.Write(buf[:r.n])
			f.off += int64(r.n)
			f.setSafe(r.safe)
		case r.finished:
			f.done = true
			f.applyResizes()
			f.setSafe(true)
			f.mu.Unlock()
			return
		default:
			f.setSafe(r.safe)
		}
		progressed := r.behind || r.n > 0
		f.mu.Unlock()
		if !progressed {
			<-f.notify
		}
	}
}

var risSeq = []byte("\x1bc")

// snapshot appends the model's snapshot to dst once the model is at a safe
// boundary at or after minOff (a safe offset of the stream) and returns it
// with the offset it shows the screen at and its size. Resizes due at that
// offset are applied first: sizes delivered to clients at offsets up to it
// are in the snapshot. It waits only for the follower.
func (f *follower) snapshot(ctx context.Context, minOff int64, dst []byte) (snap []byte, off int64, cols, rows uint16, err error) {
	err = f.with(ctx, minOff, func(m *screen.Model, o int64) {
		snap = m.Snapshot(dst)
		c, r := m.Size()
		off, cols, rows = o, uint16(c), uint16(r)
	})
	return snap, off, cols, rows, err
}

// with runs fn with the model at a safe boundary at or after minOff, for
// read-only use: at once if the model is there, else by the follower the
// next time it is (between two reads, so that a model behind a flood does
// not keep a reader waiting until it catches up), or when ctx ends.
func (f *follower) with(ctx context.Context, minOff int64, fn func(m *screen.Model, off int64)) error {
	f.mu.Lock()
	if f.safe && (f.off >= minOff || f.done) {
		f.applyResizes()
		fn(f.model, f.off)
		f.mu.Unlock()
		return nil
	}
	r := &modelRequest{minOff: minOff, fn: fn, done: make(chan struct{})}
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	f.wake()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.reqs {
		if q == r {
			f.reqs = append(f.reqs[:i], f.reqs[i+1:]...)
			return ctx.Err()
		}
	}
	return nil // served meanwhile (fn ran under mu, before we got it)
}

// modelRequest is a reader waiting for the model to reach a safe boundary
// at or after minOff.
type modelRequest struct {
	minOff int64
	fn     func(m *screen.Model, off int64)
	done   chan struct{}
}

// serveLocked runs the waiting requests the model can answer now. Called
// with mu held.
func (f *follower) serveLocked() {
	if !f.safe || len(f.reqs) == 0 {
		return
	}
	f.applyResizes()
	kept := f.reqs[:0]
	for _, r := range f.reqs {
		if f.off >= r.minOff || f.done {
			r.fn(f.model, f.off)
			close(r.done)
		} else {
			kept = append(kept, r)
		}
	}
	clear(f.reqs[len(kept):])
	f.reqs = kept
}

// followResult is what followRead found.
type followResult struct {
	n        int   // bytes copied
	safe     bool  // off+n is a safe boundary
	finished bool  // n == 0 and no more output will come
	behind   bool  // off has left the ring: continue from `from` after writing prefix
	from     int64 // with behind
	prefix   []byte
}

// followRead copies ring bytes from off, up to the latest safe boundary (or
// to the end once the stream has finished) and never past limit (if >= 0),
// into dst.
//
// Bytes that left the ring before the model read them come from the
// stream's backlog (see keepForFollowerLocked); only if those did not fit
// either does the model rebuild from the ring (behind). It takes the
// write lock, since it consumes the backlog: for one copy, as a client's
// read does.
func (s *stream) followRead(off, limit int64, dst []byte) followResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.followLost || off < s.followFrom {
		s.followLost, s.backlog = false, nil
		s.followFrom = max(off, s.startLocked())
		if off < s.startLocked() {
			if b, ok := s.boundaryLocked(); ok {
				s.followFrom = b.off
				return followResult{behind: true, from: b.off, prefix: b.modes.prefix()}
			}
			// No safe boundary in the ring: wait for one (or the end).
			if s.finished {
				s.followFrom = s.end
				return followResult{behind: true, from: s.end}
			}
			return followResult{}
		}
	}
	target := s.last.off
	if s.finished {
		target = s.end
	}
	if limit >= 0 && limit < target {
		target = limit
	}
	n := min(target-off, int64(len(dst)))
	if n <= 0 {
		return followResult{finished: s.finished && off >= s.end, safe: off == s.last.off}
	}
	if len(s.backlog) > 0 {
		n = min(n, int64(len(s.backlog)))
		copy(dst, s.backlog[:n])
		if s.backlog = s.backlog[n:]; len(s.backlog) == 0 {
			s.backlog = nil
		}
	} else {
		// End the read at a safe boundary when there is one in it, so that
		// a snapshot can be taken between reads even while the model is
		// behind a flood.
		if off+n != s.last.off {
			if c, ok := s.cps.lastIn(off, off+n); ok {
				n = c - off
			}
		}
		s.readLocked(off, dst[:n])
	}
	end := off + n
	s.followFrom = end
	return followResult{n: int(n), safe: end == s.last.off || (s.finished && end == s.end) || s.cps.has(end)}
}
