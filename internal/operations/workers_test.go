package operations_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/testkit"
)

// Workers need a token with the agent role.
func TestWorkerNeedsAgentRole(t *testing.T) {
	n := startNode(t)
	w := testkit.Dial(t, n.WS+"/ws/agent-worker", testkit.Bearer(testkit.Token(t, "mallory")))
	if m := w.Expect("error"); m["code"] != "forbidden" {
		t.Fatalf("error = %v", m)
	}
	w.ExpectClose(4003)
}

// A remote operation looks exactly like a command one to the UI.
func TestRemoteLifecycle(t *testing.T) {
	n := startNode(t)
	w := workerConn(t, n, "remote-a", "summarize")
	c := guidance(t, n, "alice")
	start(t, c, "rem-1", "remote-a", "summarize", map[string]any{"text": "hi"})
	run := w.Expect("run")
	if run["operation_id"] != "rem-1" || run["agent_id"] != "remote-a" || run["operation_type"] != "summarize" {
		t.Fatalf("run = %v", run)
	}
	if in, _ := run["input"].(map[string]any); in["text"] != "hi" {
		t.Fatalf("run input = %v", run["input"])
	}
	w.Send(map[string]any{"type": "progress", "operation_id": "rem-1", "progress": 30, "step": "read", "message": "Reading"})
	w.Send(map[string]any{"type": "log", "operation_id": "rem-1", "message": "a log line"})
	w.Send(map[string]any{"type": "progress", "operation_id": "rem-1", "message": "no percentage"})
	w.Send(map[string]any{"type": "completed", "operation_id": "rem-1", "result": map[string]any{"words": 1}})
	evs, raw, _ := readOp(t, c, "rem-1")
	wantEvents(t, evs, seqs(2, tProgress, tLog, tProgress, tCompleted)...)
	if raw[0]["progress"] != float64(30) || raw[0]["step"] != "read" || raw[1]["message"] != "a log line" {
		t.Fatalf("events = %v", raw)
	}
	if p, ok := raw[2]["progress"]; !ok || p != nil {
		t.Fatalf("progress without percentage = %v", raw[2])
	}
	if res, _ := raw[3]["result"].(map[string]any); res["words"] != float64(1) {
		t.Fatalf("completed = %v", raw[3])
	}
	rec := waitStatus(t, n, "alice", "rem-1", "completed")
	if rec["kind"] != "remote" || rec["last_seq"] != float64(5) {
		t.Fatalf("record = %v", rec)
	}

	// Events for operations the worker does not hold are refused.
	for _, id := range []string{"rem-1", "someone-elses"} {
		w.Send(map[string]any{"type": "log", "id": id, "operation_id": id, "message": "late"})
		if m := w.Expect("error"); m["code"] != "not_found" || m["id"] != id {
			t.Fatalf("event for %s: %v", id, m)
		}
	}
	// An operation type the worker did not register.
	expectError(t, c, map[string]any{"type": "start_operation", "id": 1, "operation_id": "rem-2", "agent_id": "remote-a", "operation_type": "other"}, "unknown_operation_type")
	// A failure with the worker's own code.
	start(t, c, "rem-3", "remote-a", "summarize", nil)
	if run := w.Expect("run"); run["input"] != nil {
		t.Fatalf("run without input = %v", run)
	}
	w.Send(map[string]any{"type": "failed", "operation_id": "rem-3", "code": "quota_exceeded", "message": "out of tokens"})
	evs, raw, _ = readOp(t, c, "rem-3")
	wantEvents(t, evs, seqs(2, tFailed)...)
	if raw[0]["code"] != "quota_exceeded" || raw[0]["message"] != "out of tokens" {
		t.Fatalf("failed = %v", raw[0])
	}
}

