package operations_test

import (
	"context"
	"encoding/json"
	"github.com/tether-dev/tether/internal/testkit/nodeclients"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit"
)

// These tests run the real @ag-ui/client and @ag-ui/core 1.0.0 from
// clients/agui-verify (npm ci there first) with node, against a real node.

// assembled is what HttpAgent.runAgent assembled (or its error).
type assembled struct {
	Messages json.RawMessage `json:"messages"`
	State    json.RawMessage `json:"state"`
	Result   json.RawMessage `json:"result"`
	Events   []string        `json:"events"`
	Error    string          `json:"error"`
}

// httpAgent runs agui.test.mjs: a stock HttpAgent.runAgent, verifier on.
func httpAgent(t *testing.T, url string, env ...string) assembled {
	t.Helper()
	dir := nodeclients.AGUI(t)
	outFile := filepath.Join(t.TempDir(), "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "agui.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "AGUI_URL="+url, "AGUI_OUT="+outFile, "SUPPRESS_TRANSFORMATION_WARNINGS=1"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node --test agui.test.mjs: %v\n%s", err, out)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var a assembled
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return a
}

func jsonEnv(t *testing.T, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return name + "=" + string(b)
}

// A command agent that streams text, calls a tool inside a step and keeps
// a state, run by a stock HttpAgent with its verifier: it accepts the
// stream and assembles exactly what the agent printed.
func TestAGUIHttpAgent(t *testing.T) {
	nodeclients.AGUI(t)
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	script := []any{
		map[string]any{"type": "STEP_STARTED", "stepName": "answer"},
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"_deltas": map[string]any{"id": "m1", "n": 500}},
		map[string]any{"type": "TOOL_CALL_START", "toolCallId": "t1", "toolCallName": "search", "parentMessageId": "m1"},
		map[string]any{"type": "TOOL_CALL_ARGS", "toolCallId": "t1", "delta": `{"q":`},
		map[string]any{"progress": 50},
		map[string]any{"type": "TOOL_CALL_ARGS", "toolCallId": "t1", "delta": `"tether"}`},
		map[string]any{"type": "TOOL_CALL_END", "toolCallId": "t1"},
		map[string]any{"type": "TOOL_CALL_RESULT", "messageId": "r1", "toolCallId": "t1", "content": "3 results"},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "add", "path": "/todos/-", "value": "write docs"}}},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
		map[string]any{"type": "STEP_FINISHED", "stepName": "answer"},
		map[string]any{"result": map[string]any{"answer": 42}},
	}
	a := httpAgent(t, n.HTTP+"/ag-ui/agents/tests/agui",
		jsonEnv(t, "AGUI_HEADERS", map[string]string{"Authorization": "Bearer " + tok}),
		"AGUI_RUN_ID=client-run-1",
		jsonEnv(t, "AGUI_STATE", map[string]any{"todos": []any{}}),
		jsonEnv(t, "AGUI_FORWARDED", map[string]any{"script": script}))
	wantMessages := compact(t, []any{
		map[string]any{"id": "m1", "role": "assistant", "content": deltaText(500), "toolCalls": []any{
			map[string]any{"id": "t1", "type": "function", "function": map[string]any{"name": "search", "arguments": `{"q":"tether"}`}}}},
		map[string]any{"id": "r1", "toolCallId": "t1", "role": "tool", "content": "3 results"},
	})
	var gotMessages any
	_ = json.Unmarshal(a.Messages, &gotMessages)
	if got := compact(t, gotMessages); got != wantMessages {
		t.Errorf("messages:\n%s\nwant\n%s", got, wantMessages)
	}
	if string(a.State) != `{"todos":["write docs"]}` || string(a.Result) != `{"answer":42}` {
		t.Errorf("state %s, result %s", a.State, a.Result)
	}
	if a.Events[0] != "RUN_STARTED" || a.Events[1] != "STATE_SNAPSHOT" || a.Events[len(a.Events)-1] != "RUN_FINISHED" {
		t.Errorf("events %v", a.Events)
	}

	// Without a token, the client's run fails on the 401.
	a = httpAgent(t, n.HTTP+"/ag-ui/agents/tests/agui", "AGUI_EXPECT_ERROR=1", "AGUI_RUN_ID=client-run-2")
	if !strings.Contains(a.Error, "401") {
		t.Errorf("run without a token: %q", a.Error)
	}
}

