package cli_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/cli"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The README's first command, as a real process: `tether serve --dev`
// prints a token and a working example, the example works, `tether token`
// mints with the stored dev secret, and SIGTERM closes clients with 1001
// and exits 0.
func TestServeDevEndToEnd(t *testing.T) {
	bin := buildTether(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", data)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Read the banner up to the example command.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	example := regexp.MustCompile(`connect (ws://[0-9.:]+/ws/agent) --token (\S+)`)
	var url, tok string
	deadline := time.After(testkit.Timeout)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited early; stderr:\n%s", stderr.String())
			}
			if m := example.FindStringSubmatch(l); m != nil {
				url, tok = m[1], m[2]
			}
		case <-deadline:
			t.Fatalf("no example printed; stderr:\n%s", stderr.String())
		}
	}

	// The printed example, run through the connect command.
	var out, errOut bytes.Buffer
	if code := cli.Main([]string{"connect", url, "--token", tok, "--wait", "5s"}, strings.NewReader(`{"type":"ping","id":1}`+"\n"+`{"type":"disconnect"}`+"\n"), &out, &errOut); code != 0 {
		t.Fatalf("connect exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), `{"type":"pong","id":1,"server_time":"`) {
		t.Fatalf("connect printed %q", out.String())
	}

	// tether token uses the stored dev secret.
	out.Reset()
	if code := cli.Main([]string{"token", "--sub", "alice", "--roles", "admin", "--data-dir", data}, nil, &out, &errOut); code != 0 {
		t.Fatalf("token exit %d: %s", code, errOut.String())
	}
	alice := strings.TrimSpace(out.String())
	c := testkit.Dial(t, url, testkit.Bearer(alice))
	if m := c.Auth(alice); m["user_id"] != "alice" {
		t.Fatalf("auth = %v", m)
	}

	// SIGTERM: the client is told 1001 and the process exits cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if reason := c.ExpectClose(websocket.StatusGoingAway); reason != "server shutting down" {
		t.Fatalf("reason %q", reason)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("serve exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Fatalf("no clean stop logged:\n%s", stderr.String())
	}
	for range lines {
	}
}

func TestTokenNeedsASecret(t *testing.T) {
	var out, errOut bytes.Buffer
	code := cli.Main([]string{"token", "--sub", "x", "--data-dir", t.TempDir()}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no secret") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	code = cli.Main([]string{"token"}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--sub is required") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
