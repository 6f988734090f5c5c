package milestones_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
	"github.com/tether-dev/tether/internal/terminal/screen"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	admin = func(t *testing.T) string { return testkit.Token(t, "ops", "admin") }
	alice = func(t *testing.T) string { return testkit.Token(t, "alice") }
)

// quietCat echoes input once (no terminal echo), so output is exact. It
// says ready once echo is off: input typed before that would be echoed.
var quietCat = []string{"sh", "-c", "stty -echo; echo ready; exec cat"}

const ready = "ready\r\n"

// ready waits for quietCat's ready line and forgets it.
func (c *term) ready() {
	c.t.Helper()
	c.until("ready", func(o string) bool { return strings.Contains(o, ready) })
	c.out.Reset()
}

func create(t *testing.T, n *testkit.Node, id string, cmd []string) {
	t.Helper()
	status, body := testkit.PostJSON(t, n.HTTP+"/api/milestones", admin(t), map[string]any{"id": id, "name": "test " + id, "owner": "alice", "command": cmd})
	if status != http.StatusCreated {
		t.Fatalf("create %s: %d %v", id, status, body)
	}
}

// term is a terminal client that accumulates output.
type term struct {
	*testkit.Client
	t      *testing.T
	plain  bool // attached without since: a replay follows the status
	out    bytes.Buffer
	offset int64
	last   map[string]any
}

func attach(t *testing.T, n *testkit.Node, id, tok, query string) *term {
	t.Helper()
	url := n.WS + "/api/milestones/" + id + "/terminal"
	if query != "" {
		url += "?" + query
	}
	return &term{Client: testkit.Dial(t, url, testkit.Bearer(tok)), t: t, plain: !strings.Contains(query, "since=")}
}

// status reads the first frame, which must be the status, and for a plain
// attach the replay that follows (empty when nothing was printed yet).
func (c *term) status() map[string]any {
	c.t.Helper()
	m := c.Expect("status")
	c.offset = int64(m["offset"].(float64))
	if c.plain {
		r := c.Expect("replay")
		if r["start"] == nil {
			c.t.Fatalf("replay without start: %v", r)
		}
		c.out.WriteString(r["data"].(string))
		c.offset = int64(r["offset"].(float64))
	}
	return m
}

// until reads frames, collecting output and replays, until cond holds for
// the collected text; other frames are returned to the caller via c.last.
func (c *term) until(what string, cond func(out string) bool) {
	c.t.Helper()
	for !cond(c.out.String()) {
		m := c.Read()
		c.last = m
		switch m["type"] {
		case "output", "replay":
			c.out.Write(frameData(c.t, m))
			c.offset = int64(m["offset"].(float64))
		case "exit":
			if !cond(c.out.String()) {
				c.t.Fatalf("exit before %s; output so far %q", what, c.out.String())
			}
		}
	}
}

func (c *term) input(s string) { c.Send(map[string]any{"type": "input", "data": s}) }

func TestTerminalRefusals(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "mine", []string{"sleep", "100"})
	create(t, n, "done", []string{"true"})
	// Run "done" to its end.
	c := attach(t, n, "done", alice(t), "")
	c.status()
	c.Expect("exit")
	c.ExpectClose(websocket.StatusNormalClosure)
	testkit.Eventually(t, "done finished", func() bool {
		_, m := testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/done", alice(t), nil)
		return m["status"] == "finished"
	})
	cases := []struct {
		name, id, tok, code string
		close               websocket.StatusCode
	}{
		{"malformed id", "-bad", alice(t), "invalid_milestone", 4000},
		{"unknown", "nope", alice(t), "not_found", 4004},
		{"finished", "done", alice(t), "milestone_finished", 4004},
		{"not the owner", "mine", testkit.Token(t, "mallory"), "forbidden", 4003},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := attach(t, n, tc.id, tc.tok, "")
			if m := c.Expect("error"); m["code"] != tc.code {
				t.Fatalf("error = %v, want %s", m, tc.code)
			}
			c.ExpectClose(tc.close)
		})
	}
	// Admins may attach to anyone's milestone.
	a := attach(t, n, "mine", admin(t), "")
	a.status()
	for _, q := range []string{"since=-1", "since=abc", "since=99999999"} {
		c := attach(t, n, "mine", alice(t), q)
		if m := c.Expect("error"); m["code"] != "invalid_offset" {
			t.Fatalf("%s: %v", q, m)
		}
		c.ExpectClose(4000)
	}
}

