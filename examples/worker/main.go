// Command worker is an example remote agent for Tether: it connects to
// /ws/agent-worker, registers agent "remote-summarizer" with operation types
// "summarize" and "chat", and runs each operation it is given. summarize
// reports progress, a log line and a result; chat is an AG-UI agent (see
// docs/ag-ui.md): it asks for approval (an input request), then streams its
// answer as AG-UI text events and updates its state. It stops an operation
// when Tether sends cancel, and reconnects with backoff when the connection
// drops.
//
// It uses nothing of Tether's own code: the wire protocol is plain JSON
// over WebSocket (see docs/agents.md), so a worker in any language looks
// like this one.
//
//	tether token --sub worker-1 --roles agent > worker.token
//	go run ./examples/worker --url ws://localhost:8000/ws/agent-worker --token "$(cat worker.token)"
//
// Then start an operation from a UI or backend:
//
//	{"type":"start_operation","agent_id":"remote-summarizer","operation_type":"summarize","input":{"text":"hello tether"}}
//
// or run chat from any AG-UI client: POST /ag-ui/agents/remote-summarizer/chat.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// message is every field of the messages this worker sends and receives.
type message struct {
	Type          string          `json:"type"`
	ID            string          `json:"id,omitempty"`
	AgentID       string          `json:"agent_id,omitempty"`
	Operations    []string        `json:"operations,omitempty"`
	OperationID   string          `json:"operation_id,omitempty"`
	OperationType string          `json:"operation_type,omitempty"`
	Input         json.RawMessage `json:"input,omitempty"`
	Progress      *float64        `json:"progress,omitempty"`
	Step          string          `json:"step,omitempty"`
	Message       string          `json:"message,omitempty"`
	Result        any             `json:"result,omitempty"`
	Code          string          `json:"code,omitempty"`
	// Event is an AG-UI event (type "event").
	Event any `json:"event,omitempty"`
	// RequestID, Prompt and Schema are an input request (type
	// "input_request"); RequestID, Status and Value its answer ("input").
	RequestID string          `json:"request_id,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	Schema    any             `json:"schema,omitempty"`
	Status    string          `json:"status,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
}

