package operations_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/testkit"
)

// frame is one SSE frame of the AG-UI endpoint: its id ("" without an id
// line) and its data.
type frame struct{ ID, Data string }

func (f frame) String() string {
	if f.ID == "" {
		return "-: " + f.Data
	}
	return f.ID + ": " + f.Data
}

// aguiStream is an open AG-UI event stream.
type aguiStream struct {
	t      testing.TB
	resp   *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// runInput is a RunAgentInput for runID whose forwardedProps are the test
// agent's input.
func runInput(runID string, state any, props map[string]any) map[string]any {
	return map[string]any{
		"threadId": "thread-1", "runId": runID, "state": state, "messages": []any{},
		"tools": []any{}, "context": []any{}, "forwardedProps": props,
	}
}

// postAGUI posts body to the AG-UI endpoint path with headers.
func postAGUI(t testing.TB, n *testkit.Node, path, tok string, body any, headers map[string]string) *aguiStream {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.HTTP+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("POST %s: %v", path, err)
	}
	s := &aguiStream{t: t, resp: resp, rd: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *aguiStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next reads the next frame; ok is false at the end of the stream.
func (s *aguiStream) next() (f frame, ok bool) {
	s.t.Helper()
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			if line != "" || f != (frame{}) {
				s.t.Fatalf("stream ended inside a frame: %q", line)
			}
			return f, false
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f != (frame{}) {
				return f, true
			}
		case strings.HasPrefix(line, ": "): // a comment
		case strings.HasPrefix(line, "id: "):
			f.ID = line[4:]
		case strings.HasPrefix(line, "data: "):
			f.Data = line[6:]
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// all reads every frame to the end of the stream.
func (s *aguiStream) all() []frame {
	s.t.Helper()
	var out []frame
	for {
		f, ok := s.next()
		if !ok {
			return out
		}
		out = append(out, f)
	}
}

// until reads frames up to and including the first whose data contains sub.
func (s *aguiStream) until(sub string) []frame {
	s.t.Helper()
	var out []frame
	for {
		f, ok := s.next()
		if !ok {
			s.t.Fatalf("stream ended before %q; got %v", sub, out)
		}
		out = append(out, f)
		if strings.Contains(f.Data, sub) {
			return out
		}
	}
}

func wantFrames(t testing.TB, got []frame, want ...string) {
	t.Helper()
	g := make([]string, len(got))
	for i, f := range got {
		g[i] = f.String()
	}
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames\n got:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
}

// A run through the AG-UI endpoint: RUN_STARTED, the initial state, the
// agent's events with their seqs as ids (progress and logs are not AG-UI
// and are skipped), RUN_FINISHED with the result. Posting the runId again
// re-attaches to the ended run and streams the same frames: the agent does
// not run twice.
func TestAGUIEndpointRun(t *testing.T) {
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	script := []any{
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hi"},
		map[string]any{"log": "not for AG-UI"},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
		map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "replace", "path": "/n", "value": 1}}},
		map[string]any{"result": map[string]any{"ok": true}},
	}
	in := runInput("run-1", map[string]any{"n": 0}, map[string]any{"script": script})
	want := []string{
		`1: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-1"}`,
		`2: {"type":"STATE_SNAPSHOT","snapshot":{"n":0}}`,
		`3: {"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`4: {"delta":"Hi","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
		`6: {"messageId":"m1","type":"TEXT_MESSAGE_END"}`,
		`7: {"delta":[{"op":"replace","path":"/n","value":1}],"type":"STATE_DELTA"}`,
		`8: {"type":"RUN_FINISHED","threadId":"thread-1","runId":"run-1","result":{"ok":true}}`,
	}
	s := postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil)
	if s.resp.StatusCode != http.StatusOK || s.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	wantFrames(t, s.all(), want...)
	// Again: the same run, not a second one.
	wantFrames(t, postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil).all(), want...)
	_, list := testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations?agent_id=tests", tok, nil)
	if ops, _ := list["operations"].([]any); len(ops) != 1 {
		t.Fatalf("operations = %v", list)
	}
	// The operation's own watchers see the agui_events with the same seqs.
	c := guidance(t, n, "alice")
	c.Send(map[string]any{"type": "subscribe_operation", "operation_id": "run-1", "after_seq": 1})
	c.Expect("operation_subscribed")
	_, raw, _ := readOp(t, c, "run-1")
	if got := compact(t, raw[0]); got != `{"event":{"snapshot":{"n":0},"type":"STATE_SNAPSHOT"},"operation_id":"run-1","seq":2,"type":"agui_event"}` {
		t.Fatalf("first event = %s", got)
	}
}

