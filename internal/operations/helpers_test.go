package operations_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAgents declares the command agents of the test node; every command is
// a script in testdata run for real.
const testAgents = `
agents:
  - id: agent_456
    operations:
      execute_workflow: {command: [TD/steps.sh]}
  - id: tests
    operations:
      steps: {command: [TD/steps.sh]}
      gated: {command: [TD/gated.sh], timeout: 30s}
      slow: {command: [TD/slow.sh]}
      stubborn: {command: [TD/stubborn.sh]}
      crash: {command: [TD/crash.sh]}
      exit3: {command: [TD/exit3.sh]}
      timeout: {command: [TD/slow.sh], timeout: 300ms}
      malformed: {command: [TD/malformed.sh]}
      fast: {command: [TD/fast.sh], concurrency: 100}
      chatty: {command: [TD/chatty.sh]}
      logflood: {command: [TD/logflood.sh]}
      burst: {command: [TD/burst.sh]}
      one: {command: [TD/gated.sh], concurrency: 1, timeout: 30s}
      agui: {command: [TD/agui.py], concurrency: 100, timeout: 60s}
      ask: {command: [TD/ask.py], interactive: true, timeout: 30s}
      ask-deaf: {command: [TD/ask.py], timeout: 30s}
  - id: chat
    operations:
      chat: {command: [EX/chat.py], env: {TOKENS_PER_SEC: "500"}}
      approve: {command: [EX/chat.py], env: {TOKENS_PER_SEC: "500", APPROVE: "1"}, interactive: true}
`

// killGrace is the test nodes' SIGTERM-to-SIGKILL grace.
const killGrace = time.Second

// opsConfig is a test node configuration with the test agents.
func opsConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := testkit.Config(t)
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := filepath.Abs("../../examples/agents")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(strings.NewReplacer("TD", td, "EX", ex).Replace(testAgents)), &doc); err != nil {
		t.Fatal(err)
	}
	cfg.Extra = doc
	cfg.OperationKillGrace = killGrace
	cfg.MaxOperationsPerUser = 200
	cfg.RateLimit = 0
	return cfg
}

// startNode starts a node with the test agents.
func startNode(t testing.TB) *testkit.Node {
	return testkit.Start(t, opsConfig(t), nil)
}

// guidance connects user to /ws/agent-guidance with a handshake token.
func guidance(t testing.TB, n *testkit.Node, user string, roles ...string) *testkit.Client {
	t.Helper()
	return testkit.Dial(t, n.WS+"/ws/agent-guidance", testkit.Bearer(testkit.Token(t, user, roles...)))
}

// workerConn connects a worker with the agent role and registers agent.
func workerConn(t testing.TB, n *testkit.Node, agent string, ops ...string) *testkit.Client {
	t.Helper()
	w := testkit.Dial(t, n.WS+"/ws/agent-worker", testkit.Bearer(testkit.Token(t, "worker-"+agent, "agent")))
	w.Send(map[string]any{"type": "register", "id": "r", "agent_id": agent, "operations": ops})
	if m := w.Expect("registered"); m["agent_id"] != agent {
		t.Fatalf("registered = %v", m)
	}
	return w
}

// start sends start_operation and expects operation_started.
func start(t testing.TB, c *testkit.Client, id, agent, typ string, input any) map[string]any {
	t.Helper()
	msg := map[string]any{"type": "start_operation", "id": "s-" + id, "agent_id": agent, "operation_type": typ}
	if id != "" {
		msg["operation_id"] = id
	}
	if input != nil {
		msg["input"] = input
	}
	c.Send(msg)
	m := c.Expect("operation_started")
	if (id != "" && m["operation_id"] != id) || m["seq"] != float64(1) || m["id"] != "s-"+id {
		t.Fatalf("operation_started = %v", m)
	}
	return m
}

// expectError sends msg and expects a single operation_error with code, then
// nothing else before the pong to a ping sent after it.
func expectError(t testing.TB, c *testkit.Client, msg map[string]any, code string) map[string]any {
	t.Helper()
	c.Send(msg)
	m := c.Read()
	if m["type"] != "operation_error" || m["code"] != code {
		t.Fatalf("reply to %v = %v, want operation_error %s", msg, m, code)
	}
	if fmt.Sprint(m["id"]) != fmt.Sprint(msg["id"]) {
		t.Fatalf("operation_error id = %v, want %v", m["id"], msg["id"])
	}
	c.Send(map[string]any{"type": "ping", "id": "after-error"})
	if p := c.Read(); p["type"] != "pong" {
		t.Fatalf("after operation_error got %v, want only the pong", p)
	}
	return m
}

// event is a frame of an operation's stream, reduced to what tests compare.
type event struct {
	Type string
	Seq  int
}

func (e event) String() string { return fmt.Sprintf("%s#%d", e.Type, e.Seq) }

func isFinal(typ string) bool {
	return typ == "operation_completed" || typ == "operation_failed" || typ == "operation_cancelled"
}

// readOp reads frames until op's final event. Frames with a seq for op are
// returned in order as events (and raw); replies without a seq are returned
// separately by type.
func readOp(t testing.TB, c *testkit.Client, op string) (evs []event, raw []map[string]any, replies map[string]map[string]any) {
	t.Helper()
	replies = map[string]map[string]any{}
	for {
		m := c.Read()
		seq, hasSeq := m["seq"].(float64)
		if !hasSeq || m["operation_id"] != op {
			replies[m["type"].(string)] = m
			continue
		}
		evs = append(evs, event{m["type"].(string), int(seq)})
		raw = append(raw, m)
		if isFinal(m["type"].(string)) {
			return evs, raw, replies
		}
	}
}

// wantEvents fails unless got is exactly want.
func wantEvents(t testing.TB, got []event, want ...event) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

// seqs builds the expected events numbered from first.
func seqs(first int, types ...string) []event {
	out := make([]event, len(types))
	for i, typ := range types {
		out[i] = event{typ, first + i}
	}
	return out
}

// gate returns a directory for gated.sh and a function opening one gate.
func gate(t testing.TB) (string, func(name string)) {
	dir := t.TempDir()
	return dir, func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// getOp fetches an operation's record over REST.
func getOp(t testing.TB, n *testkit.Node, user, id string, roles ...string) (int, map[string]any) {
	t.Helper()
	return testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations/"+id, testkit.Token(t, user, roles...), nil)
}

// waitStatus waits until the operation's record has status.
func waitStatus(t testing.TB, n *testkit.Node, user, id, status string) map[string]any {
	t.Helper()
	var rec map[string]any
	testkit.Eventually(t, "operation "+id+" "+status, func() bool {
		_, rec = getOp(t, n, user, id)
		return rec["status"] == status
	})
	return rec
}

// closeClient closes a client's connection at once.
func closeClient(c *testkit.Client) { _ = c.C.Close(websocket.StatusNormalClosure, "bye") }
