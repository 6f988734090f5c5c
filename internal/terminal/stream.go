package terminal

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// MaxChunkSize is the largest Data a single Client.Next returns. It bounds
// the transient copy a reader makes and keeps frames a transport builds from
// a chunk at a reasonable size.
const MaxChunkSize = 64 << 10

// Chunk is a run of program output handed to a Client.
//
// Chunks of one client are contiguous (each starts at the previous End) except
// where a chunk has Replay set. A Replay chunk marks a discontinuity: the
// client is not continuing from where it was (it attached without a usable
// offset, or it fell out of the ring). The consumer should reset its terminal,
// write Prefix, then Data; later chunks continue from the Replay chunk's End.
type Chunk struct {
	// Offset is the absolute stream offset of Data[0]; offset 0 is the first
	// byte the program ever printed.
	Offset int64
	// Data is a copy owned by the caller, at most MaxChunkSize bytes. It may
	// be empty only in a Replay chunk. It does not end inside a UTF-8
	// character unless the output itself ends there: the incomplete tail is
	// held back until the rest of the character has been read.
	Data []byte
	// Replay reports that Data starts at a safe boundary chosen by the
	// session rather than where the client asked or left off.
	Replay bool
	// Prefix, set only on Replay chunks, holds escape sequences that bring a
	// freshly reset terminal into the modes (alternate screen, cursor
	// visibility, mouse and paste modes, cursor keys) in force at Offset.
	// In a session (which keeps a screen model) it is the model's snapshot
	// instead: the whole screen, scrollback, modes and cursor at Offset, to
	// be written to a terminal of Cols x Rows; Data is then empty.
	Prefix []byte
	// Resize reports that the terminal's size changed to Cols x Rows at
	// Offset: resize before writing later chunks. Data is then empty.
	Resize bool
	// Cols and Rows, set on snapshot Replay chunks and Resize chunks, are
	// the size of the terminal the snapshot was taken of, or the new size.
	Cols, Rows uint16
}

// End returns the offset just past Data, i.e. the offset to resume from.
func (c Chunk) End() int64 { return c.Offset + int64(len(c.Data)) }

// checkpoint is a safe replay boundary: an offset at which the parser is in
// ground state at a character boundary, with the modes in force there.
type checkpoint struct {
	off   int64
	modes modeSet
}

// cpQueue is a fixed-capacity FIFO of checkpoints in increasing offset order.
// Its capacity is sized so that every checkpoint still inside the ring fits;
// when full, the oldest (already outside the ring) is overwritten.
type cpQueue struct {
	buf     []checkpoint
	head, n int
}

