package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
)

// maxAgentsPerWorker bounds the registrations of one worker connection.
const maxAgentsPerWorker = 32

// runRequest is what a starting node sends on tether.agents.<X>.run.
type runRequest struct {
	Record stored          `json:"record"`
	Input  json.RawMessage `json:"input,omitempty"`
}

// runReply answers a runRequest: Started, or Error.
type runReply struct {
	Started *Started `json:"started,omitempty"`
	Error   *Error   `json:"error,omitempty"`
}

// requestRun hands an operation to a node holding a worker of its agent;
// that node becomes the operation's writer.
func (s *Service) requestRun(ctx context.Context, rec *stored, input json.RawMessage) (Started, error) {
	b, err := json.Marshal(runRequest{Record: *rec, Input: input})
	if err != nil {
		return Started{}, fmt.Errorf("encode run of %s: %w", rec.OperationID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(ctx, runSubject(rec.AgentID), b)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Started{}, refuse(protocol.CodeAgentUnavailable, "no worker of agent %s is connected", rec.AgentID)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return Started{}, refuse(protocol.CodeAgentUnavailable, "no worker of agent %s answered in time", rec.AgentID)
	case err != nil:
		return Started{}, fmt.Errorf("start %s on agent %s: %w", rec.OperationID, rec.AgentID, err)
	}
	var reply runReply
	if err := json.Unmarshal(resp.Data, &reply); err != nil {
		return Started{}, fmt.Errorf("start %s: bad reply from worker node: %w", rec.OperationID, err)
	}
	if reply.Error != nil {
		return Started{}, reply.Error
	}
	if reply.Started == nil {
		return Started{}, fmt.Errorf("start %s: empty reply from worker node", rec.OperationID)
	}
	return *reply.Started, nil
}

// handleRun answers a run request on a node holding workers of the agent:
// it picks the least busy worker that has the operation type and becomes
// the operation's writer.
func (s *Service) handleRun(m *nats.Msg) {
	respond := func(r runReply) {
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	}
	var req runRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(runReply{Error: refuse(protocol.CodeBadRequest, "bad run request: %v", err)})
		return
	}
	rec := req.Record
	s.mu.Lock()
	var pick *worker
	best := -1
	for _, w := range s.workers[rec.AgentID] {
		if !w.supports(rec.AgentID, rec.OperationType) {
			continue
		}
		if n := w.load(); best < 0 || n < best {
			pick, best = w, n
		}
	}
	haveAny := len(s.workers[rec.AgentID]) > 0
	s.mu.Unlock()
	if pick == nil {
		if haveAny {
			respond(runReply{Error: refuse(protocol.CodeUnknownOperationType, "agent %s has no operation type %q", rec.AgentID, rec.OperationType)})
		} else {
			respond(runReply{Error: refuse(protocol.CodeAgentUnavailable, "no worker of agent %s is connected", rec.AgentID)})
		}
		return
	}
	if e := s.acquire(rec.Owner, "", 0); e != nil {
		respond(runReply{Error: e})
		return
	}
	o := s.newOperation(&rec, kindRemote)
	id := rec.OperationID
	o.holder = pick
	s.bindRemote(o)
	ev, err := o.begin(req.Input)
	if err != nil {
		s.releaseSlot(rec.Owner, "")
		s.log.Error("start remote operation", "operation", id, "err", err)
		respond(runReply{Error: refuse(protocol.CodeInternal, "the operation could not be stored; try again")})
		return
	}
	s.track(o)
	respond(runReply{Started: &Started{Event: ev, StreamSeq: o.rec.StreamSeq}})
	// Assigned only once begun, so that a worker leaving now fails an
	// operation that has its operation_started.
	if !pick.assign(o) {
		o.finish(protocol.StatusFailed, protocol.CodeAgentDisconnected, "the worker disconnected before the operation could be handed to it", nil)
		return
	}
	input := req.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	if !pick.c.Send(protocol.TypeRun, protocol.Run{Type: protocol.TypeRun, OperationID: id, AgentID: rec.AgentID, OperationType: rec.OperationType, Input: input}) {
		o.finish(protocol.StatusFailed, protocol.CodeAgentDisconnected, "the worker disconnected before the operation could be handed to it", nil)
	}
}

// WorkerEndpoint describes /ws/agent-worker to the connection layer.
func (s *Service) WorkerEndpoint() *conn.Endpoint {
	return &conn.Endpoint{
		Name: "agent-worker",
		KnownTypes: []string{protocol.TypeRegister, protocol.TypeReclaim, protocol.TypeProgress, protocol.TypeLog, protocol.TypeEvent, protocol.TypeInputRequest,
			protocol.TypeCompleted, protocol.TypeFailed, protocol.TypeCancelled},
		Open: func(c *conn.Conn) conn.Session {
			if !c.Claims().HasRole(auth.RoleAgent) {
				c.Fail(protocol.CodeForbidden, protocol.CloseForbidden, "workers need a token with the agent role")
				return nil
			}
			return &worker{svc: s, c: c, agents: map[string][]string{}, ops: map[string]*operation{}}
		},
	}
}

