package operations

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
)

// MaxWatchesPerConn bounds the operations one connection watches at once.
const MaxWatchesPerConn = 100

// GuidanceEndpoint describes /ws/agent-guidance to the connection layer.
func (s *Service) GuidanceEndpoint() *conn.Endpoint {
	return &conn.Endpoint{
		Name: "agent-guidance",
		KnownTypes: []string{protocol.TypeStartOperation, protocol.TypeCancelOperation,
			protocol.TypeSubscribeOperation, protocol.TypeUnsubscribeOperation, protocol.TypeAnswerInput},
		Open: func(c *conn.Conn) conn.Session {
			return &guidance{svc: s, c: c, watches: map[string]*watching{}}
		},
	}
}

// guidance is one /ws/agent-guidance connection.
type guidance struct {
	svc *Service
	c   *conn.Conn

	mu      sync.Mutex
	closed  bool
	watches map[string]*watching
}

// watching is one operation a connection watches.
type watching struct{ cancel context.CancelFunc }

func (g *guidance) Handle(c *conn.Conn, env protocol.Envelope) {
	ctx, cancel := context.WithTimeout(context.Background(), g.svc.cfg.StartTimeout+storeTimeout)
	defer cancel()
	switch env.Type {
	case protocol.TypeStartOperation:
		var req protocol.StartOperation
		if !g.decode(env, &req) {
			return
		}
		// The owner is whoever starts it; only admins on the REST API may
		// start on someone's behalf.
		req.Owner = ""
		st, err := g.svc.Start(ctx, c.UserID(), req)
		if err != nil {
			g.fail(env, req.OperationID, err)
			return
		}
		ev := st.Event
		ev.ID = env.ID
		c.Send(ev.Type, ev)
		// The reply was seq 1; the watcher takes over from seq 2.
		g.watch(ev.OperationID, &plan{follow: true, from: st.StreamSeq, after: 1})
	case protocol.TypeSubscribeOperation:
		var req protocol.OperationRequest
		if !g.decode(env, &req) {
			return
		}
		p, err := g.svc.planFollow(ctx, c.Claims(), req.OperationID, req.AfterSeq)
		if err != nil {
			g.fail(env, req.OperationID, err)
			return
		}
		g.stopWatch(req.OperationID)
		c.Send(protocol.TypeOperationSubscribed, protocol.OperationSubscribed{
			Type: protocol.TypeOperationSubscribed, ID: env.ID, OperationID: req.OperationID,
			Status: p.status, LastSeq: p.lastSeq, Recovered: p.recovered,
		})
		if !p.recovered {
			c.Send(protocol.TypeOperationState, protocol.OperationState{Type: protocol.TypeOperationState, Operation: p.state()})
			if b := stateSnapshot(&p.rec); b != nil {
				c.SendRaw(protocol.TypeAGUIEvent, b)
			}
		}
		if p.final != nil {
			c.SendRaw(p.final.Type, p.final.Data)
		}
		if p.follow {
			g.watch(req.OperationID, p)
		}
	case protocol.TypeUnsubscribeOperation:
		var req protocol.OperationRequest
		if !g.decode(env, &req) {
			return
		}
		g.stopWatch(req.OperationID)
		c.Send(protocol.TypeOperationUnsubscribed, protocol.OperationReply{Type: protocol.TypeOperationUnsubscribed, ID: env.ID, OperationID: req.OperationID})
	case protocol.TypeCancelOperation:
		var req protocol.OperationRequest
		if !g.decode(env, &req) {
			return
		}
		if err := g.svc.Cancel(ctx, c.Claims(), req.OperationID); err != nil {
			g.fail(env, req.OperationID, err)
			return
		}
		c.Send(protocol.TypeCancelRequested, protocol.OperationReply{Type: protocol.TypeCancelRequested, ID: env.ID, OperationID: req.OperationID})
	case protocol.TypeAnswerInput:
		var req protocol.AnswerInput
		if !g.decode(env, &req) {
			return
		}
		if err := g.svc.AnswerInput(ctx, c.Claims(), req); err != nil {
			g.fail(env, req.OperationID, err)
			return
		}
		c.Send(protocol.TypeInputAccepted, protocol.OperationInputReply{Type: protocol.TypeInputAccepted, ID: env.ID, OperationID: req.OperationID, RequestID: req.RequestID})
	default:
		c.ReplyCode(env.ID, protocol.CodeBadRequest, "unknown message type "+env.Type)
	}
}

func (g *guidance) decode(env protocol.Envelope, v any) bool {
	if err := env.Into(v); err != nil {
		g.c.ReplyError(env.ID, err)
		return false
	}
	return true
}

// fail answers a request with operation_error.
func (g *guidance) fail(env protocol.Envelope, opID string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		g.c.Logger().Error("operation request", "type", env.Type, "operation", opID, "err", err)
		e = refuse(protocol.CodeInternal, conn.InternalErrorMessage)
	}
	g.c.Send(protocol.TypeOperationError, protocol.OperationError{
		Type: protocol.TypeOperationError, ID: env.ID, OperationID: opID, Code: e.Code, Message: e.Message,
	})
}

// watch starts forwarding an operation's events to the connection.
func (g *guidance) watch(id string, p *plan) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if old := g.watches[id]; old != nil {
		old.cancel()
		delete(g.watches, id)
	}
	if len(g.watches) >= MaxWatchesPerConn {
		g.mu.Unlock()
		g.c.Send(protocol.TypeOperationError, protocol.OperationError{
			Type: protocol.TypeOperationError, OperationID: id, Code: protocol.CodeBadRequest,
			Message: fmt.Sprintf("a connection may watch at most %d operations", MaxWatchesPerConn),
		})
		return
	}
	if !g.svc.addWatcher() {
		g.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(g.svc.ctx)
	w := &watching{cancel: cancel}
	g.watches[id] = w
	g.mu.Unlock()

	high, low := max(g.svc.cfg.SendQueue/2, 1), max(g.svc.cfg.SendQueue/4, 1)
	// A panic in the watcher closes this connection, not the process.
	g.c.Go(func() {
		defer g.svc.doneWatcher()
		defer func() {
			cancel()
			g.mu.Lock()
			if g.watches[id] == w {
				delete(g.watches, id)
			}
			g.mu.Unlock()
		}()
		_, err := g.svc.pump(ctx, id, p, pumpOptions{
			lagging: func() bool { return g.c.Queued() >= low },
			flush:   func(ctx context.Context) error { return g.c.WaitQueueBelow(ctx, 1) },
			send: func(d delivery) error {
				// Never overflow the connection's queue (which would close
				// it as a slow consumer): the backlog waits in JetStream.
				if err := g.c.WaitQueueBelow(ctx, high); err != nil {
					return err
				}
				if !g.c.SendRaw(d.Type, d.Data) {
					return errors.New("connection closed")
				}
				return nil
			},
		})
		if err != nil && ctx.Err() == nil {
			g.c.Logger().Warn("watch operation", "operation", id, "err", err)
		}
	})
}

func (g *guidance) stopWatch(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.watches[id]; w != nil {
		w.cancel()
		delete(g.watches, id)
	}
}

// Closed stops the connection's watchers; the operations carry on.
func (g *guidance) Closed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for id, w := range g.watches {
		w.cancel()
		delete(g.watches, id)
	}
}
