package operations_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/operations"
	"github.com/tether-dev/tether/internal/testkit"
)

const (
	tStarted   = "operation_started"
	tProgress  = "operation_progress"
	tLog       = "operation_log"
	tCompleted = "operation_completed"
	tFailed    = "operation_failed"
	tCancelled = "operation_cancelled"
)

// The seed's flow: auth message, start op_test_123 on agent_456 /
// execute_workflow, operation_started with that id, then progress updates
// carrying a progress field.
func TestSeedProgressStreaming(t *testing.T) {
	n := startNode(t)
	tok := testkit.Token(t, "guidance_test")
	c := testkit.Dial(t, n.WS+"/ws/agent-guidance", nil)
	c.Auth(tok)
	c.Send(map[string]any{"type": "start_operation", "operation_id": "op_test_123", "agent_id": "agent_456", "operation_type": "execute_workflow"})
	m := c.Expect(tStarted)
	if m["operation_id"] != "op_test_123" || m["agent_id"] != "agent_456" || m["operation_type"] != "execute_workflow" || m["started_at"] == "" {
		t.Fatalf("operation_started = %v", m)
	}
	p := c.Expect(tProgress)
	if _, ok := p["progress"]; !ok || p["progress"] != float64(10) || p["seq"] != float64(2) {
		t.Fatalf("first progress = %v", p)
	}
	evs, _, _ := readOp(t, c, "op_test_123")
	wantEvents(t, evs, seqs(3, tLog, tProgress, tProgress, tCompleted)...)

	// The seed's error flow: an unknown agent is reported, not ignored.
	expectError(t, c, map[string]any{"type": "start_operation", "id": "e", "operation_id": "op_error_123", "agent_id": "nonexistent_agent", "operation_type": "invalid_operation"}, "unknown_agent")
}

// A whole operation arrives in order with consecutive seqs, and its record
// and listing agree.
func TestLifecycleExactOrder(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	start(t, c, "life-1", "tests", "steps", map[string]any{"q": "hello"})
	evs, raw, _ := readOp(t, c, "life-1")
	wantEvents(t, evs, seqs(2, tProgress, tLog, tProgress, tProgress, tCompleted)...)
	if raw[0]["step"] != "fetch" || raw[0]["message"] != "Fetching" || raw[0]["progress"] != float64(10) {
		t.Fatalf("progress = %v", raw[0])
	}
	if raw[1]["message"] != `input was {"q":"hello"}` {
		t.Fatalf("log = %v", raw[1])
	}
	if d, _ := raw[2]["data"].(map[string]any); d["items"] != float64(3) {
		t.Fatalf("progress data = %v", raw[2])
	}
	res, _ := raw[4]["result"].(map[string]any)
	if res["ok"] != true {
		t.Fatalf("completed = %v", raw[4])
	}

	rec := waitStatus(t, n, "alice", "life-1", "completed")
	if rec["last_seq"] != float64(6) || rec["owner"] != "alice" || rec["agent_id"] != "tests" || rec["progress"] != float64(100) || rec["ended_at"] == nil {
		t.Fatalf("record = %v", rec)
	}
	status, list := testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations?agent_id=tests&status=completed", testkit.Token(t, "alice"), nil)
	ops, _ := list["operations"].([]any)
	if status != 200 || len(ops) != 1 {
		t.Fatalf("list = %d %v", status, list)
	}
	// A server-generated id when the client chooses none.
	c.Send(map[string]any{"type": "start_operation", "agent_id": "tests", "operation_type": "fast"})
	m := c.Expect(tStarted)
	id, _ := m["operation_id"].(string)
	if !strings.HasPrefix(id, "op_") {
		t.Fatalf("generated id %q", id)
	}
	evs, _, _ = readOp(t, c, id)
	wantEvents(t, evs, seqs(2, tProgress, tCompleted)...)
}