// Cancelling a remote operation sends cancel to its worker; the worker's
// confirmation ends it, or the grace period does.
func TestRemoteCancel(t *testing.T) {
	n := startNode(t)
	w := workerConn(t, n, "remote-c", "work")
	c := guidance(t, n, "alice")

	start(t, c, "rc-1", "remote-c", "work", nil)
	w.Expect("run")
	c.Send(map[string]any{"type": "cancel_operation", "id": "x", "operation_id": "rc-1"})
	c.Expect("cancel_requested")
	if m := w.Expect("cancel"); m["operation_id"] != "rc-1" {
		t.Fatalf("cancel = %v", m)
	}
	w.Send(map[string]any{"type": "log", "operation_id": "rc-1", "message": "stopping"})
	w.Send(map[string]any{"type": "cancelled", "operation_id": "rc-1"})
	evs, _, _ := readOp(t, c, "rc-1")
	wantEvents(t, evs, seqs(2, tLog, tCancelled)...)

	// A worker that ignores the cancel.
	start(t, c, "rc-2", "remote-c", "work", nil)
	w.Expect("run")
	began := time.Now()
	c.Send(map[string]any{"type": "cancel_operation", "operation_id": "rc-2"})
	w.Expect("cancel")
	evs, raw, _ := readOp(t, c, "rc-2")
	wantEvents(t, evs, seqs(2, tCancelled)...)
	if took := time.Since(began); took < killGrace {
		t.Fatalf("cancelled after %s, before the grace period", took)
	}
	if raw[0]["message"] == "" {
		t.Fatalf("cancelled = %v", raw[0])
	}
}

// With --worker-grace 0, a worker that disconnects mid-run fails its
// operations at once.
func TestWorkerDisconnectMidRun(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 0), nil)
	w := workerConn(t, n, "remote-d", "work")
	c := guidance(t, n, "alice")
	start(t, c, "wd-1", "remote-d", "work", nil)
	w.Expect("run")
	w.Send(map[string]any{"type": "progress", "operation_id": "wd-1", "progress": 10})
	c.Expect(tProgress)
	_ = w.C.CloseNow()
	evs, raw, _ := readOp(t, c, "wd-1")
	wantEvents(t, evs, seqs(3, tFailed)...)
	if raw[0]["code"] != "agent_disconnected" {
		t.Fatalf("failed = %v", raw[0])
	}
	// With no worker left the agent is unavailable, not unknown.
	expectError(t, c, map[string]any{"type": "start_operation", "id": 1, "agent_id": "remote-d", "operation_type": "work"}, "agent_unavailable")
}

// Workers registering the same agent share its operations (which, without
// a worker grace, fail as soon as their workers leave).
func TestWorkersShareLoad(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 0), nil)
	w1 := workerConn(t, n, "pool", "work")
	w2 := workerConn(t, n, "pool", "work")
	c := guidance(t, n, "alice")
	for i := range 4 {
		start(t, c, fmt.Sprintf("pool-%d", i), "pool", "work", nil)
	}
	for _, w := range []*testkit.Client{w1, w2} {
		w.Expect("run")
		w.Expect("run")
		w.Send(map[string]any{"type": "ping", "id": "p"})
		w.Expect("pong")
	}
	// Over REST, too.
	status, body := testkit.PostJSON(t, n.HTTP+"/api/operations", testkit.Token(t, "alice"), map[string]any{"operation_id": "pool-rest", "agent_id": "pool", "operation_type": "work", "input": 42})
	if status != http.StatusCreated || body["seq"] != float64(1) {
		t.Fatalf("REST start = %d %v", status, body)
	}
	_ = w1.C.Close(websocket.StatusNormalClosure, "")
	_ = w2.C.Close(websocket.StatusNormalClosure, "")
	for i := range 4 {
		rec := waitStatus(t, n, "alice", fmt.Sprintf("pool-%d", i), "failed")
		if f, _ := rec["failure"].(map[string]any); f["code"] != "agent_disconnected" {
			t.Fatalf("record = %v", rec)
		}
	}
}

// GET /api/agents lists the configured command agents and the agents that
// workers registered, with their operation types.
func TestListAgents(t *testing.T) {
	n := startNode(t)
	workerConn(t, n, "remote-bot", "summarize", "translate")
	status, body := testkit.Do(t, http.MethodGet, n.HTTP+"/api/agents", testkit.Token(t, "alice"), nil)
	if status != 200 {
		t.Fatalf("status %d %v", status, body)
	}
	byID := map[string]map[string]any{}
	for _, a := range body["agents"].([]any) {
		m := a.(map[string]any)
		byID[m["agent_id"].(string)] = m
	}
	if r := byID["remote-bot"]; r == nil || r["kind"] != "remote" || fmt.Sprint(r["operations"]) != "[summarize translate]" {
		t.Fatalf("remote-bot = %v", r)
	}
	if c := byID["tests"]; c == nil || c["kind"] != "command" || len(c["operations"].([]any)) < 3 {
		t.Fatalf("tests = %v", c)
	}
	if status, _ := testkit.Do(t, http.MethodGet, n.HTTP+"/api/agents", "", nil); status != 401 {
		t.Fatalf("anonymous: %d", status)
	}
}