func TestStatusFirstAndInputEchoedByCat(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "cat", quietCat)
	c := attach(t, n, "cat", alice(t), "")
	st := c.status()
	if st["state"] != "running" || st["pid"].(float64) <= 0 || st["cols"] != float64(80) || st["rows"] != float64(24) || st["clients"] != float64(1) || st["mode"] != "interactive" {
		t.Fatalf("status = %v", st)
	}
	c.ready()
	c.input("hello\n")
	c.until("the echo", func(o string) bool { return strings.Contains(o, "hello\r\n") })
	if c.out.String() != "hello\r\n" {
		t.Fatalf("output %q, want exactly hello\\r\\n", c.out.String())
	}
	if c.offset != int64(len(ready+"hello\r\n")) {
		t.Fatalf("offset %d", c.offset)
	}
}

func TestResizeSeenByStty(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "stty", []string{"sh", "-c", "stty -echo; read x; stty size; read y"})
	a, b := attach(t, n, "stty", alice(t), ""), attach(t, n, "stty", alice(t), "")
	a.status()
	b.status()
	a.Send(map[string]any{"type": "resize", "cols": 100, "rows": 30, "id": 1})
	for _, c := range []*term{a, b} {
		if m := c.Expect("size"); m["cols"] != float64(100) || m["rows"] != float64(30) {
			t.Fatalf("size = %v", m)
		}
	}
	a.input("\n")
	a.until("stty size", func(o string) bool { return strings.Contains(o, "30 100\r\n") })
}

func TestSignalEndsSleep(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "sleep", []string{"sleep", "100"})
	c := attach(t, n, "sleep", alice(t), "")
	c.status()
	c.Send(map[string]any{"type": "signal", "signal": "SIGINT"})
	m := c.Expect("exit")
	if m["signal"] != "SIGINT" || m["code"] != float64(130) {
		t.Fatalf("exit = %v", m)
	}
	if reason := c.ExpectClose(websocket.StatusNormalClosure); reason != "exited" {
		t.Fatalf("reason %q", reason)
	}
	testkit.Eventually(t, "the milestone finished", func() bool {
		_, ms := testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/sleep", alice(t), nil)
		return ms["status"] == "finished" && ms["reason"] == "exited" && ms["signal"] == "SIGINT"
	})
}

func TestBadMessagesAnsweredAndConnectionUsable(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "cat", quietCat)
	c := attach(t, n, "cat", alice(t), "")
	c.status()
	c.ready()
	for _, tc := range []struct {
		msg  any
		code string
	}{
		{map[string]any{"type": "bogus", "id": 1}, "bad_request"},
		{map[string]any{"type": "input", "data": 5, "id": 2}, "bad_request"},
		{map[string]any{"type": "input", "data": strings.Repeat("x", 64<<10+1), "id": 3}, "input_too_large"},
		{map[string]any{"type": "resize", "cols": 0, "rows": 10, "id": 4}, "invalid_size"},
		{map[string]any{"type": "resize", "cols": 10, "rows": 501, "id": 5}, "invalid_size"},
		{map[string]any{"type": "signal", "signal": "SIGSEGV", "id": 6}, "invalid_signal"},
	} {
		c.Send(tc.msg)
		m := c.Expect("error")
		if m["code"] != tc.code || fmt.Sprint(m["id"]) != fmt.Sprint(tc.msg.(map[string]any)["id"]) {
			t.Fatalf("%v → %v, want %s", tc.msg, m, tc.code)
		}
	}
	c.SendText("not json")
	c.Send(map[string]any{"type": "ping", "id": 7})
	c.Expect("pong")
	c.input("still works\n")
	c.until("echo", func(o string) bool { return strings.Contains(o, "still works\r\n") })
	if strings.Contains(c.out.String(), "xxx") {
		t.Fatal("oversized input was written")
	}
}

