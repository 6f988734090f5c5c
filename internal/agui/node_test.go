package agui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit/nodeclients"
)

// These tests run the real @ag-ui/client and @ag-ui/core 1.0.0 from
// clients/agui-verify (npm ci there first) with node.

// TestTrackerMatchesVerifier runs every lifecycle case through
// @ag-ui/client's verifier, between RUN_STARTED and RUN_FINISHED, and
// checks it refuses exactly what the Tracker refuses, at the same event
// (Tether's stricter refusals, chunks and RUN_* from agents, are skipped).
func TestTrackerMatchesVerifier(t *testing.T) {
	dir := nodeclients.AGUI(t)
	var cases [][]json.RawMessage
	var used []lifecycleCase
	for _, tc := range lifecycleCases {
		if tc.bad >= 0 && tc.code != CodeLifecycleViolation {
			continue
		}
		seq := []json.RawMessage{json.RawMessage(`{"type":"RUN_STARTED","threadId":"th","runId":"r"}`)}
		for _, e := range tc.events {
			seq = append(seq, json.RawMessage(e))
		}
		if tc.bad < 0 {
			seq = append(seq, json.RawMessage(`{"type":"RUN_FINISHED","threadId":"th","runId":"r"}`))
		}
		cases = append(cases, seq)
		used = append(used, tc)
	}
	out := verifyEvents(t, dir, cases)
	var results []struct {
		Bad   int    `json:"bad"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(used) {
		t.Fatalf("results %s: %v", out, err)
	}
	for i, tc := range used {
		want := tc.bad + 1 // RUN_STARTED comes first
		if tc.bad < 0 {
			want = -1
			if !tc.finish {
				want = len(tc.events) + 1 // RUN_FINISHED with something open
			}
		}
		if results[i].Bad != want {
			t.Errorf("%s: the verifier refused event %d (%s), the Tracker %d", tc.name, results[i].Bad, results[i].Error, want)
		}
	}
}

// TestParseMatchesSchemas runs the events Parse accepts and refuses (as
// invalid_event) through @ag-ui/client's enforcement stage, the
// @ag-ui/core 1.0.0 zod schemas: they must agree.
func TestParseMatchesSchemas(t *testing.T) {
	dir := nodeclients.AGUI(t)
	var events []json.RawMessage
	var valid []bool
	for _, line := range validEvents {
		events = append(events, json.RawMessage(line))
		valid = append(valid, true)
	}
	for line, e := range invalidEvents {
		if e.Code == CodeInvalidEvent && json.Valid([]byte(line)) && strings.HasPrefix(line, `{"type":"`) {
			events = append(events, json.RawMessage(line))
			valid = append(valid, false)
		}
	}
	out := verifyEvents(t, dir, map[string]any{"enforce": events})
	var results []*string
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(events) {
		t.Fatalf("results %s: %v", out, err)
	}
	for i, ev := range events {
		if accepted := results[i] == nil; accepted != valid[i] {
			reason := ""
			if results[i] != nil {
				reason = *results[i]
			}
			t.Errorf("%s: the schemas accept it: %v, Parse: %v %s", ev, accepted, valid[i], reason)
		}
	}
}

// verifyEvents runs clients/agui-verify's verify-events.mjs (in dir) on
// input, as JSON, and returns its output.
func verifyEvents(t *testing.T, dir string, input any) []byte {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "verify-events.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "SUPPRESS_TRANSFORMATION_WARNINGS=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify-events.mjs: %v", err)
	}
	return out
}

