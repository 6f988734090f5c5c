package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/internal/terminal/screen"
)

// Errors returned by Session and Client methods.
var (
	// ErrDone is returned by operations on a session whose program has exited.
	ErrDone = errors.New("terminal: session has ended")
	// ErrInputBusy is returned by Write when the input queue is full because
	// the program is not reading its input fast enough. Nothing was queued;
	// the caller may retry later or report it.
	ErrInputBusy = errors.New("terminal: input queue is full")
	// ErrInputTooLarge is returned by Write for a single write larger than
	// the whole input queue, which could never be accepted.
	ErrInputTooLarge = errors.New("terminal: input larger than the input queue")
	// ErrInvalidSize is returned for a size outside 1..MaxCols x 1..MaxRows.
	ErrInvalidSize = errors.New("terminal: invalid terminal size")
	// ErrSignalNotAllowed is returned by Signal for signals outside the
	// allowed set.
	ErrSignalNotAllowed = errors.New("terminal: signal not allowed")
	// ErrOffsetAhead is returned by Attach for an offset the program has not
	// printed yet.
	ErrOffsetAhead = errors.New("terminal: offset is beyond the end of output")
	// ErrClientClosed is returned by Next after the client was closed.
	ErrClientClosed = errors.New("terminal: client closed")
)

// Size limits accepted by Start and Resize.
const (
	MaxCols = 1000
	MaxRows = 500
)

// Defaults for zero Options fields.
const (
	DefaultCols            = 80
	DefaultRows            = 24
	DefaultRingSize        = 1 << 20
	DefaultInputQueueBytes = 256 << 10
	DefaultDrainGrace      = 500 * time.Millisecond
	DefaultKillGrace       = 3 * time.Second
	DefaultTerm            = "xterm-256color"
)

// inputChunk is the largest single write to the PTY. Pastes are split so a
// huge paste neither sits in one syscall the session cannot interrupt nor
// overruns the line discipline's 4 KiB canonical-mode buffer in one go.
const inputChunk = 4 << 10

// Options configures Start. Only Argv is required.
type Options struct {
	// Argv is the program and its arguments; Argv[0] is looked up in PATH.
	Argv []string
	// Dir is the working directory; "" means the current one.
	Dir string
	// Env is the environment; nil means this process's environment. TERM is
	// set to DefaultTerm unless Env itself (not the inherited one) sets it.
	Env []string
	// Cols and Rows are the initial size; zero means 80x24.
	Cols, Rows uint16
	// RingSize is how many bytes of recent output are kept for reattaching
	// clients and replays; zero means 1 MiB, smaller than 4 KiB means 4 KiB.
	// The ring starts small and grows to this size as output arrives.
	RingSize int
	// Scrollback is how many lines of history above the screen the
	// session's screen model keeps for snapshots; zero means
	// DefaultScrollback (1000), negative means none. At most
	// screen.MaxScrollback.
	Scrollback int
	// InputQueueBytes bounds input accepted by Write but not yet written to
	// the program; zero means 256 KiB.
	InputQueueBytes int
	// RecordingPath, if set, is where an asciicast v2 recording is written.
	RecordingPath string
	// RecordingMaxBytes caps the recording file size; zero means no cap.
	// Recording stops (the file stays valid) before an event would pass it.
	RecordingMaxBytes int64
	// DrainGrace is how long output may stay silent after the program exited
	// before the session stops waiting for the PTY to drain (it only matters
	// when background children keep the terminal open); zero means 500 ms.
	DrainGrace time.Duration
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// ExitStatus describes how the program ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal number if it was killed by a
	// signal (the shell convention), or -1 if unknown.
	Code int
	// Signal is the name of the killing signal, e.g. "SIGINT", or "".
	Signal string
}

// Stats is a snapshot of a session's counters.
type Stats struct {
	OutputBytes  int64 // bytes read from the PTY, same as Offset
	RingBytes    int   // output bytes currently retained for replay
	InputBytes   int64 // bytes written to the PTY
	InputQueued  int   // bytes accepted by Write and not yet written
	Skips        int64 // times any client fell out of the ring and skipped to a replay
	ModelResyncs int64 // times the screen model fell out of the ring and was rebuilt from it
	Clients      int   // attached clients
	// MaxClientLag is how many bytes of output the furthest-behind attached
	// client has yet to take; one more than the ring behind skips to a
	// replay when it next reads. Clients still owed their first replay
	// are not counted.
	MaxClientLag       int64
	RecordingBytes     int64 // bytes written to the recording file
	RecordingTruncated bool  // the recording stopped early (size cap, slow disk or write error)
}