// worker is one connected remote worker.
type worker struct {
	svc *Service
	c   *conn.Conn

	mu     sync.Mutex
	closed bool
	agents map[string][]string // agent id → operation types
	ops    map[string]*operation
}

func (w *worker) supports(agent, typ string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.closed && slices.Contains(w.agents[agent], typ)
}

func (w *worker) load() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ops)
}

func (w *worker) assign(o *operation) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.ops[o.rec.OperationID] = o
	return true
}

func (w *worker) unassign(id string) {
	w.mu.Lock()
	delete(w.ops, id)
	w.mu.Unlock()
}

func (w *worker) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case protocol.TypeRegister:
		w.register(env)
		return
	case protocol.TypeReclaim:
		w.reclaim(env)
		return
	}
	var ev protocol.WorkerEvent
	if err := env.Into(&ev); err != nil {
		w.c.ReplyError(env.ID, err)
		return
	}
	switch env.Type {
	case protocol.TypeProgress, protocol.TypeLog, protocol.TypeEvent, protocol.TypeInputRequest, protocol.TypeCompleted, protocol.TypeFailed, protocol.TypeCancelled:
	default:
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "unknown message type "+env.Type)
		return
	}
	w.mu.Lock()
	o := w.ops[ev.OperationID]
	w.mu.Unlock()
	if o == nil {
		w.c.ReplyCode(env.ID, protocol.CodeNotFound, fmt.Sprintf("operation %q is not assigned to this worker (or has ended)", ev.OperationID))
		return
	}
	if len(env.Raw) > w.svc.cfg.MaxEventBytes {
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, fmt.Sprintf("an event may be at most %d bytes", w.svc.cfg.MaxEventBytes))
		return
	}
	var err error
	switch env.Type {
	case protocol.TypeProgress:
		if ev.Progress != nil && (*ev.Progress < 0 || *ev.Progress > 100) {
			w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "progress must be a number from 0 to 100")
			return
		}
		err = o.progress(ev.Progress, ev.Message, ev.Step, ev.Data)
	case protocol.TypeLog:
		err = o.log(ev.Message)
	case protocol.TypeEvent:
		err = o.aguiEvent(ev.Event)
	case protocol.TypeInputRequest:
		if string(ev.Schema) == "null" {
			ev.Schema = nil
		}
		if ev.Prompt == "" || (len(ev.Schema) > 0 && ev.Schema[0] != '{') {
			w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "an input_request needs a request_id, a prompt and, optionally, a schema object")
			return
		}
		err = o.requestInput(ev.RequestID, ev.Prompt, ev.Schema)
	case protocol.TypeCompleted:
		o.finish(protocol.StatusCompleted, "", "", ev.Result)
	case protocol.TypeFailed:
		code := ev.Code
		if !protocol.ValidID(code) {
			code = protocol.CodeAgentError
		}
		o.finish(protocol.StatusFailed, code, ev.Message, ev.Result)
	case protocol.TypeCancelled:
		msg := ev.Message
		if msg == "" {
			msg = "cancelled"
		}
		o.finish(protocol.StatusCancelled, "", msg, ev.Result)
	}
	if re, ok := errors.AsType[*Error](err); ok {
		w.c.ReplyCode(env.ID, re.Code, re.Message)
		return
	}
	if ae, ok := errors.AsType[*agui.Error](err); ok {
		// A refused AG-UI event: the reply's code is the refusal's.
		w.c.ReplyCode(env.ID, ae.Code, refusalMessage(ae))
		return
	}
	switch {
	case errors.Is(err, errRateLimited):
		w.c.ReplyCode(env.ID, protocol.CodeRateLimited, "the operation sent too many events and was failed")
	case errors.Is(err, errEnded):
		w.c.ReplyCode(env.ID, protocol.CodeNotFound, "operation "+ev.OperationID+" has ended")
	case err != nil:
		c.Logger().Error("store worker event", "operation", ev.OperationID, "err", err)
		w.c.ReplyCode(env.ID, protocol.CodeInternal, "the event could not be stored")
	}
}

