package operations_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/operations"
	"github.com/tether-dev/tether/internal/testkit"
)

// graceConfig is opsConfig with a worker grace.
func graceConfig(t testing.TB, grace time.Duration) *config.Config {
	cfg := opsConfig(t)
	cfg.WorkerGrace = grace
	return cfg
}

// remoteOp starts operation id of agent (type "work") through ui and
// returns its worker on n, which has received the run.
func remoteOp(t testing.TB, n, on *testkit.Node, agent, id string) (w, ui *testkit.Client) {
	t.Helper()
	w, ui = workerConn(t, n, agent, "work"), guidance(t, on, "alice")
	start(t, ui, id, agent, "work", nil)
	w.Expect("run")
	return w, ui
}

// reclaim sends a reclaim with request id rid and returns the reply.
func reclaim(t testing.TB, w *testkit.Client, rid, op string) map[string]any {
	t.Helper()
	w.Send(map[string]any{"type": "reclaim", "id": rid, "operation_id": op})
	return w.Read()
}

// wantReply fails unless m has every field of want.
func wantReply(t testing.TB, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if testkit.Fields(m, k) != testkit.Fields(want, k) {
			t.Fatalf("reply %v, want %s=%v", m, k, v)
		}
	}
}

// expectLog reads op's next event and fails unless it is Tether's log line
// with seq and a message starting with prefix.
func expectLog(t testing.TB, c *testkit.Client, seq int, prefix string) {
	t.Helper()
	m := c.Expect(tLog)
	if m["seq"] != float64(seq) || !strings.HasPrefix(m["message"].(string), prefix) {
		t.Fatalf("log = %v, want seq %d %q…", m, seq, prefix)
	}
}

// expectExpired reads op's events up to the final one and fails unless
// that is operation_failed at seq with agent_disconnected, after grace.
func expectExpired(t testing.TB, c *testkit.Client, op string, seq int, grace string) {
	t.Helper()
	evs, raw, _ := readOp(t, c, op)
	wantEvents(t, evs, seqs(seq, tFailed)...)
	if raw[0]["code"] != "agent_disconnected" || raw[0]["message"] != "the worker running the operation disconnected and did not reclaim it within "+grace {
		t.Fatalf("failed = %v", raw[0])
	}
}

// A worker that loses its connection reclaims its operation on the same
// node within the grace: the operation stays running, its watchers read
// why it paused, an answer given meanwhile reaches the new connection, a
// request still open can be answered after, and every event is stored and
// seen exactly once, in order.
func TestReclaimSameNode(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 10*time.Second), nil)
	w1, ui := remoteOp(t, n, n, "rc", "rs-1")
	w1.Send(map[string]any{"type": "progress", "operation_id": "rs-1", "progress": 10})
	w1.Send(map[string]any{"type": "input_request", "operation_id": "rs-1", "request_id": "q1", "prompt": "One?"})
	w1.Send(map[string]any{"type": "input_request", "operation_id": "rs-1", "request_id": "q2", "prompt": "Two?"})
	ui.Expect(tProgress)
	ui.Expect(tInputRequested)
	ui.Expect(tInputRequested)
	_ = w1.C.CloseNow()
	expectLog(t, ui, 5, "tether: the worker disconnected; the operation waits up to 10s")
	if rec := waitStatus(t, n, "alice", "rs-1", "waiting_input"); rec["last_seq"] != float64(5) {
		t.Fatalf("record = %v", rec)
	}
	// Answered while no worker holds it.
	answerer := guidance(t, n, "alice")
	answerer.Send(map[string]any{"type": "answer_input", "id": "a1", "operation_id": "rs-1", "request_id": "q1", "value": 1})
	answerer.Expect("input_accepted")
	ui.Expect(tInputAnswered)

	w2 := workerConn(t, n, "rc", "work")
	wantReply(t, reclaim(t, w2, "r1", "rs-1"), map[string]any{
		"type": "reclaimed", "id": "r1", "operation_id": "rs-1", "agent_id": "rc", "operation_type": "work",
		"status": "waiting_input", "last_seq": 7, "open_requests": []any{"q2"},
	})
	if m := w2.Expect("input"); compact(t, m) != `{"operation_id":"rs-1","request_id":"q1","status":"resolved","type":"input","value":1}` {
		t.Fatalf("input = %v", m)
	}
	expectLog(t, ui, 7, "tether: a worker reclaimed the operation through node test")
	// Reclaiming again on the same connection changes nothing.
	wantReply(t, reclaim(t, w2, "r2", "rs-1"), map[string]any{"type": "reclaimed", "id": "r2", "last_seq": 7})
	answerer.Send(map[string]any{"type": "answer_input", "id": "a2", "operation_id": "rs-1", "request_id": "q2", "value": 2})
	answerer.Expect("input_accepted")
	if m := w2.Expect("input"); m["request_id"] != "q2" {
		t.Fatalf("input = %v", m)
	}
	w2.Send(map[string]any{"type": "progress", "operation_id": "rs-1", "progress": 90})
	w2.Send(map[string]any{"type": "completed", "operation_id": "rs-1", "result": "done"})
	evs, _, _ := readOp(t, ui, "rs-1")
	wantEvents(t, evs, seqs(8, tInputAnswered, tProgress, tCompleted)...)

	// A watcher from the start sees the whole stream once, in order.
	late := guidance(t, n, "alice")
	late.Send(map[string]any{"type": "subscribe_operation", "operation_id": "rs-1", "after_seq": 0})
	late.Expect("operation_subscribed")
	evs, _, _ = readOp(t, late, "rs-1")
	wantEvents(t, evs, seqs(1, "operation_started", tProgress, tInputRequested, tInputRequested, tLog, tInputAnswered, tLog,
		tInputAnswered, tProgress, tCompleted)...)
}

