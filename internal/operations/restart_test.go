package operations_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/node"
	"github.com/tether-dev/tether/internal/testkit"
)

// A node that shuts down with operations running fails them as interrupted,
// and the node that starts next on the same data directory reports so.
func TestRestartInterruptsRunning(t *testing.T) {
	cfg := opsConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, err := node.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n1.Handler())
	tok := testkit.Token(t, "alice")
	status, body := testkit.PostJSON(t, srv.URL+"/api/operations", tok, map[string]any{"operation_id": "long-1", "agent_id": "tests", "operation_type": "stubborn"})
	if status != http.StatusCreated {
		t.Fatalf("start = %d %v", status, body)
	}
	testkit.Eventually(t, "the agent's first event", func() bool {
		_, rec := testkit.Do(t, http.MethodGet, srv.URL+"/api/operations/long-1", tok, nil)
		return rec["last_seq"] == float64(2)
	})
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	srv.Close()

	n2 := testkit.Start(t, cfg, nil)
	_, rec := getOp(t, n2, "alice", "long-1")
	if f, _ := rec["failure"].(map[string]any); rec["status"] != "failed" || f["code"] != "interrupted" || rec["last_seq"] != float64(3) {
		t.Fatalf("record after restart = %v", rec)
	}
	c := guidance(t, n2, "alice")
	c.Send(map[string]any{"type": "subscribe_operation", "operation_id": "long-1", "after_seq": 1})
	if sub := c.Expect("operation_subscribed"); sub["status"] != "failed" || sub["last_seq"] != float64(3) {
		t.Fatalf("subscribed = %v", sub)
	}
	evs, raw, _ := readOp(t, c, "long-1")
	wantEvents(t, evs, seqs(2, tProgress, tFailed)...)
	if raw[1]["code"] != "interrupted" {
		t.Fatalf("final = %v", raw[1])
	}
	body2 := sse(t, n2.HTTP+"/api/operations/long-1/events", tok, "")
	if !strings.HasPrefix(body2, "id: 3\nevent: operation_failed\n") {
		t.Fatalf("SSE of an ended operation = %q", body2)
	}
}

// An AG-UI run whose node shuts down mid-message: its open stream gets the
// message closed and RUN_ERROR interrupted before the node goes, and the
// node that starts next on the same data serves the same run on
// re-attach, and resumes it after any frame.
func TestRestartAGUIRun(t *testing.T) {
	cfg := opsConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, err := node.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n1.Handler())
	defer srv.Close()
	tok := testkit.Token(t, "alice")
	dir, _ := gate(t)
	in := runInput("run-restart", nil, map[string]any{"gate": dir, "script": []any{
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "partial"},
		map[string]any{"type": "TOOL_CALL_START", "toolCallId": "t1", "toolCallName": "search"},
		map[string]any{"_wait": "never"},
	}})
	s := postAGUI(t, &testkit.Node{HTTP: srv.URL}, "/ag-ui/agents/tests/agui", tok, in, nil)
	first := s.until("TOOL_CALL_START")
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	const failed = `7: {"type":"RUN_ERROR","message":"the node running the operation shut down","code":"interrupted"}`
	want := []string{
		`1: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-restart"}`,
		`2: {"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`3: {"delta":"partial","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
		`4: {"toolCallId":"t1","toolCallName":"search","type":"TOOL_CALL_START"}`,
		// Closed by Tether, innermost first.
		`5: {"type":"TOOL_CALL_END","toolCallId":"t1"}`,
		`6: {"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
	}
	got := append(first, s.all()...)
	n2 := testkit.Start(t, cfg, nil)
	again := postAGUI(t, n2, "/ag-ui/agents/tests/agui", tok, in, nil).all()
	wantFrames(t, got, append(want, failed)...)
	wantFrames(t, again, append(want, failed)...)
	resumed := postAGUI(t, n2, "/ag-ui/agents/tests/agui", tok, in, map[string]string{"Last-Event-ID": "3"}).all()
	wantFrames(t, resumed,
		`-: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-restart"}`,
		`-: {"type":"STATE_SNAPSHOT","snapshot":{}}`,
		`-: {"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		want[3], want[4], want[5], failed)
}