func (w *worker) register(env protocol.Envelope) {
	var req protocol.Register
	if err := env.Into(&req); err != nil {
		w.c.ReplyError(env.ID, err)
		return
	}
	if !protocol.ValidID(req.AgentID) {
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "agent_id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
		return
	}
	if _, ok := w.svc.commands[req.AgentID]; ok {
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "agent "+req.AgentID+" is a command agent of this node")
		return
	}
	if len(req.Operations) == 0 {
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, "operations must list at least one operation type")
		return
	}
	for _, t := range req.Operations {
		if !protocol.ValidID(t) {
			w.c.ReplyCode(env.ID, protocol.CodeBadRequest, fmt.Sprintf("operation type %q is invalid", t))
			return
		}
	}
	w.mu.Lock()
	if _, ok := w.agents[req.AgentID]; !ok && len(w.agents) >= maxAgentsPerWorker {
		w.mu.Unlock()
		w.c.ReplyCode(env.ID, protocol.CodeBadRequest, fmt.Sprintf("a worker may register at most %d agents", maxAgentsPerWorker))
		return
	}
	w.agents[req.AgentID] = slices.Clone(req.Operations)
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := w.svc.store.rememberAgent(ctx, req.AgentID, req.Operations); err != nil {
		w.c.Logger().Warn("remember agent", "agent", req.AgentID, "err", err)
	}
	if err := w.svc.addWorker(req.AgentID, w); err != nil {
		w.c.Logger().Error("register worker", "agent", req.AgentID, "err", err)
		w.c.ReplyCode(env.ID, protocol.CodeInternal, "the worker could not be registered; try again")
		return
	}
	w.c.Send(protocol.TypeRegistered, protocol.Registered{Type: protocol.TypeRegistered, ID: env.ID, AgentID: req.AgentID, Operations: req.Operations})
}

// Closed detaches the worker's operations, for a worker to reclaim within
// WorkerGrace (reclaim.go); without a grace it fails them: a worker that
// goes away takes them with it.
func (w *worker) Closed() {
	w.mu.Lock()
	w.closed = true
	agentIDs := make([]string, 0, len(w.agents))
	for a := range w.agents {
		agentIDs = append(agentIDs, a)
	}
	ops := make([]*operation, 0, len(w.ops))
	for _, o := range w.ops {
		ops = append(ops, o)
	}
	w.mu.Unlock()
	for _, a := range agentIDs {
		w.svc.removeWorker(a, w)
	}
	for _, o := range ops {
		if w.svc.cfg.WorkerGrace > 0 {
			o.detach(w)
			continue
		}
		o.finish(protocol.StatusFailed, protocol.CodeAgentDisconnected, "the worker running the operation disconnected", nil)
	}
}

// reclaim answers a reclaim: the operation is this connection's again
// (reclaimed, then the answers it missed and a pending cancel), or an
// error says why not.
func (w *worker) reclaim(env protocol.Envelope) {
	var req protocol.Reclaim
	if err := env.Into(&req); err != nil {
		w.c.ReplyError(env.ID, err)
		return
	}
	o, r, e := w.svc.reclaim(w, req.OperationID)
	if e != nil {
		w.c.ReplyCode(env.ID, e.Code, e.Message)
		return
	}
	snap := o.snapshot()
	reply := protocol.Reclaimed{
		Type: protocol.TypeReclaimed, ID: env.ID, OperationID: snap.OperationID, AgentID: snap.AgentID,
		OperationType: snap.OperationType, Status: snap.Status, LastSeq: snap.LastSeq, OpenRequests: o.openRequests(),
	}
	w.c.Send(protocol.TypeReclaimed, reply)
	for _, in := range r.Answers {
		w.c.Send(protocol.TypeInput, in)
	}
	if r.Cancel {
		o.requestStop()
	}
}

// addWorker adds w to the agent's workers, subscribing to the agent's run
// subject when it is the node's first.
func (s *Service) addWorker(agent string, w *worker) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("node is shutting down")
	}
	if slices.Contains(s.workers[agent], w) {
		return nil
	}
	if _, ok := s.runSubs[agent]; !ok {
		sub, err := s.nc.QueueSubscribe(runSubject(agent), WorkerQueue, s.handleRun)
		if err != nil {
			return fmt.Errorf("subscribe to runs of %s: %w", agent, err)
		}
		// Make sure the server knows the subscription before the worker is
		// told it is registered, so that a start right after sees it.
		if err := s.nc.Flush(); err != nil {
			_ = sub.Unsubscribe()
			return fmt.Errorf("subscribe to runs of %s: %w", agent, err)
		}
		s.runSubs[agent] = sub
	}
	s.workers[agent] = append(s.workers[agent], w)
	return nil
}

// removeWorker removes w, unsubscribing when the agent has no worker left
// on this node.
func (s *Service) removeWorker(agent string, w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.DeleteFunc(s.workers[agent], func(x *worker) bool { return x == w })
	if len(list) > 0 {
		s.workers[agent] = list
		return
	}
	delete(s.workers, agent)
	if sub := s.runSubs[agent]; sub != nil {
		_ = sub.Unsubscribe()
		delete(s.runSubs, agent)
	}
}