// agentScript is what a test agent prints: a step, text streamed as small
// deltas, state, a tool call with args and a result, and a second message
// and step still open when the run ends.
var agentScript = []string{
	`{"type":"STEP_STARTED","stepName":"plan"}`,
	`{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"Hel"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"lo, "}`,
	`{"type":"STATE_SNAPSHOT","snapshot":{"todos":[],"count":0}}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"wör"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"ld\n"}`,
	`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
	`{"type":"STEP_FINISHED","stepName":"plan"}`,
	`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"search","parentMessageId":"m1"}`,
	`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{\"q\":"}`,
	`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"\"tether\"}"}`,
	`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
	`{"type":"TOOL_CALL_RESULT","messageId":"r1","toolCallId":"t1","content":"3 results"}`,
	`{"type":"STATE_DELTA","delta":[{"op":"add","path":"/todos/-","value":"write docs"},{"op":"replace","path":"/count","value":1}]}`,
	`{"type":"STEP_STARTED","stepName":"answer"}`,
	`{"type":"TEXT_MESSAGE_START","messageId":"m2"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m2","delta":"Partial"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m2","delta":" answer"}`,
}

// storedRun runs agentScript through a Run as Tether would and returns the
// stored events, numbered from 1 (RUN_STARTED) in order.
func storedRun(t *testing.T, threadID, runID string) []*Event {
	return storeScript(t, threadID, runID, agentScript)
}

// storeScript runs an agent's lines through a Run, the agent printing a
// line every 500 µs (2,000 a second) on a simulated clock, with the timer
// flushing held deltas when due.
func storeScript(t *testing.T, threadID, runID string, script []string) []*Event {
	t.Helper()
	run := NewRun(Config{})
	now := time.Unix(1e9, 0)
	var stored []*Event
	store := func(evs ...*Event) {
		for _, ev := range evs {
			stored = append(stored, ev)
			run.Stored(ev)
		}
	}
	started, err := Make(RunStarted, KV{"threadId", threadID}, KV{"runId", runID})
	if err != nil {
		t.Fatal(err)
	}
	store(started)
	for _, line := range script {
		ev := mustParse(t, line)
		out, err := run.Accept(ev, now)
		if err != nil {
			t.Fatalf("Accept(%s): %v", line, err)
		}
		store(out...)
		now = now.Add(500 * time.Microsecond)
		store(run.FlushDue(now)...)
	}
	store(run.Finish()...)
	fin, err := Make(RunFinished, KV{"threadId", threadID}, KV{"runId", runID}, KV{"result", map[string]any{"ok": true}})
	if err != nil {
		t.Fatal(err)
	}
	store(fin)
	return stored
}

// serveRun answers an AG-UI POST with the stored run of agentScript as
// SSE; with Last-Event-ID: N it sends ResumePrefix of the first N events
// (no ids) and then the events after N.
func serveRun(t *testing.T) *httptest.Server { return serveScript(t, agentScript) }