func (q *cpQueue) push(c checkpoint) {
	if q.n == len(q.buf) {
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = c
	q.n++
}

// dropBefore forgets checkpoints whose offset has left the ring.
func (q *cpQueue) dropBefore(off int64) {
	for q.n > 0 && q.buf[q.head].off < off {
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
}

// lastIn returns the offset of the last checkpoint in (after, upTo].
func (q *cpQueue) lastIn(after, upTo int64) (int64, bool) {
	for i := q.n - 1; i >= 0; i-- {
		c := q.buf[(q.head+i)%len(q.buf)]
		if c.off <= after {
			return 0, false
		}
		if c.off <= upTo {
			return c.off, true
		}
	}
	return 0, false
}

// has reports whether off is a checkpoint.
func (q *cpQueue) has(off int64) bool {
	c, ok := q.lastIn(off-1, off)
	return ok && c == off
}

func (q *cpQueue) first() (checkpoint, bool) {
	if q.n == 0 {
		return checkpoint{}, false
	}
	return q.buf[q.head], true
}

// stream is the output half of a session, independent of any PTY so that it
// can be fed synthetic data in tests: a ring of the last bytes addressed by
// absolute offset, the VT parser and its checkpoints, and the attached
// clients.
//
// Exactly one goroutine (the PTY reader) calls ingest and finish. Clients
// only take the read lock to copy out of the ring, for at most MaxChunkSize
// bytes, so the writer never waits on how fast a client consumes: a client's
// backlog is just its cursor, and data it has not read yet stays in (and
// eventually falls out of) the shared ring.
type stream struct {
	// Owned by the ingesting goroutine, no lock needed.
	vt       vtParser
	interval int64        // minimum distance between recorded checkpoints
	lastCP   int64        // offset of the last recorded checkpoint
	wend     int64        // ingester's copy of end
	pending  []checkpoint // checkpoints found in the chunk being ingested
	lastSafe checkpoint   // latest safe position seen by the parser
	maxSize  int          // ring capacity once fully grown

	mu       sync.RWMutex
	buf      []byte // ring storage; grows up to maxSize, then wraps
	end      int64  // total bytes ingested = offset of the next byte
	cps      cpQueue
	last     checkpoint // latest safe position, published
	finished bool       // no more bytes will come
	clients  map[*Client]struct{}

	// scr, if set, is the screen model following the ring: replays are then
	// snapshots of it rather than raw bytes from a checkpoint.
	scr *follower
	// followFrom is the offset of the next byte the screen model will read;
	// backlog holds the bytes from there that left the ring before it read
	// them; followLost: they did not fit and the model must rebuild.
	followFrom int64
	backlog    []byte
	followLost bool
	// resizes are the size changes still inside the ring (or the latest),
	// in stream order, delivered to clients at their offsets.
	resizes []streamResize
	rseq    int64 // sequence number of the next resize

	skips atomic.Int64
}

// streamResize is a size change at an offset of the stream.
type streamResize struct {
	seq        int64
	at         int64
	cols, rows uint16
}

// pushResize records a size change after the bytes ingested so far and
// returns its offset. At most maxResizeQueue are kept: older ones have
// either left the ring or been delivered to every client that keeps up.
func (s *stream) pushResize(cols, rows uint16) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.startLocked()
	i := 0
	for i < len(s.resizes) && s.resizes[i].at < start {
		i++
	}
	s.resizes = append(s.resizes[:0], s.resizes[i:]...)
	if len(s.resizes) >= maxResizeQueue {
		s.resizes = append(s.resizes[:0], s.resizes[1:]...)
	}
	s.resizes = append(s.resizes, streamResize{seq: s.rseq, at: s.end, cols: cols, rows: rows})
	s.rseq++
	s.wakeLocked()
	return s.end
}

// firstResizeLocked returns the index of the first resize a client at
// cursor with next sequence number rseq still has to get, or -1.
func (s *stream) firstResizeLocked(rseq int64) int {
	for i, r := range s.resizes {
		if r.seq >= rseq {
			return i
		}
	}
	return -1
}

// seqAfterLocked is the sequence number of the first resize after offset
// off (strictly after when strict, else at or after).
func (s *stream) seqAfterLocked(off int64, strict bool) int64 {
	for _, r := range s.resizes {
		if r.at > off || !strict && r.at == off {
			return r.seq
		}
	}
	return s.rseq
}

// safeOffset returns the latest safe boundary the parser has seen.
func (s *stream) safeOffset() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last.off
}

// minRing is the smallest ring a session uses; smaller sizes would leave
// almost no room between checkpoints.
const minRing = 4 << 10

// initialRing is the size the ring starts at: idle sessions never pay for
// the full ring.
const initialRing = 64 << 10

// newStream returns a stream with a ring of size bytes and a checkpoint
// every interval bytes (or at the first safe offset after that). Offset 0 is
// a checkpoint: a terminal that has printed nothing is in its default state.
func newStream(size int, interval int64) *stream {
	if interval < 1 {
		interval = 1
	}
	ncp := int64(size)/interval + 2
	s := &stream{
		interval: interval,
		maxSize:  size,
		buf:      make([]byte, min(size, initialRing)),
		cps:      cpQueue{buf: make([]checkpoint, ncp)},
		clients:  make(map[*Client]struct{}),
	}
	s.cps.push(checkpoint{})
	return s
}

// defaultInterval spaces checkpoints 4 KiB apart (a few hundred per MiB of
// ring, 16 bytes each) but keeps at least 16 of them in small rings.
func defaultInterval(size int) int64 {
	return max(64, min(4<<10, int64(size)/16))
}

// scan runs the parser over p (whose first byte is at offset s.wend) and
// collects checkpoints into s.pending. Plain ASCII is skipped eight bytes at
// a time; every position inside such a run is safe with unchanged modes, so
// only its end needs recording.
func (s *stream) scan(p []byte) {
	v := &s.vt
	base := s.wend
	for i := 0; i < len(p); {
		if v.safe() {
			j := i + plainRun(p[i:])
			if j > i {
				s.safeAt(base + int64(j))
			}
			if j == len(p) {
				break
			}
			i = j
		}
		v.step(p[i])
		i++
		if v.safe() {
			s.safeAt(base + int64(i))
		}
	}
}

