package terminal

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/protocol"
)

// recordQueueLimit bounds the output waiting for the recording goroutine.
// If the disk cannot keep up with this much backlog the recording is cut
// off there (and a warning logged) rather than slowing the PTY reader, which
// must never block: the session matters more than its recording.
const recordQueueLimit = 4 << 20

// The recorder is woken when recordWakeBytes are queued, or recordDelay
// after the first event of a batch, not for every chunk: a goroutine woken
// for each keystroke's echo would run before the client's pump on the PTY
// reader's processor and delay the echo by its file write (a scheduler
// trace of the echo benchmark put it at ~3 us each, and it woke for every
// byte typed). The events keep the time they happened at.
const (
	recordWakeBytes = 256 << 10
	recordDelay     = 20 * time.Millisecond
)

type recEvent struct {
	at   time.Duration
	kind byte // 'o' output, 'r' resize
	data []byte
}

// recorder writes an asciicast v2 file from its own goroutine.
type recorder struct {
	log   *slog.Logger
	path  string
	start time.Time
	f     *os.File
	w     *bufio.Writer
	max   int64 // 0 = unlimited

	// Owned by the recording goroutine.
	carry   []byte // incomplete UTF-8 tail held back for the next event
	lastAt  time.Duration
	stopped bool // size cap reached
	line    []byte

	written   atomic.Int64
	truncated atomic.Bool // cap reached or queue overflowed: the file ends early

	mu      sync.Mutex
	queue   []recEvent
	queued  int
	dropped bool
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	timer   *time.Timer // wakes the goroutine recordDelay after a batch starts
}

// newRecorder creates the file and writes the header synchronously so that a
// bad path fails Start, and so the file is valid from the first moment.
func newRecorder(path string, maxBytes int64, cols, rows uint16, term string, start time.Time, log *slog.Logger) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	r := &recorder{
		log:   log,
		path:  path,
		start: start,
		f:     f,
		w:     bufio.NewWriterSize(f, 64<<10),
		max:   maxBytes,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	r.timer = time.AfterFunc(time.Hour, r.signal)
	r.timer.Stop()
	hdr, err := json.Marshal(struct {
		Version   int               `json:"version"`
		Width     uint16            `json:"width"`
		Height    uint16            `json:"height"`
		Timestamp int64             `json:"timestamp"`
		Env       map[string]string `json:"env"`
	}{2, cols, rows, start.Unix(), map[string]string{"TERM": term}})
	if err != nil {
		f.Close()
		return nil, err
	}
	hdr = append(hdr, '\n')
	// The header is written even if it alone exceeds the cap: without it the
	// file would not be asciicast at all.
	if _, err := r.w.Write(hdr); err == nil {
		err = r.w.Flush()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	r.written.Store(int64(len(hdr)))
	return r, nil
}

// output queues program output; p is copied. Called by the PTY reader.
func (r *recorder) output(p []byte) {
	r.push(recEvent{at: time.Since(r.start), kind: 'o', data: append([]byte(nil), p...)})
}

// resize queues a resize event.
func (r *recorder) resize(cols, rows uint16) {
	d := strconv.AppendUint(nil, uint64(cols), 10)
	d = append(d, 'x')
	d = strconv.AppendUint(d, uint64(rows), 10)
	r.push(recEvent{at: time.Since(r.start), kind: 'r', data: d})
}

func (r *recorder) push(ev recEvent) {
	r.mu.Lock()
	if r.closed || r.dropped {
		r.mu.Unlock()
		return
	}
	if r.queued+len(ev.data) > recordQueueLimit {
		// Dropping a piece in the middle would corrupt playback, so the
		// recording ends here; what is already queued is still written.
		r.dropped = true
		r.truncated.Store(true)
		r.mu.Unlock()
		r.log.Warn("terminal: recording cannot keep up, stopping it", "path", r.path, "queued_bytes", r.queued)
		return
	}
	r.queue = append(r.queue, ev)
	r.queued += len(ev.data)
	first, full := len(r.queue) == 1, r.queued >= recordWakeBytes
	r.mu.Unlock()
	switch {
	case full:
		r.signal()
	case first:
		r.timer.Reset(recordDelay)
	}
}

// signal wakes the recording goroutine.
func (r *recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run is the recording goroutine. It writes queued events in batches and
// flushes whenever it catches up, so the file on disk lags the session only
// while output is streaming.
func (r *recorder) run() {
	defer close(r.done)
	var batch []recEvent
	for {
		r.mu.Lock()
		batch, r.queue = r.queue, batch[:0]
		closed := r.closed
		r.mu.Unlock()

		if len(batch) == 0 {
			if closed {
				r.finish()
				return
			}
			r.flush()
			<-r.wake
			continue
		}
		n := 0
		for i := range batch {
			r.write(batch[i])
			n += len(batch[i].data)
			batch[i] = recEvent{}
		}
		r.mu.Lock()
		r.queued -= n
		r.mu.Unlock()
	}
}

// close stops accepting events, writes what is queued, flushes and closes
// the file, and waits for all of it.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.timer.Stop()
	r.signal()
	<-r.done
}

func (r *recorder) write(ev recEvent) {
	r.lastAt = ev.at
	data := ev.data
	if ev.kind == 'o' {
		if len(r.carry) > 0 {
			data = append(r.carry, data...)
			r.carry = nil
		}
		k := completeUTF8(data)
		if k < len(data) {
			r.carry = append([]byte(nil), data[k:]...)
		}
		data = data[:k]
		if len(data) == 0 {
			return
		}
	}
	r.emit(ev.at, ev.kind, data)
}

// emit appends one event line unless that would pass the size cap.
func (r *recorder) emit(at time.Duration, kind byte, data []byte) {
	if r.stopped {
		return
	}
	b := r.line[:0]
	b = append(b, '[')
	b = strconv.AppendFloat(b, at.Seconds(), 'f', 6, 64)
	b = append(b, ", \""...)
	b = append(b, kind)
	b = append(b, "\", "...)
	b = protocol.AppendString(b, data)
	b = append(b, "]\n"...)
	r.line = b
	if r.max > 0 && r.written.Load()+int64(len(b)) > r.max {
		r.stopped = true
		r.truncated.Store(true)
		r.log.Info("terminal: recording reached its size cap", "path", r.path, "max_bytes", r.max)
		return
	}
	if _, err := r.w.Write(b); err != nil {
		r.stopped = true
		r.truncated.Store(true)
		r.log.Warn("terminal: recording write failed, stopping it", "path", r.path, "err", err)
		return
	}
	r.written.Add(int64(len(b)))
}

func (r *recorder) flush() {
	if err := r.w.Flush(); err != nil && !r.stopped {
		r.stopped = true
		r.truncated.Store(true)
		r.log.Warn("terminal: recording flush failed, stopping it", "path", r.path, "err", err)
	}
}

// finish writes a held-back tail (the program ended mid-character: it is
// emitted as U+FFFD), flushes and closes the file.
func (r *recorder) finish() {
	if len(r.carry) > 0 {
		r.emit(r.lastAt, 'o', r.carry)
		r.carry = nil
	}
	r.flush()
	if err := r.f.Close(); err != nil {
		r.log.Warn("terminal: closing recording failed", "path", r.path, "err", err)
	}
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside an incomplete UTF-8 sequence. Only the last three bytes can
// start one; invalid bytes count as complete (they become U+FFFD).
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