// Without a reclaim within the grace, the operation fails with
// agent_disconnected; it cannot be reclaimed after.
func TestReclaimGraceExpires(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 300*time.Millisecond), nil)
	w, ui := remoteOp(t, n, n, "rx", "rx-1")
	_ = w.C.CloseNow()
	expectLog(t, ui, 2, "tether: the worker disconnected; the operation waits up to 300ms")
	expectExpired(t, ui, "rx-1", 3, "300ms")
	w2 := workerConn(t, n, "rx", "work")
	wantReply(t, reclaim(t, w2, "late", "rx-1"), map[string]any{
		"type": "error", "id": "late", "code": "not_found", "message": "operation rx-1 has ended",
	})
}

// Reclaims that are refused, each with its code.
func TestReclaimErrors(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 10*time.Second), nil)
	w1, ui := remoteOp(t, n, n, "re", "re-1")

	cases := []struct {
		name string
		w    *testkit.Client
		op   string
		code string
		msg  string
	}{
		{"unknown", w1, "nope", "not_found", "no operation nope"},
		{"invalid id", w1, "../x", "not_found", `no operation "../x"`},
		{"command operation", nil, "re-cmd", "not_found", "operation re-cmd is not a remote operation"},
		{"another agent's", workerConn(t, n, "other", "work"), "re-1", "forbidden", "operation re-1 belongs to agent re, which this connection has not registered"},
		{"still held", workerConn(t, n, "re", "work"), "re-1", "operation_held", "operation re-1 is held by another worker connection"},
	}
	start(t, guidance(t, n, "alice"), "re-cmd", "tests", "gated", nil)
	for _, c := range cases {
		w := c.w
		if w == nil {
			w = w1
		}
		wantReply(t, reclaim(t, w, c.name, c.op), map[string]any{"type": "error", "id": c.name, "code": c.code, "message": c.msg})
	}
	// Not registered at all.
	bare := testkit.Dial(t, n.WS+"/ws/agent-worker", testkit.Bearer(testkit.Token(t, "worker-re", "agent")))
	wantReply(t, reclaim(t, bare, "bare", "re-1"), map[string]any{"type": "error", "code": "forbidden"})

	// Reclaimed by one connection: another's reclaim is refused.
	_ = w1.C.CloseNow()
	expectLog(t, ui, 2, "tether: the worker disconnected")
	w2, w3 := workerConn(t, n, "re", "work"), workerConn(t, n, "re", "work")
	wantReply(t, reclaim(t, w2, "first", "re-1"), map[string]any{"type": "reclaimed", "last_seq": 3})
	wantReply(t, reclaim(t, w3, "second", "re-1"), map[string]any{
		"type": "error", "id": "second", "code": "operation_held", "message": "operation re-1 is held by another worker connection",
	})
	w2.Send(map[string]any{"type": "completed", "operation_id": "re-1"})
	for {
		if m := ui.Read(); m["type"] == tCompleted && m["operation_id"] == "re-1" {
			break
		}
	}
	wantReply(t, reclaim(t, w3, "ended", "re-1"), map[string]any{"type": "error", "code": "not_found"})
}

