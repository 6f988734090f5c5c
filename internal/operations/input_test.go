package operations_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testkit"
)

const (
	tInputRequested = "operation_input_requested"
	tInputAnswered  = "operation_input_answered"
)

// An interactive command agent asks; the operation waits for input; the
// owner answers once over REST (another user may not, a second answer is
// refused), and the agent reads the answer as a line on stdin.
func TestInputCommandAgent(t *testing.T) {
	n := startNode(t)
	c := guidance(t, n, "alice")
	start(t, c, "ask-1", "tests", "ask", nil)
	req := c.Expect(tInputRequested)
	if got := compact(t, withoutTime(req)); got != `{"operation_id":"ask-1","prompt":"Send the email?","request_id":"approve","schema":{"type":"boolean"},"seq":2,"type":"operation_input_requested"}` {
		t.Fatalf("request = %s", got)
	}
	if rec := waitStatus(t, n, "alice", "ask-1", "waiting_input"); rec["last_seq"] != float64(2) {
		t.Fatalf("record = %v", rec)
	}
	answer := func(user, reqID string, value any) (int, string) {
		st, body := testkit.Do(t, http.MethodPost, n.HTTP+"/api/operations/ask-1/input", testkit.Token(t, user),
			strings.NewReader(compact(t, map[string]any{"request_id": reqID, "value": value})))
		return st, compact(t, body)
	}
	if st, body := answer("mallory", "approve", true); st != 403 || body != `{"error":"forbidden","message":"operation ask-1 belongs to another user"}` {
		t.Fatalf("another user: %d %s", st, body)
	}
	if st, body := answer("alice", "nope", true); st != 404 || body != `{"error":"not_found","message":"operation ask-1 has no input request \"nope\""}` {
		t.Fatalf("unknown request: %d %s", st, body)
	}
	if st, body := answer("alice", "approve", true); st != 200 || body != `{"operation_id":"ask-1","request_id":"approve","status":"answered"}` {
		t.Fatalf("answer: %d %s", st, body)
	}
	evs, raw, _ := readOp(t, c, "ask-1")
	wantEvents(t, evs, seqs(3, tInputAnswered, tLog, tCompleted)...)
	if got := compact(t, withoutTime(raw[0])); got != `{"by":"alice","operation_id":"ask-1","request_id":"approve","seq":3,"status":"resolved","type":"operation_input_answered","value":true}` {
		t.Fatalf("answered = %s", got)
	}
	if raw[1]["message"] != `got {"request_id":"approve","status":"resolved","value":true}` || raw[2]["result"] == nil {
		t.Fatalf("events = %v", raw)
	}
	if st, body := answer("alice", "approve", false); st != 404 || !strings.Contains(body, "has already ended") {
		t.Fatalf("after the end: %d %s", st, body)
	}
	waitStatus(t, n, "alice", "ask-1", "completed")
}

func withoutTime(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != "time" {
			out[k] = v
		}
	}
	return out
}

// One answer per request: a second one is already_answered, over the
// WebSocket too; a worker gets its answer as an input message.
func TestInputWorker(t *testing.T) {
	n := startNode(t)
	w := workerConn(t, n, "remote-ask", "ask")
	c := guidance(t, n, "alice")
	start(t, c, "ask-w", "remote-ask", "ask", nil)
	w.Expect("run")
	w.Send(map[string]any{"type": "input_request", "id": "bad", "operation_id": "ask-w", "request_id": "q1"})
	if m := w.Expect("error"); m["id"] != "bad" || m["code"] != "bad_request" {
		t.Fatalf("error = %v", m)
	}
	w.Send(map[string]any{"type": "input_request", "operation_id": "ask-w", "request_id": "q1", "prompt": "Which?"})
	if m := c.Expect(tInputRequested); m["request_id"] != "q1" || m["prompt"] != "Which?" || m["seq"] != float64(2) {
		t.Fatalf("request = %v", m)
	}
	w.Send(map[string]any{"type": "input_request", "id": "dup", "operation_id": "ask-w", "request_id": "q1", "prompt": "Which?"})
	if m := w.Expect("error"); m["id"] != "dup" || m["code"] != "bad_request" || m["message"] != "input request q1 exists already" {
		t.Fatalf("error = %v", m)
	}
	// Answered from a connection that does not watch it, so that replies
	// are the only messages there.
	c2 := guidance(t, n, "alice")
	c2.Send(map[string]any{"type": "answer_input", "id": "a1", "operation_id": "ask-w", "request_id": "q1", "value": map[string]any{"pick": 2}})
	if m := c2.Expect("input_accepted"); m["id"] != "a1" || m["request_id"] != "q1" {
		t.Fatalf("reply = %v", m)
	}
	if m := w.Expect("input"); compact(t, m) != `{"operation_id":"ask-w","request_id":"q1","status":"resolved","type":"input","value":{"pick":2}}` {
		t.Fatalf("input = %v", m)
	}
	expectError(t, c2, map[string]any{"type": "answer_input", "id": "a2", "operation_id": "ask-w", "request_id": "q1", "value": 1}, "already_answered")
	w.Send(map[string]any{"type": "completed", "operation_id": "ask-w"})
	evs, _, _ := readOp(t, c, "ask-w")
	wantEvents(t, evs, seqs(3, tInputAnswered, tCompleted)...)
}

