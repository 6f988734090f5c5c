//go:build linux

package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testBound caps every Run in these tests: when it expires the operation is
// cancelled, which shows up as a wrong Outcome rather than a hung test.
const testBound = 30 * time.Second

// request returns a RunRequest for a script in testdata.
func request(script string, args ...string) RunRequest {
	return RunRequest{
		OperationID:   "op-1",
		AgentID:       "agent-1",
		OperationType: "test",
		Spec:          OperationSpec{Command: append([]string{"testdata/" + script}, args...)},
	}
}

// runReq runs req, records its events and reports how long Run took.
func runReq(t *testing.T, req RunRequest) (Outcome, []Event, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	var events []Event
	start := time.Now()
	out := Run(ctx, req, func(ev Event) error {
		events = append(events, ev)
		return nil
	})
	return out, events, time.Since(start)
}

func checkOutcome(t *testing.T, got, want Outcome) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("outcome\n got %s\nwant %s", g, w)
	}
}

func checkEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events\n got %s\nwant %s", eventsString(got), eventsString(want))
	}
}

func eventsString(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + eventString(ev))
	}
	return b.String()
}

func logEvent(s string) Event { return Event{Kind: EventLog, Log: s} }

// waitGone waits, bounded, until pid has exited (a zombie counts: it is
// dead, merely not yet reaped by whoever inherited it). It may be called
// from emit, so it reports instead of failing the test.
func waitGone(pid int) error {
	deadline := time.Now().Add(testBound)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %v", pid, testBound)
		}
		<-tick.C
	}
}

// pidFromLog extracts N from a log event "<prefix> N".
func pidFromLog(ev Event, prefix string) (int, error) {
	pid, err := strconv.Atoi(strings.TrimPrefix(ev.Log, prefix+" "))
	if ev.Kind != EventLog || err != nil {
		return 0, fmt.Errorf("event %s is not %q followed by a pid", eventString(ev), prefix)
	}
	return pid, nil
}

// checkGone fails the test unless the process named by ev ("<prefix> N")
// has exited.
func checkGone(t *testing.T, ev Event, prefix string) {
	t.Helper()
	pid, err := pidFromLog(ev, prefix)
	if err == nil {
		err = waitGone(pid)
	}
	if err != nil {
		t.Error(err)
	}
}

func TestRunCompletes(t *testing.T) {
	t.Parallel()
	out, events, _ := runReq(t, request("ok.sh"))
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`{"ok": true, "n": 3}`)})
	checkEvents(t, events, []Event{
		{Kind: EventProgress, Progress: pf(10), Step: "step1", Message: "starting"},
		{Kind: EventProgress, Progress: pf(50)},
		logEvent("halfway"),
		{Kind: EventProgress, Progress: pf(100), Step: "done"},
		{Kind: EventResult, Result: json.RawMessage(`{"ok": true, "n": 3}`)},
	})
}

func TestRunLastResultWins(t *testing.T) {
	t.Parallel()
	req := request("")
	req.Spec.Command = []string{"sh", "-c", `echo '{"result": 1}'; echo '{"result": {"final": true}}'`}
	out, events, _ := runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`{"final": true}`)})
	checkEvents(t, events, []Event{
		{Kind: EventResult, Result: json.RawMessage(`1`)},
		{Kind: EventResult, Result: json.RawMessage(`{"final": true}`)},
	})
}

func TestRunInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"compacted to one line", "{\n  \"text\": \"hello\",\n  \"n\": [1, 2]\n}", `{"text":"hello","n":[1,2]}`},
		{"none is null", "", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request("stdin.sh")
			req.Input = json.RawMessage(tt.input)
			out, _, _ := runReq(t, req)
			checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(tt.want)})
		})
	}
}

// A large input that the agent never reads must not block Run: the writer
// gives up when the process exits.
func TestRunAgentIgnoresLargeInput(t *testing.T) {
	t.Parallel()
	req := request("ok.sh")
	req.Input = json.RawMessage(`"` + strings.Repeat("x", 4<<20) + `"`)
	out, events, _ := runReq(t, req)
	if out.Status != StatusCompleted || len(events) != 5 {
		t.Fatalf("outcome %+v with %d events, want completed with 5", out, len(events))
	}
}

