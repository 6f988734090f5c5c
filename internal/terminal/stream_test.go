package terminal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// replayOf feeds data into a fresh stream with the given ring size and a
// checkpoint at every safe offset, and returns the first chunk a client
// attaching without an offset gets.
func replayOf(t *testing.T, ring int, data string) Chunk {
	t.Helper()
	s := newStream(ring, 1)
	s.ingest([]byte(data))
	c := attachS(t, s, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Replay {
		t.Fatalf("first chunk is not a replay: %+v", ch)
	}
	return ch
}

func TestReplayBoundarySkipsPartialSequences(t *testing.T) {
	const ring = 64
	for _, tc := range []struct {
		name, seq string
	}{
		{"SGR 256 colour", "\x1b[38;5;196m"},
		{"3-byte UTF-8", "€"},
		{"4-byte UTF-8", "🙂"},
		{"OSC title BEL", "\x1b]0;my title\x07"},
		{"OSC title ST", "\x1b]2;my title\x1b\\"},
		{"DCS", "\x1bPq#0;2;0;0;0#1!14~\x1b\\"},
		{"ESC charset", "\x1b(0"},
		{"plain ESC", "\x1b7"},
	} {
		// Put the ring start at every byte inside seq: the replay must
		// begin right after it, at the first following byte.
		for cut := 1; cut < len(tc.seq); cut++ {
			head := strings.Repeat("a", 100)
			after := strings.Repeat("b", ring-(len(tc.seq)-cut))
			data := head + tc.seq + after
			ch := replayOf(t, ring, data)
			if start := int64(len(data) - ring); start != int64(len(head)+cut) {
				t.Fatalf("%s: test setup: ring starts at %d", tc.name, start)
			}
			if want := int64(len(head) + len(tc.seq)); ch.Offset != want {
				t.Errorf("%s cut %d: replay at %d, want %d", tc.name, cut, ch.Offset, want)
			}
			if string(ch.Data) != after {
				t.Errorf("%s cut %d: replay data %q", tc.name, cut, ch.Data)
			}
		}
	}
}

func TestReplayPrefixRestoresModes(t *testing.T) {
	const ring = 256
	filler := strings.Repeat("x", ring)
	for _, tc := range []struct {
		name, data, prefix string
	}{
		{
			"set and kept",
			"\x1b[?1049h\x1b[?25l\x1b[?2004h\x1b[?1000h\x1b[?1006h" + filler,
			"\x1b[?1049h\x1b[?25l\x1b[?1000h\x1b[?1006h\x1b[?2004h",
		},
		{"combined parameters", "\x1b[?1;1002;1006h" + filler, "\x1b[?1h\x1b[?1002h\x1b[?1006h"},
		{"set then reset", "\x1b[?1049h\x1b[?2004h\x1b[?25l" + "text" + "\x1b[?2004l\x1b[?1049l\x1b[?25h" + filler, ""},
		{"reset in one sequence", "\x1b[?1000h\x1b[?1006h\x1b[?1000;1006l" + filler, ""},
		{"alternate screen variants", "\x1b[?47h\x1b[?1047h" + filler, "\x1b[?1047h\x1b[?47h"},
		{"keypad", "\x1b=\x1b[?1h" + filler, "\x1b[?1h\x1b="},
		{"keypad off", "\x1b=\x1b>" + filler, ""},
		{"full reset", "\x1b[?1049h\x1b[?25l\x1bc" + filler, ""},
		{"soft reset", "\x1b[?25l\x1b[?1h\x1b[?2004h\x1b[!p" + filler, "\x1b[?2004h"},
		{"not private", "\x1b[4h\x1b[1049h" + filler, ""},
		{"untracked mode", "\x1b[?12h\x1b[?7l" + filler, ""},
		{"set later in ring", filler + "\x1b[?2004h" + "y", ""},
	} {
		ch := replayOf(t, ring, tc.data)
		if string(ch.Prefix) != tc.prefix {
			t.Errorf("%s: prefix %q, want %q", tc.name, ch.Prefix, tc.prefix)
		}
	}
}

func TestReplayWaitsForASafeBoundary(t *testing.T) {
	// The whole ring is inside one unterminated OSC: no safe boundary exists
	// yet, so a replay has to wait for one.
	s := newStream(64, 16)
	s.ingest([]byte("\x1b]0;" + strings.Repeat("t", 200)))
	c := attachS(t, s, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v, want to wait", err)
	}
	s.ingest([]byte("\x07hello"))
	ch, err := c.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Replay || ch.Offset != 205 || string(ch.Data) != "hello" {
		t.Fatalf("chunk %+v", ch)
	}

	// If output ends inside such a sequence there is nothing to replay.
	s2 := newStream(64, 16)
	s2.ingest([]byte("\x1b]0;" + strings.Repeat("t", 200)))
	s2.finish()
	if _, err := attachS(t, s2, -1).Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want EOF", err)
	}
}