// An unanswered request fails the operation with input_timeout; a
// non-interactive agent's request is refused (it could never read the
// answer).
func TestInputTimeoutAndRefusal(t *testing.T) {
	cfg := opsConfig(t)
	cfg.OperationInputTimeout = 300 * time.Millisecond
	n := testkit.Start(t, cfg, nil)
	c := guidance(t, n, "alice")
	start(t, c, "ask-t", "tests", "ask", nil)
	evs, raw, _ := readOp(t, c, "ask-t")
	wantEvents(t, evs, seqs(2, tInputRequested, tFailed)...)
	if raw[1]["code"] != "input_timeout" || raw[1]["message"] != "input request approve was not answered within 300ms" {
		t.Fatalf("final = %v", raw[1])
	}
	start(t, c, "ask-d", "tests", "ask-deaf", nil)
	evs, raw, _ = readOp(t, c, "ask-d")
	wantEvents(t, evs, seqs(2, tLog, tLog, tFailed)...)
	if raw[0]["message"] != "tether: input request refused (bad_request): this agent cannot receive answers: declare its operation type interactive: true" ||
		raw[1]["message"] != "stdin closed without an answer" || raw[2]["code"] != "exit_status" {
		t.Fatalf("events = %v", raw)
	}
}

// Through the AG-UI endpoint: the request is a CUSTOM event, and a resume
// entry in the RunAgentInput posted for the run answers it.
func TestInputAGUI(t *testing.T) {
	n := startNode(t)
	tok := testkit.Token(t, "alice")
	in := runInput("run-ask", nil, nil)
	s := postAGUI(t, n, "/ag-ui/agents/tests/ask", tok, in, nil)
	wantFrames(t, s.until("tether.input_request"),
		`1: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-ask"}`,
		`2: {"type":"CUSTOM","name":"tether.input_request","value":{"prompt":"Send the email?","requestId":"approve","schema":{"type":"boolean"}}}`,
	)
	s.close()
	in["resume"] = []any{map[string]any{"interruptId": "approve", "status": "resolved", "payload": true}}
	want := []string{
		`-: {"type":"RUN_STARTED","threadId":"thread-1","runId":"run-ask"}`,
		`-: {"type":"STATE_SNAPSHOT","snapshot":{}}`,
		`3: {"type":"CUSTOM","name":"tether.input_answered","value":{"requestId":"approve","status":"resolved","value":true}}`,
		`5: {"type":"RUN_FINISHED","threadId":"thread-1","runId":"run-ask","result":{"request_id":"approve","status":"resolved","value":true}}`,
	}
	wantFrames(t, postAGUI(t, n, "/ag-ui/agents/tests/ask", tok, in, map[string]string{"Last-Event-ID": "2"}).all(), want...)
	// Retried: the answer is not given twice, and the stream is the same.
	wantFrames(t, postAGUI(t, n, "/ag-ui/agents/tests/ask", tok, in, map[string]string{"Last-Event-ID": "2"}).all(), want...)
}

// The list's status filter takes a status, several, or live and ended; an
// operation waiting for input is live, and an unknown status is refused
// rather than matching nothing.
func TestListByStatus(t *testing.T) {
	n := testkit.Start(t, opsConfig(t), nil)
	wr, ui := remoteOp(t, n, n, "runner", "ls-run")
	wa, _ := remoteOp(t, n, n, "asker", "ls-ask")
	wa.Send(map[string]any{"type": "input_request", "operation_id": "ls-ask", "request_id": "q", "prompt": "Go?"})
	waitStatus(t, n, "alice", "ls-ask", "waiting_input")
	wr.Send(map[string]any{"type": "completed", "operation_id": "ls-run"})
	readOp(t, ui, "ls-run")
	waitStatus(t, n, "alice", "ls-run", "completed")
	list := func(query string) (int, string) {
		t.Helper()
		status, body := testkit.Do(t, http.MethodGet, n.HTTP+"/api/operations?status="+query, testkit.Token(t, "alice"), nil)
		if status != 200 {
			return status, compact(t, body)
		}
		var ids []string
		for _, op := range body["operations"].([]any) {
			ids = append(ids, op.(map[string]any)["operation_id"].(string))
		}
		slices.Sort(ids)
		return status, strings.Join(ids, " ")
	}
	for _, tc := range []struct {
		query, want string
		status      int
	}{
		{"", "ls-ask ls-run", 200},
		{"running", "", 200},
		{"waiting_input", "ls-ask", 200},
		{"live", "ls-ask", 200},
		{"ended", "ls-run", 200},
		{"completed,waiting_input", "ls-ask ls-run", 200},
		{"runing", `{"error":"bad_request","message":"unknown status \"runing\": one of running, waiting_input, completed, failed, cancelled, ended, live"}`, 400},
	} {
		if status, got := list(tc.query); status != tc.status || got != tc.want {
			t.Errorf("status=%s: %d %s, want %d %s", tc.query, status, got, tc.status, tc.want)
		}
	}
}
