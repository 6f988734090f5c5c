package milestones_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/terminal/screen/oracle"
	"github.com/tether-dev/tether/internal/testkit"
)

// These tests run real full-screen programs (htop, less, vim) in terminals
// of a real node and judge what clients end with by xterm.js: a client
// attached from the start and late clients (after the output passed the
// ring, after resizes, keeping their own size as the console does) must
// show the same screen, cell by cell, cursor, modes and scrollback, when
// their received frames are played into headless xterm.js terminals as the
// protocol says a client does.

// judge asks xterm.js whether each client in others ends with the screen
// live ends with.
func judge(t *testing.T, live *recorder, others map[string]*recorder) {
	t.Helper()
	var cases []oracle.Case
	for name, o := range others {
		cases = append(cases, oracle.Case{Name: name, Scrollback: 1000, A: live.ops, B: o.ops})
	}
	for i, r := range oracle.RunTest(t, 2*time.Minute, cases) {
		if !r.OK {
			if os.Getenv("DEBUG_ORACLE") != "" {
				// The case, to feed to oracle.js by hand (as a one-element array).
				b, _ := json.Marshal(cases[i])
				f := filepath.Join(os.TempDir(), "oracle-"+strings.ReplaceAll(r.Name, " ", "_")+".json")
				_ = os.WriteFile(f, b, 0o600)
				t.Logf("case written to %s", f)
			}
			t.Errorf("%s: xterm.js shows another screen than for the live client (%s):\n  %s", r.Name, r.XtermError, strings.Join(r.Diffs, "\n  "))
		}
	}
}

// program skips the test when a program it runs is not installed (.ci/run
// installs them).
func program(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}

// settle waits until the terminal's output stops growing and every
// recorder has all of it. A snapshot may come in several replay messages:
// it is known whole only once output follows it, so while a recorder's last
// message is a replay, poke makes the program print something more.
func settle(t *testing.T, n *testkit.Node, id string, poke func(), rs ...*recorder) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		end := offsetOf(t, n, id)
		pending := false
		for _, r := range rs {
			r.upTo(end)
			pending = pending || r.inReplay
		}
		if !pending {
			return
		}
		if poke == nil || attempt == 10 {
			t.Fatalf("no output after a snapshot (attempt %d)", attempt)
		}
		poke()
		testkit.Eventually(t, "the program to print after a poke", func() bool { return n.Milestones.Session(id).Offset() > end })
	}
}

// htop redraws in place; once its output passes the ring, a replay of the
// ring alone lacks most of its screen. Late clients (following sizes, and
// keeping their own size) and a resize later, they all show the live
// client's screen.
func TestHtopLateClients(t *testing.T) {
	program(t, "htop")
	cfg := testkit.Config(t)
	cfg.TerminalRingSize = 32 << 10
	n := testkit.Start(t, cfg, nil)
	create(t, n, "htop", []string{"htop", "-d", "1", "--no-mouse"})
	live := record(t, n, "htop", "since=0", true)
	for live.offset < 3*cfg.TerminalRingSize {
		live.step()
	}
	late := record(t, n, "htop", "", true)
	console := record(t, n, "htop", "", false)
	// The console asks for its size once it has the screen (the creation
	// size here), then resizes; each resize is answered by a replay of its
	// own, and htop redraws at the new size for everyone.
	for i, sz := range [][2]int{{80, 24}, {100, 30}} {
		for console.replays <= i {
			console.step()
		}
		console.keepSize(sz[0], sz[1])
	}
	// Every snapshot complete (output came after it), every client at the
	// new size, and the live client as far: then stop htop (SIGTSTP, as ^Z
	// would) to compare the screens.
	for console.replays < 3 || console.inReplay {
		console.step()
	}
	for _, r := range []*recorder{late, live} {
		for r.inReplay || r.cols != 100 || r.offset < console.offset {
			r.step()
		}
	}
	live.Send(map[string]any{"type": "signal", "signal": "SIGTSTP"})
	settle(t, n, "htop", nil, live, late, console)
	if console.cols != 100 || late.cols != 100 || live.cols != 100 {
		t.Fatalf("sizes: live %d, late %d, console %d columns; late's steps %s", live.cols, late.cols, console.cols, late.steps())
	}
	judge(t, live, map[string]*recorder{"late client following sizes": late, "console-like client": console})
	live.Send(map[string]any{"type": "signal", "signal": "SIGKILL"})
}

