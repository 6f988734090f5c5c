package terminal

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawCat runs cat on a terminal in raw mode without echo, so what comes out
// is exactly what went in. READY tells the test stty has run (input written
// before that would be echoed in cooked mode).
var rawCat = shell("stty raw -echo && printf READY && exec cat")

func TestCatEchoesExactBytes(t *testing.T) {
	s := startSession(t, Options{Argv: rawCat})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)

	in := "hello, world\r\n\x01\x7f\ttabs ünïcødé € 🙂 \x1b[31mred\x1b[0m\n"
	if err := s.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	want := "READY" + in
	readUntil(t, col, func(b []byte) bool { return len(b) >= len(want) }, 10*time.Second)
	if got := string(col.data); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCookedModeEchoAndTranslation(t *testing.T) {
	// The default terminal echoes input and turns \n into \r\n on output:
	// cat's copy and the echo both arrive, translated.
	s := startSession(t, Options{Argv: []string{"cat"}})
	col := newCollector(t, attach(t, s, 0), 0)
	if err := s.Write([]byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	want := "abc\r\nabc\r\n"
	readUntil(t, col, func(b []byte) bool { return len(b) >= len(want) }, 10*time.Second)
	if got := string(col.data); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestResizeShowsInSttySize(t *testing.T) {
	s := startSession(t, Options{Argv: shell("read x; stty size"), Cols: 80, Rows: 24})
	if c, r := s.Size(); c != 80 || r != 24 {
		t.Fatalf("initial size %dx%d", c, r)
	}
	if err := s.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if c, r := s.Size(); c != 100 || r != 30 {
		t.Fatalf("size after resize %dx%d", c, r)
	}
	for _, bad := range [][2]uint16{{0, 10}, {10, 0}, {1001, 10}, {10, 501}} {
		if err := s.Resize(bad[0], bad[1]); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("Resize(%d,%d) = %v, want ErrInvalidSize", bad[0], bad[1], err)
		}
	}
	col := newCollector(t, attach(t, s, 0), 0)
	if err := s.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	// The echoed newline, then stty's answer, both with \n -> \r\n.
	if got := string(readToEOF(t, col, 10*time.Second)); got != "\r\n30 100\r\n" {
		t.Fatalf("got %q", got)
	}
	waitDone(t, s, 10*time.Second)
	if st, ok := s.ExitStatus(); !ok || st != (ExitStatus{Code: 0}) {
		t.Fatalf("exit status %+v %v", st, ok)
	}
}

func TestSignalInterruptsForeground(t *testing.T) {
	s := startSession(t, Options{Argv: []string{"sleep", "100"}})
	if err := s.Signal(syscall.SIGSEGV); !errors.Is(err, ErrSignalNotAllowed) {
		t.Fatalf("Signal(SIGSEGV) = %v", err)
	}
	if _, ok := s.ExitStatus(); ok {
		t.Fatal("exit status before exit")
	}
	c := attach(t, s, 0)
	if err := s.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	readToEOF(t, newCollector(t, c, 0), 10*time.Second)
	waitDone(t, s, 10*time.Second)
	st, ok := s.ExitStatus()
	if !ok || st.Signal != "SIGINT" || st.Code != 128+int(syscall.SIGINT) {
		t.Fatalf("exit status %+v %v", st, ok)
	}
	if err := s.Signal(syscall.SIGINT); !errors.Is(err, ErrDone) {
		t.Fatalf("Signal after exit = %v", err)
	}
	if err := s.Write([]byte("x")); !errors.Is(err, ErrDone) {
		t.Fatalf("Write after exit = %v", err)
	}
	if err := s.Resize(10, 10); !errors.Is(err, ErrDone) {
		t.Fatalf("Resize after exit = %v", err)
	}
}

func TestSignalReachesJobNotShell(t *testing.T) {
	// A shell with job control (set -m) runs the job in its own process
	// group and makes it the terminal's foreground group. SIGINT must hit
	// the job (which traps it and exits 3), not the shell, which would die
	// of it instead of printing the job's status.
	s := startSession(t, Options{Argv: shell(`set -m; printf READY; sh -c 'trap "exit 3" INT; printf JOB; while :; do sleep 1; done'; echo "rc=$?"`)})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READYJOB"), 10*time.Second) // the job's trap is set
	// The shell hands the terminal to the job's group once it starts it.
	poll(t, 10*time.Second, "sleep to become the foreground group", func() bool {
		return s.foregroundPgrp() != s.PID()
	})
	if err := s.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if got := string(readToEOF(t, col, 10*time.Second)); got != "READYJOBrc=3\r\n" {
		t.Fatalf("got %q", got)
	}
	if st, _ := s.ExitStatus(); st != (ExitStatus{Code: 0}) {
		t.Fatalf("shell exit %+v", st)
	}
}

// bigOutput writes a file of 1 MiB + 7 random bytes (escape sequences,
// broken UTF-8 and all) for the exit-drain tests.
func bigOutput(t *testing.T) (string, []byte) {
	t.Helper()
	data := make([]byte, 1<<20+7)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "out.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// catRaw prints the file unchanged: -opost (part of raw) stops \n -> \r\n.
func catRaw(path string) []string { return shell(`stty raw -echo && exec cat "$1"`, path) }

func TestExitDeliversEveryByteToAttachedClient(t *testing.T) {
	path, want := bigOutput(t)
	for i := range 5 {
		s := startSession(t, Options{Argv: catRaw(path), RingSize: 4 << 20})
		got := readToEOF(t, newCollector(t, attach(t, s, 0), 0), 20*time.Second)
		if !bytes.Equal(got, want) {
			t.Fatalf("run %d: got %d bytes, want %d (first difference at %d)", i, len(got), len(want), firstDiff(got, want))
		}
		waitDone(t, s, 10*time.Second)
		if st, _ := s.ExitStatus(); st.Code != 0 {
			t.Fatalf("run %d: exit %+v", i, st)
		}
		if s.Offset() != int64(len(want)) {
			t.Fatalf("run %d: Offset %d", i, s.Offset())
		}
	}
}

func TestExitWithoutClientThenAttach(t *testing.T) {
	path, want := bigOutput(t)
	s := startSession(t, Options{Argv: catRaw(path), RingSize: 2 << 20})
	waitDone(t, s, 20*time.Second)
	if s.Clients() != 0 {
		t.Fatal("unexpected clients")
	}
	got := readToEOF(t, newCollector(t, attach(t, s, 0), 0), 10*time.Second)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}

	// Without an offset the client gets a snapshot of the final screen at
	// the end of the output, then EOF.
	col := newCollector(t, attach(t, s, -1), -1)
	col.allowReplay = true
	got = readToEOF(t, col, 10*time.Second)
	if len(got) != 0 || col.next != int64(len(want)) || col.snapshot == nil {
		t.Fatalf("replay: got %d bytes, snapshot %d bytes at %d; want a snapshot at %d", len(got), len(col.snapshot), col.next, len(want))
	}
	assertSameScreen(t, col.snapshot, want, 80, 24)
	if _, err := s.Attach(s.Offset() + 1); !errors.Is(err, ErrOffsetAhead) {
		t.Fatalf("Attach beyond end = %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRapidWrites(t *testing.T) {
	s := startSession(t, Options{Argv: rawCat})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	var want strings.Builder
	want.WriteString("READY")
	for i := range 50 {
		msg := fmt.Sprintf("write-%02d;", i)
		want.WriteString(msg)
		if err := s.Write([]byte(msg)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	readUntil(t, col, func(b []byte) bool { return len(b) >= want.Len() }, 10*time.Second)
	if got := string(col.data); got != want.String() {
		t.Fatalf("got %q, want %q", got, want.String())
	}
	if st := s.Stats(); st.InputBytes != int64(want.Len()-len("READY")) || st.InputQueued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLargePaste(t *testing.T) {
	// 200 KiB in one Write goes to the PTY in 4 KiB pieces while cat echoes.
	s := startSession(t, Options{Argv: rawCat})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	paste := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	if err := s.Write(paste); err != nil {
		t.Fatal(err)
	}
	readUntil(t, col, func(b []byte) bool { return len(b) >= 5+len(paste) }, 20*time.Second)
	if !bytes.Equal(col.data[5:], paste) {
		t.Fatal("paste came back different")
	}
}

func TestInputBackpressure(t *testing.T) {
	s := startSession(t, Options{Argv: []string{"sleep", "100"}, InputQueueBytes: 8 << 10})
	if err := s.Write(make([]byte, 8<<10+1)); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("oversized write = %v", err)
	}
	// sleep never reads: the kernel's buffers fill, the writer goroutine
	// blocks, the queue fills, and Write must say so instead of blocking.
	chunk := bytes.Repeat([]byte("x"), 1<<10)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Write(chunk)
		if errors.Is(err, ErrInputBusy) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Write never reported ErrInputBusy")
		}
	}
	if q := s.Stats().InputQueued; q == 0 || q > 8<<10 {
		t.Fatalf("InputQueued = %d", q)
	}
	// Close must not hang on the writer blocked in a write nobody reads.
	if err := s.Terminate(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentInputWhileOutputStreams(t *testing.T) {
	const dots = 3_000_000
	s := startSession(t, Options{
		Argv:     shell(`stty raw -echo && printf READY && (head -c ` + fmt.Sprint(dots) + ` /dev/zero | tr '\000' . &) && exec cat`),
		RingSize: 8 << 20, // the reader below may lag; this test is about exactness, not skipping
	})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)

	var want strings.Builder
	var lines []string
	for i := range 300 {
		l := fmt.Sprintf("input-%03d\n", i)
		lines = append(lines, l)
		want.WriteString(l)
	}
	var wg sync.WaitGroup
	writeErr := make(chan error, 1)
	wg.Go(func() {
		for _, l := range lines {
			if err := s.Write([]byte(l)); err != nil {
				writeErr <- err
				return
			}
		}
	})

	// Count incrementally: output and input interleave at arbitrary points,
	// but dots only come from the generator and everything else from cat.
	var ndots, scanned int
	var other []byte
	readUntil(t, col, func(b []byte) bool {
		for _, c := range b[max(scanned, 5):] {
			if c == '.' {
				ndots++
			} else {
				other = append(other, c)
			}
		}
		scanned = len(b)
		return ndots == dots && len(other) >= want.Len()
	}, 30*time.Second)
	wg.Wait()
	select {
	case err := <-writeErr:
		t.Fatal(err)
	default:
	}
	if string(other) != want.String() {
		t.Fatalf("input echoed as %q", other)
	}
}

func TestResizeDuringOutput(t *testing.T) {
	const dots = 2_000_000
	s := startSession(t, Options{
		Argv:     shell(`stty raw -echo && printf READY && (head -c ` + fmt.Sprint(dots) + ` /dev/zero | tr '\000' . &) && read x && stty size`),
		RingSize: 8 << 20,
	})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)

	var wg sync.WaitGroup
	resizeErr := make(chan error, 1)
	wg.Go(func() {
		for i := range 50 {
			if err := s.Resize(uint16(20+i), uint16(10+i%30)); err != nil {
				resizeErr <- err
				return
			}
		}
		if err := s.Resize(120, 40); err != nil {
			resizeErr <- err
		}
	})
	var ndots, scanned int
	readUntil(t, col, func(b []byte) bool {
		ndots += bytes.Count(b[max(scanned, 5):], []byte("."))
		scanned = len(b)
		return ndots == dots
	}, 30*time.Second)
	wg.Wait()
	select {
	case err := <-resizeErr:
		t.Fatal(err)
	default:
	}
	if c, r := s.Size(); c != 120 || r != 40 {
		t.Fatalf("Size = %dx%d", c, r)
	}
	if err := s.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	got := bytes.ReplaceAll(readToEOF(t, col, 10*time.Second), []byte("."), nil)
	if string(got) != "READY40 120\n" {
		t.Fatalf("got %q", got)
	}
}

func TestSlowClientIsBoundedAndSkips(t *testing.T) {
	const total = 50 << 20
	s := startSession(t, Options{Argv: []string{"yes"}})
	slow := attach(t, s, 0) // never reads until the end
	fast := attach(t, s, 0)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var got int64
	for got < total {
		ch, err := fast.Next(ctx)
		if err != nil {
			t.Fatalf("fast client after %d bytes: %v", got, err)
		}
		got += int64(len(ch.Data))
		if st := s.Stats(); st.RingBytes > DefaultRingSize {
			t.Fatalf("ring holds %d bytes", st.RingBytes)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 50 MB went through while a client had read nothing: its backlog is a
	// cursor, so the heap must not have grown by anything like that.
	grow := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grow > 16<<20 {
		t.Fatalf("heap in use grew by %d bytes", grow)
	}
	if s.Offset() < total {
		t.Fatalf("Offset %d", s.Offset())
	}

	ch, err := slow.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Replay || ch.Offset <= 0 || slow.Skips() != 1 || s.Stats().Skips < 1 {
		t.Fatalf("slow client: replay=%v offset=%d skips=%d stats=%+v", ch.Replay, ch.Offset, slow.Skips(), s.Stats())
	}
	// The replay is the screen at the offset it shows (rows of "y", or,
	// if the model itself fell out of the ring under -race, the screen it
	// rebuilt from the ring's start), and the next chunk continues there.
	if len(ch.Data) != 0 || ch.Cols != 80 || ch.Rows != 24 || !bytes.HasPrefix(ch.Prefix, []byte("\x1bc")) {
		t.Fatalf("replay chunk: prefix %q data %q size %dx%d", tail(ch.Prefix), tail(ch.Data), ch.Cols, ch.Rows)
	}
	if next, err := slow.Next(ctx); err != nil || !next.Replay && next.Offset != ch.Offset {
		t.Fatalf("after the snapshot at %d: chunk at %d (replay %v), err %v", ch.Offset, next.Offset, next.Replay, err)
	}
	t.Logf("model resyncs: %d", s.Stats().ModelResyncs)
	t.Logf("fast client got %d bytes with %d skips; heap grew %d bytes; replay at %d", got, fast.Skips(), grow, ch.Offset)
}

func TestReattachWithOffset(t *testing.T) {
	s := startSession(t, Options{Argv: rawCat})
	c1 := attach(t, s, 0)
	col := newCollector(t, c1, 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	if err := s.Write([]byte("one;")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, col, contains("one;"), 10*time.Second)
	seen := c1.Offset()
	if seen != int64(len("READYone;")) || s.Clients() != 1 {
		t.Fatalf("offset %d, clients %d", seen, s.Clients())
	}
	c1.Close()
	if _, err := c1.Next(context.Background()); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	if s.Clients() != 0 {
		t.Fatal("closed client still counted")
	}

	// Output produced while nobody is attached.
	if err := s.Write([]byte("two;three;")); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "output while detached", func() bool { return s.Offset() == seen+10 })

	// Reattach with the last offset seen: exactly the missing bytes.
	col2 := newCollector(t, attach(t, s, seen), seen)
	readUntil(t, col2, func(b []byte) bool { return len(b) >= 10 }, 10*time.Second)
	if string(col2.data) != "two;three;" {
		t.Fatalf("resumed with %q", col2.data)
	}
	// And then live output continues without a gap.
	if err := s.Write([]byte("four;")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, col2, func(b []byte) bool { return len(b) >= 15 }, 10*time.Second)
	if string(col2.data) != "two;three;four;" {
		t.Fatalf("continued with %q", col2.data)
	}

	// Reattach with nothing: a replay of everything still in the ring.
	c3 := attach(t, s, -1)
	ch, err := c3.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The screen at the model's offset (it may not have read the last
	// bytes yet), then the bytes from there: the screen of everything.
	const all = "READYone;two;three;four;"
	if !ch.Replay || ch.Offset > int64(len(all)) || len(ch.Data) != 0 || ch.Cols != 80 || ch.Rows != 24 {
		t.Fatalf("replay %+v", ch)
	}
	shown := ch.Prefix
	for off := ch.Offset; off < int64(len(all)); {
		more, err := c3.Next(context.Background())
		if err != nil || more.Replay || more.Offset != off {
			t.Fatalf("after the snapshot at %d: %+v, %v", ch.Offset, more, err)
		}
		shown = append(shown, more.Data...)
		off = more.End()
	}
	assertSameScreen(t, shown, []byte(all), 80, 24)
}

func TestDrainGraceWithBackgroundChild(t *testing.T) {
	// The background sleep ignores the hangup and keeps the terminal open,
	// so EIO never comes; the session must still end soon after sh exits,
	// with sh's output, and not leave the sleep behind.
	s := startSession(t, Options{Argv: shell(`trap "" HUP; sleep 60 & echo bye`), DrainGrace: 100 * time.Millisecond})
	col := newCollector(t, attach(t, s, 0), 0)
	if got := string(readToEOF(t, col, 10*time.Second)); got != "bye\r\n" {
		t.Fatalf("got %q", got)
	}
	waitDone(t, s, 10*time.Second)
	poll(t, 10*time.Second, "background child to be gone", func() bool {
		return !groupAlive(t, s.PID())
	})
}

func TestDrainStopsWhenTerminalHeldOutsideGroup(t *testing.T) {
	// A child in its own session (setsid) keeps the terminal open and is out
	// of reach of the group kill, so the reader has to be stopped by the
	// deadline; everything printed before must still arrive.
	s := startSession(t, Options{
		Argv:       shell(`trap "" HUP; setsid sleep 60 & printf "pid=%d;" $!; printf bye`),
		DrainGrace: 100 * time.Millisecond,
	})
	col := newCollector(t, attach(t, s, 0), 0)
	got := string(readToEOF(t, col, 10*time.Second))
	var pid int
	if _, err := fmt.Sscanf(got, "pid=%d;", &pid); err == nil && pid > 0 {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	if !strings.HasPrefix(got, "pid=") || !strings.HasSuffix(got, ";bye") {
		t.Fatalf("got %q", got)
	}
	waitDone(t, s, 10*time.Second)
	if !groupAlive(t, pid) {
		t.Fatal("the setsid child should have survived (test premise)")
	}
}

// groupAlive reports whether a live (not zombie) process is in process group
// pgid. kill(-pgid, 0) cannot tell: it also succeeds for zombies waiting for
// init to reap them, which may take a while in containers.
func groupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Options{}); err == nil {
		t.Fatal("empty Argv accepted")
	}
	if _, err := Start(Options{Argv: []string{"/nonexistent/program"}}); err == nil {
		t.Fatal("missing program accepted")
	}
	if _, err := Start(Options{Argv: []string{"true"}, Cols: 2000}); !errors.Is(err, ErrInvalidSize) {
		t.Fatalf("huge size: %v", err)
	}
	if _, err := Start(Options{Argv: []string{"true"}, RecordingPath: filepath.Join(t.TempDir(), "no", "such", "dir")}); err == nil {
		t.Fatal("bad recording path accepted")
	}
}

func TestEnvironmentAndDir(t *testing.T) {
	dir := t.TempDir()
	s := startSession(t, Options{
		Argv: shell(`printf '%s|%s|%s' "$TERM" "$FOO" "$PWD"`),
		Env:  []string{"FOO=bar", "PATH=" + os.Getenv("PATH")},
		Dir:  dir,
	})
	got := string(readToEOF(t, newCollector(t, attach(t, s, 0), 0), 10*time.Second))
	if want := "xterm-256color|bar|" + dir; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	s2 := startSession(t, Options{Argv: shell(`printf %s "$TERM"`), Env: []string{"TERM=vt100", "PATH=" + os.Getenv("PATH")}})
	if got := string(readToEOF(t, newCollector(t, attach(t, s2, 0), 0), 10*time.Second)); got != "vt100" {
		t.Fatalf("TERM given in Env replaced: %q", got)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	// A shell that ignores SIGHUP and SIGTERM needs the SIGKILL.
	s := startSession(t, Options{Argv: shell(`trap "" HUP TERM; printf READY; while :; do sleep 1; done`)})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	start := time.Now()
	if err := s.Terminate(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Terminate took %v", d)
	}
	readToEOF(t, col, 10*time.Second)
	if st, ok := s.ExitStatus(); !ok || st.Signal != "SIGKILL" {
		t.Fatalf("exit %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestKeystrokesAfterPasteKeepOrder(t *testing.T) {
	// Keystrokes are written directly when nothing is queued; typed while a
	// paste is still going to the PTY, they must wait for all of it. The
	// program starts reading only once the paste fills the terminal, so
	// the keystrokes are typed while the writer is in the middle of it.
	start := filepath.Join(t.TempDir(), "start")
	s := startSession(t, Options{Argv: shell(`stty raw -echo && printf READY && while [ ! -e "$1" ]; do sleep 0.01; done && exec cat`, start)})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	paste := bytes.Repeat([]byte("0123456789abcdef"), 128<<10/16)
	want := append([]byte("READY"), paste...)
	if err := s.Write(paste); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the paste to start", func() bool { return s.Stats().InputBytes > 0 })
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		k := []byte{byte('A' + i%26)}
		want = append(want, k...)
		if err := s.Write(k); err != nil {
			t.Fatalf("keystroke %d: %v", i, err)
		}
	}
	readUntil(t, col, func(b []byte) bool { return len(b) >= len(want) }, 20*time.Second)
	if !bytes.Equal(col.data, want) {
		n := firstDiff(col.data, want)
		t.Fatalf("output differs from byte %d: got %q, want %q", n, tail(col.data[n:]), tail(want[n:]))
	}
}

func TestConcurrentWritersNeverInterleave(t *testing.T) {
	// Several clients typing at once: each write arrives whole, and each
	// client's writes in the order it made them.
	s := startSession(t, Options{Argv: rawCat})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	const writers, each = 4, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				msg := fmt.Appendf(nil, "w%d-%03d;", w, i)
				for {
					err := s.Write(msg)
					if errors.Is(err, ErrInputBusy) {
						runtime.Gosched()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 5 + writers*each*len("w0-000;")
	readUntil(t, col, func(b []byte) bool { return len(b) >= total }, 20*time.Second)
	next := make([]int, writers)
	for _, tok := range strings.Split(strings.TrimSuffix(string(col.data[5:]), ";"), ";") {
		var w, i int
		if _, err := fmt.Sscanf(tok, "w%d-%03d", &w, &i); err != nil || w < 0 || w >= writers || len(tok) != 6 {
			t.Fatalf("token %q: interleaved or garbled (%v)", tok, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: got write %d, want %d", w, i, next[w])
		}
		next[w]++
	}
	for w, n := range next {
		if n != each {
			t.Fatalf("writer %d: %d writes arrived, want %d", w, n, each)
		}
	}
}