func serveScript(t *testing.T, script []string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var input struct {
			ThreadID string `json:"threadId"`
			RunID    string `json:"runId"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &input); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		stored := storeScript(t, input.ThreadID, input.RunID, script)
		after := 0
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			after, _ = strconv.Atoi(v)
		}
		SetSSEHeaders(w.Header())
		var buf []byte
		if after > 0 {
			for _, ev := range ResumePrefix(stored[:after], Config{}) {
				buf, _ = AppendFrame(buf, 0, false, ev.Raw)
			}
		}
		for i := after; i < len(stored); i++ {
			buf, _ = AppendFrame(buf, uint64(i+1), true, stored[i].Raw)
		}
		w.Write(buf)
	}))
}

type assembledRun struct {
	Messages json.RawMessage `json:"messages"`
	State    json.RawMessage `json:"state"`
	Result   json.RawMessage `json:"result"`
	Events   []string        `json:"events"`
}

func runNode(t *testing.T, dir, url string, headers map[string]string) assembledRun {
	t.Helper()
	outFile := filepath.Join(t.TempDir(), "out.json")
	h, _ := json.Marshal(headers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "agui.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AGUI_URL="+url, "AGUI_OUT="+outFile, "AGUI_HEADERS="+string(h), "AGUI_RUN_ID=run-1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node --test agui.test.mjs: %v\n%s", err, out)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var a assembledRun
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return a
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return b.String()
}

func TestHttpAgentAcceptsRun(t *testing.T) {
	dir := nodeclients.AGUI(t)
	srv := serveRun(t)
	defer srv.Close()

	stored := storedRun(t, "thread-1", "run-1")
	var types []string
	for _, ev := range stored {
		types = append(types, string(ev.Type))
	}
	a := runNode(t, dir, srv.URL, nil)
	if fmt.Sprint(a.Events) != fmt.Sprint(types) {
		t.Fatalf("the client applied %v, the server stored %v", a.Events, types)
	}
	wantMessages := compact(t, `[
		{"id":"m1","role":"assistant","content":"Hello, wörld\n","toolCalls":[{"id":"t1","type":"function","function":{"name":"search","arguments":"{\"q\":\"tether\"}"}}]},
		{"id":"r1","toolCallId":"t1","role":"tool","content":"3 results"},
		{"id":"m2","role":"assistant","content":"Partial answer"}]`)
	if string(a.Messages) != wantMessages {
		t.Errorf("messages:\n%s\nwant\n%s", a.Messages, wantMessages)
	}
	if want := `{"todos":["write docs"],"count":1}`; string(a.State) != want {
		t.Errorf("state %s, want %s", a.State, want)
	}
	if string(a.Result) != `{"ok":true}` {
		t.Errorf("result %s", a.Result)
	}
}

func TestHttpAgentAcceptsResumeMidMessage(t *testing.T) {
	dir := nodeclients.AGUI(t)
	srv := serveRun(t)
	defer srv.Close()

	// Resume after the first stored delta of m1 ("Hello, "), flushed by the
	// STATE_SNAPSHOT: the step "plan" and the message m1 are open there.
	stored := storedRun(t, "thread-1", "run-1")
	after := -1
	for i, ev := range stored {
		if ev.Type == TextMessageContent && ev.MessageID == "m1" {
			after = i + 1
			break
		}
	}
	if after < 0 || stored[after-1].Delta != "Hello, " || stored[after].Type != StateSnapshot {
		t.Fatalf("unexpected stored run: %s", rawOf(stored))
	}
	a := runNode(t, dir, srv.URL, map[string]string{"Last-Event-ID": strconv.Itoa(after)})
	want := []string{"RUN_STARTED", "STATE_SNAPSHOT", "STEP_STARTED", "TEXT_MESSAGE_START"}
	for _, ev := range stored[after:] {
		want = append(want, string(ev.Type))
	}
	if fmt.Sprint(a.Events) != fmt.Sprint(want) {
		t.Fatalf("the client applied %v, want %v", a.Events, want)
	}
	wantMessages := compact(t, `[
		{"id":"m1","role":"assistant","content":"wörld\n","toolCalls":[{"id":"t1","type":"function","function":{"name":"search","arguments":"{\"q\":\"tether\"}"}}]},
		{"id":"r1","toolCallId":"t1","role":"tool","content":"3 results"},
		{"id":"m2","role":"assistant","content":"Partial answer"}]`)
	if string(a.Messages) != wantMessages {
		t.Errorf("messages:\n%s\nwant\n%s", a.Messages, wantMessages)
	}
	if want := `{"todos":["write docs"],"count":1}`; string(a.State) != want {
		t.Errorf("state %s, want %s", a.State, want)
	}
}

func TestHttpAgentAcceptsResumeAfterEnd(t *testing.T) {
	dir := nodeclients.AGUI(t)
	srv := serveRun(t)
	defer srv.Close()
	n := len(storedRun(t, "thread-1", "run-1"))
	a := runNode(t, dir, srv.URL, map[string]string{"Last-Event-ID": strconv.Itoa(n)})
	if want := "[RUN_STARTED STATE_SNAPSHOT RUN_FINISHED]"; fmt.Sprint(a.Events) != want {
		t.Fatalf("the client applied %v, want %s", a.Events, want)
	}
	if string(a.Messages) != "[]" || string(a.State) != `{"count":1,"todos":["write docs"]}` || string(a.Result) != `{"ok":true}` {
		t.Fatalf("assembled %s %s %s", a.Messages, a.State, a.Result)
	}
}

// TestHttpAgentAssemblesCoalescedText streams 10,000 deltas of one message
// at 2,000 a second through the Coalescer to the stock client, which must
// assemble exactly the text the agent printed.
func TestHttpAgentAssemblesCoalescedText(t *testing.T) {
	dir := nodeclients.AGUI(t)
	script := []string{`{"type":"TEXT_MESSAGE_START","messageId":"m"}`}
	var want strings.Builder
	words := []string{"héllo ", "wörld", "\n", "日本", "\"q\"", "", "\\", "😀", "<&>", "\u2028", "\r\n"}
	for i := 0; i < 10000; i++ {
		w := words[i%len(words)] + strconv.Itoa(i)
		want.WriteString(w)
		d, _ := json.Marshal(w)
		script = append(script, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":`+string(d)+`}`)
	}
	script = append(script, `{"type":"TEXT_MESSAGE_END","messageId":"m"}`)
	srv := serveScript(t, script)
	defer srv.Close()

	stored := storeScript(t, "thread-1", "run-1", script)
	// 5 s of deltas, flushed every 50 ms: about 100 content events.
	if n := len(stored); n < 90 || n > 110 {
		t.Fatalf("%d events stored for 10,000 deltas", n)
	}
	a := runNode(t, dir, srv.URL, nil)
	var msgs []struct {
		ID      string `json:"id"`
		Content string `json:"content"`
	}
	if err := json.Unmarshal(a.Messages, &msgs); err != nil || len(msgs) != 1 || msgs[0].ID != "m" {
		t.Fatalf("messages %s: %v", a.Messages, err)
	}
	if msgs[0].Content != want.String() {
		t.Fatalf("the client assembled %d bytes, the agent printed %d", len(msgs[0].Content), want.Len())
	}
}

