package terminal

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestInputCloseWaitsForDirectWrite holds a keystroke's direct write between
// the PTY taking it and its count, as a goroutine preempted right after the
// write(2) would be, and checks that closing the queue (what a session does
// before reporting its final counts) waits for the count. CI once saw the
// input-bytes metric of an ended session stay one byte short this way.
func TestInputCloseWaitsForDirectWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var counted atomic.Int64
		entered := make(chan struct{})
		release := make(chan struct{})
		q := newInputQueue(1<<10, func(p []byte) int {
			close(entered)
			<-release // written; not yet counted
			counted.Add(int64(len(p)))
			return len(p)
		})
		pushed := make(chan error, 1)
		go func() { pushed <- q.push([]byte{4}) }()
		<-entered

		var closed atomic.Bool
		go func() { q.close(); closed.Store(true) }()
		synctest.Wait()
		early := closed.Load()
		close(release)
		synctest.Wait()
		if early {
			t.Fatal("close returned while a direct write was in flight, before its bytes were counted")
		}
		if !closed.Load() {
			t.Fatal("close did not return after the direct write did")
		}
		if got := counted.Load(); got != 1 {
			t.Fatalf("counted %d bytes, want 1", got)
		}
		if err := <-pushed; err != nil {
			t.Fatalf("push: %v", err)
		}
		if err := q.push([]byte{'x'}); err != ErrDone {
			t.Fatalf("push after close: %v, want ErrDone", err)
		}
	})
}

// A keystroke the PTY takes at once allocates nothing on its way.
func TestDirectPushAllocatesNothing(t *testing.T) {
	q := newInputQueue(1<<10, func(p []byte) int { return len(p) })
	key := []byte("a")
	if n := testing.AllocsPerRun(1000, func() {
		if err := q.push(key); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("push allocated %v times per keystroke, want 0", n)
	}
}
