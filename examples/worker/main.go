// Command worker is an example remote agent for Tether: it connects to
// /ws/agent-worker, registers agent "remote-summarizer" with operation types
// "summarize" and "chat", and runs each operation it is given. summarize
// reports progress, a log line and a result; chat is an AG-UI agent (see
// docs/ag-ui.md): it asks for approval (an input request), then streams its
// answer as AG-UI text events and updates its state. It stops an operation
// when Tether sends cancel.
//
// When its connection drops (a network break, the node's restart) it
// reconnects with backoff, to the next of its URLs, and reclaims the
// operations it was running: they go on where they were, their events held
// back meanwhile, provided it is back within Tether's --worker-grace.
//
// It uses nothing of Tether's own code: the wire protocol is plain JSON
// over WebSocket (see docs/agents.md), so a worker in any language looks
// like this one.
//
//	tether token --sub worker-1 --roles agent > worker.token
//	go run ./examples/worker --url ws://localhost:8000/ws/agent-worker --token "$(cat worker.token)"
//
// With several nodes, list them: --url ws://a:8000/ws/agent-worker,ws://b:8000/ws/agent-worker.
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
	// LastSeq is, in reclaimed, the seq of the last event Tether stored.
	LastSeq uint64 `json:"last_seq,omitempty"`
}

