package cli

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
)

// DetachKey is the byte that detaches `tether attach` (Ctrl-]), as in
// telnet; the program keeps running.
const DetachKey = 0x1d

// errDetached ends an attach that the user detached.
var errDetached = errors.New("detached")

// exitError carries the exit code of the attached program.
type exitError struct{ code int }

func (e exitError) Error() string { return "program exited with code " + strconv.Itoa(e.code) }

// Attach runs `tether attach`: the local terminal drives a milestone's
// terminal like `kubectl exec -it`, in raw mode, resized on start and on
// SIGWINCH (it keeps its own size: the server answers each resize with the
// screen at that size). After a network drop it reconnects and repaints
// the screen from the server's snapshot (or, when output is not a
// terminal, resumes from its last offset). On detach, exit and error it
// turns off the modes the program left on (restoreModes).
func Attach(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tether attach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("TETHER_SERVER", "http://localhost:8000"), "Tether base URL (default $TETHER_SERVER or http://localhost:8000)")
	token := fs.String("token", os.Getenv("TETHER_TOKEN"), "token (default $TETHER_TOKEN)")
	view := fs.Bool("view", false, "attach read-only")
	retry := fs.Duration("reconnect-for", 2*time.Minute, "how long to keep reconnecting after the connection drops")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tether attach [flags] <milestone>\n\nDetach with Ctrl-] (the program keeps running).")
		fs.PrintDefaults()
	}
	id, rest := "", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == "" {
		id = fs.Arg(0)
	}
	if id == "" {
		fs.Usage()
		return errors.New("a milestone id is required")
	}
	if *token == "" {
		// Without one the server would wait --auth-timeout (10 s) for an
		// auth message that attach never sends, then close with 4001.
		return fmt.Errorf("no token: pass --token TOKEN or set TETHER_TOKEN; the milestone's owner or an admin may attach (an admin token: %s token --sub admin --roles admin)", self())
	}
	base, err := url.Parse(*server)
	if err != nil || base.Host == "" {
		return fmt.Errorf("bad --server %q", *server)
	}
	switch base.Scheme {
	case "https":
		base.Scheme = "wss"
	default:
		base.Scheme = "ws"
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/api/milestones/" + url.PathEscape(id) + "/terminal"

	a := &attacher{base: base, token: *token, view: *view, stdin: stdin, stdout: stdout, stderr: stderr, retry: *retry, offset: -1}
	if f, ok := stdin.(*os.File); ok {
		if restore, err := makeRaw(f); err == nil {
			defer restore()
			a.raw = true
		}
		// Unblock the input reader on the way out (where stdin supports
		// deadlines), so that no goroutine outlives the command.
		defer func() { _ = f.SetReadDeadline(time.Now()) }()
	}
	if f, ok := stdout.(*os.File); ok {
		a.ttyOut = f
		a.screenOut = isTerminal(f)
	}
	err = a.run()
	if a.screenOut {
		// Whatever modes the program left on (alternate screen, mouse
		// reporting, application keys…) must not stay in the user's
		// terminal, on detach, exit or error alike.
		_, _ = io.WriteString(stdout, restoreModes)
	}
	switch {
	case errors.Is(err, errDetached):
		fmt.Fprintf(stderr, "\r\n[detached from %s; it keeps running: %s to come back]\r\n", id, reattach(id, fs))
		return nil
	case err == nil:
		return nil
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee
	}
	return err
}

type attacher struct {
	base           *url.URL
	token          string
	view, raw      bool
	stdin          io.Reader
	stdout, stderr io.Writer
	ttyOut         *os.File
	screenOut      bool // stdout is a terminal: repaint from a snapshot after a reconnect
	retry          time.Duration
	offset         int64 // last offset received; -1 before any
	mu             sync.Mutex
	conn           *websocket.Conn
	inputOnce      sync.Once
	inputErr       chan error
}