// twoNodes starts node-a, which hosts NATS and outlives the test's
// events, and node-b, which the test may stop, with a worker grace.
func twoNodes(t *testing.T, grace time.Duration) (a, b *testkit.Node) {
	cfgA, cfgB := graceConfig(t, grace), graceConfig(t, grace)
	// Quick to see node-b leave.
	cfgA.ClusterHeartbeat, cfgB.ClusterHeartbeat = 200*time.Millisecond, 200*time.Millisecond
	return testkit.StartTwo(t, cfgA, cfgB)
}

// The node a worker was on shuts down; the worker reconnects to the other
// node and reclaims its operation there. The watcher on the surviving node
// and the one that resumes there after its node went see every event once,
// with no gap, up to the final one.
func TestReclaimAfterNodeShutdown(t *testing.T) {
	a, b := twoNodes(t, 10*time.Second)
	wb, ui := remoteOp(t, b, a, "far", "ns-1")
	wb.Send(map[string]any{"type": "progress", "operation_id": "ns-1", "progress": 20})
	ui.Expect(tProgress)
	// A watcher on node-b, which will have to resume on node-a.
	onB := guidance(t, b, "alice")
	onB.Send(map[string]any{"type": "subscribe_operation", "operation_id": "ns-1", "after_seq": 0})
	onB.Expect("operation_subscribed")
	var seen []event
	for len(seen) < 2 {
		m := onB.Read()
		seen = append(seen, event{m["type"].(string), int(m["seq"].(float64))})
	}

	b.Stop()
	wb.ExpectClose(1001)
	expectLog(t, ui, 3, "tether: the node running the operation is shutting down; its worker has 10s to reclaim it through another node")
	if _, rec := getOp(t, a, "alice", "ns-1"); rec["status"] != "running" || rec["node"] != "node-b" {
		t.Fatalf("record after the shutdown = %v", rec)
	}

	wa := workerConn(t, a, "far", "work")
	wantReply(t, reclaim(t, wa, "r", "ns-1"), map[string]any{"type": "reclaimed", "operation_id": "ns-1", "status": "running", "last_seq": 4})
	expectLog(t, ui, 4, "tether: a worker reclaimed the operation through node node-a")
	if _, rec := getOp(t, a, "alice", "ns-1"); rec["node"] != "node-a" {
		t.Fatalf("record after the reclaim = %v", rec)
	}
	wa.Send(map[string]any{"type": "progress", "operation_id": "ns-1", "progress": 80})
	wa.Send(map[string]any{"type": "completed", "operation_id": "ns-1"})
	evs, _, _ := readOp(t, ui, "ns-1")
	wantEvents(t, evs, seqs(5, tProgress, tCompleted)...)

	resumed := guidance(t, a, "alice")
	resumed.Send(map[string]any{"type": "subscribe_operation", "operation_id": "ns-1", "after_seq": seen[len(seen)-1].Seq})
	resumed.Expect("operation_subscribed")
	evs, _, _ = readOp(t, resumed, "ns-1")
	wantEvents(t, append(seen, evs...), seqs(1, "operation_started", tProgress, tLog, tLog, tProgress, tCompleted)...)
}

// The worker loses its connection to node-b, which stays up, and
// reclaims through node-a: node-b hands the operation over without
// ending it, and cancels and answers reach the worker on node-a.
func TestReclaimHandover(t *testing.T) {
	a, b := twoNodes(t, 10*time.Second)
	wb, ui := remoteOp(t, b, b, "far", "ho-1")
	wb.Send(map[string]any{"type": "input_request", "operation_id": "ho-1", "request_id": "q", "prompt": "Go?"})
	ui.Expect(tInputRequested)
	_ = wb.C.CloseNow()
	expectLog(t, ui, 3, "tether: the worker disconnected")

	wa := workerConn(t, a, "far", "work")
	wantReply(t, reclaim(t, wa, "r", "ho-1"), map[string]any{
		"type": "reclaimed", "status": "waiting_input", "last_seq": 4, "open_requests": []any{"q"},
	})
	expectLog(t, ui, 4, "tether: a worker reclaimed the operation through node node-a")
	// Answered and cancelled through node-b, which no longer writes it.
	answerer := guidance(t, b, "alice")
	answerer.Send(map[string]any{"type": "answer_input", "id": "a", "operation_id": "ho-1", "request_id": "q", "value": true})
	answerer.Expect("input_accepted")
	if m := wa.Expect("input"); m["request_id"] != "q" || m["value"] != true {
		t.Fatalf("input = %v", m)
	}
	ui.Send(map[string]any{"type": "cancel_operation", "operation_id": "ho-1"})
	if m := wa.Expect("cancel"); m["operation_id"] != "ho-1" {
		t.Fatalf("cancel = %v", m)
	}
	wa.Send(map[string]any{"type": "cancelled", "operation_id": "ho-1"})
	evs, _, _ := readOp(t, ui, "ho-1")
	wantEvents(t, evs, seqs(5, tInputAnswered, tCancelled)...)
	if rec := waitStatus(t, b, "alice", "ho-1", "cancelled"); rec["node"] != "node-a" || rec["last_seq"] != float64(6) {
		t.Fatalf("record = %v", rec)
	}
}