// A client that drops and reconnects with since gets exactly the bytes it
// missed; a client without since gets a replay marked as such.
func TestReconnectSinceAndReplay(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "cat", quietCat)
	first := attach(t, n, "cat", alice(t), "")
	first.status()
	first.ready()
	first.input("one\n")
	first.until("one", func(o string) bool { return o == "one\r\n" })
	seen := first.offset
	first.C.Close(websocket.StatusNormalClosure, "network drop")

	// Output produced while nobody from the first client is attached.
	other := attach(t, n, "cat", alice(t), "")
	other.status()
	other.input("two\n")
	other.until("two", func(o string) bool { return strings.HasSuffix(o, "two\r\n") })

	back := attach(t, n, "cat", alice(t), fmt.Sprintf("since=%d", seen))
	if st := back.status(); st["offset"] != float64(len(ready+"one\r\ntwo\r\n")) {
		t.Fatalf("status = %v", st)
	}
	back.until("the missed bytes", func(o string) bool { return len(o) >= len("two\r\n") })
	if back.out.String() != "two\r\n" || back.last["type"] != "output" || back.offset != int64(len(ready+"one\r\ntwo\r\n")) {
		t.Fatalf("since=%d gave %q as %v", seen, back.out.String(), back.last["type"])
	}
	// Live output follows with no gap and no duplicate.
	back.input("three\n")
	back.until("three", func(o string) bool { return strings.HasSuffix(o, "three\r\n") })
	if back.out.String() != "two\r\nthree\r\n" {
		t.Fatalf("got %q", back.out.String())
	}

	plain := attach(t, n, "cat", alice(t), "")
	plain.Expect("status")
	m := plain.Expect("replay")
	// A client without since gets the screen: a snapshot at the current
	// offset (start = offset), which shows what the whole output shows.
	// (The model may not have read the last bytes yet: they follow.)
	all := ready + "one\r\ntwo\r\nthree\r\n"
	start, _ := m["start"].(float64)
	if start > float64(len(all)) || m["offset"] != start {
		t.Fatalf("replay = %v", m)
	}
	data, _ := m["data"].(string)
	for off := start; off < float64(len(all)); {
		o := plain.Expect("output")
		data += o["data"].(string)
		off = o["offset"].(float64)
	}
	assertSameScreen(t, []byte(data), []byte(all), 80, 24)
}

// assertSameScreen checks that a terminal of cols x rows fed snap shows
// exactly what one fed stream shows.
func assertSameScreen(t *testing.T, snap, stream []byte, cols, rows int) {
	t.Helper()
	live := screen.New(cols, rows, terminal.DefaultScrollback)
	live.Write(stream)
	late := screen.New(cols, rows, terminal.DefaultScrollback)
	late.Write(snap)
	if a, b := live.Snapshot(nil), late.Snapshot(nil); !bytes.Equal(a, b) {
		t.Fatalf("the snapshot shows another screen than the stream:\nstream:   %q\nsnapshot: %q", a, b)
	}
}

func TestThreeClientsAndViewOnly(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "cat", quietCat)
	var cs []*term
	for i := 0; i < 3; i++ {
		c := attach(t, n, "cat", alice(t), "")
		if st := c.status(); st["clients"] != float64(i+1) {
			t.Fatalf("client %d status %v", i, st)
		}
		c.ready()
		cs = append(cs, c)
	}
	view := attach(t, n, "cat", alice(t), "mode=view")
	if st := view.status(); st["mode"] != "view" {
		t.Fatalf("view status %v", st)
	}
	for i, c := range cs {
		c.input(fmt.Sprintf("from %d\n", i))
		want := fmt.Sprintf("from %d\r\n", i)
		for _, r := range append(cs, view) {
			r.until(want, func(o string) bool { return strings.Contains(o, want) })
		}
	}
	for _, msg := range []map[string]any{
		{"type": "input", "data": "nope\n", "id": 1},
		{"type": "resize", "cols": 10, "rows": 10, "id": 2},
		{"type": "signal", "signal": "SIGINT", "id": 3},
	} {
		view.Send(msg)
		if m := view.Expect("error"); m["code"] != "read_only" || fmt.Sprint(m["id"]) != fmt.Sprint(msg["id"]) {
			t.Fatalf("view %v → %v", msg["type"], m)
		}
	}
}