func (a *attacher) run() error {
	a.inputErr = make(chan error, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	var dropSince time.Time
	for attempt := 0; ; attempt++ {
		c, err := a.dial()
		if err != nil {
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return fatal.err
			}
			if dropSince.IsZero() {
				dropSince = time.Now()
			}
			if time.Since(dropSince) > a.retry {
				return fmt.Errorf("reconnect: %w", err)
			}
			time.Sleep(backoff(attempt))
			continue
		}
		attempt, dropSince = 0, time.Time{}
		a.mu.Lock()
		a.conn = c
		a.mu.Unlock()
		a.sendSize(c)
		a.inputOnce.Do(func() { go a.pumpInput() })
		err = a.session(c, winch)
		if err == nil || errors.Is(err, errDetached) || isExit(err) {
			_ = c.Close(websocket.StatusNormalClosure, "")
			return err
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.StatusGoingAway {
			return closedByServer(err)
		}
		// A drop or a node going away. On a terminal, the status line is
		// written over the program's screen: reconnect without since, so
		// that the server sends the current screen (a replay) and the
		// screen is repainted, status line gone. Otherwise (output to a
		// file or pipe) resume from the last offset, every byte once.
		fmt.Fprintf(a.stderr, "\r\n[connection lost (%v); reconnecting]\r\n", shortErr(err))
		if a.screenOut {
			a.offset = -1
		}
	}
}

// restoreModes brings a terminal back to the modes a shell expects: the
// normal screen (leaving the alternate one), the full scroll region
// (between DECSC and DECRC, since DECSTBM homes the cursor), mouse
// reporting and its encodings off, focus events off, bracketed paste off,
// normal cursor keys and keypad, the cursor shown, attributes reset.
const restoreModes = "\x1b[?1049l\x1b7\x1b[r\x1b8" +
	"\x1b[?9l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l" +
	"\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>\x1b[?25h\x1b[0m"

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return terminal.Control(f, func(fd int) error {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}) == nil
}

// serverError is a connection's end preceded by the server's error
// message, which says why in words.
type serverError struct {
	reply protocol.ErrorReply
	err   error
}

func (e *serverError) Error() string { return e.err.Error() + ": " + e.reply.Message }
func (e *serverError) Unwrap() error { return e.err }

// closedByServer reports a close by the server: its code, its reason and
// the message of the error sent before it, e.g.
// "closed by server: 4004 not_found: no milestone demo".
func closedByServer(err error) error {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return err
	}
	msg := fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Reason)
	var se *serverError
	if errors.As(err, &se) && se.reply.Message != "" {
		msg += ": " + se.reply.Message
	}
	return errors.New(msg)
}

// reattach is the command that attaches to id again with the same flags;
// the token only by name (it is a secret), and not at all when it came
// from TETHER_TOKEN, which will still be set.
func reattach(id string, fs *flag.FlagSet) string {
	cmd := self() + " attach " + id
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["server"] {
		cmd += " --server " + fs.Lookup("server").Value.String()
	}
	if given["view"] && fs.Lookup("view").Value.String() == "true" {
		cmd += " --view"
	}
	if given["token"] {
		cmd += " --token TOKEN"
	}
	return cmd
}

func isExit(err error) bool {
	var ee exitError
	return errors.As(err, &ee)
}

type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

func (a *attacher) dial() (*websocket.Conn, error) {
	u := *a.base
	q := u.Query()
	if a.offset >= 0 {
		q.Set("since", strconv.FormatInt(a.offset, 10))
	}
	if a.view {
		q.Set("mode", "view")
	}
	u.RawQuery = q.Encode()
	hdr := http.Header{}
	if a.token != "" {
		hdr.Set("Authorization", "Bearer "+a.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: hdr, Subprotocols: []string{protocol.SubprotocolTerminalBinary},
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, &fatalError{errors.New(refusal(resp))}
		}
		return nil, err
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}

// session reads frames until the connection ends.
func (a *attacher) session(c *websocket.Conn, winch <-chan os.Signal) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				a.sendSize(c)
			}
		}
	}()
	readErr := make(chan error, 1)
	go func() { readErr <- a.read(ctx, c) }()
	select {
	case err := <-readErr:
		return err
	case err := <-a.inputErr:
		return err
	}
}

