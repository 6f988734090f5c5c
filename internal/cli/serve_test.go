package cli_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/testkit"
)

// buildTether builds cmd/tether into a temporary directory.
func buildTether(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "tether")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/tether")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// `tether serve 2>&1 | tee log`, then Ctrl-C, which ends tee as well: the
// node's output goes to a closed pipe while it shuts down. It must still
// close its clients with 1001 and exit 0, not die of SIGPIPE.
func TestServeSurvivesClosedOutputPipe(t *testing.T) {
	bin := buildTether(t)
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	cmd.Stdout, cmd.Stderr = w, w
	p := startProc(t, cmd, killProc)
	w.Close()

	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more
			}
		}
	}()
	example := regexp.MustCompile(`connect (ws://[0-9.:]+/ws/agent) --token (\S+)`)
	var url, tok string
	deadline := time.After(testkit.Timeout)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("serve exited before printing its example")
			}
			if m := example.FindStringSubmatch(l); m != nil {
				url, tok = m[1], m[2]
			}
		case <-deadline:
			t.Fatal("no example printed")
		}
	}
	c := testkit.Dial(t, url, testkit.Bearer(tok))
	if m := c.Auth(tok); m["user_id"] != "dev" {
		t.Fatalf("auth = %v", m)
	}
	// The reader goes: every later write to stdout or stderr fails with
	// EPIPE (the scanner goroutine ends on the closed file).
	r.Close()

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if reason := c.ExpectClose(websocket.StatusGoingAway); reason != "server shutting down" {
		t.Fatalf("close reason %q", reason)
	}
	if err := p.wait(t, testkit.Timeout); err != nil {
		t.Fatalf("serve after SIGINT with its output pipe closed: %v, want exit status 0", err)
	}
}
