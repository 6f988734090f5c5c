package agents

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Statuses of an Outcome.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Failure codes of a failed Outcome. They go on the wire: never change them.
const (
	// CodeExitStatus: the process exited with a non-zero code.
	CodeExitStatus = "exit_status"
	// CodeCrashed: the process was killed by a signal Tether did not send.
	CodeCrashed = "crashed"
	// CodeTimeout: the spec's timeout elapsed and Tether stopped the process.
	CodeTimeout = "timeout"
	// CodeMalformedOutput: a stdout line broke the protocol (a known key
	// with the wrong type, or a line longer than MaxEventBytes).
	CodeMalformedOutput = "malformed_output"
	// CodeStartFailed: the process could not be started (command not found
	// or not executable, missing dir, invalid input).
	CodeStartFailed = "start_failed"
	// CodeEmitFailed: the emit callback returned an error, so the events
	// could not be delivered and Tether stopped the process.
	CodeEmitFailed = "emit_failed"
)

// Defaults for RunRequest's zero fields.
const (
	DefaultMaxEventBytes = 64 << 10
	DefaultKillGrace     = 5 * time.Second
	DefaultStderrTail    = 4 << 10
	DefaultDrainTimeout  = 2 * time.Second
)

// inheritedEnv lists the only variables passed from the server's environment
// to agents. Everything else stays behind: the server's environment holds
// secrets (TETHER_JWT_SECRET, cloud credentials) that an agent, which may be
// third-party code, must not see. An agent that needs a variable gets it
// through OperationSpec.Env.
var inheritedEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// RunRequest is everything Run needs to run one operation.
type RunRequest struct {
	// OperationID, AgentID and OperationType identify the operation; the
	// agent receives them as TETHER_OPERATION_ID, TETHER_AGENT_ID and
	// TETHER_OPERATION_TYPE.
	OperationID, AgentID, OperationType string
	// Input is written to stdin as one line of compact JSON; nil sends null.
	Input json.RawMessage
	// Spec says what to run and how.
	Spec OperationSpec
	// MaxEventBytes caps a stdout line (without its line ending); a longer
	// line fails the operation with CodeMalformedOutput, because one event
	// must fit in one stored message. Zero or less means
	// DefaultMaxEventBytes.
	MaxEventBytes int
	// KillGrace is how long a process has to exit after SIGTERM before it
	// gets SIGKILL. Zero or less means DefaultKillGrace.
	KillGrace time.Duration
	// StderrTail is how many trailing bytes of stderr to keep for the
	// Outcome. Zero means DefaultStderrTail; negative keeps none.
	StderrTail int
	// Answers are written to an interactive agent's stdin (Spec.Interactive),
	// one line each (compact JSON without a newline), after the input.
	Answers <-chan []byte
	// DrainTimeout bounds how long Run keeps reading stdout and stderr after
	// the process exited: a background child that inherited them could keep
	// them open forever. Zero or less means DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// Outcome is how an operation ended.
type Outcome struct {
	// Status is StatusCompleted, StatusFailed or StatusCancelled.
	Status string `json:"status"`
	// Result is the last result the agent printed, if any. It is kept on
	// failure and cancellation too: a partial result may still be useful.
	Result json.RawMessage `json:"result,omitempty"`
	// Code is one of the Code* constants when Status is StatusFailed, and
	// empty otherwise.
	Code string `json:"code,omitempty"`
	// Message explains a failure or cancellation to a human.
	Message string `json:"message,omitempty"`
	// ExitCode is the process's exit code, or -1 when it was killed by a
	// signal or never started.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that killed the process ("SIGKILL"), if any.
	Signal string `json:"signal,omitempty"`
	// StderrTail is the end of what the process wrote on stderr, as valid
	// UTF-8.
	StderrTail string `json:"stderr_tail,omitempty"`
}

// Run runs one operation of a command agent and blocks until its process has
// ended and its stdout has been read to the end, so no event is lost. It
// calls emit for every event, in order, from a single goroutine and never
// after Run returns. emit may block, which slows the process down through
// the pipe rather than buffering without bound; if it returns an error, Run
// stops calling it, stops the process and fails with CodeEmitFailed. emit
// should therefore return promptly once ctx is cancelled. A nil emit
// discards events.
//
// Cancelling ctx is the user cancelling the operation: the process group gets
// SIGTERM, then SIGKILL after KillGrace, and the Outcome is StatusCancelled
// (a ctx deadline counts as a cancellation too; the operation's own deadline
// is Spec.Timeout, which fails it with CodeTimeout). The process runs in its
// own process group so that signals reach the children it started. Events it
// prints while shutting down are still emitted.
//
// The process sees only PATH, HOME, LANG, LC_ALL, TZ and TMPDIR from the
// server's environment, then Spec.Env, then the TETHER_* variables naming
// the operation.
//
// After the main process exits, Run waits at most DrainTimeout for stdout and
// stderr to reach end of file, then kills whatever is left of the process
// group with SIGKILL (an operation's processes do not outlive it: they would
// escape its timeout and concurrency limit) and stops reading. A process
// that must outlive its operation has to leave the group itself (setsid).
//
// When several things go wrong, the first one decides the Outcome: a
// malformed line fails the operation even if the process then exits 0, and a
// process that exits because of the SIGTERM sent for a cancellation is
// cancelled, not crashed.
func Run(ctx context.Context, req RunRequest, emit func(Event) error) Outcome {
	req = req.withDefaults()
	if emit == nil {
		emit = func(Event) error { return nil }
	}
	if err := context.Cause(ctx); err != nil {
		return Outcome{Status: StatusCancelled, ExitCode: -1, Message: "cancelled before start: " + err.Error()}
	}
	input, err := compactInput(req.Input)
	if err != nil {
		return startFailed(err)
	}
	if len(req.Spec.Command) == 0 || req.Spec.Command[0] == "" {
		return startFailed(errors.New("command is empty"))
	}

	if dir := req.Spec.Dir; dir != "" {
		// exec reports a bad dir as the command not being found.
		if fi, err := os.Stat(dir); err != nil {
			return startFailed(fmt.Errorf("working directory: %w", err))
		} else if !fi.IsDir() {
			return startFailed(fmt.Errorf("working directory %s is not a directory", dir))
		}
	}

	r := &run{req: req, emit: emit}
	stdin, err := r.start()
	if err != nil {
		return startFailed(err)
	}

	var wg sync.WaitGroup
	stdinStop := make(chan struct{})
	wg.Go(func() { r.writeStdin(stdin, input, stdinStop) })
	stdoutDone := make(chan struct{})
	go func() { defer close(stdoutDone); r.readStdout() }()
	stderrDone := make(chan struct{})
	go func() { defer close(stderrDone); r.readStderr() }()
	exited := make(chan struct{})
	// Wait's error only restates ProcessState, which outcome reads.
	go func() { defer close(exited); _ = r.cmd.Wait() }()

	r.supervise(ctx, exited)
	// The main process is gone; nobody else will read its stdin.
	close(stdinStop)
	stdin.Close()

	drain := time.NewTimer(req.DrainTimeout)
	for _, done := range []chan struct{}{stdoutDone, stderrDone} {
		select {
		case <-done:
			continue
		case <-drain.C:
		}
		break
	}
	drain.Stop()
	// Leftover children would escape the timeout and concurrency limit.
	// Errors are expected (ESRCH: the group is already empty). The group id
	// cannot have been reused while any member is alive; once it is empty,
	// reuse would need the kernel to wrap around its pid space in the
	// moments since Wait, which is the usual accepted risk.
	_ = signalGroup(r.cmd.Process.Pid, syscall.SIGKILL)
	// Closing the read ends unblocks readers stuck on a pipe that a process
	// outside the group (one that called setsid) still holds.
	r.stdout.Close()
	r.stderr.Close()
	<-stdoutDone
	<-stderrDone
	wg.Wait()

	return r.outcome()
}

// withDefaults fills RunRequest's zero fields.
func (req RunRequest) withDefaults() RunRequest {
	if req.MaxEventBytes <= 0 {
		req.MaxEventBytes = DefaultMaxEventBytes
	}
	if req.KillGrace <= 0 {
		req.KillGrace = DefaultKillGrace
	}
	if req.StderrTail == 0 {
		req.StderrTail = DefaultStderrTail
	}
	if req.DrainTimeout <= 0 {
		req.DrainTimeout = DefaultDrainTimeout
	}
	req.Spec.Timeout = req.Spec.EffectiveTimeout()
	return req
}

// compactInput turns the operation's input into the single line written to
// stdin. One line lets shell agents read it with `read -r`.
func compactInput(in json.RawMessage) ([]byte, error) {
	if len(bytes.TrimSpace(in)) == 0 {
		return []byte("null\n"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, in); err != nil {
		return nil, fmt.Errorf("input is not valid JSON: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func startFailed(err error) Outcome {
	return Outcome{Status: StatusFailed, Code: CodeStartFailed, ExitCode: -1, Message: "starting agent: " + err.Error()}
}

// run is the state of one Run call.
type run struct {
	req  RunRequest
	emit func(Event) error
	cmd  *exec.Cmd

	stdout, stderr *os.File // read ends, owned by Run

	// wake tells supervise that a reader recorded a failure.
	wake chan struct{}

	mu sync.Mutex
	// Guarded by mu: the first reason the process was stopped (or failed),
	// which decides the Outcome.
	stopStatus, stopCode, stopMsg string
	// Guarded by mu: set by the goroutines that produce them.
	result     json.RawMessage
	stderrTail []byte

	// Owned by supervise until the process exits.
	termSent time.Time
	killSent bool
}

// start starts the process with pipes whose read (and stdin's write) ends
// Run owns, so that Wait does not close them under the readers and Run
// decides how long to drain them. It returns stdin's write end.
func (r *run) start() (*os.File, error) {
	spec := r.req.Spec
	cmd := exec.Command(spec.Command[0], spec.Command[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = r.environ()
	cmd.SysProcAttr = sysProcAttr()

	var parentEnds, childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	newPipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err != nil {
			closeAll(parentEnds)
			closeAll(childEnds)
			return nil, nil, fmt.Errorf("creating pipe: %w", err)
		}
		return rd, wr, nil
	}
	inR, inW, err := newPipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, inW), append(childEnds, inR)
	outR, outW, err := newPipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, outR), append(childEnds, outW)
	errR, errW, err := newPipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, errR), append(childEnds, errW)

	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	// The child has its own copies; ours must go or EOF never comes.
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		return nil, err
	}
	r.cmd, r.stdout, r.stderr = cmd, outR, errR
	r.wake = make(chan struct{}, 1)
	return inW, nil
}

// environ builds the process environment; see Run.
func (r *run) environ() []string {
	env := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range r.req.Spec.Env {
		env[k] = v
	}
	env[EnvOperationID] = r.req.OperationID
	env[EnvAgentID] = r.req.AgentID
	env[EnvOperationType] = r.req.OperationType
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// writeStdin writes the input and closes stdin so the agent sees EOF. An
// error means the process exited or closed stdin without reading it all,
// which is its right, so it is ignored. An interactive agent's stdin stays
// open: each of Answers is written as one more line, until Answers is
// closed or stop (the main process has exited).
func (r *run) writeStdin(w *os.File, input []byte, stop <-chan struct{}) {
	defer w.Close()
	if _, err := w.Write(input); err != nil || !r.req.Spec.Interactive {
		return
	}
	for {
		select {
		case line, ok := <-r.req.Answers:
			if !ok {
				return
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return
			}
		case <-stop:
			return
		}
	}
}

// supervise returns once the main process has exited, signalling its group
// when the operation is cancelled, times out or fails on a reader's behalf.
func (r *run) supervise(ctx context.Context, exited <-chan struct{}) {
	timeout := time.NewTimer(r.req.Spec.Timeout)
	defer timeout.Stop()
	var grace *time.Timer
	var graceC <-chan time.Time
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	ctxDone := ctx.Done()

	terminate := func() {
		if !r.termSent.IsZero() {
			return
		}
		r.termSent = time.Now()
		_ = signalGroup(r.cmd.Process.Pid, syscall.SIGTERM)
		grace = time.NewTimer(r.req.KillGrace)
		graceC = grace.C
	}
	for {
		select {
		case <-exited:
			return
		case <-ctxDone:
			ctxDone = nil
			select {
			case <-exited:
				// It finished on its own as the cancel came in: let the
				// exit status speak.
				return
			default:
			}
			r.stop(StatusCancelled, "", "cancelled: "+context.Cause(ctx).Error())
			terminate()
		case <-timeout.C:
			r.stop(StatusFailed, CodeTimeout, "timed out after "+r.req.Spec.Timeout.String())
			terminate()
		case <-r.wake:
			terminate()
		case <-graceC:
			graceC = nil
			r.killSent = true
			_ = signalGroup(r.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}

// stop records why the operation is ending unless a reason was recorded
// first, and reports whether this one was.
func (r *run) stop(status, code, msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopStatus != "" {
		return false
	}
	r.stopStatus, r.stopCode, r.stopMsg = status, code, msg
	return true
}

// fail records a failure found by a reader and asks supervise to stop the
// process.
func (r *run) fail(code, msg string) {
	if r.stop(StatusFailed, code, msg) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// readStdout turns stdout lines into events until EOF or until Run closes
// the pipe. After a failure it keeps reading and discarding, so that a
// process blocked writing to a full pipe can still see SIGTERM and exit.
func (r *run) readStdout() {
	max := r.req.MaxEventBytes
	sc := bufio.NewScanner(r.stdout)
	// Room for the line, "\r\n" and one more byte, so a line of exactly
	// max+1 bytes is still seen whole and reported precisely.
	sc.Buffer(make([]byte, 0, min(max+3, 64<<10)), max+3)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if len(line) > max {
			r.fail(CodeMalformedOutput, fmt.Sprintf("stdout line %d is longer than %d bytes", n, max))
			break
		}
		ev, ok, err := parseLine(line)
		if err != nil {
			r.fail(CodeMalformedOutput, fmt.Sprintf("stdout line %d: %v", n, err))
			break
		}
		if !ok {
			continue
		}
		if ev.Kind == EventResult {
			r.mu.Lock()
			r.result = ev.Result
			r.mu.Unlock()
		}
		if err := r.emit(ev); err != nil {
			r.fail(CodeEmitFailed, "emitting event: "+err.Error())
			break
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		r.fail(CodeMalformedOutput, fmt.Sprintf("stdout line %d is longer than %d bytes", n+1, max))
	}
	// Returns at EOF, or with an error once Run closes the pipe.
	_, _ = io.Copy(io.Discard, r.stdout)
}

// readStderr keeps the last StderrTail bytes of stderr.
func (r *run) readStderr() {
	limit := r.req.StderrTail
	buf := make([]byte, 32<<10)
	for {
		n, err := r.stderr.Read(buf)
		if n > 0 && limit > 0 {
			r.mu.Lock()
			r.stderrTail = append(r.stderrTail, buf[:n]...)
			// Trim in bulk so a chatty process costs amortised O(1) per byte.
			if len(r.stderrTail) > 2*limit+len(buf) {
				r.stderrTail = append(r.stderrTail[:0], r.stderrTail[len(r.stderrTail)-limit:]...)
			}
			r.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// tail returns the stderr tail as valid UTF-8, starting on a rune boundary.
func (r *run) tail() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.stderrTail
	if limit := r.req.StderrTail; len(b) > limit {
		b = b[len(b)-max(limit, 0):]
		// Don't start with half a rune.
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// outcome decides how the operation ended once everything has stopped.
func (r *run) outcome() Outcome {
	r.mu.Lock()
	o := Outcome{Result: r.result}
	status, code, msg := r.stopStatus, r.stopCode, r.stopMsg
	r.mu.Unlock()
	o.StderrTail = r.tail()

	ps := r.cmd.ProcessState
	o.ExitCode = ps.ExitCode()
	ws, _ := ps.Sys().(syscall.WaitStatus)
	var ending string
	if ws.Signaled() {
		o.Signal = signalName(ws.Signal())
		ending = "process killed by " + o.Signal
		if r.killSent && ws.Signal() == syscall.SIGKILL {
			ending = fmt.Sprintf("process did not exit within %s of SIGTERM and was killed by SIGKILL", r.req.KillGrace)
		}
	} else {
		ending = fmt.Sprintf("process exited with code %d", o.ExitCode)
	}

	switch {
	case status != "":
		o.Status, o.Code, o.Message = status, code, msg
		if !r.termSent.IsZero() {
			o.Message += "; " + ending
		}
	case ws.Signaled():
		o.Status, o.Code, o.Message = StatusFailed, CodeCrashed, withStderr(ending, o.StderrTail)
	case o.ExitCode != 0:
		o.Status, o.Code, o.Message = StatusFailed, CodeExitStatus, withStderr(ending, o.StderrTail)
	default:
		o.Status = StatusCompleted
	}
	return o
}

// withStderr appends the stderr tail to a failure message, since it usually
// says why the agent failed.
func withStderr(msg, tail string) string {
	if tail = strings.TrimSpace(tail); tail != "" {
		return msg + "; stderr: " + tail
	}
	return msg
}
