package operations_test

import (
	"testing"

	"github.com/tether-dev/tether/internal/testkit"
)

// Two nodes on one NATS: a worker on node A serves an operation started on
// node B, which B's UI watches, resumes and cancels.
func TestTwoNodes(t *testing.T) {
	a, b := testkit.StartTwo(t, opsConfig(t), opsConfig(t))

	w := workerConn(t, a, "far", "work")
	ui := guidance(t, b, "alice")
	start(t, ui, "tn-1", "far", "work", map[string]any{"n": 1})
	if run := w.Expect("run"); run["operation_id"] != "tn-1" {
		t.Fatalf("run = %v", run)
	}
	w.Send(map[string]any{"type": "progress", "operation_id": "tn-1", "progress": 20})
	if m := ui.Expect(tProgress); m["seq"] != float64(2) {
		t.Fatalf("progress = %v", m)
	}
	// The record names the node writing the events.
	_, rec := getOp(t, b, "alice", "tn-1")
	if rec["node"] != "node-a" || rec["kind"] != "remote" {
		t.Fatalf("record = %v", rec)
	}
	// A second UI on node A resumes from seq 1.
	ui2 := guidance(t, a, "alice")
	ui2.Send(map[string]any{"type": "subscribe_operation", "operation_id": "tn-1", "after_seq": 1})
	if sub := ui2.Expect("operation_subscribed"); sub["last_seq"] != float64(2) {
		t.Fatalf("subscribed = %v", sub)
	}
	ui2.Expect(tProgress)
	// Cancel from node B reaches the worker on node A.
	ui.Send(map[string]any{"type": "cancel_operation", "operation_id": "tn-1"})
	w.Expect("cancel")
	w.Send(map[string]any{"type": "cancelled", "operation_id": "tn-1"})
	for _, c := range []*testkit.Client{ui, ui2} {
		evs, _, replies := readOp(t, c, "tn-1")
		wantEvents(t, evs, seqs(3, tCancelled)...)
		if c == ui && replies["cancel_requested"] == nil {
			c.Expect("cancel_requested") // it may trail the events
		}
	}
	// Command agents run on the node that receives the start.
	start(t, ui, "tn-2", "tests", "fast", nil)
	evs, _, _ := readOp(t, ui, "tn-2")
	wantEvents(t, evs, seqs(2, tProgress, tCompleted)...)
	if _, rec := getOp(t, a, "alice", "tn-2"); rec["node"] != "node-b" {
		t.Fatalf("record = %v", rec)
	}
}