// Each refusal is one operation_error and nothing else.
func TestOperationErrors(t *testing.T) {
	cfg := opsConfig(t)
	cfg.MaxOperationInput = 1024
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")
	req := func(id, agent, typ string, extra ...any) map[string]any {
		m := map[string]any{"type": "start_operation", "id": 7, "operation_id": id, "agent_id": agent, "operation_type": typ}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	expectError(t, c, req("e1", "nobody", "x"), "unknown_agent")
	expectError(t, c, req("e2", "tests", "nope"), "unknown_operation_type")
	expectError(t, c, req("bad id!", "tests", "fast"), "invalid_operation_id")
	expectError(t, c, req(".dot", "tests", "fast"), "invalid_operation_id")
	expectError(t, c, req("e3", "tests", "fast", "input", strings.Repeat("x", 2000)), "input_too_large")

	dir, open := gate(t)
	// Running operations stream on their own connection, so that replies
	// on c are not interleaved with their events.
	runner := guidance(t, n, "alice")
	start(t, runner, "taken", "tests", "one", dir)
	expectError(t, c, req("taken", "tests", "steps"), "operation_exists")
	// "one" allows a single running operation.
	expectError(t, c, req("e4", "tests", "one", "input", dir), "capacity")

	// A remote agent that registered once but has no worker now.
	w := workerConn(t, n, "remote-x", "go")
	closeClient(w)
	testkit.Eventually(t, "worker gone", func() bool { return n.Conns.Count() == 2 })
	expectError(t, c, req("e5", "remote-x", "go"), "agent_unavailable")

	bob := guidance(t, n, "bob")
	expectError(t, bob, map[string]any{"type": "subscribe_operation", "id": "s", "operation_id": "taken"}, "forbidden")
	expectError(t, bob, map[string]any{"type": "cancel_operation", "id": "c", "operation_id": "taken"}, "forbidden")
	expectError(t, bob, map[string]any{"type": "subscribe_operation", "id": "s2", "operation_id": "missing"}, "not_found")
	expectError(t, bob, map[string]any{"type": "cancel_operation", "id": "c2", "operation_id": "missing"}, "not_found")

	open("go1")
	open("go2")
	readOp(t, runner, "taken")
	// An ended operation cannot be cancelled any more.
	expectError(t, c, map[string]any{"type": "cancel_operation", "id": "c3", "operation_id": "taken"}, "not_found")
	// The id stays taken after the end, and a refused id is free again.
	expectError(t, c, req("taken", "tests", "steps"), "operation_exists")
	start(t, c, "e2", "tests", "fast", nil)
	readOp(t, c, "e2")
	// e4 was claimed, then refused for capacity: its id was released.
	start(t, c, "e4", "tests", "fast", nil)
	readOp(t, c, "e4")
}

// The per-user limit of running operations.
func TestUserCapacity(t *testing.T) {
	cfg := opsConfig(t)
	cfg.MaxOperationsPerUser = 2
	n := testkit.Start(t, cfg, nil)
	// Each running operation streams on its own connection, so that
	// replies are not interleaved with events.
	c := guidance(t, n, "alice")
	dir, open := gate(t)
	start(t, guidance(t, n, "alice"), "u1", "tests", "gated", dir)
	start(t, guidance(t, n, "alice"), "u2", "tests", "gated", dir)
	expectError(t, c, map[string]any{"type": "start_operation", "id": 1, "operation_id": "u3", "agent_id": "tests", "operation_type": "fast"}, "capacity")
	// Someone else is not held back by alice's operations.
	start(t, guidance(t, n, "bob"), "b1", "tests", "fast", nil)
	open("go1")
	open("go2")
	for _, id := range []string{"u1", "u2"} {
		waitStatus(t, n, "alice", id, "completed")
	}
	start(t, c, "u3", "tests", "fast", nil)
}

// Cancelling a command agent: SIGTERM, which the script logs, then
// operation_cancelled; one that ignores SIGTERM is killed after the grace.
func TestCancelCommand(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	start(t, c, "c-slow", "tests", "slow", nil)
	c.Expect(tProgress)
	c.Send(map[string]any{"type": "cancel_operation", "id": "x", "operation_id": "c-slow"})
	evs, raw, replies := readOp(t, c, "c-slow")
	// The reply and the agent's events travel separately: the reply may
	// come after the final event.
	r := replies["cancel_requested"]
	if r == nil {
		r = c.Expect("cancel_requested")
	}
	if r["id"] != "x" || r["operation_id"] != "c-slow" {
		t.Fatalf("cancel_requested = %v", r)
	}
	wantEvents(t, evs, seqs(3, tLog, tCancelled)...)
	if raw[0]["message"] != "got TERM" {
		t.Fatalf("log = %v", raw[0])
	}

	start(t, c, "c-stubborn", "tests", "stubborn", nil)
	c.Expect(tProgress)
	began := time.Now()
	c.Send(map[string]any{"type": "cancel_operation", "operation_id": "c-stubborn"})
	evs, _, _ = readOp(t, c, "c-stubborn")
	wantEvents(t, evs, seqs(3, tCancelled)...)
	if took := time.Since(began); took < killGrace {
		t.Fatalf("cancelled after %s, before the %s grace", took, killGrace)
	}
	rec := waitStatus(t, n, "alice", "c-stubborn", "cancelled")
	if rec["last_seq"] != float64(3) {
		t.Fatalf("record = %v", rec)
	}
	// Cancel over REST too.
	start(t, c, "c-rest", "tests", "slow", nil)
	c.Expect(tProgress)
	status, body := testkit.PostJSON(t, n.HTTP+"/api/operations/c-rest/cancel", testkit.Token(t, "alice"), map[string]any{})
	if status != http.StatusAccepted || body["status"] != "cancel_requested" {
		t.Fatalf("REST cancel = %d %v", status, body)
	}
	evs, _, _ = readOp(t, c, "c-rest")
	wantEvents(t, evs, seqs(3, tLog, tCancelled)...)
}

// Agents that crash, time out, print malformed lines or exit non-zero fail
// with the matching code.
func TestCommandFailures(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	for _, tc := range []struct {
		typ, code string
		events    []event
	}{
		{"crash", "crashed", seqs(2, tProgress, tFailed)},
		{"timeout", "timeout", seqs(2, tProgress, tLog, tFailed)},
		{"malformed", "malformed_output", seqs(2, tProgress, tFailed)},
		{"exit3", "exit_status", seqs(2, tFailed)},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			id := "f-" + tc.typ
			start(t, c, id, "tests", tc.typ, nil)
			evs, raw, _ := readOp(t, c, id)
			wantEvents(t, evs, tc.events...)
			last := raw[len(raw)-1]
			if last["code"] != tc.code || last["message"] == "" {
				t.Fatalf("final = %v, want code %s", last, tc.code)
			}
			rec := waitStatus(t, n, "alice", id, "failed")
			if f, _ := rec["failure"].(map[string]any); f["code"] != tc.code {
				t.Fatalf("record = %v", rec)
			}
		})
	}
}