func TestExactAttachMidSequence(t *testing.T) {
	// A client with an offset gets exactly what it asked for, even inside a
	// sequence: it has the bytes before.
	s := newStream(1024, 16)
	s.ingest([]byte("ab\x1b[31mcd"))
	c := attachS(t, s, 4)
	ch, err := c.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ch.Replay || ch.Offset != 4 || string(ch.Data) != "31mcd" {
		t.Fatalf("chunk %+v", ch)
	}
	if _, err := s.attach(10); !errors.Is(err, ErrOffsetAhead) {
		t.Fatalf("attach(10) = %v", err)
	}
}

func TestChunksDoNotSplitCharacters(t *testing.T) {
	s := newStream(1024, 16)
	c := attachS(t, s, 0)
	next := func() Chunk {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ch, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	s.ingest([]byte("ab\xe2\x82"))
	if ch := next(); string(ch.Data) != "ab" {
		t.Fatalf("got %q", ch.Data)
	}
	// Only the incomplete character is pending: nothing to return yet.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v", err)
	}
	s.ingest([]byte("\xac\xf0\x9f"))
	if ch := next(); ch.Offset != 2 || string(ch.Data) != "€" {
		t.Fatalf("got %d %q", ch.Offset, ch.Data)
	}
	// Invalid bytes are not held back, and at the end nothing is.
	s.ingest([]byte("\xff"))
	if ch := next(); string(ch.Data) != "\xf0\x9f\xff" {
		t.Fatalf("got %q", ch.Data)
	}
	s.ingest([]byte("x\xe2"))
	s.finish()
	if ch := next(); string(ch.Data) != "x\xe2" {
		t.Fatalf("got %q", ch.Data)
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v", err)
	}
}

func TestSlowClientSkipsToReplay(t *testing.T) {
	s := newStream(4096, 64)
	c := attachS(t, s, 0)
	line := []byte("\x1b[1mline\x1b[0m €\r\n")
	for range 1000 {
		s.ingest(line)
	}
	if lag := s.maxLag(); lag != s.end {
		t.Fatalf("lag of a client at 0 = %d, want %d", lag, s.end)
	}
	ch, err := c.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lag := s.maxLag(); lag != s.end-ch.End() {
		t.Fatalf("lag after the replay = %d, want %d", lag, s.end-ch.End())
	}
	if !ch.Replay || c.Skips() != 1 || s.skips.Load() != 1 {
		t.Fatalf("replay=%v skips=%d", ch.Replay, c.Skips())
	}
	if start := s.end - 4096; ch.Offset < start || ch.Offset >= start+int64(len(line))+64 {
		t.Fatalf("replay at %d, ring starts at %d", ch.Offset, start)
	}
	if safe, _ := refParse(bytes.Repeat(line, 1000)); !safe[ch.Offset] {
		t.Fatalf("replay starts inside a sequence: %q", ch.Data[:16])
	}
	// Then it continues exactly.
	next := ch.End()
	s.ingest(line)
	for {
		ch, err = c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ch.Replay || ch.Offset != next {
			t.Fatalf("chunk %d/%v after replay, want %d", ch.Offset, ch.Replay, next)
		}
		next = ch.End()
		if next == s.end {
			break
		}
	}
}

func TestRingGrowsAndWraps(t *testing.T) {
	s := newStream(200<<10, 4096)
	if len(s.buf) != initialRing {
		t.Fatalf("initial ring %d", len(s.buf))
	}
	var all []byte
	for i := range 5000 {
		p := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%97))
		all = append(all, p...)
		s.ingest(p)
	}
	if len(s.buf) != 200<<10 || s.end != int64(len(all)) {
		t.Fatalf("ring %d end %d", len(s.buf), s.end)
	}
	start := s.end - int64(len(s.buf))
	c := attachS(t, s, start)
	var got []byte
	for int64(len(got)) < s.end-start {
		ch, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.Data...)
	}
	if !bytes.Equal(got, all[start:]) {
		t.Fatal("ring content differs")
	}
	// A single write bigger than the ring keeps its tail.
	big := bytes.Repeat([]byte("0123456789"), 30<<10)
	s.ingest(big)
	c2 := attachS(t, s, s.end-100)
	ch, _ := c2.Next(context.Background())
	if !bytes.Equal(ch.Data, big[len(big)-100:]) {
		t.Fatalf("tail %q", ch.Data)
	}
}

