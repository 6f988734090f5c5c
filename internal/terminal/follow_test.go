package terminal

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
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
