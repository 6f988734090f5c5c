package cli_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"

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

// A node whose NATS is not up yet keeps its port open and says on /readyz
// that it is starting; once NATS and JetStream come up it is ready.
func TestServeSaysStartingOnReadyz(t *testing.T) {
	bin := buildTether(t)
	dir := t.TempDir()
	natsPort, httpPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	cmd := exec.Command(bin, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--data-dir", filepath.Join(dir, "data"),
		"--jwt-secret", testkit.Secret, "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p := startProc(t, cmd, killProc)

	readyz := func() (int, map[string]any) { return testkit.GetJSON(base + "/readyz") }
	var body map[string]any
	testkit.Eventually(t, "/readyz while NATS is down", func() bool {
		var status int
		status, body = readyz()
		return status == http.StatusServiceUnavailable
	})
	if body["status"] != "starting" {
		t.Fatalf("/readyz = %v, want status starting", body)
	}

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: natsPort, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	testkit.Eventually(t, "/readyz once NATS is up", func() bool {
		status, b := readyz()
		return status == http.StatusOK && b["status"] == "ready"
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, testkit.Timeout); err != nil {
		t.Fatalf("serve: %v\n%s", err, out.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
