package cluster_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit"
)

// A node drained with SIGTERM and --drain-timeout: /readyz says so at
// once, it starts nothing new (node_draining), the operation it runs
// completes (rather than being interrupted) and its watcher on another
// node sees it complete; the terminal it hosts outlives the drain's
// deadline, and its client on another node is told node_down, not that the
// program exited.
func TestDrain(t *testing.T) {
	nc := startNATSCluster(t)
	cfg := tickerConfig(t)
	// A death is not what this test is about: with the tests' 200 ms
	// heartbeat, the default dead-after (600 ms) is shorter than a
	// heartbeat write can take on a busy machine, and the draining node,
	// declared dead, would have its work failed by the other.
	a := startTether(t, nc, "a", "127.0.0.2", "--config", cfg, "--drain-timeout", "6s", "--cluster-dead-after", "5s")
	b := startTether(t, nc, "b", "127.0.0.3", "--config", cfg, "--drain-timeout", "6s", "--cluster-dead-after", "5s")
	admin := testkit.Token(t, "ops", "admin")
	startOp(t, a, admin, "drained-op", 40) // 2 s of progress
	run, others := runner(t, a, admin, "drained-op", a, b)
	other := others[0]

	// A terminal on the node to drain, with a client attached through the
	// other node and one on the node itself.
	if status, body := testkit.PostJSON(t, run.HTTP+"/api/milestones", admin, map[string]any{"id": "drained-term", "command": []string{"sleep", "100"}}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	if status, body := testkit.PostJSON(t, run.HTTP+"/api/milestones/drained-term/start", admin, nil); status != 200 {
		t.Fatalf("start: %d %v", status, body)
	}
	term := testkit.Dial(t, other.WS+"/api/milestones/drained-term/terminal", testkit.Bearer(admin))
	if st := term.Expect("status"); st["state"] != "running" {
		t.Fatalf("status = %v", st)
	}
	local := testkit.Dial(t, run.WS+"/api/milestones/drained-term/terminal", testkit.Bearer(admin))
	if st := local.Expect("status"); st["state"] != "running" {
		t.Fatalf("status = %v", st)
	}
	w := &watcher{t: t, tok: admin, id: "drained-op"}
	done := make(chan bool, 1)
	go func() { done <- w.follow(other) }()

	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	testkit.Eventually(t, run.Name+" /readyz draining", func() bool {
		status, body := testkit.GetJSON(run.HTTP + "/readyz")
		return status == 503 && body["status"] == "draining"
	})
	status, body := testkit.PostJSON(t, run.HTTP+"/api/operations", admin, map[string]any{"agent_id": "ticker", "operation_type": "tick", "input": map[string]any{"n": 1}})
	if status != 503 || body["error"] != "node_draining" {
		t.Fatalf("a start on the draining node: %d %v", status, body)
	}
	status, body = testkit.PostJSON(t, run.HTTP+"/api/milestones", admin, map[string]any{"id": "too-late", "command": []string{"true"}})
	if status == 201 {
		if status, body = testkit.PostJSON(t, run.HTTP+"/api/milestones/too-late/start", admin, nil); status != 503 || body["error"] != "node_draining" {
			t.Fatalf("a terminal start on the draining node: %d %v", status, body)
		}
	}

	select {
	case ok := <-done:
		if !ok {
			t.Fatalf("the watcher on %s got no final event: %v", other.Name, w.seqs)
		}
	case <-time.After(2 * testkit.Timeout):
		t.Fatal("the operation never ended")
	}
	w.check()
	if w.final["type"] != "operation_completed" || w.final["result"] != "ticked" {
		t.Fatalf("final = %v, want the operation completed through the drain", w.final)
	}
	// The terminal outlives the drain: its clients are told node_down,
	// on the other node and on this one.
	expectNodeDown(t, "local", local)
	expectNodeDown(t, "relayed", term)
}

// expectNodeDown reads a terminal client's frames up to its node_down error
// and close: never an exit the program did not make.
func expectNodeDown(t *testing.T, what string, c *testkit.Client) {
	t.Helper()
	for {
		m := c.Read()
		if m["type"] == "exit" {
			t.Fatalf("the terminal's %s client was told the program exited: %v", what, m)
		}
		if m["type"] == "error" {
			if m["code"] != "node_down" {
				t.Fatalf("%s client: error = %v, want node_down", what, m)
			}
			break
		}
	}
	if reason := c.ExpectClose(4004); reason != "node_down" {
		t.Fatalf("%s client: close reason %q", what, reason)
	}
}