// Closing the stream only detaches; posting the runId again with
// Last-Event-ID resumes in the middle of the message: the starts of what is
// open (without ids), then exactly the events after that id. Stop stops it,
// and the stream ends with the open message closed and RUN_ERROR.
func TestAGUIEndpointResumeAndStop(t *testing.T) {
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	dir, open := gate(t)
	script := []any{
		map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hel"},
		map[string]any{"_wait": "one"},
		map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "lo"},
		map[string]any{"_wait": "two"},
		map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m1"},
	}
	in := runInput("run-r", nil, map[string]any{"script": script, "gate": dir})
	s := postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, nil)
	wantFrames(t, s.until("Hel"),
		`1: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-r"}`,
		`2: {"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`3: {"delta":"Hel","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
	)
	s.close() // detaches only
	open("one")
	s = postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, map[string]string{"Last-Event-ID": "3"})
	wantFrames(t, s.until(`"lo"`),
		`-: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-r"}`,
		`-: {"type":"STATE_SNAPSHOT","snapshot":{}}`,
		`-: {"messageId":"m1","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`4: {"delta":"lo","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}`,
	)
	// Another user may neither watch nor stop it.
	if st, body := testkit.Do(t, http.MethodPost, n.HTTP+"/ag-ui/agents/tests/stop/run-r", testkit.Token(t, "mallory"), nil); st != http.StatusForbidden || body["error"] != "forbidden" {
		t.Fatalf("stop by another user: %d %v", st, body)
	}
	st, body := testkit.Do(t, http.MethodPost, n.HTTP+"/ag-ui/agents/tests/stop/run-r", tok, nil)
	if st != http.StatusAccepted || compact(t, body) != `{"runId":"run-r","status":"cancel_requested"}` {
		t.Fatalf("stop: %d %v", st, body)
	}
	wantFrames(t, s.all(),
		`5: {"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
		`6: {"type":"RUN_ERROR","message":"cancelled","code":"cancelled"}`,
	)
	// Resuming after the final event gives the prefix ending with it again.
	s = postAGUI(t, n, "/ag-ui/agents/tests/agui", tok, in, map[string]string{"Last-Event-ID": "6"})
	wantFrames(t, s.all(),
		`-: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-r"}`,
		`-: {"type":"STATE_SNAPSHOT","snapshot":{}}`,
		`-: {"type":"RUN_ERROR","message":"cancelled","code":"cancelled"}`,
	)
}

