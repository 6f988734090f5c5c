package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startWorker runs the example worker on urls until the test ends.
func startWorker(t *testing.T, step time.Duration, urls ...string) {
	w := newWorker(testkit.Token(t, "worker-1", "agent"), "remote-summarizer", step)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx, urls)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// The example worker serves a real operation end to end.
func TestExampleWorker(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	startWorker(t, 10*time.Millisecond, n.WS+"/ws/agent-worker")
	ui := testkit.Dial(t, n.WS+"/ws/agent-guidance", testkit.Bearer(testkit.Token(t, "alice")))
	// The worker registers asynchronously: until then the agent is unknown.
	var started map[string]any
	testkit.Eventually(t, "the worker to register", func() bool {
		ui.Send(map[string]any{"type": "start_operation", "agent_id": "remote-summarizer", "operation_type": "summarize", "input": map[string]any{"text": "hello tether world"}})
		started = ui.Read()
		return started["type"] == "operation_started"
	})
	var types []string
	var last map[string]any
	for {
		last = ui.Read()
		types = append(types, last["type"].(string))
		if last["type"] == "operation_completed" || last["type"] == "operation_failed" {
			break
		}
	}
	want := "[operation_progress operation_progress operation_progress operation_log operation_completed]"
	if got := fmt.Sprint(types); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if res, _ := last["result"].(map[string]any); res["words"] != float64(3) || last["seq"] != float64(6) {
		t.Fatalf("completed = %v", last)
	}
}

// The example worker's chat operation, run through the AG-UI endpoint: it
// asks (a CUSTOM tether.input_request in the stream), and once answered
// through the REST API streams its answer.
func TestExampleWorkerChat(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	startWorker(t, 10*time.Millisecond, n.WS+"/ws/agent-worker")
	tok := testkit.Token(t, "alice")
	testkit.Eventually(t, "the worker to register", func() bool {
		st, body := testkit.Do(t, http.MethodGet, n.HTTP+"/ag-ui/info", tok, nil)
		return st == 200 && strings.Contains(fmt.Sprint(body), "remote-summarizer/chat")
	})
	body := `{"threadId":"t1","runId":"chat-1","messages":[{"id":"u1","role":"user","content":"hello tether"}]}`
	rctx, rcancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, n.HTTP+"/ag-ui/agents/remote-summarizer/chat", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var events []string
	answered := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		events = append(events, data)
		if strings.Contains(data, "tether.input_request") && !answered {
			answered = true
			st, _ := testkit.Do(t, http.MethodPost, n.HTTP+"/api/operations/chat-1/input", tok, strings.NewReader(`{"request_id":"approve","value":true}`))
			if st != 200 {
				t.Fatalf("answer: %d", st)
			}
		}
	}
	if events[0] != `{"type":"RUN_STARTED","threadId":"t1","runId":"chat-1"}` ||
		events[1] != `{"snapshot":{"answered":false,"question":"hello tether"},"type":"STATE_SNAPSHOT"}` {
		t.Fatalf("events %v", events)
	}
	var text strings.Builder
	for _, e := range events {
		var ev map[string]any
		_ = json.Unmarshal([]byte(e), &ev)
		if ev["type"] == "TEXT_MESSAGE_CONTENT" {
			text.WriteString(ev["delta"].(string))
		}
	}
	if text.String() != "You asked: hello tether" {
		t.Fatalf("text %q in %v", text.String(), events)
	}
	if last := events[len(events)-1]; last != `{"type":"RUN_FINISHED","threadId":"t1","runId":"chat-1","result":{"text":"You asked: hello tether"}}` {
		t.Fatalf("last = %s", last)
	}
	if !strings.Contains(events[2], `"name":"tether.input_request"`) || !strings.Contains(events[3], `"name":"tether.input_answered"`) {
		t.Fatalf("events %v", events)
	}
}

// The node the example worker is connected to shuts down mid-operation:
// the worker reconnects to the next URL, another node, reclaims the
// operation and finishes it, with nothing lost or doubled.
func TestExampleWorkerReclaims(t *testing.T) {
	a, b := testkit.StartTwo(t, testkit.Config(t), testkit.Config(t))

	// On node-b first: the operation runs there.
	startWorker(t, 200*time.Millisecond, b.WS+"/ws/agent-worker", a.WS+"/ws/agent-worker")
	ui := testkit.Dial(t, a.WS+"/ws/agent-guidance", testkit.Bearer(testkit.Token(t, "alice")))
	testkit.Eventually(t, "the worker to register", func() bool {
		ui.Send(map[string]any{"type": "start_operation", "operation_id": "ex-1", "agent_id": "remote-summarizer", "operation_type": "summarize", "input": map[string]any{"text": "hello tether world"}})
		return ui.Read()["type"] == "operation_started"
	})
	var got []string
	for {
		m := ui.Read()
		if m["operation_id"] != "ex-1" {
			continue
		}
		got = append(got, fmt.Sprintf("%v#%v", m["type"], m["seq"]))
		if m["type"] == "operation_progress" && len(got) == 1 {
			b.Stop() // mid-operation
		}
		if m["type"] == "operation_completed" || m["type"] == "operation_failed" {
			if res, _ := m["result"].(map[string]any); res["words"] != float64(3) {
				t.Fatalf("final = %v", m)
			}
			break
		}
	}
	want := "[operation_progress#2 operation_log#3 operation_log#4 operation_progress#5 operation_progress#6 operation_log#7 operation_completed#8]"
	if fmt.Sprint(got) != want {
		t.Fatalf("events %v, want %s", got, want)
	}
}
