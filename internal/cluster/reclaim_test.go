package cluster_test

import (
	"net/http"
	"syscall"
	"testing"

	"github.com/tether-dev/tether/internal/testkit"
)

// worker connects a remote worker of agent "far" to p.
func worker(t *testing.T, p *Proc) *testkit.Client {
	t.Helper()
	w := testkit.Dial(t, p.WS+"/ws/agent-worker", testkit.Bearer(testkit.Token(t, "worker-far", "agent")))
	w.Send(map[string]any{"type": "register", "agent_id": "far", "operations": []string{"work"}})
	w.Expect("registered")
	return w
}

// startRemote starts operation id of agent "far" through p.
func startRemote(t *testing.T, p *Proc, tok, id string) {
	t.Helper()
	status, body := testkit.PostJSON(t, p.HTTP+"/api/operations", tok, map[string]any{"operation_id": id, "agent_id": "far", "operation_type": "work"})
	if status != http.StatusCreated {
		t.Fatalf("start %s: %d %v", id, status, body)
	}
}

// reclaimOn reclaims op through w and fails unless it is given back with
// last_seq.
func reclaimOn(t *testing.T, w *testkit.Client, op string, lastSeq int) {
	t.Helper()
	w.Send(map[string]any{"type": "reclaim", "id": "r-" + op, "operation_id": op})
	if m := w.Expect("reclaimed"); m["operation_id"] != op || m["last_seq"] != float64(lastSeq) {
		t.Fatalf("reclaimed = %v, want last_seq %d", m, lastSeq)
	}
}

// The node a worker is connected to is drained and stopped with SIGTERM
// (--drain-timeout) while the worker runs an operation: the worker keeps
// working through the drain, is closed with 1001 at its end, reconnects to
// the other node and reclaims the operation there. A watcher closed with
// 1001 on the stopping node resumes on the other with no gap and no
// duplicate, up to the completion.
func TestRemoteOperationSurvivesRestart(t *testing.T) {
	nc := startNATSCluster(t)
	// No death here (see TestDrain): a long dead-after.
	a := startTether(t, nc, "a", "127.0.0.2", "--drain-timeout", "2s", "--worker-grace", "20s", "--cluster-dead-after", "5s")
	b := startTether(t, nc, "b", "127.0.0.3", "--drain-timeout", "2s", "--worker-grace", "20s", "--cluster-dead-after", "5s")
	tok := testkit.Token(t, "alice")
	wa := worker(t, a)
	startRemote(t, b, tok, "rr-1")
	wa.Expect("run")
	wa.Send(map[string]any{"type": "progress", "operation_id": "rr-1", "progress": 10})

	w := &watcher{t: t, tok: tok, id: "rr-1"}
	done := make(chan bool, 1)
	go func() { done <- w.follow(a) }()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	testkit.Eventually(t, "a draining", func() bool {
		status, body := testkit.GetJSON(a.HTTP + "/readyz")
		return status == 503 && body["status"] == "draining"
	})
	// The drain waits for the operation; the worker goes on meanwhile.
	wa.Send(map[string]any{"type": "progress", "operation_id": "rr-1", "progress": 20})
	wa.ExpectClose(1001)
	if <-done {
		t.Fatal("the watcher on a saw the operation end")
	}

	wb := worker(t, b)
	// started, 2 progress, the shutdown's note, the reclaim's note.
	reclaimOn(t, wb, "rr-1", 5)
	wb.Send(map[string]any{"type": "progress", "operation_id": "rr-1", "progress": 90})
	wb.Send(map[string]any{"type": "completed", "operation_id": "rr-1", "result": "done"})
	if !w.follow(b) {
		t.Fatalf("no final event on b; seqs %v", w.seqs)
	}
	w.check()
	if w.final["type"] != "operation_completed" || w.final["seq"] != float64(7) {
		t.Fatalf("final = %v", w.final)
	}
	var rec map[string]any
	testkit.Eventually(t, "the completed record", func() bool {
		_, rec = testkit.Do(t, http.MethodGet, b.HTTP+"/api/operations/rr-1", tok, nil)
		return rec["status"] == "completed"
	})
	if rec["node"] != "b" || rec["last_seq"] != float64(7) {
		t.Fatalf("record = %v", rec)
	}
}

// The node a worker is connected to dies (SIGKILL): the worker reconnects
// to the other node and reclaims, from the store, the operation it goes on
// with; the one it does not reclaim fails with agent_disconnected once the
// grace has passed, failed by the surviving node.
func TestRemoteOperationSurvivesNodeDeath(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2", "--worker-grace", "3s")
	b := startTether(t, nc, "b", "127.0.0.3", "--worker-grace", "3s")
	tok := testkit.Token(t, "alice")
	wa := worker(t, a)
	startRemote(t, b, tok, "nd-kept")
	wa.Expect("run")
	startRemote(t, b, tok, "nd-lost")
	wa.Expect("run")
	wa.Send(map[string]any{"type": "progress", "operation_id": "nd-kept", "progress": 50})
	wa.Send(map[string]any{"type": "ping", "id": "p"})
	wa.Expect("pong") // the progress was handled

	a.Stop(t, syscall.SIGKILL)
	wb := worker(t, b)
	reclaimOn(t, wb, "nd-kept", 3) // started, progress, the reclaim's note
	wb.Send(map[string]any{"type": "completed", "operation_id": "nd-kept"})

	kept := &watcher{t: t, tok: tok, id: "nd-kept"}
	if !kept.follow(b) {
		t.Fatalf("no final event; seqs %v", kept.seqs)
	}
	kept.check()
	if kept.final["type"] != "operation_completed" || kept.final["seq"] != float64(4) {
		t.Fatalf("final = %v", kept.final)
	}
	lost := &watcher{t: t, tok: tok, id: "nd-lost"}
	if !lost.follow(b) {
		t.Fatalf("no final event; seqs %v", lost.seqs)
	}
	lost.check()
	if lost.final["type"] != "operation_failed" || lost.final["code"] != "agent_disconnected" || lost.final["seq"] != float64(2) {
		t.Fatalf("final = %v", lost.final)
	}
	// Too late now.
	wb.Send(map[string]any{"type": "reclaim", "id": "late", "operation_id": "nd-lost"})
	if m := wb.Expect("error"); m["code"] != "not_found" {
		t.Fatalf("late reclaim = %v", m)
	}
}