// A program that prints 1 MiB and exits: every client gets every byte, then
// exit, then close 1000 — every time.
func TestMegabyteThenExitComplete(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.TerminalRingSize = 4 << 20
	n := testkit.Start(t, cfg, nil)
	raw := make([]byte, 3<<18) // base64 of this is exactly 1 MiB
	_, _ = rand.Read(raw)
	want := base64.StdEncoding.EncodeToString(raw)
	file := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		id := fmt.Sprintf("big%d", round)
		// raw mode: no \n → \r\n translation, so bytes arrive as written.
		create(t, n, id, []string{"sh", "-c", "stty raw -echo; cat " + file})
		c := attach(t, n, id, alice(t), "since=0")
		c.status()
		c.until("1 MiB", func(o string) bool { return len(o) >= len(want) })
		m := c.Expect("exit")
		if c.out.String() != want {
			t.Fatalf("round %d: got %d bytes, want %d (first difference at %d)", round, c.out.Len(), len(want), firstDiff(c.out.String(), want))
		}
		if m["code"] != float64(0) || m["offset"] != float64(len(want)) {
			t.Fatalf("exit = %v", m)
		}
		c.ExpectClose(websocket.StatusNormalClosure)
	}
}

// The binary subprotocol carries the same bytes with less framing.
func TestBinaryFrames(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "bin", []string{"sh", "-c", "stty raw -echo; printf 'caf\\303\\251 \\377 done'"})
	c := testkit.Dial(t, n.WS+"/api/milestones/bin/terminal?since=0", &websocket.DialOptions{
		Subprotocols: []string{protocol.SubprotocolTerminalBinary},
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + alice(t)}},
	})
	if c.C.Subprotocol() != protocol.SubprotocolTerminalBinary {
		t.Fatalf("subprotocol %q", c.C.Subprotocol())
	}
	c.Expect("status")
	var got []byte
	var end uint64
	for {
		typ, b, err := c.ReadRaw()
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.MessageText {
			if !strings.Contains(string(b), `"type":"exit"`) {
				t.Fatalf("unexpected %s", b)
			}
			break
		}
		if b[0] != protocol.BinaryOutput {
			t.Fatalf("kind %d", b[0])
		}
		end = binary.BigEndian.Uint64(b[1:9])
		got = append(got, b[9:]...)
	}
	want := "caf\xc3\xa9 \xff done"
	if string(got) != want || end != uint64(len(want)) {
		t.Fatalf("got %q (end %d), want %q", got, end, want)
	}
}

// Output that is not UTF-8 travels as base64 in JSON frames, byte for byte.
func TestNonUTF8OutputIsBase64(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "raw", []string{"sh", "-c", "stty raw -echo; printf 'a\\377b'"})
	c := attach(t, n, "raw", alice(t), "since=0")
	c.status()
	c.until("the bytes", func(o string) bool { return len(o) >= 3 })
	if c.out.String() != "a\xffb" || c.last["encoding"] != "base64" {
		t.Fatalf("got %q (%v)", c.out.String(), c.last)
	}
}

func TestRapidInputsNoDeadlock(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "cat", quietCat)
	c := attach(t, n, "cat", alice(t), "")
	c.status()
	c.ready()
	var want strings.Builder
	for i := 0; i < 50; i++ {
		c.input(fmt.Sprintf("line %d\n", i))
		fmt.Fprintf(&want, "line %d\r\n", i)
	}
	c.until("50 lines", func(o string) bool { return len(o) >= want.Len() })
	if c.out.String() != want.String() {
		t.Fatalf("got %q", c.out.String())
	}
}