// Session is a program running in a pseudo-terminal. Its output is read
// continuously, whether or not any client is attached, into a ring that
// clients read from at their own pace.
type Session struct {
	out        *stream
	ptmx       *os.File
	ptmxRaw    syscall.RawConn // ptmx's, for the keystrokes written directly
	cmd        *exec.Cmd
	pid        int
	log        *slog.Logger
	input      *inputQueue
	rec        *recorder
	drainGrace time.Duration

	mu         sync.Mutex // guards the size and orders resize ioctls with their recording
	cols, rows uint16

	inputBytes atomic.Int64
	readBytes  atomic.Int64

	exit       ExitStatus    // written before exited is closed
	exited     chan struct{} // the program has been reaped
	readerDone chan struct{}
	writerDone chan struct{}
	followDone chan struct{}
	done       chan struct{}
	termOnce   sync.Once
}

// Start runs opts.Argv in a new pseudo-terminal. The program is a session
// leader with the terminal as its controlling terminal, so signals and
// hangups reach its whole process group as they would from a real terminal.
func Start(opts Options) (*Session, error) {
	if len(opts.Argv) == 0 || opts.Argv[0] == "" {
		return nil, errors.New("terminal: empty Argv")
	}
	cols, rows := opts.Cols, opts.Rows
	if cols == 0 {
		cols = DefaultCols
	}
	if rows == 0 {
		rows = DefaultRows
	}
	if err := checkSize(cols, rows); err != nil {
		return nil, err
	}
	ring := opts.RingSize
	if ring == 0 {
		ring = DefaultRingSize
	}
	ring = max(ring, minRing)
	inq := opts.InputQueueBytes
	if inq <= 0 {
		inq = DefaultInputQueueBytes
	}
	grace := opts.DrainGrace
	if grace <= 0 {
		grace = DefaultDrainGrace
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	env, term := buildEnv(opts.Env)

	ptmx, tty, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("terminal: open pty: %w", err)
	}
	if err := setWinsize(ptmx, cols, rows); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("terminal: set size: %w", err)
	}

	now := time.Now()
	var rec *recorder
	if opts.RecordingPath != "" {
		if rec, err = newRecorder(opts.RecordingPath, opts.RecordingMaxBytes, cols, rows, term, now, log); err != nil {
			ptmx.Close()
			tty.Close()
			return nil, fmt.Errorf("terminal: recording: %w", err)
		}
	}

	cmd := exec.Command(opts.Argv[0], opts.Argv[1:]...)
	cmd.Dir = opts.Dir
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Setsid+Setctty: the program leads a new session whose controlling
	// terminal is the PTY (fd 0 in the child), so ^C-style signals and the
	// hangup on exit behave as in a real terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	// The child has its own copy of the slave; ours must go so that reading
	// the master returns EIO once the program and its children are gone.
	tty.Close()
	if err != nil {
		ptmx.Close()
		if rec != nil {
			rec.f.Close()
			os.Remove(opts.RecordingPath)
		}
		return nil, fmt.Errorf("terminal: start %q: %w", opts.Argv[0], err)
	}

	scrollback := opts.Scrollback
	switch {
	case scrollback == 0:
		scrollback = DefaultScrollback
	case scrollback < 0:
		scrollback = 0
	}
	out := newStream(ring, defaultInterval(ring))
	out.scr = newFollower(out, cols, rows, scrollback)
	s := &Session{
		out:        out,
		ptmx:       ptmx,
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		log:        log,
		rec:        rec,
		drainGrace: grace,
		cols:       cols,
		rows:       rows,
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		followDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	// SyscallConn fails only for a nil or closed File, which ptmx is not.
	s.ptmxRaw, _ = ptmx.SyscallConn()
	s.input = newInputQueue(inq, s.writeNow)
	if rec != nil {
		go rec.run()
	}
	go s.readLoop()
	go func() {
		defer close(s.followDone)
		s.out.scr.run()
	}()
	go s.writeLoop()
	go s.supervise()
	return s, nil
}

