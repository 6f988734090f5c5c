package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/testkit"
)

// tickerConfig declares a command agent whose operation "tick" prints
// input.n progress events, one every 50 ms, then a result.
func tickerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "ticker.sh")
	body := `#!/bin/sh
n=$(cat | tr -cd 0-9)
i=1
while [ "$i" -le "$n" ]; do
  echo "{\"progress\": $((i * 100 / n)), \"step\": \"s$i\"}"
  sleep 0.05
  i=$((i + 1))
done
echo '{"result": "ticked"}'
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tether.yaml")
	yaml := fmt.Sprintf("agents:\n  - id: ticker\n    operations:\n      tick:\n        command: [%q]\n        timeout: 2m\n", script)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startOp(t *testing.T, p *Proc, tok, id string, n int) {
	t.Helper()
	status, body := testkit.PostJSON(t, p.HTTP+"/api/operations", tok, map[string]any{
		"operation_id": id, "agent_id": "ticker", "operation_type": "tick", "input": map[string]any{"n": n},
	})
	if status != 200 && status != 201 && status != 202 {
		t.Fatalf("start %s on %s: %d %v", id, p.Name, status, body)
	}
}

// runner returns the node whose process runs operation id.
func runner(t *testing.T, via *Proc, tok, id string, nodes ...*Proc) (run *Proc, others []*Proc) {
	t.Helper()
	_, rec := testkit.Do(t, http.MethodGet, via.HTTP+"/api/operations/"+id, tok, nil)
	for _, p := range nodes {
		if p.Name == rec["node"] {
			run = p
		} else {
			others = append(others, p)
		}
	}
	if run == nil {
		t.Fatalf("operation %s runs on no known node: %v", id, rec)
	}
	return run, others
}

// watcher follows one operation, resuming with after_seq on whichever node
// is up, and records every seq it receives.
type watcher struct {
	t      *testing.T
	tok    string
	id     string
	seqs   []int
	final  map[string]any
	resume int // reconnections
}

// follow reads from p until the connection closes or the operation ends;
// it reports whether the final event arrived.
func (w *watcher) follow(p *Proc) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.Timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, p.WS+"/ws/agent-guidance", testkit.Bearer(w.tok))
	if err != nil {
		return false
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	after := 0
	if len(w.seqs) > 0 {
		after = w.seqs[len(w.seqs)-1]
	}
	msg := fmt.Sprintf(`{"type":"subscribe_operation","operation_id":%q,"after_seq":%d}`, w.id, after)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return false
	}
	for {
		var m map[string]any
		_, b, err := c.Read(ctx)
		if err != nil {
			return false // closed (1001 on a restart, or killed): resume elsewhere
		}
		if err := json.Unmarshal(b, &m); err != nil {
			w.t.Errorf("bad frame %s", b)
			return false
		}
		switch m["type"] {
		case "operation_subscribed":
			if m["recovered"] != true {
				w.t.Errorf("resume on %s not recovered: %v", p.Name, m)
			}
			continue
		case "operation_error", "operation_state":
			w.t.Errorf("resume on %s: %v", p.Name, m)
			return false
		}
		seq, ok := m["seq"].(float64)
		if !ok {
			continue
		}
		w.seqs = append(w.seqs, int(seq))
		switch m["type"] {
		case "operation_completed", "operation_failed", "operation_cancelled":
			w.final = m
			return true
		}
	}
}

// check asserts the seqs are 1..N with no gap and no duplicate.
func (w *watcher) check() {
	w.t.Helper()
	for i, s := range w.seqs {
		if s != i+1 {
			w.t.Fatalf("seq %d at position %d (gap or duplicate): %v", s, i, w.seqs)
		}
	}
}

// An operation started through node a is watched on node b; b is killed
// with SIGKILL and the watcher resumes on node c with no gap and no
// duplicate.
func TestOperationWatchedAcrossNodes(t *testing.T) {
	nc := startNATSCluster(t)
	cfg := tickerConfig(t)
	a := startTether(t, nc, "a", "127.0.0.2", "--config", cfg)
	b := startTether(t, nc, "b", "127.0.0.3", "--config", cfg)
	c := startTether(t, nc, "c", "127.0.0.4", "--config", cfg)
	tok := testkit.Token(t, "alice")
	startOp(t, a, tok, "x-1", 60)
	// Watch on a node that does not run it, kill that node mid-stream, and
	// resume on the third.
	run, others := runner(t, a, tok, "x-1", a, b, c)
	watchOn, resumeOn := others[0], others[1]

	w := &watcher{t: t, tok: tok, id: "x-1"}
	done := make(chan bool, 1)
	go func() { done <- w.follow(watchOn) }()
	waitFor(t, func() bool {
		_, rec := testkit.Do(t, http.MethodGet, run.HTTP+"/api/operations/x-1", tok, nil)
		last, _ := rec["last_seq"].(float64)
		return last >= 10
	})
	watchOn.Stop(t, syscall.SIGKILL)
	if <-done {
		t.Fatal("the operation ended before b was killed; make it longer")
	}
	if len(w.seqs) == 0 {
		t.Fatal("nothing was received on b")
	}
	if !w.follow(resumeOn) {
		t.Fatalf("no final event on %s; seqs %v", resumeOn.Name, w.seqs)
	}
	w.check()
	if w.final["type"] != "operation_completed" || w.final["result"] != "ticked" {
		t.Fatalf("final = %v", w.final)
	}
	if n := len(w.seqs); n != 62 { // started, 60 progress, completed
		t.Fatalf("%d events", n)
	}
}

// When the node running a command agent dies, another node notices and
// fails its operations with interrupted.
func TestCommandAgentNodeDies(t *testing.T) {
	nc := startNATSCluster(t)
	cfg := tickerConfig(t)
	a := startTether(t, nc, "a", "127.0.0.2", "--config", cfg)
	b := startTether(t, nc, "b", "127.0.0.3", "--config", cfg)
	tok := testkit.Token(t, "alice")
	startOp(t, a, tok, "dies-1", 1000)
	run, others := runner(t, a, tok, "dies-1", a, b)
	b = others[0]
	waitFor(t, func() bool {
		_, rec := testkit.Do(t, http.MethodGet, b.HTTP+"/api/operations/dies-1", tok, nil)
		last, _ := rec["last_seq"].(float64)
		return last >= 3
	})
	run.Stop(t, syscall.SIGKILL)
	killed := time.Now()
	waitFor(t, func() bool {
		_, rec := testkit.Do(t, http.MethodGet, b.HTTP+"/api/operations/dies-1", tok, nil)
		f, _ := rec["failure"].(map[string]any)
		return rec["status"] == "failed" && f != nil && f["code"] == "interrupted"
	})
	t.Logf("operation failed as interrupted %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	// A watcher on b gets the whole history, ending with the failure.
	w := &watcher{t: t, tok: tok, id: "dies-1"}
	if !w.follow(b) {
		t.Fatalf("no final event; seqs %v", w.seqs)
	}
	w.check()
	if w.final["type"] != "operation_failed" || w.final["code"] != "interrupted" {
		t.Fatalf("final = %v", w.final)
	}
}

// Every node is restarted in turn (SIGTERM: clients get 1001) while a
// watcher keeps resuming on whichever node is up: it sees every event
// exactly once, in order, to the end.
func TestRollingRestart(t *testing.T) {
	nc := startNATSCluster(t)
	cfg := tickerConfig(t)
	nodes := []*Proc{
		startTether(t, nc, "a", "127.0.0.2", "--config", cfg),
		startTether(t, nc, "b", "127.0.0.3", "--config", cfg),
		startTether(t, nc, "c", "127.0.0.4", "--config", cfg),
	}
	tok := testkit.Token(t, "alice")
	startOp(t, nodes[0], tok, "roll-1", 400)
	// The node running the operation is restarted last: the watcher
	// resumes through the other two restarts while it runs, then sees it
	// end (completed, or interrupted by its node's restart).
	run, others := runner(t, nodes[0], tok, "roll-1", nodes...)
	order := append(others, run)
	w := &watcher{t: t, tok: tok, id: "roll-1"}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		deadline := time.Now().Add(90 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			if w.follow(order[i%3]) {
				return
			}
			w.resume++
			time.Sleep(50 * time.Millisecond) // a client's reconnect backoff
		}
	}()
	for _, p := range order {
		p.Restart(t)
	}
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("the watcher never saw the end")
	}
	if w.final == nil {
		t.Fatalf("no final event; seqs %v", w.seqs)
	}
	w.check()
	t.Logf("%d events, final %v, %d resumes", len(w.seqs), w.final, w.resume)
	if w.resume < 2 {
		t.Fatalf("the watcher resumed %d times; the restarts should have made it resume twice", w.resume)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