// read shows the terminal's output until the connection ends. An error
// message is held until the next frame: the server sends one right before
// closing, and then it belongs in the close report (see closedByServer)
// rather than on the screen.
func (a *attacher) read(ctx context.Context, c *websocket.Conn) error {
	var pending *protocol.ErrorReply
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			if pending != nil {
				return &serverError{reply: *pending, err: err}
			}
			return err
		}
		if pending != nil {
			fmt.Fprintf(a.stderr, "\r\n[tether: %s: %s]\r\n", pending.Code, pending.Message)
			pending = nil
		}
		if typ == websocket.MessageBinary {
			if len(b) < 9 {
				continue
			}
			if b[0] == protocol.BinaryReplayStart {
				_, _ = io.WriteString(a.stdout, "\x1bc") // reset before a replay
			}
			if _, err := a.stdout.Write(b[9:]); err != nil {
				return err
			}
			a.offset = int64(binary.BigEndian.Uint64(b[1:9]))
			continue
		}
		// "code" is a number in exit messages and a string in errors.
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		switch m.Type {
		case protocol.TypeExit:
			var exit struct {
				Code int `json:"code"`
			}
			_ = json.Unmarshal(b, &exit)
			if exit.Code == 0 {
				return nil
			}
			return exitError{exit.Code}
		case protocol.TypeError:
			var e protocol.ErrorReply
			if json.Unmarshal(b, &e) == nil {
				pending = &e
			}
		}
	}
}

// pumpInput forwards stdin to whichever connection is current. It runs
// for the life of the command: stdin cannot be un-read.
func (a *attacher) pumpInput() {
	buf := make([]byte, 32<<10)
	for {
		n, err := a.stdin.Read(buf)
		if n > 0 {
			data := buf[:n]
			if a.raw {
				if i := indexByte(data, DetachKey); i >= 0 {
					a.send(data[:i])
					a.stopInput(errDetached)
					return
				}
			}
			a.send(data)
		}
		if err != nil {
			if !a.raw && err == io.EOF {
				// Piped input ended: keep showing output until the program ends.
				return
			}
			a.stopInput(err)
			return
		}
	}
}

// stopInput reports why input ended, unless the session already ended.
func (a *attacher) stopInput(err error) {
	select {
	case a.inputErr <- err:
	default:
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (a *attacher) send(data []byte) {
	if len(data) == 0 || a.view {
		return
	}
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Lost keystrokes during a reconnect are dropped, as on any terminal.
	_ = c.Write(ctx, websocket.MessageBinary, data)
}

func (a *attacher) sendSize(c *websocket.Conn) {
	if a.ttyOut == nil || a.view {
		return
	}
	var ws *unix.Winsize
	err := terminal.Control(a.ttyOut, func(fd int) (err error) {
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	if err != nil || ws.Col == 0 {
		return
	}
	b, _ := json.Marshal(protocol.ResizeRequest{Cols: int(ws.Col), Rows: int(ws.Row)})
	msg := append([]byte(`{"type":"resize",`), b[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, msg)
}

// makeRaw puts the terminal f in raw mode and returns how to restore it.
func makeRaw(f *os.File) (func(), error) {
	var old *unix.Termios
	if err := terminal.Control(f, func(fd int) (err error) {
		old, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}); err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	set := func(t *unix.Termios) error {
		return terminal.Control(f, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, t) })
	}
	if err := set(&raw); err != nil {
		return nil, err
	}
	return func() { _ = set(old) }, nil
}

func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 5)
	return min(d, 3*time.Second)
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