// openPTY opens a PTY pair and returns a master the Go runtime poller can
// wait on. pty.Open hands back a master in blocking mode (its ioctls go
// through File.Fd), and a blocking fd cannot be interrupted by deadlines or
// Close; a non-blocking duplicate can.
func openPTY() (ptmx, tty *os.File, err error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	m.Close()
	if err == nil {
		if err = unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), t, nil
}

// Control runs fn on f's descriptor without File.Fd, which would switch a
// non-blocking descriptor (a PTY master, a terminal with deadlines) to
// blocking mode and disable its deadlines.
func Control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func setWinsize(f *os.File, cols, rows uint16) error {
	return Control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
}

// buildEnv returns the child's environment and its TERM.
func buildEnv(given []string) ([]string, string) {
	if given != nil {
		for i := len(given) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(given[i], "TERM="); ok {
				return given, v
			}
		}
	}
	base := given
	if base == nil {
		base = os.Environ()
	}
	// The inherited TERM describes the server's terminal, not ours.
	env := make([]string, 0, len(base)+1)
	for _, kv := range base {
		if !strings.HasPrefix(kv, "TERM=") {
			env = append(env, kv)
		}
	}
	return append(env, "TERM="+DefaultTerm), DefaultTerm
}

func checkSize(cols, rows uint16) error {
	if cols < 1 || cols > MaxCols || rows < 1 || rows > MaxRows {
		return fmt.Errorf("%w: %dx%d (want 1..%d x 1..%d)", ErrInvalidSize, cols, rows, MaxCols, MaxRows)
	}
	return nil
}

// readLoop is the only reader of the PTY. It never waits on clients or the
// recording, so the program never blocks on output just because nobody is
// watching. It ends at EIO (the slave side is closed and empty) or when the
// supervisor sets a read deadline after the drain grace.
func (s *Session) readLoop() {
	defer close(s.readerDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := s.ptmx.Read(buf)
		if n > 0 {
			s.consume(buf[:n])
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.drainNow(buf)
		} else if !errors.Is(err, syscall.EIO) && !errors.Is(err, io.EOF) {
			s.log.Warn("terminal: pty read failed", "pid", s.pid, "err", err)
		}
		return
	}
}

// drainNow takes whatever is already buffered in the PTY without waiting for
// more. A deadline makes Read fail before looking at the fd, so without this
// bytes the program wrote just before the deadline could be lost.
func (s *Session) drainNow(buf []byte) {
	if err := s.ptmx.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	rc, err := s.ptmx.SyscallConn()
	if err != nil {
		return
	}
	// Bounded: a background child that keeps printing must not keep us here.
	_ = rc.Read(func(fd uintptr) bool {
		for range 64 {
			n, err := unix.Read(int(fd), buf)
			if n <= 0 || err != nil {
				break
			}
			s.consume(buf[:n])
		}
		return true
	})
}

func (s *Session) consume(p []byte) {
	s.readBytes.Add(int64(len(p)))
	// Clients are woken last: a woken pump runs when this goroutine goes
	// back to the PTY, so anything done after the wake delays every echo.
	if s.rec != nil {
		s.rec.output(p)
	}
	s.out.ingest(p)
}

// writeLoop is the single writer of input to the PTY, so concurrent Writes
// never interleave within each other and a program that does not read its
// input only ever blocks this goroutine.
func (s *Session) writeLoop() {
	defer close(s.writerDone)
	for {
		p, ok := s.input.pop()
		if !ok {
			return
		}
		total := len(p)
		for len(p) > 0 {
			n, err := s.ptmx.Write(p[:min(len(p), inputChunk)])
			s.inputBytes.Add(int64(n))
			if err != nil {
				// Usually EIO after the program closed the terminal. The rest
				// of this item is dropped; the session is about to end.
				s.log.Debug("terminal: pty write failed", "pid", s.pid, "err", err)
				break
			}
			p = p[n:]
		}
		s.input.release(total)
	}
}

// supervise reaps the program, waits for its output to drain, then shuts
// everything down in order: clients see EOF only after the last byte, and
// Done is closed only after every goroutine of the session has finished.
func (s *Session) supervise() {
	err := s.cmd.Wait()
	s.exit = exitStatus(s.cmd.ProcessState, err)
	close(s.exited)

	s.awaitDrain()
	s.out.finish()
	<-s.followDone // the model has every byte: snapshots after Done are final

	s.input.close()
	_ = s.ptmx.SetWriteDeadline(time.Now()) // unblock a write the program will never read
	<-s.writerDone
	if s.rec != nil {
		s.rec.close()
	}
	s.ptmx.Close()
	close(s.done)
}