func TestRunEnvironment(t *testing.T) {
	// t.Setenv: not parallel.
	t.Setenv("TETHER_JWT_SECRET", "s3cret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
	t.Setenv("LANG", "C.UTF-8")
	req := request("env.sh")
	req.OperationID, req.AgentID, req.OperationType = "op-42", "summarizer", "summarize"
	req.Spec.Env = map[string]string{"CUSTOM": "from-spec"}
	out, events, _ := runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(
		`{"operation_id": "op-42", "agent_id": "summarizer", "operation_type": "summarize", "custom": "from-spec", "jwt_secret_seen": false}`)})

	var names []string
	for _, ev := range events {
		if name, ok := strings.CutPrefix(ev.Log, "env "); ok {
			names = append(names, name)
		}
	}
	// Whatever the shell adds by itself (PWD) is allowed; nothing else from
	// the test process's environment is.
	allowed := append(slices.Clone(inheritedEnv), "CUSTOM", EnvOperationID, EnvAgentID, EnvOperationType, "PWD", "SHLVL", "OLDPWD", "_")
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			t.Errorf("agent sees %s; it may only see %v", name, allowed)
		}
	}
	for _, name := range []string{"PATH", "LANG", "CUSTOM", EnvOperationID} {
		if !slices.Contains(names, name) {
			t.Errorf("agent does not see %s (it sees %v)", name, names)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	out, events, _ := runReq(t, request("fail.sh"))
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeExitStatus, ExitCode: 3,
		Message:    "process exited with code 3; stderr: agent: could not open model file\nagent: giving up",
		StderrTail: "agent: could not open model file\nagent: giving up\n",
	})
	checkEvents(t, events, []Event{{Kind: EventProgress, Progress: pf(20)}})
}

func TestRunStderrTailIsBounded(t *testing.T) {
	t.Parallel()
	req := request("fail.sh")
	req.StderrTail = len("agent: giving up\n")
	out, _, _ := runReq(t, req)
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeExitStatus, ExitCode: 3,
		Message: "process exited with code 3; stderr: agent: giving up", StderrTail: "agent: giving up\n",
	})

	req.StderrTail = -1
	out, _, _ = runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusFailed, Code: CodeExitStatus, ExitCode: 3, Message: "process exited with code 3"})
}

func TestRunCrash(t *testing.T) {
	t.Parallel()
	out, events, _ := runReq(t, request("crash.sh"))
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeCrashed, ExitCode: -1, Signal: "SIGSEGV",
		Message: "process killed by SIGSEGV; stderr: about to crash", StderrTail: "about to crash\n",
	})
	checkEvents(t, events, []Event{{Kind: EventProgress, Progress: pf(30)}})
}

// A malformed line fails the operation and stops the process; nothing after
// it is emitted.
func TestRunMalformedOutput(t *testing.T) {
	t.Parallel()
	tests := []struct{ arg, want string }{
		{"string", `stdout line 2: "progress" must be a number from 0 to 100, got "abc"`},
		{"range", `stdout line 2: "progress" must be a number from 0 to 100, got 150`},
		{"message", `stdout line 2: "message" must be a string, got 42`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			t.Parallel()
			out, events, _ := runReq(t, request("malformed.sh", tt.arg))
			checkOutcome(t, out, Outcome{
				Status: StatusFailed, Code: CodeMalformedOutput, ExitCode: -1, Signal: "SIGTERM",
				Message: tt.want + "; process killed by SIGTERM",
			})
			checkEvents(t, events, []Event{{Kind: EventProgress, Progress: pf(5), Message: "ok so far"}})
		})
	}
}

func TestRunLineLength(t *testing.T) {
	t.Parallel()
	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		req := request("longline.sh", "100")
		req.MaxEventBytes = 100
		out, events, _ := runReq(t, req)
		checkOutcome(t, out, Outcome{Status: StatusCompleted})
		checkEvents(t, events, []Event{logEvent(strings.Repeat("x", 100)), logEvent("after")})
	})
	// 101 fits the scanner's buffer and is caught by the length check; a
	// megabyte overflows the buffer. Both must read the same.
	for _, n := range []int{101, 1 << 20} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			req := request("longline.sh", strconv.Itoa(n), "hold")
			req.MaxEventBytes = 100
			out, events, _ := runReq(t, req)
			checkOutcome(t, out, Outcome{
				Status: StatusFailed, Code: CodeMalformedOutput, ExitCode: -1, Signal: "SIGTERM",
				Message: "stdout line 1 is longer than 100 bytes; process killed by SIGTERM",
			})
			checkEvents(t, events, nil)
		})
	}
}