// Re-attaching with Last-Event-ID in the middle of a message: the stock
// client accepts the resumed stream (the starts of what is open, then the
// events after the id) and assembles the rest of the message.
func TestAGUIHttpAgentResume(t *testing.T) {
	nodeclients.AGUI(t)
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	dir, open := gate(t)
	script := []any{
		map[string]any{"type": "STATE_SNAPSHOT", "snapshot": map[string]any{"phase": "one"}},
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hello"},
		map[string]any{"_wait": "go"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": ", world"},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "replace", "path": "/phase", "value": "two"}}},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
		map[string]any{"result": "done"},
	}
	in := runInput("client-run-r", nil, map[string]any{"script": script, "gate": dir})
	s := postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil)
	fs := s.until("Hello")
	last := fs[len(fs)-1]
	s.close()
	open("go")
	a := httpAgent(t, n.HTTP+"/ag-ui/agents/tests/agui",
		jsonEnv(t, "AGUI_HEADERS", map[string]string{"Authorization": "Bearer " + tok, "Last-Event-ID": last.ID}),
		"AGUI_RUN_ID=client-run-r")
	if got := string(a.Messages); got != `[{"id":"m1","role":"assistant","content":", world"}]` {
		t.Errorf("messages %s", got)
	}
	if string(a.State) != `{"phase":"two"}` || string(a.Result) != `"done"` {
		t.Errorf("state %s, result %s", a.State, a.Result)
	}
	if got := strings.Join(a.Events, " "); got != "RUN_STARTED STATE_SNAPSHOT TEXT_MESSAGE_START TEXT_MESSAGE_CONTENT STATE_DELTA TEXT_MESSAGE_END RUN_FINISHED" {
		t.Errorf("events %s", got)
	}
}

// The example agent examples/agents/chat.py, run by a stock HttpAgent:
// the verifier accepts it, and the client assembles its two messages, the
// tool call and its result, and the state.
func TestAGUIExampleChat(t *testing.T) {
	nodeclients.AGUI(t)
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	a := httpAgent(t, n.HTTP+"/ag-ui/agents/chat/chat",
		jsonEnv(t, "AGUI_HEADERS", map[string]string{"Authorization": "Bearer " + tok}),
		jsonEnv(t, "AGUI_MESSAGES", []any{map[string]any{"id": "u1", "role": "user", "content": "resume"}}),
		jsonEnv(t, "AGUI_STATE", map[string]any{"theme": "dark"}))
	var msgs []map[string]any
	if err := json.Unmarshal(a.Messages, &msgs); err != nil || len(msgs) != 4 {
		t.Fatalf("messages %s: %v", a.Messages, err)
	}
	calls, _ := msgs[1]["toolCalls"].([]any)
	if msgs[0]["content"] != "resume" || msgs[1]["content"] != "Let me look that up before I answer." || len(calls) != 1 {
		t.Fatalf("messages %s", a.Messages)
	}
	if fn := calls[0].(map[string]any)["function"].(map[string]any); fn["name"] != "search" || fn["arguments"] != `{"query": "resume"}` {
		t.Fatalf("tool call %v", calls[0])
	}
	if msgs[2]["role"] != "tool" || msgs[2]["content"] != `["Tether stores every event", "AG-UI clients resume with Last-Event-ID"]` {
		t.Fatalf("tool result %v", msgs[2])
	}
	if msgs[3]["content"] != "You asked about resume. I found 2 results: Tether stores every event; AG-UI clients resume with Last-Event-ID." {
		t.Fatalf("answer %v", msgs[3])
	}
	if string(a.State) != `{"theme":"dark","question":"resume","steps":["think","search","answer"],"searches":1}` {
		t.Fatalf("state %s", a.State)
	}
	var res map[string]any
	if err := json.Unmarshal(a.Result, &res); err != nil || res["answer_message_id"] != msgs[3]["id"] || res["searches"] != float64(1) {
		t.Fatalf("result %s", a.Result)
	}
}

