package operations_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/node"
	"github.com/tether-dev/tether/internal/testkit"
)

// A node shutting down (SIGTERM) with an operation running ends it as
// interrupted, and its watchers learn it from this node before it goes:
// the WebSocket watcher receives the final event and then close 1001, the
// SSE watcher the same event and then the end of the stream. The node
// serves on a real listener, as `tether serve` does.
func TestShutdownDeliversFinalEventThenCloses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, opsConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	shut := false
	t.Cleanup(func() {
		if !shut {
			_ = n.Shutdown(context.Background())
			<-served
		}
	})
	base := "http://" + ln.Addr().String()
	tok := testkit.Token(t, "alice")

	c := testkit.Dial(t, "ws://"+ln.Addr().String()+"/ws/agent-guidance", testkit.Bearer(tok))
	start(t, c, "sd-1", "tests", "slow", nil)
	if m := c.Expect(tProgress); m["seq"] != float64(2) {
		t.Fatalf("progress = %v", m)
	}

	// An SSE watcher, caught up to the same event.
	resp := sseOpen(t, base+"/api/operations/sd-1/events", tok)
	defer resp.Body.Close()
	var body testkit.SyncBuffer
	sseDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(&body, resp.Body)
		sseDone <- err
	}()
	testkit.Eventually(t, "SSE at seq 2", func() bool { return strings.Contains(body.String(), "id: 2\nevent: operation_progress\n") })

	shutErr := make(chan error, 1)
	began := time.Now()
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		shutErr <- n.Shutdown(sctx)
	}()
	shut = true

	// slow.sh logs on SIGTERM; then the final event, then 1001.
	evs, raw, _ := readOp(t, c, "sd-1")
	wantEvents(t, evs, seqs(3, tLog, tFailed)...)
	want := map[string]any{"type": tFailed, "operation_id": "sd-1", "seq": float64(4), "code": "interrupted", "message": "the node running the operation shut down"}
	for k, v := range want {
		if raw[1][k] != v {
			t.Fatalf("final event %v, want %s=%v", raw[1], k, v)
		}
	}
	if reason := c.ExpectClose(websocket.StatusGoingAway); reason != "server shutting down" {
		t.Fatalf("close reason %q", reason)
	}

	select {
	case err := <-sseDone:
		if err != nil {
			t.Fatalf("SSE stream: %v, want its end after the final event", err)
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("the SSE stream did not end")
	}
	events := strings.Split(strings.TrimSuffix(body.String(), "\n\n"), "\n\n")
	last := events[len(events)-1]
	prefix := "id: 4\nevent: operation_failed\ndata: "
	if !strings.HasPrefix(last, prefix) {
		t.Fatalf("SSE stream ended with %q, want the final event", last)
	}
	var fin map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(last, prefix)), &fin); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if fin[k] != v {
			t.Fatalf("SSE final event %v, want %s=%v", fin, k, v)
		}
	}

	select {
	case err := <-shutErr:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		t.Logf("shutdown with an operation and two watchers took %v", time.Since(began))
	case <-time.After(testkit.Timeout):
		t.Fatal("shutdown did not return")
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
}

// The shutdown deadline bounds the wait for final events: an agent that
// ignores SIGTERM holds its final event back until the kill grace ends,
// and a deadline shorter than that stops waiting for it, reports so, and
// the node still stops (storing the interrupted end once the agent is
// killed, before NATS stops).
func TestShutdownDeadlineBoundsDrain(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationKillGrace = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	c := testkit.Dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/agent-guidance", testkit.Bearer(testkit.Token(t, "alice")))
	start(t, c, "sd-stubborn", "tests", "stubborn", nil)
	if m := c.Expect(tProgress); m["seq"] != float64(2) {
		t.Fatalf("progress = %v", m)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	err = n.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "operations: final events not delivered") {
		t.Fatalf("shutdown past its deadline: %v", err)
	}
	// The connection is gone (cut at the deadline), without the final event.
	for {
		_, b, err := c.ReadRaw()
		if err != nil {
			break
		}
		if strings.Contains(string(b), `"operation_failed"`) {
			t.Fatalf("final event %s before the kill grace ended", b)
		}
	}

	// The same data directory: the record says how it ended.
	n2 := testkit.Start(t, cfg, nil)
	rec := waitStatus(t, n2, "alice", "sd-stubborn", "failed")
	if f, _ := rec["failure"].(map[string]any); f["code"] != "interrupted" || f["message"] != "the node running the operation shut down" {
		t.Fatalf("record = %v", rec)
	}
}