// Input keeps flowing while output streams, and a resize mid-stream is
// applied without disturbing either.
func TestConcurrentInputAndResizeDuringOutput(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	// Prints a counter forever and echoes each input line back marked.
	create(t, n, "busy", []string{"sh", "-c", `stty -echo; (i=0; while :; do i=$((i+1)); echo "tick $i"; done) & while read l; do echo "got:$l"; done`})
	c := attach(t, n, "busy", alice(t), "")
	c.status()
	// Another client resizes: c gets the size in the stream and keeps every
	// byte (the resizing client itself is sent the screen again instead).
	other := attach(t, n, "busy", alice(t), "")
	other.status()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			b := []byte(fmt.Sprintf(`{"type":"input","data":"msg %d\n"}`, i))
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
			err := c.C.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			if i == 10 {
				ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
				_ = other.C.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":120,"rows":40}`))
				cancel()
			}
		}
	}()
	sawSize := false
	c.until("all 20 echoes", func(o string) bool {
		if c.last != nil && c.last["type"] == "size" {
			sawSize = true
		}
		return strings.Contains(o, "got:msg 19\r\n")
	})
	wg.Wait()
	for i := 0; i < 20; i++ {
		if !strings.Contains(c.out.String(), fmt.Sprintf("got:msg %d\r\n", i)) {
			t.Fatalf("echo %d missing", i)
		}
	}
	if !sawSize {
		// The size message may have come after the last echo.
		c.until("size", func(string) bool { return c.last != nil && c.last["type"] == "size" })
	}
	if st := n.Milestones.Session("busy"); st == nil {
		t.Fatal("session gone")
	}
}

// `yes` with a client that never reads: the PTY keeps draining, memory
// stays bounded, a second client keeps receiving, and the slow client skips
// forward to a replay when it finally reads.
func TestNeverReadingClientBounded(t *testing.T) {
	// The slow client reads nothing, pongs included, while 30 MiB stream
	// past it, which takes longer than the default timeouts on a busy
	// machine: they must not close it meanwhile (what is tested is that it
	// is paced and costs no memory).
	cfg := testkit.Config(t)
	cfg.IdleTimeout, cfg.WriteTimeout = 5*time.Minute, 5*time.Minute
	n := testkit.Start(t, cfg, nil)
	create(t, n, "yes", []string{"yes"})
	slow := attach(t, n, "yes", alice(t), "")
	slow.status()
	fast := attach(t, n, "yes", alice(t), "")
	fast.status()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got := 0
	// Until the slow client is out of the ring, whatever its queue and
	// socket hold: then its next read must be a replay.
	sess := n.Milestones.Session("yes")
	for got < 30<<20 || sess.Stats().MaxClientLag <= int64(cfg.TerminalRingSize) {
		_, b, err := fast.ReadRaw()
		if err != nil {
			t.Fatal(err)
		}
		got += len(b)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 64<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 30 MiB past a stalled client", grow>>20)
	}
	// The slow client now reads what was queued for it, then finds that it
	// fell out of the ring: a replay, counted as a skip.
	for {
		m := slow.Read()
		if m["type"] == "replay" && m["start"] != nil {
			break
		}
	}
	if skips := sess.Stats().Skips; skips < 1 {
		t.Fatalf("skips = %d", skips)
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// The node's /metrics count terminals, their clients and their bytes, and
// keep the byte counts of sessions that ended.
func TestTerminalMetrics(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "met", quietCat)
	c := attach(t, n, "met", alice(t), "")
	c.status()
	c.ready()
	c.input("hello\n")
	c.until("the echo", func(o string) bool { return strings.Contains(o, "hello\r\n") })
	n.WaitMetrics(t, "one terminal, one client",
		"tether_terminals_running 1",
		"tether_terminal_clients 1",
		"tether_terminal_output_bytes_total 14", // ready\r\n hello\r\n
		"tether_terminal_input_bytes_total 6",
		"tether_terminal_skips_total 0",
		"tether_terminal_model_resyncs_total 0",
	)
	c.input("\x04") // end of input: cat exits
	c.Expect("exit")
	n.WaitMetrics(t, "the session ended, its bytes kept",
		"tether_terminals_running 0",
		"tether_terminal_clients 0",
		"tether_terminal_output_bytes_total 14",
		"tether_terminal_input_bytes_total 7",
	)
}