func (s *stream) safeAt(off int64) {
	s.lastSafe = checkpoint{off: off, modes: s.vt.modes}
	if off-s.lastCP >= s.interval {
		s.pending = append(s.pending, s.lastSafe)
		s.lastCP = off
	}
}

// ingest appends program output to the ring, records checkpoints and wakes
// clients. Parsing happens before taking the lock so clients wait only for
// the copy.
func (s *stream) ingest(p []byte) {
	if len(p) == 0 {
		return
	}
	s.pending = s.pending[:0]
	s.scan(p)
	s.wend += int64(len(p))

	s.mu.Lock()
	if s.scr != nil {
		s.keepForFollowerLocked(p)
	}
	s.writeLocked(p)
	for _, c := range s.pending {
		s.cps.push(c)
	}
	s.cps.dropBefore(s.startLocked())
	s.last = s.lastSafe
	s.wakeLocked()
	s.mu.Unlock()
}

// writeLocked copies p into the ring. Until the ring has grown to its full
// size no byte has been overwritten, so the data is linear in buf[:end] and
// growing is a plain copy.
func (s *stream) writeLocked(p []byte) {
	s.growLocked(len(p))
	size := int64(len(s.buf))
	if int64(len(p)) > size {
		s.end += int64(len(p)) - size
		p = p[int64(len(p))-size:]
	}
	pos := s.end % size
	n := copy(s.buf[pos:], p)
	copy(s.buf, p[n:])
	s.end += int64(len(p))
}

// growLocked grows the ring (up to maxSize) so that n more bytes fit
// without overwriting any, as far as it can.
func (s *stream) growLocked(n int) {
	if need := s.end + int64(n); need > int64(len(s.buf)) && len(s.buf) < s.maxSize {
		size := min(int64(s.maxSize), max(2*int64(len(s.buf)), need))
		nb := make([]byte, size)
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
}

// maxFollowBacklog bounds the bytes kept for a screen model that has
// fallen behind the ring; beyond it the model is rebuilt from the ring.
const maxFollowBacklog = 4 << 20

// keepForFollowerLocked saves, before p is written, the bytes the screen
// model has not read yet and that writing p pushes out of the ring (or
// that skip it, when p is larger than the ring), so that a model slower
// than a flood for a moment loses nothing. It copies, never waits; up to
// maxFollowBacklog bytes, after which the model must rebuild.
func (s *stream) keepForFollowerLocked(p []byte) {
	if s.followLost {
		return
	}
	s.growLocked(len(p))
	newStart := s.end + int64(len(p)) - int64(len(s.buf))
	from := s.followFrom + int64(len(s.backlog))
	if newStart <= from {
		return
	}
	if int64(len(s.backlog))+newStart-from > maxFollowBacklog {
		s.followLost = true
		s.backlog = nil
		return
	}
	// [from, newStart): first what is in the ring, then the head of p.
	if ringEnd := min(newStart, s.end); from < ringEnd {
		i := len(s.backlog)
		s.backlog = append(s.backlog, make([]byte, ringEnd-from)...)
		s.readLocked(from, s.backlog[i:])
		from = ringEnd
	}
	if from < newStart {
		s.backlog = append(s.backlog, p[from-s.end:newStart-s.end]...)
	}
}

// startLocked is the oldest offset still in the ring.
func (s *stream) startLocked() int64 {
	return max(0, s.end-int64(len(s.buf)))
}

// readLocked copies the ring bytes starting at offset off into dst; the
// caller guarantees [off, off+len(dst)) is inside the ring.
func (s *stream) readLocked(off int64, dst []byte) {
	pos := off % int64(len(s.buf))
	n := copy(dst, s.buf[pos:])
	copy(dst[n:], s.buf)
}

// boundaryLocked returns the earliest known safe boundary still in the ring.
func (s *stream) boundaryLocked() (checkpoint, bool) {
	start := s.startLocked()
	if c, ok := s.cps.first(); ok && c.off >= start {
		return c, true
	}
	if s.last.off >= start {
		return s.last, true
	}
	// The whole ring is the inside of one sequence (say a giant unterminated
	// OSC); the next safe position will come with more output.
	return checkpoint{}, false
}

func (s *stream) wakeLocked() {
	if s.scr != nil {
		s.scr.wake()
	}
	for c := range s.clients {
		c.wake()
	}
}

// finish marks the end of output: clients get the remaining bytes then io.EOF.
func (s *stream) finish() {
	s.mu.Lock()
	s.finished = true
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *stream) offset() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.end
}

