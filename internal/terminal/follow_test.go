package terminal

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/terminal/screen"
)

// A screen model that has not read for a while gets every byte that left
// the ring meanwhile from the backlog, in order; past maxFollowBacklog it is
// told to rebuild from the ring.
func TestFollowerBacklog(t *testing.T) {
	s := newStream(minRing, defaultInterval(minRing))
	s.scr = newFollower(s, 80, 24, 100)
	var want bytes.Buffer
	for i := range 3000 {
		line := fmt.Appendf(nil, "line %05d of the flood\r\n", i)
		want.Write(line)
		s.ingest(line)
	}
	// A chunk larger than the whole ring: its head never enters the ring.
	big := bytes.Repeat([]byte("0123456789abcdef"), 2*minRing/16)
	want.Write(big)
	s.ingest(big)
	if s.ringLen() != minRing || want.Len() < 10*minRing {
		t.Fatalf("ring %d bytes of %d", s.ringLen(), want.Len())
	}

	var got []byte
	buf := make([]byte, 1000)
	off := int64(0)
	for {
		r := s.followRead(off, -1, buf)
		if r.behind {
			t.Fatalf("behind at %d", off)
		}
		if r.n == 0 {
			break
		}
		got = append(got, buf[:r.n]...)
		off += int64(r.n)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the model read %d bytes, want %d (first difference at %d)", len(got), want.Len(), firstDiff(got, want.Bytes()))
	}

	// Falling further behind than the backlog holds: rebuild from the ring.
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for range maxFollowBacklog/len(chunk) + 2 {
		s.ingest(chunk)
	}
	r := s.followRead(off, -1, buf)
	if !r.behind || r.from < s.offset()-minRing {
		t.Fatalf("after %d bytes unread: %+v", s.offset()-off, r)
	}
	if s.backlog != nil {
		t.Fatalf("backlog kept %d bytes", len(s.backlog))
	}
}

// A snapshot does not wait for the model to catch up with a flood: the
// model's reads end at safe boundaries.
func TestSnapshotDuringFloodWhileModelBehind(t *testing.T) {
	s := startSession(t, Options{Argv: []string{"yes", "flood"}})
	for range 20 {
		c := attach(t, s, -1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ch, err := c.Next(ctx)
		cancel()
		if err != nil || !ch.Replay || ch.Cols != 80 {
			t.Fatalf("snapshot during a flood: %+v, %v", ch, err)
		}
		c.Close()
	}
}

// Session.Resize tells the stream, then the model. A client whose snapshot
// is taken in between (the model still at the old size) still gets the new
// size, right after the snapshot, though the resize is at the snapshot's
// own offset.
func TestSnapshotBetweenResizeAndModel(t *testing.T) {
	s := newStream(minRing, defaultInterval(minRing))
	s.scr = newFollower(s, 80, 24, 100)
	done := make(chan struct{})
	go func() { s.scr.run(); close(done) }()
	t.Cleanup(func() { s.finish(); <-done })
	s.ingest([]byte("hello"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.scr.with(ctx, 5, func(*screen.Model, int64) {}); err != nil {
		t.Fatalf("the model did not read the output: %v", err)
	}
	at := s.pushResize(100, 30)
	c, err := s.attach(-1)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Next(ctx)
	if err != nil || !ch.Replay || ch.Offset != at || ch.Cols != 80 || ch.Rows != 24 {
		t.Fatalf("snapshot: %+v, %v", ch, err)
	}
	s.scr.resize(at, 100, 30)
	ch, err = c.Next(ctx)
	if err != nil || !ch.Resize || ch.Offset != at || ch.Cols != 100 || ch.Rows != 30 {
		t.Fatalf("after the snapshot: %+v, %v; want the resize to 100x30 at %d", ch, err, at)
	}
}

// A model that fell further behind than the backlog holds rebuilds from the
// ring (RIS, then the ring's bytes) and keeps the title, which the ring no
// longer holds: RIS keeps it, as in xterm.js.
func TestRebuildKeepsTitle(t *testing.T) {
	s := newStream(minRing, defaultInterval(minRing))
	s.scr = newFollower(s, 80, 24, 100)
	done := make(chan struct{})
	go func() { s.scr.run(); close(done) }()
	t.Cleanup(func() { s.finish(); <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.ingest([]byte("\x1b]2;my title\a"))
	// Hold the model (its lock) once it has read the title.
	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.scr.with(ctx, s.offset(), func(*screen.Model, int64) {
			close(holding)
			<-release
		})
	}()
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("the model did not read the title")
	}
	line := []byte("a line of a flood that the model cannot keep up with\r\n")
	for range (maxFollowBacklog+2*minRing)/len(line) + 1 {
		s.ingest(line)
	}
	close(release)
	var title string
	if err := s.scr.with(ctx, s.offset(), func(m *screen.Model, _ int64) { title = m.Title() }); err != nil {
		t.Fatal(err)
	}
	if r := s.scr.resyncs.Load(); r != 1 || title != "my title" {
		t.Fatalf("after the flood: %d rebuilds, title %q", r, title)
	}
}