// A node asks for the operation and never claims it (the reply was lost,
// or the node died first): the node that handed it over fails it once the
// grace has passed, rather than leave it running with no writer.
func TestHandoverNeverClaimed(t *testing.T) {
	n := testkit.Start(t, graceConfig(t, 2*time.Second), nil)
	w, ui := remoteOp(t, n, n, "hn", "hn-1")
	_ = w.C.CloseNow()
	expectLog(t, ui, 2, "tether: the worker disconnected; the operation waits up to 2s")
	// The node that asks is gone before it claims: NATS alone stands for it.
	msg, err := n.Backbone.NC.Request(operations.ReclaimSubject("hn-1"), []byte(`{"node":"ghost"}`), testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != `{}` {
		t.Fatalf("handover reply %s, want the operation handed over", msg.Data)
	}
	expectExpired(t, ui, "hn-1", 3, "2s")
	if rec := waitStatus(t, n, "alice", "hn-1", "failed"); rec["last_seq"] != float64(3) {
		t.Fatalf("record = %v", rec)
	}
}

// The node that takes the operation over writes it on: the check the old
// node makes once the grace has passed finds it held and changes nothing.
func TestHandoverClaimedOutlivesGrace(t *testing.T) {
	a, b := twoNodes(t, time.Second)
	wb, ui := remoteOp(t, b, b, "far", "hc-1")
	_ = wb.C.CloseNow()
	expectLog(t, ui, 2, "tether: the worker disconnected")
	wa := workerConn(t, a, "far", "work")
	wantReply(t, reclaim(t, wa, "r", "hc-1"), map[string]any{"type": "reclaimed", "status": "running", "last_seq": 3})
	expectLog(t, ui, 3, "tether: a worker reclaimed the operation through node node-a")
	if !b.Ops.ExpiryArmed("hc-1") {
		t.Fatal("node-b armed no check of the operation it handed over")
	}
	testkit.Eventually(t, "node-b's check after the grace", func() bool { return !b.Ops.ExpiryArmed("hc-1") })
	b.Ops.WaitExpiring()
	wa.Send(map[string]any{"type": "progress", "operation_id": "hc-1", "progress": 50})
	wa.Send(map[string]any{"type": "completed", "operation_id": "hc-1"})
	evs, _, _ := readOp(t, ui, "hc-1")
	wantEvents(t, evs, seqs(4, tProgress, tCompleted)...)
	if rec := waitStatus(t, a, "alice", "hc-1", "completed"); rec["node"] != "node-a" || rec["last_seq"] != float64(5) {
		t.Fatalf("record = %v", rec)
	}
}

// The node a worker was on shuts down and the worker never comes back:
// the surviving node fails the operation once the grace has passed.
func TestReclaimGraceExpiresAfterNodeShutdown(t *testing.T) {
	a, b := twoNodes(t, 500*time.Millisecond)
	_, ui := remoteOp(t, b, a, "far", "gx-1")
	b.Stop()
	expectLog(t, ui, 2, "tether: the node running the operation is shutting down")
	expectExpired(t, ui, "gx-1", 3, "500ms")
	if rec := waitStatus(t, a, "alice", "gx-1", "failed"); rec["node"] != "node-a" {
		t.Fatalf("record = %v", rec)
	}
}

// An AG-UI run goes on across the reclaim on another node: the new writer
// knows, from the stored events, the message the agent had open (its
// content and end are accepted, a second start refused), and the delta
// the old node held back was stored before it let go.
func TestReclaimAGUIRun(t *testing.T) {
	a, b := twoNodes(t, 10*time.Second)
	wb, ui := remoteOp(t, b, a, "far", "ag-1")
	event := func(w *testkit.Client, ev map[string]any) {
		w.Send(map[string]any{"type": "event", "operation_id": "ag-1", "event": ev})
	}
	event(wb, map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"})
	event(wb, map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "Hel"})
	wb.Send(map[string]any{"type": "ping", "id": "p"})
	wb.Expect("pong") // both handled: the delta is held, not stored
	ui.Expect(tAGUI)
	b.Stop()
	if m := ui.Expect(tAGUI); m["seq"] != float64(3) || m["event"].(map[string]any)["delta"] != "Hel" {
		t.Fatalf("held delta = %v", m)
	}
	expectLog(t, ui, 4, "tether: the node running the operation is shutting down")

	wa := workerConn(t, a, "far", "work")
	wantReply(t, reclaim(t, wa, "r", "ag-1"), map[string]any{"type": "reclaimed", "last_seq": 5})
	expectLog(t, ui, 5, "tether: a worker reclaimed the operation")
	event(wa, map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m"})
	if m := wa.Expect("error"); m["code"] != "lifecycle_violation" {
		t.Fatalf("a second start = %v", m)
	}
	event(wa, map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "lo"})
	event(wa, map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m"})
	wa.Send(map[string]any{"type": "completed", "operation_id": "ag-1"})
	wa.Send(map[string]any{"type": "ping", "id": "p"})
	wa.Expect("pong") // no refusal
	evs, raw, _ := readOp(t, ui, "ag-1")
	wantEvents(t, evs, seqs(6, tAGUI, tAGUI, tCompleted)...)
	if raw[0]["event"].(map[string]any)["delta"] != "lo" || raw[1]["event"].(map[string]any)["type"] != "TEXT_MESSAGE_END" {
		t.Fatalf("events = %v", raw)
	}
}

// Two workers reclaim one operation at once, through two nodes: exactly one
// gets it, the other is told operation_held, and the stream holds one
// reclaim.
func TestReclaimRace(t *testing.T) {
	a, b := twoNodes(t, 10*time.Second)
	wb, ui := remoteOp(t, b, a, "far", "race-1")
	_ = wb.C.CloseNow()
	expectLog(t, ui, 2, "tether: the worker disconnected")
	w1, w2 := workerConn(t, a, "far", "work"), workerConn(t, b, "far", "work")
	w1.Send(map[string]any{"type": "reclaim", "id": "1", "operation_id": "race-1"})
	w2.Send(map[string]any{"type": "reclaim", "id": "2", "operation_id": "race-1"})
	r1, r2 := w1.Read(), w2.Read()
	winner := w1
	if r2["type"] == "reclaimed" {
		winner, r1, r2 = w2, r2, r1
	}
	wantReply(t, r1, map[string]any{"type": "reclaimed", "last_seq": 3})
	wantReply(t, r2, map[string]any{"type": "error", "code": "operation_held"})
	winner.Send(map[string]any{"type": "completed", "operation_id": "race-1"})
	evs, _, _ := readOp(t, ui, "race-1")
	wantEvents(t, evs, seqs(3, tLog, tCompleted)...)
}

// A node alone restarts (same name, same data): its worker reclaims one
// operation from the new process; the other, not reclaimed, is failed by
// the new process once the grace has passed.
func TestReclaimAfterRestart(t *testing.T) {
	cfg := graceConfig(t, 2*time.Second)
	n1 := testkit.Start(t, cfg, nil)
	w1, ui := remoteOp(t, n1, n1, "solo", "rs-kept")
	start(t, ui, "rs-lost", "solo", "work", nil)
	w1.Expect("run")
	n1.Stop()

	n2 := testkit.Start(t, cfg, nil)
	w2 := workerConn(t, n2, "solo", "work")
	// started, the shutdown's note, the reclaim's note.
	wantReply(t, reclaim(t, w2, "r", "rs-kept"), map[string]any{"type": "reclaimed", "last_seq": 3})
	w2.Send(map[string]any{"type": "completed", "operation_id": "rs-kept"})
	rec := waitStatus(t, n2, "alice", "rs-kept", "completed")
	if rec["last_seq"] != float64(4) {
		t.Fatalf("record = %v", rec)
	}
	rec = waitStatus(t, n2, "alice", "rs-lost", "failed")
	if f, _ := rec["failure"].(map[string]any); f["code"] != "agent_disconnected" || rec["last_seq"] != float64(3) {
		t.Fatalf("record = %v", rec)
	}
}