// Forbidden for another user, allowed for an admin, on WebSocket and REST.
func TestOwnership(t *testing.T) {
	n := startNode(t)
	alice := guidance(t, n, "alice")
	dir, open := gate(t)
	start(t, alice, "own-1", "tests", "gated", dir)
	alice.Expect(tProgress)

	bob := guidance(t, n, "bob")
	expectError(t, bob, map[string]any{"type": "subscribe_operation", "id": 1, "operation_id": "own-1"}, "forbidden")
	if status, body := getOp(t, n, "bob", "own-1"); status != http.StatusForbidden || body["error"] != "forbidden" {
		t.Fatalf("bob GET = %d %v", status, body)
	}
	if status, _ := testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations/own-1/events", testkit.Token(t, "bob"), nil); status != http.StatusForbidden {
		t.Fatalf("bob events = %d", status)
	}
	_, list := testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations", testkit.Token(t, "bob"), nil)
	if ops, _ := list["operations"].([]any); len(ops) != 0 {
		t.Fatalf("bob sees %v", list)
	}

	admin := guidance(t, n, "root", "admin")
	admin.Send(map[string]any{"type": "subscribe_operation", "id": 2, "operation_id": "own-1"})
	sub := admin.Expect("operation_subscribed")
	if sub["status"] != "running" || sub["last_seq"] != float64(2) || sub["recovered"] != true {
		t.Fatalf("subscribed = %v", sub)
	}
	got := []event{}
	for range 2 {
		m := admin.Read()
		got = append(got, event{m["type"].(string), int(m["seq"].(float64))})
	}
	wantEvents(t, got, seqs(1, tStarted, tProgress)...)
	if status, body := getOp(t, n, "root", "own-1", "admin"); status != 200 || body["owner"] != "alice" {
		t.Fatalf("admin GET = %d %v", status, body)
	}
	open("go1")
	open("go2")
	evs, _, _ := readOp(t, admin, "own-1")
	wantEvents(t, evs, seqs(3, tLog, tProgress, tProgress, tCompleted)...)
	evs, _, _ = readOp(t, alice, "own-1")
	wantEvents(t, evs, seqs(3, tLog, tProgress, tProgress, tCompleted)...)

	// Admins may start on someone's behalf over REST; others may not.
	status, body := testkit.PostJSON(t, n.HTTP+"/api/operations", testkit.Token(t, "bob"), map[string]any{"agent_id": "tests", "operation_type": "fast", "owner": "alice"})
	if status != http.StatusForbidden {
		t.Fatalf("bob start for alice = %d %v", status, body)
	}
	status, body = testkit.PostJSON(t, n.HTTP+"/api/operations", testkit.Token(t, "root", "admin"), map[string]any{"operation_id": "for-alice", "agent_id": "tests", "operation_type": "fast", "owner": "alice"})
	if status != http.StatusCreated || body["operation_id"] != "for-alice" {
		t.Fatalf("admin start = %d %v", status, body)
	}
	if rec := waitStatus(t, n, "alice", "for-alice", "completed"); rec["owner"] != "alice" {
		t.Fatalf("record = %v", rec)
	}
}

