package terminal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/terminal/screen"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startSession starts a session and makes sure it is gone when the test ends.
func startSession(t *testing.T, opts Options) *Session {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start(%q): %v", opts.Argv, err)
	}
	t.Cleanup(func() {
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Errorf("session %q did not close", opts.Argv)
		}
	})
	return s
}

// attach attaches a client that is closed when the test ends.
func attach(t *testing.T, s *Session, since int64) *Client {
	t.Helper()
	return attachFn(t, s.Attach, since)
}

// attachS is attach for a bare stream.
func attachS(t *testing.T, s *stream, since int64) *Client {
	t.Helper()
	return attachFn(t, s.attach, since)
}

func attachFn(t *testing.T, fn func(int64) (*Client, error), since int64) *Client {
	t.Helper()
	c, err := fn(since)
	if err != nil {
		t.Fatalf("Attach(%d): %v", since, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// shell returns Argv running script with sh; extra words become $1...
func shell(script string, args ...string) []string {
	return append([]string{"sh", "-c", script, "sh"}, args...)
}

// collector accumulates the exact output a client receives and checks the
// chunks are contiguous. A Replay chunk is a test failure unless allowReplay.
type collector struct {
	t           *testing.T
	c           *Client
	data        []byte
	next        int64 // offset the next chunk must start at; -1 = unknown yet
	allowReplay bool
	eof         bool
	snapshot    []byte      // the last snapshot replay received, if any
	sizes       [][2]uint16 // sizes of the Resize chunks received
}

func newCollector(t *testing.T, c *Client, since int64) *collector {
	return &collector{t: t, c: c, next: since}
}

// readUntil reads until pred(all data so far) is true, failing the test if
// that does not happen within timeout.
func readUntil(t *testing.T, col *collector, pred func([]byte) bool, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !pred(col.data) {
		if col.eof {
			t.Fatalf("EOF before condition; got %d bytes: %q", len(col.data), tail(col.data))
		}
		if err := col.read(ctx); err != nil {
			t.Fatalf("waiting for condition: %v; got %d bytes: %q", err, len(col.data), tail(col.data))
		}
	}
}

// readToEOF reads until io.EOF and returns everything received.
func readToEOF(t *testing.T, col *collector, timeout time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !col.eof {
		if err := col.read(ctx); err != nil {
			t.Fatalf("waiting for EOF: %v; got %d bytes: %q", err, len(col.data), tail(col.data))
		}
	}
	return col.data
}

func (col *collector) read(ctx context.Context) error {
	col.t.Helper()
	ch, err := col.c.Next(ctx)
	if errors.Is(err, io.EOF) {
		col.eof = true
		return nil
	}
	if err != nil {
		return err
	}
	if ch.Resize {
		if col.next >= 0 && ch.Offset != col.next {
			col.t.Fatalf("resize at offset %d, want %d", ch.Offset, col.next)
		}
		col.sizes = append(col.sizes, [2]uint16{ch.Cols, ch.Rows})
		return nil
	}
	if ch.Replay {
		if !col.allowReplay {
			col.t.Fatalf("unexpected replay chunk at %d (expected continuation from %d)", ch.Offset, col.next)
		}
		if ch.Cols > 0 {
			col.snapshot = ch.Prefix
		}
		col.data = append(col.data[:0], ch.Data...)
		col.next = ch.End()
		return nil
	}
	if col.next >= 0 && ch.Offset != col.next {
		col.t.Fatalf("chunk at offset %d, want %d (gap or duplicate)", ch.Offset, col.next)
	}
	if len(ch.Data) == 0 {
		col.t.Fatalf("empty non-replay chunk at %d", ch.Offset)
	}
	col.data = append(col.data, ch.Data...)
	col.next = ch.End()
	return nil
}

func tail(b []byte) []byte {
	if len(b) > 200 {
		return b[len(b)-200:]
	}
	return b
}

func contains(sub string) func([]byte) bool {
	return func(b []byte) bool { return bytes.Contains(b, []byte(sub)) }
}

func waitDone(t *testing.T, s *Session, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(timeout):
		t.Fatalf("session not done after %v", timeout)
	}
}

// poll waits for cond, checking every few milliseconds, up to timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// assertSameScreen checks that a terminal fed snap shows exactly what one
// fed the whole stream shows: both models' snapshots are equal.
func assertSameScreen(t *testing.T, snap, stream []byte, cols, rows int) {
	t.Helper()
	live := screen.New(cols, rows, DefaultScrollback)
	live.Write(stream)
	late := screen.New(cols, rows, DefaultScrollback)
	late.Write(snap)
	if a, b := live.Snapshot(nil), late.Snapshot(nil); !bytes.Equal(a, b) {
		t.Fatalf("the snapshot shows another screen than the stream:\nstream:   %q\nsnapshot: %q", tail(a), tail(b))
	}
}
