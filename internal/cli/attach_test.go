package cli_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/internal/cli"
	vtscreen "github.com/tether-dev/tether/internal/terminal/screen"
	"github.com/tether-dev/tether/internal/testkit"
)

// screen collects what the attached program shows on a local PTY.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// attachOnPTY runs `tether attach` in-process with a real PTY as its
// terminal and returns the PTY master (the keyboard and screen), what the
// screen showed, and the command's exit code when it ends.
func attachOnPTY(t *testing.T, args ...string) (*os.File, *screen, <-chan int, *bytes.Buffer) {
	t.Helper()
	return attachOnPTYWith(t, false, args...)
}

// attachOnPTYWith is attachOnPTY; with sharedStderr the command's stderr is
// the terminal too, as in a shell (the returned buffer stays empty).
func attachOnPTYWith(t *testing.T, sharedStderr bool, args ...string) (*os.File, *screen, <-chan int, *bytes.Buffer) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	// The command's terminal: a non-blocking copy of the slave, so that
	// its reads can be interrupted when the command ends, as they can be
	// for a real process that exits.
	// (close-on-exec, or the milestones' programs would inherit it and keep
	// the terminal open).
	fd, err := unix.FcntlInt(slave.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	tty := os.NewFile(uintptr(fd), "tty")
	if err := pty.Setsize(master, &pty.Winsize{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	scr := &screen{}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(scr, master); close(copied) }()
	code := make(chan int, 1)
	var stderr bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		var errOut io.Writer = &stderr
		if sharedStderr {
			errOut = tty
		}
		code <- cli.Main(append([]string{"attach"}, args...), tty, tty, errOut)
	}()
	t.Cleanup(func() {
		<-done
		tty.Close()
		slave.Close()
		master.Close()
		<-copied
	})
	return master, scr, code, &stderr
}

func createMilestone(t *testing.T, n *testkit.Node, id string, cmd ...string) {
	t.Helper()
	status, body := testkit.PostJSON(t, n.HTTP+"/api/milestones", testkit.Token(t, "ops", "admin"), map[string]any{"id": id, "owner": "alice", "command": cmd})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
}

func waitExit(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(testkit.Timeout):
		t.Fatal("attach did not end")
		return -1
	}
}

// Raw mode, the size sent on start and on SIGWINCH, typing, and the detach
// key that leaves the program running.
func TestAttachTypesResizesAndDetaches(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	createMilestone(t, n, "sh1", "sh", "-c", "stty -echo; echo ready; exec cat")
	master, scr, code, stderr := attachOnPTY(t, "sh1", "--server", n.HTTP, "--token", testkit.Token(t, "alice"))
	testkit.Eventually(t, "ready on screen", func() bool { return strings.Contains(scr.String(), "ready") })
	testkit.Eventually(t, "the local size applied", func() bool {
		c, r := n.Milestones.Session("sh1").Size()
		return c == 100 && r == 30
	})
	// Raw mode passes the carriage return through; the remote terminal
	// turns it into a newline for cat.
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "hello echoed", func() bool { return strings.Contains(scr.String(), "hello\r\n") })

	if err := pty.Setsize(master, &pty.Winsize{Cols: 120, Rows: 40}); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	testkit.Eventually(t, "the new size applied", func() bool {
		c, r := n.Milestones.Session("sh1").Size()
		return c == 120 && r == 40
	})

	if _, err := master.Write([]byte{cli.DetachKey}); err != nil {
		t.Fatal(err)
	}
	if c := waitExit(t, code); c != 0 {
		t.Fatalf("exit %d: %s", c, stderr)
	}
	// The way back, with the flags given (the token by name only).
	back := regexp.MustCompile(`^\r\n\[detached from sh1; it keeps running: \S.* attach sh1 --server http://127\.0\.0\.1:\d+ --token TOKEN to come back\]\r\n$`)
	if !back.MatchString(stderr.String()) {
		t.Fatalf("stderr %q", stderr)
	}
	if n.Milestones.Session("sh1") == nil {
		t.Fatal("detaching ended the program")
	}
}