// awaitDrain waits for the reader to see EIO. If background children keep
// the terminal open that never happens, so once output has been silent for
// the drain grace (or at the latest after 10 graces) those children, which
// already ignored the hangup the kernel sent when the program exited, are
// killed, and if the terminal is still held after one more grace the reader
// is stopped.
func (s *Session) awaitDrain() {
	tick := time.NewTicker(s.drainGrace)
	defer tick.Stop()
	hard := time.NewTimer(10 * s.drainGrace)
	defer hard.Stop()
	last := s.readBytes.Load()
wait:
	for {
		select {
		case <-s.readerDone:
			return
		case <-tick.C:
			cur := s.readBytes.Load()
			if cur == last {
				break wait
			}
			last = cur
		case <-hard.C:
			break wait
		}
	}
	_ = unix.Kill(-s.pid, syscall.SIGKILL)
	hard.Reset(s.drainGrace)
	select {
	case <-s.readerDone:
		return
	case <-hard.C:
	}
	_ = s.ptmx.SetReadDeadline(time.Now())
	<-s.readerDone
}

func exitStatus(ps *os.ProcessState, err error) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return ExitStatus{Code: ps.ExitCode()}
}

// Offset returns the number of bytes the program has printed so far, which is
// also the offset the next byte will have.
func (s *Session) Offset() int64 { return s.out.offset() }

// Attach adds a client that reads output starting at offset since.
//
// If since is inside the ring the client gets exactly the bytes from since
// on, with no gap and no duplicate. If since is negative (the client has
// nothing) or older than the ring, the client's first chunk is a Replay from
// the oldest safe boundary in the ring. since greater than Offset is
// ErrOffsetAhead. Attaching after the program ended is allowed: the client
// reads what is left in the ring and then io.EOF.
func (s *Session) Attach(since int64) (*Client, error) { return s.out.attach(since) }

// ReadScreen calls fn with the session's screen model at a safe boundary
// of the output, no older than the output read so far, and the offset it
// shows the screen at. fn must only read m
// (Size, Title, Snapshot, the accessors of read.go) and must not keep it:
// the model is locked while fn runs, so fn should be quick. It waits only
// for the model to reach a safe boundary, or ctx.
func (s *Session) ReadScreen(ctx context.Context, fn func(m *screen.Model, offset int64)) error {
	// Up to date: at or after every byte read so far that ends a sequence.
	return s.out.scr.with(ctx, s.out.safeOffset(), fn)
}

// Clients returns the number of attached clients.
func (s *Session) Clients() int { return s.out.clientCount() }

// Write queues p as input to the program (keystrokes or a paste) and returns
// without waiting for the program to read it. All of p is queued or none:
// ErrInputBusy when the queue is full, ErrInputTooLarge when p could never
// fit, ErrDone after the program exited.
func (s *Session) Write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	select {
	case <-s.exited:
		return ErrDone
	default:
	}
	return s.input.push(p)
}

// writeNow writes what the PTY takes of p at once, never waiting: the
// input queue's direct path for keystrokes.
func (s *Session) writeNow(p []byte) int {
	n := 0
	_ = s.ptmxRaw.Write(func(fd uintptr) bool {
		m, err := unix.Write(int(fd), p)
		for err == unix.EINTR {
			m, err = unix.Write(int(fd), p)
		}
		n = max(m, 0)
		return true // done either way: what was not taken is queued
	})
	s.inputBytes.Add(int64(n))
	return n
}

// Resize sets the terminal size; the kernel sends SIGWINCH to the foreground
// process group. Sizes outside 1..MaxCols x 1..MaxRows are ErrInvalidSize.
func (s *Session) Resize(cols, rows uint16) error {
	if err := checkSize(cols, rows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return ErrDone
	default:
	}
	if err := setWinsize(s.ptmx, cols, rows); err != nil {
		select {
		case <-s.exited: // the PTY is being torn down
			return ErrDone
		default:
			return fmt.Errorf("terminal: resize: %w", err)
		}
	}
	changed := cols != s.cols || rows != s.rows
	s.cols, s.rows = cols, rows
	if changed {
		// The size takes effect after the bytes read so far, for the
		// model and for every client (a Resize chunk at that offset), so
		// all of them see resize and output in the same order. Output
		// still in the kernel's buffer was printed before the resize took
		// effect or is redrawn after SIGWINCH.
		at := s.out.pushResize(cols, rows)
		s.out.scr.resize(at, cols, rows)
	}
	if s.rec != nil {
		s.rec.resize(cols, rows)
	}
	return nil
}

