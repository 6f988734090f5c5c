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