// attach registers a client. Registration and the cursor are set under the
// same lock ingest takes, so the client sees every byte after since exactly
// once.
func (s *stream) attach(since int64) (*Client, error) {
	c := &Client{s: s, notify: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if since > s.end {
		return nil, ErrOffsetAhead
	}
	if since >= 0 && since >= s.startLocked() {
		c.cursor.Store(since)
		c.rseq = s.seqAfterLocked(since, false)
	} else {
		c.replay = true
		c.cursor.Store(-1)
	}
	s.clients[c] = struct{}{}
	return c, nil
}

// Client is one reader of a session's output with its own cursor. Clients
// are pulled from, never pushed to: the session only signals that more data
// exists, so a slow client costs a cursor and a one-slot channel no matter
// how far behind it is.
//
// Next must not be called from two goroutines at once; Close, Offset, Skips
// and Notify may be called from anywhere. Close a client when its consumer
// goes away: until then the session counts it and keeps it registered.
type Client struct {
	s      *stream
	notify chan struct{}
	closed atomic.Bool
	cursor atomic.Int64 // next offset to return; -1 until a replay has started
	skips  atomic.Int64

	mu     sync.Mutex // serialises Next
	replay bool       // the next chunk starts with a replay (guarded by mu)
	rseq   int64      // sequence number of the next resize to deliver (guarded by mu)
	snap   []byte     // snapshot buffer, reused (guarded by mu)

	resnap atomic.Int64 // if > 0, send a snapshot at or after offset resnap-1
}

// Resnapshot makes the client's next chunk a snapshot of the screen (in a
// session) taken at or after the output read so far: for a client that
// resized the terminal and keeps its own size rather than following
// Resize chunks, so that it is redrawn at the size it asked for.
func (c *Client) Resnapshot() {
	if c.s.scr == nil {
		return
	}
	c.resnap.Store(c.s.safeOffset() + 1)
	c.wake()
}

func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default: // a signal is already pending; one is enough
	}
}

// Notify returns a channel that receives a value (non-blocking, coalesced)
// whenever new output or the end of output may be available. Next already
// waits on it; it is exposed for transports that multiplex several sources
// in one select.
func (c *Client) Notify() <-chan struct{} { return c.notify }

// Offset returns the offset of the next byte the client will receive, or -1
// if it is waiting for a replay to begin.
func (c *Client) Offset() int64 { return c.cursor.Load() }

// Skips returns how many times this client fell out of the ring because it
// read too slowly and was moved forward to a replay.
func (c *Client) Skips() int64 { return c.skips.Load() }

// Close detaches the client; a Next in progress returns ErrClientClosed.
// Closing twice is harmless.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.s.mu.Lock()
	delete(c.s.clients, c)
	c.s.mu.Unlock()
	c.wake()
	return nil
}

// Next returns the next chunk of output, waiting until there is some. After
// the session has ended and every byte was returned it returns io.EOF.
// It returns ctx.Err() if ctx ends first and ErrClientClosed after Close.
//
// Slow-client policy: if the client's cursor has fallen out of the ring the
// missed bytes are gone, so instead of a gap it receives a Replay chunk, and
// Skips is incremented. In a session the Replay is a snapshot of the screen
// model at an exact offset (Prefix, Cols, Rows), followed by the bytes from
// that offset on; the same happens after the model's size has changed, so
// that every client is redrawn at the new size. Without a model (streams in
// tests) the Replay starts at the oldest safe boundary in the ring.
func (c *Client) Next(ctx context.Context) (Chunk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed.Load() {
			return Chunk{}, ErrClientClosed
		}
		minOff := int64(0)
		if r := c.resnap.Swap(0); r > 0 {
			c.replay, minOff = true, r-1
		}
		ch, ok, err := c.s.next(c)
		if !ok && err == nil && c.replay && c.s.scr != nil {
			return c.snapshot(ctx, minOff)
		}
		if ok || err != nil {
			return ch, err
		}
		select {
		case <-ctx.Done():
			return Chunk{}, ctx.Err()
		case <-c.notify:
		}
	}
}