// less pages a long file on the alternate screen until its output passes
// the ring; after quitting, the shell's screen from before is back, for a
// late client too.
func TestLessQuitLateClient(t *testing.T) {
	program(t, "less")
	cfg := testkit.Config(t)
	cfg.TerminalRingSize = 32 << 10
	n := testkit.Start(t, cfg, nil)
	file := filepath.Join(t.TempDir(), "long.txt")
	var b strings.Builder
	for i := range 3000 {
		b.WriteString(strings.Repeat("x", i%70) + " line\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	create(t, n, "less", []string{"sh", "-c", `printf '\033]2;shell\007'; for i in 1 2 3 4 5 6 7 8 9 10; do printf 'before less %d \033[1;3%dmcolour\033[0m\n' $i $((i % 8)); done; less -R "$1"; printf 'after less\n'; stty -echo; exec cat`, "sh", file})
	live := record(t, n, "less", "since=0", true)
	live.until("\x1b[?1049h")
	for live.offset < 3*cfg.TerminalRingSize {
		// Twenty pages a message, then read what they printed: the input
		// rate limit counts messages.
		at := live.offset
		live.input(strings.Repeat(" ", 20))
		for live.offset < at+20*80*10 {
			live.step()
		}
	}
	live.input("q")
	live.until("after less")
	// cat prints each line typed.
	poke := func() { live.input("Z\n") }
	settle(t, n, "less", poke, live)
	late := record(t, n, "less", "", true)
	console := record(t, n, "less", "", false)
	console.keepSize(80, 24)
	settle(t, n, "less", poke, live, late, console)
	if _, text := getText(t, n.HTTP+"/api/milestones/less/screen?format=text"); !strings.Contains(text, "before less 10") {
		t.Fatalf("the screen API lost the shell's screen:\n%s", text)
	}
	judge(t, live, map[string]*recorder{"late client": late, "console-like client": console})
}

// vim through 80x24 -> 120x40 -> 100x30, then late clients of both kinds,
// then a console-like client at its own size (which everyone follows).
func TestVimResizesLateClients(t *testing.T) {
	program(t, "vim")
	n := testkit.Start(t, nil, nil)
	file := filepath.Join(t.TempDir(), "notes.txt")
	var b strings.Builder
	for i := range 300 {
		b.WriteString("line " + strings.Repeat("ab ", i%25) + "end\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	create(t, n, "vim", []string{"vim", "-u", "NONE", "-i", "NONE", "-N", "-n", "+set mouse=a", "+set number", "+set laststatus=2", "+150", file})
	live := record(t, n, "vim", "since=0", true)
	live.until("150")
	// vim prints a message on its command line.
	poke := func() { live.input(":echo 'mark'\r") }
	// Another client resizes; the live client follows the size messages.
	driver := attach(t, n, "vim", alice(t), "")
	driver.status()
	for _, sz := range [][2]int{{120, 40}, {100, 30}} {
		driver.Send(map[string]any{"type": "resize", "cols": sz[0], "rows": sz[1]})
		for live.cols != sz[0] || live.rows != sz[1] {
			live.step()
		}
		settle(t, n, "vim", poke, live)
	}
	late := record(t, n, "vim", "", true)
	own := record(t, n, "vim", "", false)
	own.keepSizeAfterReplay(100, 30)
	settle(t, n, "vim", poke, live, late, own)
	judge(t, live, map[string]*recorder{"late client following sizes": late, "late client keeping its size": own})

	small := record(t, n, "vim", "", false)
	small.keepSizeAfterReplay(90, 20)
	live.input("Gotyped at 90x20\x1b")
	live.until("typed at 90x20")
	settle(t, n, "vim", poke, live, late, small)
	judge(t, live, map[string]*recorder{"follower after another's resize": late, "console-like client at its size": small})
	live.input(":q!\r")
}

// flooder is a full-screen program that redraws rows 1-22 as fast as it can
// and shows what it is typed on row 24: a flood that never scrolls the
// typed line away.
const flooder = `import os, select, tty
tty.setraw(0)
out, typed, i = os.fdopen(1, "wb", 0), b"", 0
out.write(b"\x1b[2J")
while True:
    if select.select([0], [], [], 0)[0]:
        d = os.read(0, 100)
        if not d:
            break
        typed += d
        out.write(b"\x1b[24;1Htyped: " + typed)
    out.write(b"".join(b"\x1b[%d;1Hflood %08d" % (k % 22 + 1, k) for k in range(i, i + 100)))
    i += 100
`

// A client that types during a flood and reads too slowly to keep up sees
// its typing on the screen it skips to: the snapshot has it, though the
// bytes that drew it left the ring long before.
func TestTypingSeenThroughAFlood(t *testing.T) {
	program(t, "python3")
	cfg := testkit.Config(t)
	cfg.TerminalRingSize = 32 << 10
	// The client reads nothing for as long as the flood takes to fill its
	// socket and then push the typing out of the ring: over 10 s on a busy
	// machine. The node's default write timeout would cut it off (as it
	// should a client that stalls that long), which is not under test here.
	cfg.IdleTimeout, cfg.WriteTimeout = 5*time.Minute, 5*time.Minute
	n := testkit.Start(t, cfg, nil)
	create(t, n, "flood", []string{"python3", "-c", flooder})
	c := record(t, n, "flood", "", true)
	// Typed once the program reads raw input (tty.setraw flushes what came
	// before).
	for !strings.Contains(c.m.Text(), "flood") {
		c.step()
	}
	// Read nothing until the node has stopped taking this client's output:
	// its queue and socket are full. A client being served is never more
	// than the ring (32 KiB) and a chunk behind, since a read that finds it
	// out of the ring skips it to the present; 4 MiB behind, it is stalled,
	// whatever the socket buffers hold.
	sess := n.Milestones.Session("flood")
	testkit.EventuallyWithin(t, time.Minute, "the client to stall", func() bool {
		return sess.Stats().MaxClientLag > 4<<20
	})
	// Type, and read nothing until what drew the typing has left the ring.
	typedAt := sess.Offset()
	c.input("hello")
	testkit.EventuallyWithin(t, time.Minute, "the typing to leave the ring", func() bool {
		return sess.Offset() > typedAt+(4<<20)
	})
	if st := sess.Stats(); st.OutputBytes-st.MaxClientLag > typedAt {
		t.Fatalf("the stalled client took output up to %d, past the typing at %d", st.OutputBytes-st.MaxClientLag, typedAt)
	}
	deadline := time.Now().Add(time.Minute) // reading what was queued first
	for !strings.Contains(c.m.Text(), "typed: hello") {
		if time.Now().After(deadline) {
			t.Fatalf("after %d replays, the screen:\n%s", c.replays, c.m.Text())
		}
		if m := c.step(); m["type"] == "output" && strings.Contains(c.m.Text(), "typed: hello") {
			t.Fatal("the typing came as output: the test did not make the client skip it")
		}
	}
}