func main() {
	urls := flag.String("url", envOr("TETHER_URL", "ws://localhost:8000/ws/agent-worker"), "Tether's worker endpoint; a comma-separated list is tried in turn")
	token := flag.String("token", os.Getenv("TETHER_TOKEN"), "a token with the agent role")
	agent := flag.String("agent", "remote-summarizer", "agent id to register")
	step := flag.Duration("step", 500*time.Millisecond, "pause between progress steps")
	flag.Parse()
	if *token == "" {
		log.Fatal("a token with the agent role is required: --token or TETHER_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	newWorker(*token, *agent, *step).run(ctx, strings.Split(*urls, ","))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Reconnecting: the first wait, and the longest.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// errLost ends an operation that Tether no longer lets this worker run (a
// reclaim refused: its grace passed, or it ended meanwhile).
var errLost = errors.New("the operation was lost: Tether refused to give it back")

// worker is the agent: its operations outlive its connections.
type worker struct {
	token, agent string
	step         time.Duration
	// life ends when run returns: senders stop waiting for a connection.
	life context.Context

	wmu sync.Mutex // one writer at a time

	mu sync.Mutex
	c  *websocket.Conn // nil while disconnected
	// changed is closed, and replaced, when c or an operation's state
	// changes: senders waiting for their operation to be held again wake.
	changed chan struct{}
	ops     map[string]*op
}

// op is one operation this worker runs.
type op struct {
	cancel context.CancelFunc
	// answers delivers the answers to its input requests.
	answers chan message
	// held: the current connection holds it (it came with run, or was
	// reclaimed); lost: Tether refused to give it back.
	held, lost bool
	// retries counts the reclaims refused because another connection held
	// it: after maxReclaimRetries, it belongs to someone else.
	retries int
}

// maxReclaimRetries outlasts Tether's --idle-timeout (60 s by default),
// within which it notices that the connection the worker lost is gone, at
// one reclaim a second.
const maxReclaimRetries = 90

func newWorker(token, agent string, step time.Duration) *worker {
	return &worker{token: token, agent: agent, step: step, life: context.Background(), changed: make(chan struct{}), ops: map[string]*op{}}
}

// changedLocked wakes the senders waiting for a change. w.mu must be held.
func (w *worker) changedLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// run connects to each URL in turn until ctx ends, waiting longer after
// each failure (from minBackoff, doubling, to maxBackoff; back to the
// start once a connection registered).
func (w *worker) run(ctx context.Context, urls []string) {
	w.life = ctx
	defer w.cancelAll()
	backoff := minBackoff
	for i := 0; ctx.Err() == nil; i++ {
		url := strings.TrimSpace(urls[i%len(urls)])
		registered, err := w.serve(ctx, url)
		if ctx.Err() != nil {
			return
		}
		if registered {
			backoff = minBackoff
		}
		log.Printf("disconnected from %s: %v; reconnecting in %s", url, err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve runs one connection until it drops: it registers, reclaims the
// operations it was running and takes new ones. It reports whether it got
// as far as registering.
func (w *worker) serve(ctx context.Context, url string) (registered bool, err error) {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + w.token}},
	})
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.CloseNow()
	defer w.detach(c)
	if err := w.write(ctx, c, message{Type: "register", ID: "reg", AgentID: w.agent, Operations: []string{"summarize", "chat"}}); err != nil {
		return false, err
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return registered, err
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		switch m.Type {
		case "registered":
			registered = true
			log.Printf("registered %s on %s: %v", m.AgentID, url, m.Operations)
			w.attach(c)
			w.reclaimAll(ctx, c)
		case "reclaimed":
			log.Printf("reclaimed %s: Tether stored its events up to seq %v", m.OperationID, m.LastSeq)
			w.setHeld(m.OperationID, true)
		case "run":
			opCtx, cancel := context.WithCancel(ctx)
			w.mu.Lock()
			w.ops[m.OperationID] = &op{cancel: cancel, answers: make(chan message, 1), held: true}
			w.mu.Unlock()
			if m.OperationType == "chat" {
				go w.chat(opCtx, m)
			} else {
				go w.summarize(opCtx, m)
			}
		case "input":
			w.mu.Lock()
			if o := w.ops[m.OperationID]; o != nil {
				select {
				case o.answers <- m:
				default: // one request at a time: Tether answers each once
				}
			}
			w.mu.Unlock()
		case "cancel":
			w.mu.Lock()
			if o := w.ops[m.OperationID]; o != nil {
				o.cancel()
			}
			w.mu.Unlock()
		case "error":
			w.refused(ctx, c, m, data)
		}
	}
}

// reclaimAll asks Tether for every operation this worker runs: they were
// on a connection that ended.
func (w *worker) reclaimAll(ctx context.Context, c *websocket.Conn) {
	w.mu.Lock()
	var ids []string
	for id, o := range w.ops {
		if !o.held && !o.lost {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	for _, id := range ids {
		_ = w.write(ctx, c, message{Type: "reclaim", ID: "reclaim:" + id, OperationID: id})
	}
}

// refused handles an error reply. A refused reclaim loses the operation,
// unless another connection still holds it (Tether has not yet noticed
// that the old one is gone) or the node failed to answer, when it is asked
// again a moment later, or the node is draining, when the worker moves to
// the next URL.
func (w *worker) refused(ctx context.Context, c *websocket.Conn, m message, data []byte) {
	id, ok := strings.CutPrefix(m.ID, "reclaim:")
	if !ok {
		log.Printf("error from Tether: %s", data)
		return
	}
	switch m.Code {
	case "operation_held", "internal_error":
		w.mu.Lock()
		o := w.ops[id]
		again := o != nil && o.retries < maxReclaimRetries
		if again {
			o.retries++
		}
		w.mu.Unlock()
		if again {
			time.AfterFunc(time.Second, func() {
				_ = w.write(ctx, c, message{Type: "reclaim", ID: m.ID, OperationID: id})
			})
			return
		}
	case "node_draining":
		// This node is going away: reconnect to the next URL and reclaim
		// there.
		_ = c.Close(websocket.StatusNormalClosure, "reclaiming elsewhere")
		return
	}
	log.Printf("operation %s could not be reclaimed (%s): %s", id, m.Code, m.Message)
	w.mu.Lock()
	if o := w.ops[id]; o != nil {
		o.lost = true
		o.cancel()
	}
	w.changedLocked()
	w.mu.Unlock()
}

// attach makes c the connection; detach forgets it once it ended: no
// operation is held until reclaimed on the next.
func (w *worker) attach(c *websocket.Conn) {
	w.mu.Lock()
	w.c = c
	w.changedLocked()
	w.mu.Unlock()
}

func (w *worker) detach(c *websocket.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.c != c {
		return
	}
	w.c = nil
	for _, o := range w.ops {
		o.held = false
	}
	w.changedLocked()
}

func (w *worker) setHeld(id string, held bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if o := w.ops[id]; o != nil {
		o.held = held
	}
	w.changedLocked()
}

func (w *worker) cancelAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.ops {
		o.cancel()
	}
}

// write sends m on c.
func (w *worker) write(ctx context.Context, c *websocket.Conn, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// send sends m, an event of operation m.OperationID, once a connection
// holds the operation: while there is none, or the operation is not yet
// reclaimed on it, it waits, so that nothing the operation does is lost
// to a reconnect (a message being written when the connection broke may
// or may not have reached Tether). It fails when ctx ends or the
// operation is lost.
func (w *worker) send(ctx context.Context, m message) error {
	for {
		w.mu.Lock()
		c, o, changed := w.c, w.ops[m.OperationID], w.changed
		lost := o == nil || o.lost
		held := !lost && o.held
		w.mu.Unlock()
		if lost {
			return errLost
		}
		if c != nil && held {
			if err := w.write(ctx, c, m); err == nil || ctx.Err() != nil {
				return err
			}
			// The connection broke: wait for the next to reclaim it.
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.life.Done():
			return w.life.Err()
		}
	}
}

// done forgets operation id.
func (w *worker) done(id string) {
	w.mu.Lock()
	delete(w.ops, id)
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
	answers := w.ops[id].answers
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

// summarize performs one summarize operation: it counts the words of
// input.text.
func (w *worker) summarize(ctx context.Context, m message) {
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