// After a network drop, attach reconnects and repaints the screen from a
// snapshot: what was printed meanwhile appears exactly once, and its own
// status line, written over the program's screen, is gone.
func TestAttachResumesAfterDrop(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	createMilestone(t, n, "cat1", "sh", "-c", "stty -echo; echo ready; exec cat")
	proxy := newProxy(t, n.Server.Listener.Addr().String())
	master, scr, code, stderr := attachOnPTYWith(t, true, "cat1", "--server", "http://"+proxy.addr, "--token", testkit.Token(t, "alice"))
	testkit.Eventually(t, "ready", func() bool { return strings.Contains(scr.String(), "ready") })
	if _, err := master.Write([]byte("one\r")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "one", func() bool { return strings.Contains(scr.String(), "one\r\n") })

	proxy.cut()
	// Output produced while the attach is disconnected.
	other := testkit.Dial(t, n.WS+"/api/milestones/cat1/terminal?since=0", testkit.Bearer(testkit.Token(t, "alice")))
	other.Send(map[string]any{"type": "input", "data": "two\n"})
	testkit.Eventually(t, "two after the reconnect", func() bool { return strings.Contains(scr.String(), "two\r\n") })
	if _, err := master.Write([]byte("three\r")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "three", func() bool { return strings.Contains(scr.String(), "three\r\n") })
	// The screen, read back: the reconnect repainted it from a snapshot,
	// so what was printed meanwhile is there once and the status line,
	// written over the program's screen, is gone.
	want := "ready\none\ntwo\nthree\n"
	testkit.Eventually(t, "the repainted screen", func() bool {
		return strings.HasPrefix(scr.model(100, 30).Text(), want)
	})
	if !strings.Contains(scr.String(), "[connection lost") {
		t.Fatalf("no status line on the terminal: %q", scr.String())
	}
	_, _ = master.Write([]byte{cli.DetachKey})
	waitExit(t, code)
	_ = stderr
}

// A read-only attach (--view) resumes after a dropped connection the same
// way: the screen is repainted from a snapshot, with what was printed
// meanwhile once, and nothing typed locally reaches the program.
func TestAttachViewResumesAfterDrop(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	createMilestone(t, n, "catv", "sh", "-c", "stty -echo; echo ready; exec cat")
	proxy := newProxy(t, n.Server.Listener.Addr().String())
	master, scr, code, _ := attachOnPTYWith(t, true, "catv", "--view", "--server", "http://"+proxy.addr, "--token", testkit.Token(t, "alice"))
	testkit.Eventually(t, "ready", func() bool { return strings.Contains(scr.String(), "ready") })
	other := testkit.Dial(t, n.WS+"/api/milestones/catv/terminal?since=0", testkit.Bearer(testkit.Token(t, "alice")))
	other.Send(map[string]any{"type": "input", "data": "one\n"})
	testkit.Eventually(t, "one", func() bool { return strings.Contains(scr.String(), "one\r\n") })

	proxy.cut()
	other.Send(map[string]any{"type": "input", "data": "two\n"})
	testkit.Eventually(t, "two after the reconnect", func() bool { return strings.Contains(scr.String(), "two\r\n") })
	if _, err := master.Write([]byte("typed locally\r")); err != nil {
		t.Fatal(err)
	}
	other.Send(map[string]any{"type": "input", "data": "three\n"})
	want := "ready\none\ntwo\nthree\n"
	testkit.Eventually(t, "the repainted screen", func() bool {
		return strings.HasPrefix(scr.model(100, 30).Text(), want)
	})
	if !strings.Contains(scr.String(), "[connection lost") {
		t.Fatalf("no status line on the terminal: %q", scr.String())
	}
	if strings.Contains(scr.model(100, 30).Text(), "typed locally") {
		t.Fatalf("a view-only attach sent input:\n%s", scr.model(100, 30).Text())
	}
	_, _ = master.Write([]byte{cli.DetachKey})
	waitExit(t, code)
}

// model feeds everything the terminal received to a screen model.
func (s *screen) model(cols, rows int) *vtscreen.Model {
	m := vtscreen.New(cols, rows, 1000)
	m.Write([]byte(s.String()))
	return m
}

// Detaching, and the program's exit, leave the local terminal as a shell
// expects it, whatever modes the program turned on.
func TestAttachRestoresTerminal(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	modes := `\033[?1049h\033[?1000h\033[?1006h\033[?1004h\033[?2004h\033[?1h\033=\033[?25l\033[3;10r\033[1;31m`
	createMilestone(t, n, "vi", "sh", "-c", "stty -echo; printf '"+modes+"FULLSCREEN'; exec cat")
	createMilestone(t, n, "vi2", "sh", "-c", "printf '"+modes+"FULLSCREEN'; exit 2")
	check := func(scr *screen) {
		t.Helper()
		m := scr.model(100, 30)
		snap := string(m.Snapshot(nil))
		if m.AltScreen() || strings.Contains(m.Text(), "FULLSCREEN") {
			t.Fatalf("still on the program's screen:\n%s", m.Text())
		}
		for _, on := range []string{"?1000h", "?1006h", "?1004h", "?2004h", "?1h", "\x1b=", "?25l", "[3;10r", "[1;31m", "31m"} {
			if strings.Contains(snap, on) {
				t.Errorf("mode %q still on: %q", on, snap)
			}
		}
	}

	master, scr, code, stderr := attachOnPTYWith(t, true, "vi", "--server", n.HTTP, "--token", testkit.Token(t, "alice"))
	testkit.Eventually(t, "the program's screen", func() bool { return scr.model(100, 30).AltScreen() })
	_, _ = master.Write([]byte{cli.DetachKey})
	if c := waitExit(t, code); c != 0 {
		t.Fatalf("exit %d: %s", c, stderr)
	}
	// The command has exited, but what it wrote may still be on its way
	// through the PTY to this test's reader; the detach message comes
	// after the restore sequences.
	testkit.Eventually(t, "the detach message", func() bool { return strings.Contains(scr.String(), "[detached from vi") })
	check(scr)
	if !strings.Contains(scr.model(100, 30).Text(), "[detached from vi") {
		t.Fatalf("no detach message on the screen:\n%s", scr.model(100, 30).Text())
	}

	_, scr, code, _ = attachOnPTYWith(t, true, "vi2", "--server", n.HTTP, "--token", testkit.Token(t, "alice"))
	if c := waitExit(t, code); c != 2 {
		t.Fatalf("exit %d", c)
	}
	testkit.Eventually(t, "the restore sequences arrived", func() bool {
		return strings.HasSuffix(scr.String(), "\x1b[0m") || strings.Contains(scr.String(), "\x1b[?25h\x1b[0m")
	})
	check(scr)
}