func TestRunStartFailed(t *testing.T) {
	t.Parallel()
	notExec := filepath.Join(t.TempDir(), "agent.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spec  OperationSpec
		input string
		want  string
	}{
		{"not in PATH", OperationSpec{Command: []string{"tether-no-such-agent"}}, "",
			`starting agent: exec: "tether-no-such-agent": executable file not found in $PATH`},
		{"missing file", OperationSpec{Command: []string{"/nonexistent/agent"}}, "",
			`starting agent: fork/exec /nonexistent/agent: no such file or directory`},
		{"not executable", OperationSpec{Command: []string{notExec}}, "",
			`starting agent: fork/exec ` + notExec + `: permission denied`},
		{"missing dir", OperationSpec{Command: []string{"/bin/true"}, Dir: "/nonexistent-dir"}, "",
			`starting agent: working directory: stat /nonexistent-dir: no such file or directory`},
		{"dir is a file", OperationSpec{Command: []string{"/bin/true"}, Dir: notExec}, "",
			`starting agent: working directory ` + notExec + ` is not a directory`},
		{"empty command", OperationSpec{}, "", "starting agent: command is empty"},
		{"invalid input", OperationSpec{Command: []string{"/bin/true"}}, `{"a":`,
			"starting agent: input is not valid JSON: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request("")
			req.Spec, req.Input = tt.spec, json.RawMessage(tt.input)
			out, events, _ := runReq(t, req)
			checkOutcome(t, out, Outcome{Status: StatusFailed, Code: CodeStartFailed, ExitCode: -1, Message: tt.want})
			checkEvents(t, events, nil)
		})
	}
}

func TestRunRelativeCommandUsesDir(t *testing.T) {
	t.Parallel()
	req := request("")
	req.Spec = OperationSpec{Command: []string{"./stdin.sh"}, Dir: "testdata"}
	req.Input = json.RawMessage(`7`)
	out, _, _ := runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`7`)})
}

// cancelOnFirstEvent runs req and cancels with cause as soon as the agent
// has reported that it started. It returns the time from cancel to return.
func cancelOnFirstEvent(t *testing.T, req RunRequest, cause error) (Outcome, []Event, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	ctx, cancelOp := context.WithCancelCause(ctx)
	defer cancelOp(nil)
	var events []Event
	var cancelledAt time.Time
	out := Run(ctx, req, func(ev Event) error {
		events = append(events, ev)
		if len(events) == 1 {
			cancelledAt = time.Now()
			cancelOp(cause)
		}
		return nil
	})
	if cancelledAt.IsZero() {
		t.Fatalf("agent never started: %+v", out)
	}
	return out, events, time.Since(cancelledAt)
}

// slowRequest runs slow.sh. Its stderr is not kept: whether the shell
// reports its killed sleep ("Terminated") depends on timing.
func slowRequest() RunRequest {
	req := request("slow.sh")
	req.StderrTail = -1
	return req
}

var started = Event{Kind: EventProgress, Progress: pf(0), Message: "started"}

// SIGTERM reaches the whole group and the agent's handler gets to run.
func TestRunCancelGraceful(t *testing.T) {
	t.Parallel()
	req := slowRequest()
	req.KillGrace = testBound
	// Had SIGTERM missed the script's background sleep, which holds stdout,
	// Run would wait out the drain timeout.
	req.DrainTimeout = testBound
	out, events, took := cancelOnFirstEvent(t, req, errors.New("user pressed stop"))
	checkOutcome(t, out, Outcome{
		Status: StatusCancelled, ExitCode: 143,
		Message: "cancelled: user pressed stop; process exited with code 143",
	})
	checkEvents(t, events, []Event{started, logEvent("got TERM")})
	if took > testBound/2 {
		t.Errorf("Run took %v after cancel; the process group should have exited on SIGTERM", took)
	}
}

func TestRunCancelEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	req := request("stubborn.sh")
	req.KillGrace = 200 * time.Millisecond
	out, events, took := cancelOnFirstEvent(t, req, context.Canceled)
	checkOutcome(t, out, Outcome{
		Status: StatusCancelled, ExitCode: -1, Signal: "SIGKILL",
		Message: "cancelled: context canceled; process did not exit within 200ms of SIGTERM and was killed by SIGKILL",
	})
	checkEvents(t, events, []Event{started})
	if took < req.KillGrace {
		t.Errorf("Run returned %v after cancel, before the %v grace period ended", took, req.KillGrace)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := Run(ctx, request("ok.sh"), func(ev Event) error {
		t.Errorf("emit called with %s", eventString(ev))
		return nil
	})
	checkOutcome(t, out, Outcome{Status: StatusCancelled, ExitCode: -1, Message: "cancelled before start: context canceled"})
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	req := slowRequest()
	req.Spec.Timeout = 300 * time.Millisecond
	out, events, took := runReq(t, req)
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeTimeout, ExitCode: 143,
		Message: "timed out after 300ms; process exited with code 143",
	})
	checkEvents(t, events, []Event{started, logEvent("got TERM")})
	if took < req.Spec.Timeout {
		t.Errorf("Run returned after %v, before the %v timeout", took, req.Spec.Timeout)
	}
}

func TestRunTimeoutEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	req := request("stubborn.sh")
	req.Spec.Timeout = 300 * time.Millisecond
	req.KillGrace = 200 * time.Millisecond
	out, _, took := runReq(t, req)
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeTimeout, ExitCode: -1, Signal: "SIGKILL",
		Message: "timed out after 300ms; process did not exit within 200ms of SIGTERM and was killed by SIGKILL",
	})
	if took < req.Spec.Timeout+req.KillGrace {
		t.Errorf("Run returned after %v, before timeout plus grace", took)
	}
}

// If the events cannot be delivered, the operation must not go on unseen.
func TestRunEmitError(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	calls := 0
	req := slowRequest()
	// Were the process left running, Run would sit out the drain timeout
	// waiting for its background sleep.
	req.DrainTimeout = testBound
	start := time.Now()
	out := Run(ctx, req, func(Event) error {
		calls++
		return errors.New("storage unavailable")
	})
	if took := time.Since(start); took > testBound/2 {
		t.Errorf("Run took %v; the process should have been stopped at once", took)
	}
	checkOutcome(t, out, Outcome{
		Status: StatusFailed, Code: CodeEmitFailed, ExitCode: 143,
		Message: "emitting event: storage unavailable; process exited with code 143",
	})
	if calls != 1 {
		t.Errorf("emit called %d times, want once", calls)
	}
}

// Lines still in the pipe when the process exits are all delivered, in
// order.
func TestRunDeliversEverythingAfterExit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	var events []Event
	out := Run(ctx, request("big-tail.sh"), func(ev Event) error {
		if len(events) == 0 {
			// Hold the reader until the script has printed everything and
			// exited, so the rest is read from a pipe with no writer.
			pid, err := pidFromLog(ev, "pid")
			if err == nil {
				err = waitGone(pid)
			}
			if err != nil {
				t.Error(err)
				return err
			}
		}
		events = append(events, ev)
		return nil
	})
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`5000`)})
	if len(events) != 5002 {
		t.Fatalf("got %d events, want 5002", len(events))
	}
	for i, ev := range events[1:5001] {
		if want := logEvent(fmt.Sprintf("line %d", i+1)); !reflect.DeepEqual(ev, want) {
			t.Fatalf("event %d = %s, want %s", i+1, eventString(ev), eventString(want))
		}
	}
}

// A background child that keeps stdout open must not keep Run waiting past
// the drain timeout, and is killed with the rest of the group.
func TestRunGrandchildHoldingStdout(t *testing.T) {
	t.Parallel()
	req := request("grandchild.sh")
	req.DrainTimeout = 300 * time.Millisecond
	out, events, took := runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`"done"`)})
	if len(events) != 2 {
		t.Fatalf("events: %s", eventsString(events))
	}
	if took < req.DrainTimeout {
		t.Errorf("Run returned after %v; it should have drained stdout for %v", took, req.DrainTimeout)
	}
	if took > testBound/2 {
		t.Errorf("Run took %v, far beyond the %v drain timeout", took, req.DrainTimeout)
	}
	checkGone(t, events[0], "bg")
}

// A background child that holds nothing is not waited for, but is still
// killed: an operation's processes do not outlive it.
func TestRunDetachedGrandchildKilled(t *testing.T) {
	t.Parallel()
	req := request("grandchild.sh", "detached")
	req.DrainTimeout = testBound
	out, events, took := runReq(t, req)
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(`"done"`)})
	if len(events) != 2 {
		t.Fatalf("events: %s", eventsString(events))
	}
	if took > testBound/2 {
		t.Errorf("Run took %v; nothing held stdout, it should not have drained", took)
	}
	checkGone(t, events[0], "bg")
}

// The shipped example works as documented.
func TestRunExampleAgent(t *testing.T) {
	t.Parallel()
	req := request("")
	req.OperationID = "op-7"
	req.Spec = OperationSpec{Command: []string{"../../examples/agents/summarize.sh"}, Env: map[string]string{"DELAY": "0"}}
	req.Input = json.RawMessage(`{"text": "hello tether"}`)
	out, events, _ := runReq(t, req)
	// The script counts `{"text":"hello tether"}`, the compacted input.
	result := `{"operation_id": "op-7", "bytes": 23, "words": 2}`
	checkOutcome(t, out, Outcome{Status: StatusCompleted, Result: json.RawMessage(result)})
	step := func(p float64, step, msg string) Event {
		return Event{Kind: EventProgress, Progress: pf(p), Step: step, Message: msg}
	}
	checkEvents(t, events, []Event{
		step(0, "read", "Reading input"),
		step(25, "count", "Counting words"),
		logEvent("counted 2 words in 23 bytes of input"),
		step(50, "analyze", "Analyzing"),
		step(75, "summarize", "Writing the summary"),
		step(100, "done", "Done"),
		{Kind: EventResult, Result: json.RawMessage(result)},
	})
}
