package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example worker serves a real operation end to end.
func TestExampleWorker(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, n.WS+"/ws/agent-worker", testkit.Token(t, "worker-1", "agent"), "remote-summarizer", 10*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	ui := testkit.Dial(t, n.WS+"/ws/agent-guidance", testkit.Bearer(testkit.Token(t, "alice")))
	// The worker registers asynchronously: until then the agent is unknown.
	var started map[string]any
	testkit.Eventually(t, "the worker to register", func() bool {
		ui.Send(map[string]any{"type": "start_operation", "agent_id": "remote-summarizer", "operation_type": "summarize", "input": map[string]any{"text": "hello tether world"}})
		started = ui.Read()
		return started["type"] == "operation_started"
	})
	var types []string
	var last map[string]any
	for {
		last = ui.Read()
		types = append(types, last["type"].(string))
		if last["type"] == "operation_completed" || last["type"] == "operation_failed" {
			break
		}
	}
	want := "[operation_progress operation_progress operation_progress operation_log operation_completed]"
	if got := fmt.Sprint(types); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if res, _ := last["result"].(map[string]any); res["words"] != float64(3) || last["seq"] != float64(6) {
		t.Fatalf("completed = %v", last)
	}
}