// A UI that disconnects mid-run resumes with after_seq and gets every event
// after it exactly once, history then live.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	n := startNode(t)
	dir, open := gate(t)
	c := guidance(t, n, "alice")
	start(t, c, "res-1", "tests", "gated", dir)
	if m := c.Expect(tProgress); m["seq"] != float64(2) {
		t.Fatalf("progress = %v", m)
	}
	closeClient(c)

	open("go1")
	testkit.Eventually(t, "two more events", func() bool {
		_, rec := getOp(t, n, "alice", "res-1")
		return rec["last_seq"] == float64(4)
	})
	c2 := guidance(t, n, "alice")
	c2.Send(map[string]any{"type": "subscribe_operation", "id": "r", "operation_id": "res-1", "after_seq": 2})
	sub := c2.Expect("operation_subscribed")
	if sub["id"] != "r" || sub["status"] != "running" || sub["last_seq"] != float64(4) || sub["recovered"] != true {
		t.Fatalf("subscribed = %v", sub)
	}
	// History: 3 and 4; then live after the gate opens: 5 and 6.
	got := []event{}
	for range 2 {
		m := c2.Read()
		got = append(got, event{m["type"].(string), int(m["seq"].(float64))})
	}
	wantEvents(t, got, seqs(3, tLog, tProgress)...)
	open("go2")
	evs, raw, _ := readOp(t, c2, "res-1")
	wantEvents(t, evs, seqs(5, tProgress, tCompleted)...)
	if raw[1]["result"] != "gated done" {
		t.Fatalf("completed = %v", raw[1])
	}

	// Resuming at the end of an ended operation sends nothing more; from
	// further back, the rest including the final event.
	c2.Send(map[string]any{"type": "subscribe_operation", "operation_id": "res-1", "after_seq": 6})
	if sub := c2.Expect("operation_subscribed"); sub["status"] != "completed" || sub["last_seq"] != float64(6) {
		t.Fatalf("subscribed = %v", sub)
	}
	c2.Send(map[string]any{"type": "subscribe_operation", "operation_id": "res-1", "after_seq": 4})
	c2.Expect("operation_subscribed")
	evs, _, _ = readOp(t, c2, "res-1")
	wantEvents(t, evs, seqs(5, tProgress, tCompleted)...)
	// A position beyond the last event cannot be resumed from.
	c2.Send(map[string]any{"type": "subscribe_operation", "id": "far", "operation_id": "res-1", "after_seq": 99})
	if m := c2.Expect("operation_error"); m["code"] != "bad_request" || m["id"] != "far" {
		t.Fatalf("after_seq beyond the end: %v", m)
	}
	c2.Send(map[string]any{"type": "ping", "id": "end"})
	c2.Expect("pong")
}