// Size returns the current terminal size.
func (s *Session) Size() (cols, rows uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cols, s.rows
}

// PID returns the process id of the program (also its process group and
// session id).
func (s *Session) PID() int { return s.pid }

var allowedSignals = map[syscall.Signal]bool{
	syscall.SIGINT: true, syscall.SIGTERM: true, syscall.SIGHUP: true,
	syscall.SIGQUIT: true, syscall.SIGKILL: true, syscall.SIGTSTP: true,
	syscall.SIGCONT: true, syscall.SIGUSR1: true, syscall.SIGUSR2: true,
}

// Signal sends sig to the terminal's foreground process group, as pressing
// ^C or ^Z would: with a shell running a job it reaches the job, not the
// shell. Only SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGKILL, SIGTSTP, SIGCONT,
// SIGUSR1 and SIGUSR2 are allowed.
func (s *Session) Signal(sig syscall.Signal) error {
	if !allowedSignals[sig] {
		return fmt.Errorf("%w: %v", ErrSignalNotAllowed, sig)
	}
	select {
	case <-s.exited:
		return ErrDone
	default:
	}
	pgrp := s.foregroundPgrp()
	if err := unix.Kill(-pgrp, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrDone
		}
		return fmt.Errorf("terminal: signal %v: %w", sig, err)
	}
	return nil
}

// foregroundPgrp asks the terminal (TIOCGPGRP on the master) for its
// foreground process group, falling back to the program's own group.
func (s *Session) foregroundPgrp() int {
	pgrp := 0
	err := Control(s.ptmx, func(fd int) error {
		var err error
		pgrp, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		return err
	})
	if err != nil || pgrp <= 0 {
		return s.pid
	}
	return pgrp
}

// signalGroups sends sig to the program's process group and, if different,
// the terminal's foreground group. Errors are ignored: the groups may
// already be gone.
func (s *Session) signalGroups(sig syscall.Signal) {
	_ = unix.Kill(-s.pid, sig)
	if fg := s.foregroundPgrp(); fg != s.pid {
		_ = unix.Kill(-fg, sig)
	}
}

// Done is closed when the session has fully ended: the program exited, its
// output was drained into the ring, the recording was flushed and every
// goroutine of the session has returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// ExitStatus returns how the program ended; ok is false while it runs.
// It is valid as soon as a client's Next has returned io.EOF.
func (s *Session) ExitStatus() (st ExitStatus, ok bool) {
	select {
	case <-s.exited:
		return s.exit, true
	default:
		return ExitStatus{}, false
	}
}

// Terminate ends the program and waits for the session to be Done: SIGHUP
// and SIGTERM to its process group and the terminal's foreground group (what
// closing a terminal window does), then, if the session has not ended within
// grace, SIGKILL to the same groups (which also reaches children that outlive
// the program). Output printed while dying is still drained. Calling it on an
// ended session returns at once.
func (s *Session) Terminate(grace time.Duration) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.termOnce.Do(func() {
		s.signalGroups(syscall.SIGHUP)
		s.signalGroups(syscall.SIGCONT) // a stopped job must run to act on the signals
		s.signalGroups(syscall.SIGTERM)
	})
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
	}
	// Also reaches children left in the group after the program itself
	// exited, so the drain ends promptly.
	s.signalGroups(syscall.SIGKILL)
	<-s.done
	return nil
}

// Close is Terminate(DefaultKillGrace). It is safe to call more than once and
// concurrently.
func (s *Session) Close() error { return s.Terminate(DefaultKillGrace) }

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() Stats {
	st := Stats{
		OutputBytes:  s.out.offset(),
		RingBytes:    s.out.ringLen(),
		InputBytes:   s.inputBytes.Load(),
		InputQueued:  s.input.queued(),
		Skips:        s.out.skips.Load(),
		ModelResyncs: s.out.scr.resyncs.Load(),
		Clients:      s.out.clientCount(),
		MaxClientLag: s.out.maxLag(),
	}
	if s.rec != nil {
		st.RecordingBytes = s.rec.written.Load()
		st.RecordingTruncated = s.rec.truncated.Load()
	}
	return st
}