// next produces the client's next chunk if one is available (ok), io.EOF at
// the end, or neither when the client must wait. Called with c.mu held.
func (s *stream) next(c *Client) (ch Chunk, ok bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur := c.cursor.Load()
	if !c.replay && cur < s.startLocked() {
		c.replay = true
		c.skips.Add(1)
		s.skips.Add(1)
	}
	if c.replay && s.scr != nil {
		return Chunk{}, false, nil // Next takes a snapshot, outside this lock
	}
	if c.replay {
		b, found := s.boundaryLocked()
		if !found {
			if s.finished { // no safe place will ever come
				c.replay = false
				c.cursor.Store(s.end)
				return Chunk{}, false, io.EOF
			}
			return Chunk{}, false, nil
		}
		c.replay = false
		cur = b.off
		c.rseq = s.seqAfterLocked(cur, false)
		ch.Replay = true
		ch.Prefix = b.modes.prefix()
	}
	limit := s.end
	if !ch.Replay {
		if i := s.firstResizeLocked(c.rseq); i >= 0 {
			r := s.resizes[i]
			if r.at <= cur {
				c.rseq = r.seq + 1
				return Chunk{Offset: cur, Data: []byte{}, Resize: true, Cols: r.cols, Rows: r.rows}, true, nil
			}
			limit = r.at
		}
	}
	n := min(limit-cur, MaxChunkSize)
	if n == 0 && !ch.Replay {
		if s.finished {
			return Chunk{}, false, io.EOF
		}
		return Chunk{}, false, nil
	}
	data := make([]byte, n)
	s.readLocked(cur, data)
	if more := !s.finished || cur+n < s.end; more {
		// Hold back a character whose remaining bytes have not been read
		// yet, so text transports can send each chunk as valid UTF-8.
		data = data[:completeUTF8(data)]
		if len(data) == 0 && !ch.Replay {
			return Chunk{}, false, nil
		}
	}
	ch.Offset = cur
	ch.Data = data
	c.cursor.Store(cur + int64(len(data)))
	return ch, true, nil
}

// snapshot makes the client's next chunk a snapshot of the screen model.
// Called with c.mu held; it waits only for the model to reach a safe
// boundary.
func (c *Client) snapshot(ctx context.Context, minOff int64) (Chunk, error) {
	// The client continues from the snapshot's offset: it must still be in
	// the ring, or the client would fall behind again at once (the model
	// may be behind, reading bytes kept aside for it).
	c.s.mu.RLock()
	minOff = max(minOff, c.s.startLocked())
	c.s.mu.RUnlock()
	snap, off, cols, rows, err := c.s.scr.snapshot(ctx, minOff, c.snap[:0])
	if err != nil {
		// Try again on the next call.
		c.resnap.CompareAndSwap(0, minOff+1)
		return Chunk{}, err
	}
	// Keep a buffer of a usual size for the next one; the chunk gets a copy.
	if cap(snap) <= 256<<10 {
		c.snap = snap
	}
	c.replay = false
	c.cursor.Store(off)
	// The snapshot has the size in force at off: later sizes are delivered.
	// A resize at exactly off is in the stream before the model hears of
	// it (Session.Resize), so the model may not have applied it yet: then
	// the snapshot's size is not the resize's, and it is delivered too.
	c.s.mu.RLock()
	c.rseq = c.s.seqAfterLocked(off, true)
	for i := len(c.s.resizes) - 1; i >= 0; i-- {
		if r := c.s.resizes[i]; r.at <= off {
			if r.at == off && (r.cols != cols || r.rows != rows) {
				c.rseq = c.s.seqAfterLocked(off, false)
			}
			break
		}
	}
	c.s.mu.RUnlock()
	return Chunk{Offset: off, Data: []byte{}, Replay: true, Prefix: append([]byte(nil), snap...), Cols: cols, Rows: rows}, nil
}

// ringLen returns how many output bytes the ring currently retains.
func (s *stream) ringLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(s.end - s.startLocked())
}

// maxLag returns how far the furthest-behind client's cursor is from the
// end, counting only clients whose replay has started.
func (s *stream) maxLag() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var lag int64
	for c := range s.clients {
		if cur := c.cursor.Load(); cur >= 0 {
			lag = max(lag, s.end-cur)
		}
	}
	return lag
}

func (s *stream) clientCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.clients)
}