// An operation outlives every watcher; reconnecting gets its final event.
func TestOutlivesWatchers(t *testing.T) {
	n := startNode(t)
	dir, open := gate(t)
	c := guidance(t, n, "alice")
	start(t, c, "out-1", "tests", "gated", dir)
	closeClient(c)
	testkit.Eventually(t, "watcher gone", func() bool { return n.Conns.Count() == 0 })
	open("go1")
	open("go2")
	waitStatus(t, n, "alice", "out-1", "completed")

	c2 := guidance(t, n, "alice")
	c2.Send(map[string]any{"type": "subscribe_operation", "id": 1, "operation_id": "out-1"})
	sub := c2.Expect("operation_subscribed")
	if sub["status"] != "completed" || sub["last_seq"] != float64(6) || sub["recovered"] != true {
		t.Fatalf("subscribed = %v", sub)
	}
	fin := c2.Expect(tCompleted)
	if fin["seq"] != float64(6) || fin["result"] != "gated done" {
		t.Fatalf("final = %v", fin)
	}
	c2.Send(map[string]any{"type": "ping", "id": "end"})
	c2.Expect("pong")
	// Unsubscribing is always answered.
	c2.Send(map[string]any{"type": "unsubscribe_operation", "id": 2, "operation_id": "out-1"})
	c2.Expect("operation_unsubscribed")
}

// A running operation can be unsubscribed: no more of its events arrive.
func TestUnsubscribe(t *testing.T) {
	n := startNode(t)
	dir, open := gate(t)
	c := guidance(t, n, "alice")
	start(t, c, "uns-1", "tests", "gated", dir)
	c.Expect(tProgress)
	c.Send(map[string]any{"type": "unsubscribe_operation", "id": "u", "operation_id": "uns-1"})
	c.Expect("operation_unsubscribed")
	open("go1")
	open("go2")
	waitStatus(t, n, "alice", "uns-1", "completed")
	c.Send(map[string]any{"type": "ping", "id": "end"})
	c.Expect("pong")
}