func main() {
	url := flag.String("url", envOr("TETHER_URL", "ws://localhost:8000/ws/agent-worker"), "Tether's worker endpoint")
	token := flag.String("token", os.Getenv("TETHER_TOKEN"), "a token with the agent role")
	agent := flag.String("agent", "remote-summarizer", "agent id to register")
	step := flag.Duration("step", 500*time.Millisecond, "pause between progress steps")
	flag.Parse()
	if *token == "" {
		log.Fatal("a token with the agent role is required: --token or TETHER_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	backoff := time.Second
	for ctx.Err() == nil {
		err := serve(ctx, *url, *token, *agent, *step)
		if ctx.Err() != nil {
			return
		}
		log.Printf("disconnected: %v; reconnecting in %s", err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// worker is one connection to Tether and the operations running on it.
type worker struct {
	c    *websocket.Conn
	step time.Duration

	wmu sync.Mutex // one writer at a time

	mu  sync.Mutex
	ops map[string]context.CancelFunc
	// answers delivers the answers to the operations' input requests.
	answers map[string]chan message
}

// serve runs one connection until it drops. Operations running on it are
// abandoned: Tether has already failed them as agent_disconnected.
func serve(ctx context.Context, url, token, agent string, step time.Duration) error {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.CloseNow()
	w := &worker{c: c, step: step, ops: map[string]context.CancelFunc{}, answers: map[string]chan message{}}
	defer w.cancelAll()
	if err := w.send(ctx, message{Type: "register", ID: "reg", AgentID: agent, Operations: []string{"summarize", "chat"}}); err != nil {
		return err
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		switch m.Type {
		case "registered":
			log.Printf("registered %s: %v", m.AgentID, m.Operations)
		case "run":
			opCtx, cancel := context.WithCancel(ctx)
			w.mu.Lock()
			w.ops[m.OperationID] = cancel
			w.answers[m.OperationID] = make(chan message, 1)
			w.mu.Unlock()
			if m.OperationType == "chat" {
				go w.chat(opCtx, m)
			} else {
				go w.run(opCtx, m)
			}
		case "input":
			w.mu.Lock()
			if ch := w.answers[m.OperationID]; ch != nil {
				select {
				case ch <- m:
				default: // one request at a time: Tether answers each once
				}
			}
			w.mu.Unlock()
		case "cancel":
			w.mu.Lock()
			if cancel := w.ops[m.OperationID]; cancel != nil {
				cancel()
			}
			w.mu.Unlock()
		case "error":
			log.Printf("error from Tether: %s", data)
		}
	}
}

func (w *worker) cancelAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.ops {
		cancel()
	}
}

func (w *worker) send(ctx context.Context, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, b)
}

// done forgets operation id.
func (w *worker) done(id string) {
	w.mu.Lock()
	delete(w.ops, id)
	delete(w.answers, id)
	w.mu.Unlock()
}

// chat performs one chat operation, an AG-UI agent: its input is AG-UI's
// RunAgentInput. It asks whether to answer, then streams the answer word by
// word as AG-UI text events and records it in its state.
func (w *worker) chat(ctx context.Context, m message) {
	id := m.OperationID
	defer w.done(id)
	out := context.WithoutCancel(ctx)
	event := func(ev map[string]any) error { return w.send(out, message{Type: "event", OperationID: id, Event: ev}) }
	var in struct {
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(m.Input, &in)
	question := "nothing"
	for _, msg := range in.Messages {
		if s, ok := msg.Content.(string); ok && msg.Role == "user" {
			question = s
		}
	}
	if event(map[string]any{"type": "STATE_SNAPSHOT", "snapshot": map[string]any{"question": question, "answered": false}}) != nil {
		return
	}
	// Ask first: Tether's input request; the operation waits for its owner.
	if w.send(out, message{Type: "input_request", OperationID: id, RequestID: "approve", Prompt: fmt.Sprintf("Answer %q?", question), Schema: map[string]any{"type": "boolean"}}) != nil {
		return
	}
	w.mu.Lock()
	answers := w.answers[id]
	w.mu.Unlock()
	var answer message
	select {
	case answer = <-answers:
	case <-ctx.Done():
		_ = w.send(out, message{Type: "cancelled", OperationID: id, Message: "stopped while waiting for approval"})
		return
	}
	text := "I was asked not to answer."
	if string(answer.Value) == "true" {
		text = "You asked: " + question
	}
	_ = event(map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "answer-" + id, "role": "assistant"})
	for i, word := range strings.Fields(text) {
		if i > 0 {
			word = " " + word
		}
		if event(map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "answer-" + id, "delta": word}) != nil {
			return
		}
		select {
		case <-ctx.Done():
			// Tether closes the open message before the final event.
			_ = w.send(out, message{Type: "cancelled", OperationID: id})
			return
		case <-time.After(w.step / 10):
		}
	}
	_ = event(map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "answer-" + id})
	_ = event(map[string]any{"type": "STATE_DELTA", "delta": []any{map[string]any{"op": "replace", "path": "/answered", "value": true}}})
	_ = w.send(out, message{Type: "completed", OperationID: id, Result: map[string]any{"text": text}})
}

// run performs one summarize operation: it counts the words of input.text.
func (w *worker) run(ctx context.Context, m message) {
	id := m.OperationID
	defer w.done(id)
	// Events go out with the connection's context, not the operation's, so
	// that "cancelled" can still be sent after a cancel.
	out := context.WithoutCancel(ctx)
	var in struct {
		Text string `json:"text"`
	}
	if len(m.Input) > 0 && string(m.Input) != "null" {
		if err := json.Unmarshal(m.Input, &in); err != nil {
			_ = w.send(out, message{Type: "failed", OperationID: id, Code: "bad_input", Message: "input must be {\"text\": string}"})
			return
		}
	}
	steps := []string{"read", "count", "summarize"}
	for i, s := range steps {
		p := float64(i) * 100 / float64(len(steps))
		if err := w.send(out, message{Type: "progress", OperationID: id, Progress: &p, Step: s, Message: "step " + s}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			_ = w.send(out, message{Type: "cancelled", OperationID: id, Message: "stopped at step " + s})
			return
		case <-time.After(w.step):
		}
	}
	words := len(strings.Fields(in.Text))
	_ = w.send(out, message{Type: "log", OperationID: id, Message: fmt.Sprintf("counted %d words", words)})
	err := w.send(out, message{Type: "completed", OperationID: id, Result: map[string]any{"words": words, "bytes": len(in.Text)}})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Printf("operation %s: %v", id, err)
	}
}