// Errors before the stream are JSON bodies with an HTTP status.
func TestAGUIEndpointErrors(t *testing.T) {
	cfg := opsConfig(t)
	cfg.MaxAGUIInput = 4096
	cfg.AllowedOrigins = []string{"https://ui.example"}
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "alice")
	in := runInput("run-e", nil, map[string]any{"script": []any{}})
	post := func(path, tok string, body any, headers map[string]string) (int, string) {
		s := postAGUI(t, n, path, tok, body, headers)
		var b bytes.Buffer
		_, _ = b.ReadFrom(s.rd)
		return s.resp.StatusCode, strings.TrimSpace(b.String())
	}
	for _, tc := range []struct {
		name, path, tok string
		body            any
		headers         map[string]string
		status          int
		want            string
	}{
		{"no token", "/ag-ui/agents/tests/agui", "", in, nil, 401,
			`{"error":"missing_token","message":"a token is required: send it as Authorization: Bearer \u003ctoken\u003e"}`},
		{"unknown agent", "/ag-ui/agents/nobody", tok, in, nil, 404, `{"error":"unknown_agent","message":"no agent \"nobody\""}`},
		{"unknown type", "/ag-ui/agents/tests/nope", tok, in, nil, 404, `{"error":"unknown_operation_type","message":"agent tests has no operation type \"nope\""}`},
		{"several types", "/ag-ui/agents/tests", tok, in, nil, 404,
			`{"error":"unknown_operation_type","message":"agent tests has 16 operation types; post to /ag-ui/agents/tests/{operation_type}"}`},
		{"not a RunAgentInput", "/ag-ui/agents/tests/agui", tok, map[string]any{"runId": "x"}, nil, 400,
			`{"error":"bad_request","message":"the body must be a RunAgentInput: a JSON object with threadId and runId"}`},
		{"bad runId", "/ag-ui/agents/tests/agui", tok, runInput("no spaces", nil, nil), nil, 400,
			`{"error":"invalid_operation_id","message":"runId must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"}`},
		{"too large", "/ag-ui/agents/tests/agui", tok, runInput("big", nil, map[string]any{"pad": strings.Repeat("x", 5000)}), nil, 413,
			`{"error":"input_too_large","message":"the RunAgentInput is over 4096 bytes (--max-agui-input)"}`},
		{"bad Last-Event-ID", "/ag-ui/agents/tests/agui", tok, in, map[string]string{"Last-Event-ID": "x"}, 400,
			`{"error":"bad_request","message":"Last-Event-ID must be an event id of the run"}`},
	} {
		if st, body := post(tc.path, tc.tok, tc.body, tc.headers); st != tc.status || body != tc.want {
			t.Errorf("%s: %d %s\nwant %d %s", tc.name, st, body, tc.status, tc.want)
		}
	}
	// A run that exists: another user's is forbidden, another type is a
	// conflict, a position beyond its end is refused.
	if st, _ := post("/ag-ui/agents/tests/agui", tok, in, nil); st != 200 {
		t.Fatalf("run: %d", st)
	}
	if st, body := post("/ag-ui/agents/tests/agui", testkit.Token(t, "mallory"), in, nil); st != 403 || body != `{"error":"forbidden","message":"run run-e belongs to another user"}` {
		t.Errorf("another user's run: %d %s", st, body)
	}
	if st, body := post("/ag-ui/agents/tests/steps", tok, in, nil); st != 409 || body != `{"error":"operation_exists","message":"run run-e exists and is an operation agui of agent tests"}` {
		t.Errorf("another type: %d %s", st, body)
	}
	if st, body := post("/ag-ui/agents/tests/agui", tok, in, map[string]string{"Last-Event-ID": "99"}); st != 400 || body != `{"error":"bad_request","message":"Last-Event-ID 99 is beyond the run's last event 2"}` {
		t.Errorf("beyond the end: %d %s", st, body)
	}

	// CORS: an allowed origin gets its preflight and the headers; another
	// gets neither.
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, n.HTTP+"/ag-ui/agents/tests/agui", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := preflight("https://ui.example"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" ||
		r.Header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, Accept, Last-Event-ID" {
		t.Errorf("preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := preflight("https://evil.example"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.StatusCode, r.Header)
	}
	s := postAGUI(t, n, "/ag-ui/agents/tests/agui", "", in, map[string]string{"Origin": "https://ui.example"})
	if s.resp.StatusCode != 401 || s.resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" {
		t.Errorf("401 to an allowed origin: %d %v", s.resp.StatusCode, s.resp.Header)
	}

	// GET /ag-ui/info lists the agents and where to post.
	st, info := testkit.Do(t, http.MethodGet, n.HTTP+"/ag-ui/info", tok, nil)
	agents, _ := info["agents"].([]any)
	if st != 200 || len(agents) != 3 {
		t.Fatalf("info: %d %v", st, info)
	}
	if got := compact(t, agents[0]); !strings.HasPrefix(got, `{"agent_id":"agent_456","kind":"command","operations":["execute_workflow"],"urls":["/ag-ui/agents/agent_456","/ag-ui/agents/agent_456/execute_workflow"]}`) {
		t.Errorf("info agent = %s", got)
	}
	if st, _ := testkit.Do(t, http.MethodGet, n.HTTP+"/ag-ui/info", "", nil); st != 401 {
		t.Errorf("info without a token: %d", st)
	}
}

// A remote worker's agent through the AG-UI endpoint: the worker gets the
// RunAgentInput as its input, and its events are the stream.
func TestAGUIEndpointWorker(t *testing.T) {
	n := startNode(t)
	w := workerConn(t, n, "remote-chat", "chat")
	tok := testkit.Token(t, "alice")
	in := runInput("run-w", map[string]any{"k": "v"}, map[string]any{"x": 1})
	s := postAGUI(t, n, "/ag-ui/agents/remote-chat", tok, in, nil)
	run := w.Expect("run")
	if got := compact(t, run["input"]); got != compact(t, in) || run["operation_id"] != "run-w" || run["operation_type"] != "chat" {
		t.Fatalf("run = %v", run)
	}
	for _, e := range []map[string]any{
		{"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"},
		// One delta: how several merge depends on timing (see
		// TestAGUIWorker).
		{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "ab"},
		{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "add", "path": "/k2", "value": 2}}},
	} {
		w.Send(map[string]any{"type": "event", "operation_id": "run-w", "event": e})
	}
	w.Send(map[string]any{"type": "failed", "operation_id": "run-w", "code": "quota_exceeded", "message": "out of tokens"})
	wantFrames(t, s.all(),
		`1: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-w"}`,
		`2: {"type":"STATE_SNAPSHOT","snapshot":{"k":"v"}}`,
		`3: {"messageId":"m","role":"assistant","type":"TEXT_MESSAGE_START"}`,
		`4: {"delta":"ab","messageId":"m","type":"TEXT_MESSAGE_CONTENT"}`,
		`5: {"delta":[{"op":"add","path":"/k2","value":2}],"type":"STATE_DELTA"}`,
		`6: {"type":"TEXT_MESSAGE_END","messageId":"m"}`,
		`7: {"type":"RUN_ERROR","message":"out of tokens","code":"quota_exceeded"}`,
	)
}