// Server-Sent Events: the same events with id: <seq>, resumable with
// Last-Event-ID or after_seq, ending after the final event.
func TestSSEResume(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	start(t, c, "sse-1", "tests", "steps", nil)
	readOp(t, c, "sse-1")
	tok := testkit.Token(t, "alice")

	body := sse(t, n.HTTP+"/api/operations/sse-1/events", tok, "3")
	want := "id: 4\nevent: operation_progress\n"
	if !strings.HasPrefix(body, want) {
		t.Fatalf("SSE body starts %q, want %q", body[:min(len(body), 80)], want)
	}
	if got := sseIDs(body); got != "4 5 6" {
		t.Fatalf("SSE ids %q, want 4 5 6\n%s", got, body)
	}
	if got := sseIDs(sse(t, n.HTTP+"/api/operations/sse-1/events?after_seq=5", tok, "")); got != "6" {
		t.Fatalf("after_seq=5 ids %q", got)
	}

	// Live: a running operation streams until its end.
	dir, open := gate(t)
	start(t, c, "sse-2", "tests", "gated", dir)
	c.Expect(tProgress)
	resp := sseOpen(t, n.HTTP+"/api/operations/sse-2/events", tok)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var sb strings.Builder
	// History first (events 1 and 2), then the gates open and the rest
	// arrives live.
	for !strings.Contains(sb.String(), "id: 2\n") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("SSE: %v after %q", err, sb.String())
		}
		sb.WriteString(line)
	}
	open("go1")
	open("go2")
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("SSE: %v", err)
	}
	sb.Write(rest)
	body = sb.String()
	if got := sseIDs(body); got != "1 2 3 4 5 6" {
		t.Fatalf("live SSE ids %q\n%s", got, body)
	}
	if !strings.Contains(body, "event: operation_completed\ndata: {") {
		t.Fatalf("live SSE body %s", body)
	}
}

// sseOpen starts reading an event stream; the client's timeout bounds the
// whole read.
func sseOpen(t testing.TB, url, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: testkit.Timeout}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp
}

// sse reads a whole event stream.
func sse(t testing.TB, url, tok, lastID string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	cl := &http.Client{Timeout: testkit.Timeout}
	resp, err := cl.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Errorf("GET %s: %d %s", url, resp.StatusCode, ct)
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		sb.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return sb.String()
}

func sseIDs(body string) string {
	var ids []string
	for _, line := range strings.Split(body, "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
	}
	return strings.Join(ids, " ")
}