// The example agent with APPROVE=1 asks before it searches: declined, it
// says so and does not search.
func TestAGUIExampleChatApproval(t *testing.T) {
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	in := runInput("run-approve", nil, nil)
	in["messages"] = []any{map[string]any{"id": "u1", "role": "user", "content": "tether"}}
	s := postAGUI(t, n, "/ag-ui/agents/chat/approve", tok, in, nil)
	fs := s.until("tether.input_request")
	if got := fs[len(fs)-1].Data; got != `{"type":"CUSTOM","name":"tether.input_request","value":{"prompt":"Search the web for 'tether'?","requestId":"approve-search","schema":{"type":"boolean"}}}` {
		t.Fatalf("request = %s", got)
	}
	if rec := waitStatus(t, n, "alice", "run-approve", "waiting_input"); rec["agent_id"] != "chat" {
		t.Fatalf("record = %v", rec)
	}
	st, _ := testkit.Do(t, "POST", n.HTTP+"/api/operations/run-approve/input", tok, strings.NewReader(`{"request_id":"approve-search","value":false}`))
	if st != 200 {
		t.Fatalf("answer: %d", st)
	}
	rest := s.all()
	if last := rest[len(rest)-1].Data; last != `{"type":"RUN_FINISHED","threadId":"thread-1","runId":"run-approve","result":{"searches":0}}` {
		t.Fatalf("last = %s", last)
	}
	var text strings.Builder
	for _, f := range rest {
		var ev map[string]any
		_ = json.Unmarshal([]byte(f.Data), &ev)
		if ev["type"] == "TOOL_CALL_START" {
			t.Fatalf("searched after a no: %v", rest)
		}
		if ev["type"] == "TEXT_MESSAGE_CONTENT" {
			text.WriteString(ev["delta"].(string))
		}
	}
	if text.String() != "Understood: I will not search." {
		t.Fatalf("text after the answer = %q", text.String())
	}
}

// An input round trip with the stock client: a first runAgent sees the
// request (a CUSTOM event) and detaches; a second posts the run again with
// the answer as a resume entry and Last-Event-ID, and gets the rest.
func TestAGUIHttpAgentInput(t *testing.T) {
	nodeclients.AGUI(t)
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	url := n.HTTP + "/ag-ui/agents/tests/ask"
	headers := map[string]string{"Authorization": "Bearer " + tok}
	a := httpAgent(t, url, jsonEnv(t, "AGUI_HEADERS", headers), "AGUI_RUN_ID=client-ask", "AGUI_ABORT_ON=tether.input_request")
	// The client reports its own abort as RUN_ERROR; the run goes on.
	if got := strings.Join(a.Events, " "); got != "RUN_STARTED CUSTOM RUN_ERROR" {
		t.Fatalf("first run: events %s", got)
	}
	waitStatus(t, n, "alice", "client-ask", "waiting_input")
	headers["Last-Event-ID"] = "2"
	a = httpAgent(t, url, jsonEnv(t, "AGUI_HEADERS", headers), "AGUI_RUN_ID=client-ask",
		jsonEnv(t, "AGUI_RESUME", []any{map[string]any{"interruptId": "approve", "status": "resolved", "payload": true}}))
	if got := strings.Join(a.Events, " "); got != "RUN_STARTED STATE_SNAPSHOT CUSTOM RUN_FINISHED" {
		t.Fatalf("second run: events %s", got)
	}
	if string(a.Result) != `{"request_id":"approve","status":"resolved","value":true}` {
		t.Fatalf("result %s", a.Result)
	}
}