func TestAttachWhileStreamingIsExact(t *testing.T) {
	// Clients attach at the current offset while the writer keeps going;
	// every client must see exactly the generator's bytes from there on.
	gen := func(off int64) byte { return byte('a' + off%23) }
	s := newStream(1<<20, 4096)
	const total = 4 << 20
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 3001)
		var off int64
		for off < total {
			for i := range buf {
				buf[i] = gen(off + int64(i))
			}
			s.ingest(buf)
			off += int64(len(buf))
		}
		s.finish()
	})
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			c, err := s.attach(s.offset())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			next := c.Offset()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for {
				ch, err := c.Next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if !ch.Replay && ch.Offset != next {
					errs <- errors.New("gap or duplicate")
					return
				}
				for i, b := range ch.Data {
					if b != gen(ch.Offset+int64(i)) {
						errs <- errors.New("wrong byte")
						return
					}
				}
				next = ch.End()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// refParse runs the byte-at-a-time parser over data and returns, for every
// offset 0..len(data), whether it is safe and the modes there.
func refParse(data []byte) (safe []bool, modes []modeSet) {
	var p vtParser
	safe = make([]bool, len(data)+1)
	modes = make([]modeSet, len(data)+1)
	safe[0], modes[0] = true, 0
	for i, b := range data {
		p.step(b)
		safe[i+1], modes[i+1] = p.safe(), p.modes
	}
	return safe, modes
}

func FuzzReplayBoundary(f *testing.F) {
	f.Add([]byte("plain text\r\n"), uint16(16), uint8(1), uint8(7))
	f.Add([]byte("\x1b[?1049h\x1b[38;5;196mred€\x1b]0;title\x07\x1b[?25l"), uint16(20), uint8(3), uint8(5))
	f.Add([]byte("\xe2\x82\xac\xf0\x9f\x99\x82\xc2\x9b1;2H\xc2\x9d0;x\xc2\x9c\x1bP1$r\x1b\\"), uint16(9), uint8(2), uint8(3))
	f.Add([]byte("\x1b[?1000;1006h\x1b=\x1b[!p\x1bc\x18\x1a\xff\xfe\x80"), uint16(8), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, ring uint16, interval, split uint8) {
		ringSize := int(ring%512) + 1
		s := newStream(ringSize, int64(interval%32)+1)
		// Feed in pieces to exercise chunk edges in the fast path.
		step := int(split%17) + 1
		for i := 0; i < len(data); i += step {
			s.ingest(data[i:min(i+step, len(data))])
		}
		s.finish()

		safe, modes := refParse(data)
		var ref vtParser
		for _, b := range data {
			ref.step(b)
		}
		if ref != s.vt {
			t.Fatalf("fast path parser state %+v differs from byte-at-a-time %+v", s.vt, ref)
		}

		c, err := s.attach(-1)
		if err != nil {
			t.Fatal(err)
		}
		start := max(0, int64(len(data)-ringSize))
		ch, err := c.Next(context.Background())
		if errors.Is(err, io.EOF) {
			// Allowed only if no offset in the ring is safe.
			for off := start; off <= int64(len(data)); off++ {
				if safe[off] {
					t.Fatalf("EOF although offset %d (ring start %d) is safe", off, start)
				}
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ch.Replay || ch.Offset < start || ch.Offset > int64(len(data)) {
			t.Fatalf("replay=%v at %d, ring [%d,%d]", ch.Replay, ch.Offset, start, len(data))
		}
		if !safe[ch.Offset] {
			t.Fatalf("replay starts at unsafe offset %d", ch.Offset)
		}
		if want := modes[ch.Offset].prefix(); !bytes.Equal(ch.Prefix, want) {
			t.Fatalf("prefix %q, want %q", ch.Prefix, want)
		}
		if want := data[ch.Offset:min(int64(len(data)), ch.Offset+MaxChunkSize)]; !bytes.HasPrefix(want, ch.Data) || len(want)-len(ch.Data) > 3 {
			t.Fatalf("replay data differs")
		}
	})
}

// sampleOutput is terminal output with the usual mix: text, colours, cursor
// movement and some UTF-8.
func sampleOutput(n int) []byte {
	unit := []byte("\x1b[1;32muser@host\x1b[0m:\x1b[34m~/src\x1b[0m$ ls -la   total 42 drwxr-xr-x  ünïcødé ─│┌┐ \x1b[K\r\n" +
		"plain log line with nothing special in it at all, just text 0123456789\r\n")
	return bytes.Repeat(unit, n/len(unit)+1)[:n]
}

func BenchmarkRingWrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"mixed", sampleOutput(32 << 10)},
		{"ascii", bytes.Repeat([]byte("y\r\n"), 32<<10/3)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStream(DefaultRingSize, defaultInterval(DefaultRingSize))
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				s.ingest(bc.data)
			}
		})
	}
}

func BenchmarkRingReadFrom(b *testing.B) {
	s := newStream(DefaultRingSize, defaultInterval(DefaultRingSize))
	data := sampleOutput(DefaultRingSize)
	s.ingest(data)
	s.ingest(data) // wrapped
	c, _ := s.attach(s.end - DefaultRingSize)
	start := c.Offset()
	ctx := context.Background()
	b.SetBytes(MaxChunkSize)
	b.ReportAllocs()
	for b.Loop() {
		if c.Offset() == s.end {
			c.cursor.Store(start)
		}
		if _, err := c.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