// TestResumeAnywhereMatchesVerifier: for every valid lifecycle case, stored
// as Tether stores it (RUN_STARTED, the events, Close, RUN_FINISHED), a
// stream resumed after any event (ResumePrefix, then the rest) is accepted
// by @ag-ui/client's verifier.
func TestResumeAnywhereMatchesVerifier(t *testing.T) {
	dir := nodeclients.AGUI(t)
	var cases [][]json.RawMessage
	var names []string
	for _, tc := range lifecycleCases {
		if tc.bad >= 0 {
			continue
		}
		run := NewRun(Config{})
		started, _ := Make(RunStarted, KV{"threadId", "th"}, KV{"runId", "r"})
		stored := []*Event{started}
		store := func(evs ...*Event) {
			for _, ev := range evs {
				stored = append(stored, ev)
				run.Stored(ev)
			}
		}
		run.Stored(started)
		for _, ev := range parseAll(t, tc.events) {
			out, err := run.Accept(ev, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			store(out...)
		}
		store(run.Finish()...)
		fin, _ := Make(RunFinished, KV{"threadId", "th"}, KV{"runId", "r"})
		store(fin)
		for k := 1; k <= len(stored); k++ {
			var seq []json.RawMessage
			for _, ev := range append(ResumePrefix(stored[:k], Config{}), stored[k:]...) {
				seq = append(seq, ev.Raw)
			}
			cases = append(cases, seq)
			names = append(names, fmt.Sprintf("%s, resumed after event %d", tc.name, k))
		}
	}
	out := verifyEvents(t, dir, cases)
	var results []struct {
		Bad   int    `json:"bad"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("results %s: %v", out, err)
	}
	for i, r := range results {
		if r.Bad >= 0 {
			t.Errorf("%s: the verifier refused event %d: %s\n%s", names[i], r.Bad, r.Error, cases[i])
		}
	}
	t.Logf("%d resumed streams accepted", len(cases))
}
