package operations_test

import (
	"testing"

	"github.com/tether-dev/tether/internal/testkit"
)

// --dev without agents provides the demo agent.
func TestDevDemoAgent(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.Dev = true
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "dev")
	start(t, c, "demo-1", "demo", "run", map[string]any{"hello": "world"})
	evs, raw, _ := readOp(t, c, "demo-1")
	wantEvents(t, evs, seqs(2, tProgress, tProgress, tLog, tProgress, tProgress, tProgress, tCompleted)...)
	res, _ := raw[len(raw)-1]["result"].(map[string]any)
	if in, _ := res["input"].(map[string]any); in["hello"] != "world" || res["operation_id"] != "demo-1" {
		t.Fatalf("result = %v", raw[len(raw)-1])
	}
	// Declared agents replace it.
	n2 := startNode(t)
	expectError(t, guidance(t, n2, "dev"), map[string]any{"type": "start_operation", "agent_id": "demo", "operation_type": "run"}, "unknown_agent")
}
