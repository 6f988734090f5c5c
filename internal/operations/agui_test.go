package operations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit"
)

const tAGUI = "agui_event"

// compact is the compact JSON of v, with map keys sorted.
func compact(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// aguiSummary describes an operation's frames for exact comparison: each
// agui_event as its event's compact JSON, consecutive deltas of one entity
// merged into one (whether the store held them in one event or several
// depends on timing), every other frame as its type plus, for logs, the
// message. It also checks that seqs run 2, 3, … without a gap.
func aguiSummary(t testing.TB, raw []map[string]any) []string {
	t.Helper()
	var out []string
	var lastDelta map[string]any
	for i, m := range raw {
		if m["seq"] != float64(i+2) {
			t.Fatalf("frame %d has seq %v, want %d: %v", i, m["seq"], i+2, m)
		}
		if m["type"] != tAGUI {
			lastDelta = nil
			s := m["type"].(string)
			if s == tLog {
				s += " " + m["message"].(string)
			}
			out = append(out, s)
			continue
		}
		ev := m["event"].(map[string]any)
		typ := ev["type"].(string)
		if typ == "TEXT_MESSAGE_CONTENT" || typ == "TOOL_CALL_ARGS" || typ == "REASONING_MESSAGE_CONTENT" {
			if lastDelta != nil && lastDelta["type"] == typ && lastDelta["messageId"] == ev["messageId"] && lastDelta["toolCallId"] == ev["toolCallId"] {
				lastDelta["delta"] = lastDelta["delta"].(string) + ev["delta"].(string)
				out[len(out)-1] = compact(t, lastDelta)
				continue
			}
			lastDelta = ev
		} else {
			lastDelta = nil
		}
		out = append(out, compact(t, ev))
	}
	return out
}

func wantLines(t testing.TB, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A command agent's AG-UI lines are AG-UI events: checked against the
// lifecycle and the state before they are stored (a refused one is stored
// as a log telling why, and nothing of it), deltas merged, progress, logs
// and results as before, and whatever is open closed before the final event.
func TestAGUICommandAgent(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	script := []any{
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "too early"},
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hel"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "lo"},
		map[string]any{"progress": 50, "message": "half"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": " world"},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
		map[string]any{"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
		map[string]any{"type": "TEXT_MESSAGE_CHUNK", "messageId": "m2", "delta": "x"},
		map[string]any{"type": "STATE_SNAPSHOT", "snapshot": map[string]any{"a": 1}},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "replace", "path": "/a", "value": 2}}},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "remove", "path": "/nope"}}},
		map[string]any{"type": "STEP_STARTED", "stepName": "search"},
		map[string]any{"type": "TOOL_CALL_START", "toolCallId": "t1", "toolCallName": "lookup"},
		map[string]any{"type": "TOOL_CALL_ARGS", "toolCallId": "t1", "delta": `{"q":`},
		map[string]any{"type": "TOOL_CALL_ARGS", "toolCallId": "t1", "delta": `"x"}`},
		map[string]any{"log": "a log"},
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m3"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m3", "delta": "unfinished"},
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m3"},
		map[string]any{"result": map[string]any{"ok": true}},
	}
	start(t, c, "ag-cmd", "tests", "agui", map[string]any{"script": script})
	_, raw, _ := readOp(t, c, "ag-cmd")
	refused := "operation_log tether: AG-UI event refused ("
	wantLines(t, aguiSummary(t, raw),
		refused+"lifecycle_violation): The event does not fit the messages, tool calls, steps or subagents that are open. TEXT_MESSAGE_CONTENT: no text message \"m1\" is open; start it with TEXT_MESSAGE_START first",
		`{"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`{"delta":"Hello","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
		tProgress,
		`{"delta":" world","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
		`{"messageId":"m1","type":"TEXT_MESSAGE_END"}`,
		refused+"lifecycle_violation): The event does not fit the messages, tool calls, steps or subagents that are open. TEXT_MESSAGE_END: no text message \"m1\" is open; start it with TEXT_MESSAGE_START first",
		refused+"reserved_event): RUN_STARTED, RUN_FINISHED and RUN_ERROR are written by Tether, not by the agent. RUN_STARTED is written by Tether",
		refused+"unsupported_event): Chunk events are not supported; send the START, CONTENT and END events instead. TEXT_MESSAGE_CHUNK is not supported; send the START, CONTENT and END events",
		`{"snapshot":{"a":1},"type":"STATE_SNAPSHOT"}`,
		`{"delta":[{"op":"replace","path":"/a","value":2}],"type":"STATE_DELTA"}`,
		refused+"state_patch_failed): The state delta does not apply to the current state. STATE_DELTA: operation 0 (remove /nope): no member \"nope\"",
		`{"stepName":"search","type":"STEP_STARTED"}`,
		`{"toolCallId":"t1","toolCallName":"lookup","type":"TOOL_CALL_START"}`,
		`{"delta":"{\"q\":\"x\"}","toolCallId":"t1","type":"TOOL_CALL_ARGS"}`,
		tLog+" a log",
		`{"messageId":"m3","type":"TEXT_MESSAGE_START"}`,
		`{"delta":"unfinished","messageId":"m3","type":"TEXT_MESSAGE_CONTENT"}`,
		refused+"lifecycle_violation): The event does not fit the messages, tool calls, steps or subagents that are open. TEXT_MESSAGE_START: text message \"m3\" is already open; end it with TEXT_MESSAGE_END first",
		// Closed by Tether before the final event, innermost first.
		`{"messageId":"m3","type":"TEXT_MESSAGE_END"}`,
		`{"toolCallId":"t1","type":"TOOL_CALL_END"}`,
		`{"stepName":"search","type":"STEP_FINISHED"}`,
		tCompleted,
	)
	if res, _ := raw[len(raw)-1]["result"].(map[string]any); res["ok"] != true {
		t.Fatalf("final = %v", raw[len(raw)-1])
	}
}

// deltaText is what n deltas of the test agent make: "0;1;2;…".
func deltaText(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d;", i)
	}
	return b.String()
}

// 10,000 deltas at 2,000 a second, under the default event rate of 100 a
// second: stored as far fewer events, never rate_limited, and reassembled
// exactly.
func TestAGUIDeltasCoalesced(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationEventRate = 100
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")
	const count = 10000
	start(t, c, "ag-many", "tests", "agui", map[string]any{"script": []any{
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"},
		map[string]any{"_deltas": map[string]any{"id": "m", "n": count, "per_sec": 2000}},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m"},
		map[string]any{"type": "TOOL_CALL_START", "toolCallId": "t", "toolCallName": "x"},
		// As fast as the agent can print.
		map[string]any{"_deltas": map[string]any{"type": "TOOL_CALL_ARGS", "id_field": "toolCallId", "id": "t", "n": count}},
		map[string]any{"type": "TOOL_CALL_END", "toolCallId": "t"},
		map[string]any{"result": "done"},
	}})
	_, raw, _ := readOp(t, c, "ag-many")
	if fin := raw[len(raw)-1]; fin["type"] != tCompleted {
		t.Fatalf("final = %v", fin)
	}
	want := deltaText(count)
	wantLines(t, aguiSummary(t, raw),
		`{"messageId":"m","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		compact(t, map[string]any{"delta": want, "messageId": "m", "type": "TEXT_MESSAGE_CONTENT"}),
		`{"messageId":"m","type":"TEXT_MESSAGE_END"}`,
		`{"toolCallId":"t","toolCallName":"x","type":"TOOL_CALL_START"}`,
		compact(t, map[string]any{"delta": want, "toolCallId": "t", "type": "TOOL_CALL_ARGS"}),
		`{"toolCallId":"t","type":"TOOL_CALL_END"}`,
		tCompleted,
	)
	// 5 s of text at 20 flushes a second, and 48 KiB of arguments in 16 KiB
	// pieces: about a hundred events, far from 20,000.
	if len(raw) > 400 {
		t.Fatalf("%d events stored for %d deltas", len(raw), 2*count)
	}
	t.Logf("%d deltas stored as %d events", 2*count, len(raw)-1)
}

// A worker's {"type":"event"} messages are AG-UI events under the same
// rules; a refused one gets an error reply whose code is the refusal's.
func TestAGUIWorker(t *testing.T) {
	n := startNode(t)
	w := workerConn(t, n, "remote-ag", "chat")
	c := guidance(t, n, "alice")
	start(t, c, "ag-rem", "remote-ag", "chat", nil)
	w.Expect("run")
	ev := func(id string, e map[string]any) {
		m := map[string]any{"type": "event", "operation_id": "ag-rem", "event": e}
		if id != "" {
			m["id"] = id
		}
		w.Send(m)
	}
	ev("", map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"})
	for _, d := range []string{"a", "b", "c"} {
		ev("", map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": d})
	}
	ev("bad1", map[string]any{"type": "TOOL_CALL_END", "toolCallId": "nope"})
	if m := w.Expect("error"); m["id"] != "bad1" || m["code"] != "lifecycle_violation" ||
		m["message"] != `The event does not fit the messages, tool calls, steps or subagents that are open. TOOL_CALL_END: no tool call "nope" is open; start it with TOOL_CALL_START first` {
		t.Fatalf("error = %v", m)
	}
	ev("bad2", map[string]any{"type": "STATE_SNAPSHOT"})
	if m := w.Expect("error"); m["id"] != "bad2" || m["code"] != "invalid_event" {
		t.Fatalf("error = %v", m)
	}
	ev("", map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "add", "path": "/n", "value": 1}}})
	w.Send(map[string]any{"type": "log", "operation_id": "ag-rem", "message": "a log"})
	w.Send(map[string]any{"type": "completed", "operation_id": "ag-rem", "result": "r"})
	_, raw, _ := readOp(t, c, "ag-rem")
	wantLines(t, aguiSummary(t, raw),
		`{"messageId":"m","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`{"delta":"abc","messageId":"m","type":"TEXT_MESSAGE_CONTENT"}`,
		`{"delta":[{"op":"add","path":"/n","value":1}],"type":"STATE_DELTA"}`,
		tLog+" a log",
		`{"messageId":"m","type":"TEXT_MESSAGE_END"}`,
		tCompleted,
	)
}

// A watcher that starts where history was dropped gets the record, then
// the operation's AG-UI state as a STATE_SNAPSHOT.
func TestAGUIStateAfterRetention(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationHistoryMaxBytes = 256 << 10
	cfg.OperationEventRate = 0
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")
	start(t, c, "ag-old", "tests", "agui", map[string]any{"script": []any{
		map[string]any{"type": "STATE_SNAPSHOT", "snapshot": map[string]any{"items": []any{"a"}}},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "add", "path": "/items/-", "value": "b"}}},
	}})
	readOp(t, c, "ag-old")
	start(t, c, "ret-big", "tests", "chatty", nil)
	readOp(t, c, "ret-big")
	waitStatus(t, n, "alice", "ret-big", "completed")

	c.Send(map[string]any{"type": "subscribe_operation", "id": "s", "operation_id": "ag-old", "after_seq": 1})
	if sub := c.Expect("operation_subscribed"); sub["recovered"] != false {
		t.Fatalf("subscribed = %v", sub)
	}
	c.Expect("operation_state")
	snap := c.Expect(tAGUI)
	if got := compact(t, snap); got != `{"event":{"snapshot":{"items":["a","b"]},"type":"STATE_SNAPSHOT"},"operation_id":"ag-old","seq":0,"type":"agui_event"}` {
		t.Fatalf("snapshot = %s", got)
	}
}

// The AG-UI endpoint refuses a run whose oldest events retention dropped:
// its stream could not begin with RUN_STARTED.
func TestAGUIEndpointHistoryExpired(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationHistoryMaxBytes = 256 << 10
	cfg.OperationEventRate = 0
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "alice")
	in := runInput("run-old", nil, map[string]any{"script": []any{}})
	postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil).all()
	c := guidance(t, n, "alice")
	start(t, c, "ret-big", "tests", "chatty", nil)
	readOp(t, c, "ret-big")
	s := postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil)
	var b strings.Builder
	_, _ = s.rd.WriteTo(&b)
	if s.resp.StatusCode != 410 || strings.TrimSpace(b.String()) != `{"error":"history_expired","message":"the events of run run-old are no longer all stored (retention); start a new run"}` {
		t.Fatalf("re-attach: %d %s", s.resp.StatusCode, b.String())
	}
}

// The REST event stream answers its headers at once, before any event: a
// client knows it is subscribed without waiting for the agent.
func TestEventsStreamHeadersAtOnce(t *testing.T) {
	n := startNode(t)
	dir, open := gate(t)
	c := guidance(t, n, "alice")
	start(t, c, "quiet", "tests", "agui", map[string]any{"gate": dir, "script": []any{map[string]any{"_wait": "go"}}})
	defer open("go")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTP+"/api/operations/quiet/events?after_seq=1", nil)
	req.Header.Set("Authorization", "Bearer "+testkit.Token(t, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no response before the first event: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
