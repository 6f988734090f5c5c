package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// agentWorker is a remote agent worker (/ws/agent-worker) that the bench
// drives by hand, so that it decides when each operation event is sent.
type agentWorker struct {
	c     *websocket.Conn
	agent string
	e     *env
}

// newAgentWorker connects a worker for a new agent with one operation
// type, "emit".
func (e *env) newAgentWorker(ctx context.Context) (*agentWorker, error) {
	c, err := dial(ctx, e.t.ws+"/ws/agent-worker", e.t.token)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	w := &agentWorker{c: c, agent: fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e9), e: e}
	if err := w.send(ctx, map[string]any{"type": "register", "agent_id": w.agent, "operations": []string{"emit"}}); err != nil {
		c.CloseNow()
		return nil, err
	}
	if _, err := w.await(ctx, "registered", ""); err != nil {
		c.CloseNow()
		return nil, fmt.Errorf("register (the token needs the agent role): %w", err)
	}
	return w, nil
}

func (w *agentWorker) close() { w.c.CloseNow() }

func (w *agentWorker) send(ctx context.Context, v any) error {
	return sendJSON(ctx, w.c, v)
}

// await reads the worker's connection until a message of type typ (for
// operation id, if given) arrives.
func (w *agentWorker) await(ctx context.Context, typ, id string) (map[string]any, error) {
	return awaitType(ctx, w.c, typ, id)
}

// start starts operation id on the worker's agent from a guidance
// connection that then leaves (it would otherwise be one more watcher),
// and waits for the run to reach the worker.
func (w *agentWorker) start(ctx context.Context, e *env, id string) (string, error) {
	g, err := dial(ctx, e.t.ws+"/ws/agent-guidance", e.t.token)
	if err != nil {
		return "", err
	}
	defer g.CloseNow()
	if err := sendJSON(ctx, g, map[string]any{"type": "start_operation", "id": 1, "operation_id": id, "agent_id": w.agent, "operation_type": "emit"}); err != nil {
		return "", err
	}
	if _, err := awaitType(ctx, g, "operation_started", id); err != nil {
		return "", fmt.Errorf("start operation: %w", err)
	}
	if _, err := w.await(ctx, "run", id); err != nil {
		return "", fmt.Errorf("operation run: %w", err)
	}
	return id, nil
}

// complete ends operation id.
func (w *agentWorker) complete(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.send(ctx, map[string]any{"type": "completed", "operation_id": id}); err != nil {
		w.e.logf("complete operation %s: %v", id, err)
	}
}

// sendJSON writes v as one JSON text frame within 10 s.
func sendJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// awaitType reads c until a message of type typ (and operation id, if
// given) arrives, within 30 s; an error or operation_error fails it.
func awaitType(ctx context.Context, c *websocket.Conn, typ, id string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("await %s: %w", typ, err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("await %s: frame %.100q: %w", typ, b, err)
		}
		switch m["type"] {
		case typ:
			if id == "" || m["operation_id"] == id {
				return m, nil
			}
		case "error", "operation_error":
			return nil, fmt.Errorf("await %s: %s: %v", typ, m["code"], m["message"])
		}
	}
}
