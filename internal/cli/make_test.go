package cli_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit"
)

// buildTimeout bounds building the binary (or running make) on a busy
// machine.
const buildTimeout = 5 * time.Minute

// proc is a started command.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited; then err is its end
	err  error
}

// startProc starts cmd; when the test ends, kill ends it if it still runs.
func startProc(t *testing.T, cmd *exec.Cmd, kill func(*exec.Cmd)) *proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			kill(cmd)
			<-p.done
		}
	})
	return p
}

// wait waits for the command to end, within d, and returns how it ended.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.cmd.Path, d)
		return nil
	}
}

func killProc(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// killGroup kills the process group a command leads.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// makeCmd runs make in the repository's root in a process group of its own,
// as a terminal runs it, with its output in out.
func makeCmd(t *testing.T, out *testkit.SyncBuffer, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", root}, args...)...)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "MAKEFLAGS=")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Ctrl-C on `make dev` stops the node cleanly and make reports no error
// (`go run` exits 1 whenever it is interrupted: make printed
// "make: *** [Makefile:…: dev] Error 1").
func TestMakeDevCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	var out testkit.SyncBuffer
	// BUNDLE= : the console's bundle (npm) is not what this is about.
	cmd := makeCmd(t, &out, "dev", "BUNDLE=", "DEVBIN="+filepath.Join(dir, "tether"),
		"DEVFLAGS=--addr 127.0.0.1:0 --data-dir "+filepath.Join(dir, "data"))
	p := startProc(t, cmd, killGroup)
	deadline := time.Now().Add(buildTimeout)
	for !strings.Contains(out.String(), "tether listening") {
		select {
		case <-p.done:
			t.Fatalf("make dev ended: %v\n%s", p.err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("make dev did not start within %v:\n%s", buildTimeout, out.String())
		}
	}
	// Ctrl-C: the terminal signals the whole foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := p.wait(t, testkit.Timeout)
	// make passes an interrupt on by ending with the same signal (the
	// shell prints nothing for it); any other failure is an error.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
		t.Fatalf("make dev after Ctrl-C: %v\n%s", err, out.String())
	}
	if s := out.String(); strings.Contains(s, "***") || !strings.Contains(s, "msg=stopped") {
		t.Fatalf("make dev after Ctrl-C, want a clean stop and no make error:\n%s", s)
	}
}

// `make test` runs the tests every time, never from Go's test cache, and
// extra GOTESTFLAGS (as .ci/run passes them) still go to go test.
func TestMakeTestGoBypassesTestCache(t *testing.T) {
	dir := t.TempDir()
	fakeGo := filepath.Join(dir, "go")
	argsFile := filepath.Join(dir, "args")
	// A stand-in for the go command that records its arguments.
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + argsFile + "\n"
	if err := os.WriteFile(fakeGo, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flags, want string }{
		{"", "test -race -count=1 ./..."},
		{"-count=1 -timeout 20m", "test -race -count=1 -count=1 -timeout 20m ./..."},
	} {
		_ = os.Remove(argsFile)
		var out testkit.SyncBuffer
		p := startProc(t, makeCmd(t, &out, "-s", "test-go", "GO="+fakeGo, "GOTESTFLAGS="+tc.flags, "TEST_CLIENTS="), killGroup)
		if err := p.wait(t, testkit.Timeout); err != nil {
			t.Fatalf("make test-go: %v\n%s", err, out.String())
		}
		got, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(got)) != tc.want {
			t.Fatalf("GOTESTFLAGS=%q: make test-go ran go %q, want go %q", tc.flags, strings.TrimSpace(string(got)), tc.want)
		}
	}
}