// attach exits with the program's exit code.
func TestAttachExitCode(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	createMilestone(t, n, "fail", "sh", "-c", "echo bye; exit 3")
	_, scr, code, stderr := attachOnPTY(t, "fail", "--server", n.HTTP, "--token", testkit.Token(t, "alice"))
	if c := waitExit(t, code); c != 3 {
		t.Fatalf("exit %d: %s", c, stderr)
	}
	testkit.Eventually(t, "bye on screen", func() bool { return strings.Contains(scr.String(), "bye") })
	// Errors from the server are reported, not retried.
	_, _, code, stderr = attachOnPTY(t, "fail", "--server", n.HTTP, "--token", "garbage")
	if c := waitExit(t, code); c != 1 || !strings.Contains(stderr.String(), "invalid_token") {
		t.Fatalf("exit %d: %s", c, stderr)
	}
}

// proxy forwards TCP to a target and can cut every connection at once.
type proxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
			up, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
			cancel()
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// attach and connect say at once what is wrong and what to do: without a
// token they do not start (the server would wait 10 s for an auth message
// they never send), and a refusal shows the server's words with the code.
func TestAttachAndConnectExplainRefusals(t *testing.T) {
	t.Setenv("TETHER_TOKEN", "")
	n := testkit.Start(t, nil, nil)
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(args, strings.NewReader(""), &out, &errOut)
		return code, errOut.String()
	}
	mint := regexp.MustCompile(`\(an admin token: \S.* token --sub admin --roles admin\)\n$`)
	code, msg := run("attach", "demo", "--server", n.HTTP)
	if want := "tether attach: no token: pass --token TOKEN or set TETHER_TOKEN; the milestone's owner or an admin may attach "; code != 1 || !strings.HasPrefix(msg, want) || !mint.MatchString(msg) {
		t.Errorf("attach without a token: exit %d, stderr %q", code, msg)
	}
	code, msg = run("connect", n.WS+"/ws/agent")
	mint = regexp.MustCompile(`\(mint one with: \S.* token --sub alice; serve --dev prints one too\)\n$`)
	if want := "tether connect: no token: pass --token TOKEN or set TETHER_TOKEN "; code != 1 || !strings.HasPrefix(msg, want) || !mint.MatchString(msg) {
		t.Errorf("connect without a token: exit %d, stderr %q", code, msg)
	}
	// A refused handshake: the status and the server's message, not its JSON.
	code, msg = run("connect", n.WS+"/ws/agent", "--token", "garbage")
	if want := "tether connect: connect " + n.WS + "/ws/agent: 401 Unauthorized: "; code != 1 || !strings.HasPrefix(msg, want) || !strings.Contains(msg, "invalid_token") || strings.Contains(msg, "{") {
		t.Errorf("connect with a bad token: exit %d, stderr %q", code, msg)
	}
	code, msg = run("attach", "nope", "--server", n.HTTP, "--token", "garbage")
	if want := "tether attach: 401 Unauthorized: "; code != 1 || !strings.HasPrefix(msg, want) || !strings.Contains(msg, "invalid_token") || strings.Contains(msg, "{") {
		t.Errorf("attach with a bad token: exit %d, stderr %q", code, msg)
	}
	code, msg = run("attach", "nope", "--server", n.HTTP, "--token", testkit.Token(t, "admin", "admin"))
	if want := "tether attach: closed by server: 4004 not_found: no milestone nope\n"; code != 1 || msg != want {
		t.Errorf("attach to a missing milestone: exit %d, stderr %q, want %q", code, msg, want)
	}
}