// 100 operations at once all complete with correct seqs.
func TestHundredConcurrent(t *testing.T) {
	n := startNode(t)
	const conns, per = 10, 10
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c := guidance(t, n, fmt.Sprintf("user%d", i))
		wg.Go(func() {
			for j := range per {
				c.Send(map[string]any{"type": "start_operation", "operation_id": fmt.Sprintf("hc-%d-%d", i, j), "agent_id": "tests", "operation_type": "fast"})
			}
			got := map[string][]string{}
			ended := 0
			for ended < per {
				_, b, err := c.ReadRaw()
				if err != nil {
					errs <- err
					return
				}
				var m struct {
					Type        string `json:"type"`
					OperationID string `json:"operation_id"`
					Seq         int    `json:"seq"`
				}
				if err := json.Unmarshal(b, &m); err != nil {
					errs <- err
					return
				}
				got[m.OperationID] = append(got[m.OperationID], fmt.Sprintf("%s#%d", m.Type, m.Seq))
				if isFinal(m.Type) {
					ended++
				}
			}
			want := fmt.Sprint([]string{"operation_started#1", "operation_progress#2", "operation_completed#3"})
			for j := range per {
				id := fmt.Sprintf("hc-%d-%d", i, j)
				if fmt.Sprint(got[id]) != want {
					errs <- fmt.Errorf("%s: %v", id, got[id])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A watcher that never reads holds nothing up: the agent completes while
// that watcher has read nothing, another watcher gets every event, and the
// stuck connection is paced rather than closed as a slow consumer; when it
// reads at last, it gets every log and the final event, with progress
// coalesced.
func TestWatcherNeverReads(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationEventRate = 0
	// The stuck client reads nothing, pongs included, for as long as the
	// agent runs, which on a busy machine is over a minute: neither the
	// idle timeout nor the write timeout (a write to its full socket) may
	// close it meanwhile, since pacing is what is tested.
	cfg.IdleTimeout, cfg.WriteTimeout = 5*time.Minute, 5*time.Minute
	n := testkit.Start(t, cfg, nil)
	stuck := guidance(t, n, "alice")
	// 1000 events of 16 KiB: more than the loopback socket buffers hold,
	// so the stuck watcher really has to wait for room.
	start(t, stuck, "chat-1", "tests", "chatty", 1000)
	reader := guidance(t, n, "alice")
	reader.Send(map[string]any{"type": "subscribe_operation", "operation_id": "chat-1", "after_seq": 0})
	reader.Expect("operation_subscribed")
	began := time.Now()
	// chatty's events: 1 started, then per i a progress and after every
	// 10th a log, then completed at 1102.
	got, logs := readSeqs(t, reader, 1102)
	if got[0] != 1 || logs != 100 {
		t.Fatalf("reader: first seq %d, %d logs", got[0], logs)
	}
	if len(got) != 1102 {
		t.Logf("the reader lagged too: %d progress events coalesced", 1102-len(got))
	}
	rec := waitStatus(t, n, "alice", "chat-1", "completed")
	t.Logf("completed %s after subscribing, record %v..%v", time.Since(began), rec["started_at"], rec["ended_at"])
	// The stuck client's connection is still open: it was paced, not cut.
	if c := n.Conns.Count(); c != 2 {
		t.Fatalf("%d connections, want 2", c)
	}
	got, logs = readSeqs(t, stuck, 1102)
	if got[0] != 2 || logs != 100 {
		t.Fatalf("stuck watcher: first seq %d, %d logs", got[0], logs)
	}
	t.Logf("the stuck watcher got %d events, %d progress coalesced", len(got), 1101-len(got))
}

// readSeqs reads an operation's events up to its final event, which must be
// operation_completed with seq last, checks that seqs increase, and returns
// them with the number of logs.
func readSeqs(t *testing.T, c *testkit.Client, last int) (seqs []int, logs int) {
	t.Helper()
	for {
		_, b, err := c.ReadRaw()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m struct {
			Type string `json:"type"`
			Seq  int    `json:"seq"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if len(seqs) > 0 && m.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", m.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, m.Seq)
		if m.Type == tLog {
			logs++
		}
		if isFinal(m.Type) {
			if m.Type != tCompleted || m.Seq != last {
				t.Fatalf("final %s#%d", m.Type, m.Seq)
			}
			return seqs, logs
		}
	}
}

// Beyond the event rate, progress is coalesced to the latest value and logs
// fail the operation as rate_limited.
func TestEventRateLimit(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationEventRate = 50
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")

	start(t, c, "rl-burst", "tests", "burst", nil)
	evs, raw, _ := readOp(t, c, "rl-burst")
	if len(evs) >= 302 || len(evs) < 3 {
		t.Fatalf("%d events for 300 progress lines at 50/s: not coalesced", len(evs))
	}
	for i, e := range evs {
		if e.Seq != i+2 {
			t.Fatalf("seqs not consecutive: %v", evs)
		}
	}
	if last := raw[len(raw)-2]; last["type"] != tProgress || last["progress"] != float64(100) {
		t.Fatalf("last progress = %v, want the latest value (100)", last)
	}
	if fin := raw[len(raw)-1]; fin["type"] != tCompleted {
		t.Fatalf("final = %v", fin)
	}

	// Logs are never coalesced: 2,000 of them as fast as a shell prints
	// them exceed 50/s on any machine, however busy.
	start(t, c, "rl-logs", "tests", "logflood", nil)
	_, raw, _ = readOp(t, c, "rl-logs")
	if fin := raw[len(raw)-1]; fin["type"] != tFailed || fin["code"] != "rate_limited" {
		t.Fatalf("final = %v, want operation_failed rate_limited", fin)
	}
	waitStatus(t, n, "alice", "rl-logs", "failed")
}

// When retention has dropped the events after the requested position, the
// subscriber gets recovered: false and the record instead of a partial
// replay.
func TestRetentionNotRecovered(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationHistoryMaxBytes = 256 << 10
	cfg.OperationEventRate = 0
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")
	start(t, c, "ret-old", "tests", "steps", nil)
	readOp(t, c, "ret-old")
	// About 7 MB of events push everything older out of the stream.
	start(t, c, "ret-big", "tests", "chatty", nil)
	readOp(t, c, "ret-big")
	waitStatus(t, n, "alice", "ret-big", "completed")

	for _, tc := range []struct {
		id      string
		lastSeq float64
	}{{"ret-old", 6}, {"ret-big", 442}} {
		c.Send(map[string]any{"type": "subscribe_operation", "id": tc.id, "operation_id": tc.id, "after_seq": 1})
		sub := c.Expect("operation_subscribed")
		if sub["recovered"] != false || sub["status"] != "completed" || sub["last_seq"] != tc.lastSeq {
			t.Fatalf("subscribed = %v", sub)
		}
		st := c.Expect("operation_state")
		op, _ := st["operation"].(map[string]any)
		if op["operation_id"] != tc.id || op["status"] != "completed" || op["last_seq"] != tc.lastSeq {
			t.Fatalf("state = %v", st)
		}
		c.Send(map[string]any{"type": "ping", "id": "end"})
		c.Expect("pong")
	}
}

// Watchers that leave take their JetStream consumers with them: the
// library's ordered consumers otherwise linger on the server for five
// minutes each, and a busy operation's watchers coming and going piled up
// hundreds of them (the bench's operation fan-out grew to 1.4 GiB).
func TestWatchersLeaveNoConsumers(t *testing.T) {
	n := startNode(t)
	consumers := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := n.Backbone.JS.Stream(ctx, operations.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	before := consumers()
	dir, open := gate(t)
	owner := guidance(t, n, "alice")
	start(t, owner, "leave-1", "tests", "gated", dir)
	var ws []*testkit.Client
	for i := range 5 {
		w := guidance(t, n, fmt.Sprintf("admin-%d", i), "admin")
		w.Send(map[string]any{"type": "subscribe_operation", "operation_id": "leave-1"})
		w.Expect("operation_subscribed")
		ws = append(ws, w)
	}
	// One leaves while the operation runs, by unsubscribing; the others
	// by closing their connections, and the owner after the end.
	ws[0].Send(map[string]any{"type": "unsubscribe_operation", "operation_id": "leave-1"})
	for ws[0].Read()["type"] != "operation_unsubscribed" {
	}
	for _, w := range ws[1:3] {
		closeClient(w)
	}
	open("go1")
	open("go2")
	for _, w := range ws[3:] {
		for w.Read()["type"] != tCompleted {
		}
		closeClient(w)
	}
	closeClient(ws[0])
	closeClient(owner)
	testkit.Eventually(t, "consumers deleted", func() bool { return consumers() == before })
}

// The node's /metrics count operations, their events and their watchers.
func TestMetrics(t *testing.T) {
	n := startNode(t)
	dir, open := gate(t)
	c := guidance(t, n, "alice")
	start(t, c, "met-1", "tests", "gated", dir)
	sse := n.Server.Client()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTP+"/api/operations/met-1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testkit.Token(t, "alice"))
	resp, err := sse.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n.WaitMetrics(t, "running and watched",
		"tether_operations_running 1",
		"tether_operation_watchers 2", // the starter's connection and the SSE stream
		`tether_operations_started_total{agent="tests"} 1`,
	)
	open("go1")
	open("go2")
	waitStatus(t, n, "alice", "met-1", "completed")
	_, _ = io.Copy(io.Discard, resp.Body) // the stream ends after the final event
	// Both watchers end with the final event.
	n.WaitMetrics(t, "finished and unwatched",
		"tether_operations_running 0",
		"tether_operation_watchers 0",
		`tether_operations_finished_total{agent="tests",status="completed"} 1`,
		`tether_operation_events_total{type="operation_started"} 1`,
		`tether_operation_events_total{type="operation_completed"} 1`,
	)
	closeClient(c)
}
