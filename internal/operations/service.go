// Package operations runs agent operations and streams their events: the
// /ws/agent-guidance endpoint where UIs start, watch, cancel and resume
// operations, the /ws/agent-worker endpoint where remote agents take work,
// and the /api/operations REST API with its Server-Sent Events stream.
//
// Every event of an operation is numbered (seq 1 is operation_started, then
// +1 per event) by the operation's single writer, the node running it, and
// stored in the TETHER_OPERATIONS JetStream stream under the subject
// tether.op.<id>; the operation's record lives in the TETHER_OPERATIONS
// key-value bucket. Watchers never receive events from the writer directly:
// each reads the stream through its own ordered consumer, so history and
// live events come from one source with no gap and no duplicate, a slow
// watcher only falls behind in the stream, and an operation does not care
// whether anyone watches.
//
// Command agents (declared in tether.yaml) run on the node that starts the
// operation. Remote agents are workers connected to /ws/agent-worker: a node
// with workers for agent X answers requests on tether.agents.<X>.run in
// queue group "workers", so a start on any node reaches one node holding a
// worker, which becomes the operation's writer. Cancels go to
// tether.opctl.<id>.cancel, which only the writer subscribes to.
package operations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/agents"
	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// Config configures the operations service.
type Config struct {
	// Node names this node; it is written into the records of the
	// operations it runs, and on start-up those still marked running are
	// failed as interrupted. Node names must be unique in a cluster.
	Node string
	// Agents are the command agents this node runs.
	Agents []agents.CommandAgent
	// MaxAge and MaxBytes bound the event stream; records expire with MaxAge.
	MaxAge   time.Duration
	MaxBytes int64
	// MaxPerUser and MaxTotal bound running operations on this node, per
	// owner and in total (0: unlimited).
	MaxPerUser, MaxTotal int
	// EventRate is the events per second an operation may produce (0:
	// unlimited); see operation.progress and operation.log.
	EventRate float64
	// MaxInputBytes bounds an operation's input.
	MaxInputBytes int
	// MaxAGUIInputBytes bounds the RunAgentInput of the AG-UI endpoint,
	// the input of the operations it starts (0: MaxInputBytes).
	MaxAGUIInputBytes int
	// OriginAllowed decides which browser origins the AG-UI endpoint
	// answers with CORS headers (conn.OriginPolicy, the WebSocket
	// handshake's rule); nil allows requests without an Origin only.
	OriginAllowed func(*http.Request) bool
	// MaxEventBytes bounds one event from an agent.
	MaxEventBytes int
	// InputTimeout is how long an input request may wait for its answer
	// before the operation fails with input_timeout (0: no limit beyond
	// the operation's own).
	InputTimeout time.Duration
	// KillGrace is how long an agent has to stop after a cancel before it is
	// killed (command agents) or the operation is ended without it (workers).
	KillGrace time.Duration
	// StartTimeout bounds handing a run to a remote worker's node.
	StartTimeout time.Duration
	// WorkerGrace is how long a remote operation outlives its worker's
	// connection (that connection dropped, or its node shut down or died)
	// waiting for a worker to reclaim it, on any node, before it fails
	// with agent_disconnected; 0 fails it at once. See reclaim.go.
	WorkerGrace time.Duration
	// SendQueue is the connection layer's send queue: a watcher sends only
	// while a connection's queue is below half of it, and coalesces progress
	// once it is above a quarter.
	SendQueue int
	Logger    *slog.Logger
}

// Error is a refused request; Code is one of the protocol's operation error
// codes.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Service runs operations on this node and serves their endpoints.
type Service struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	store    *store
	commands map[string]agents.CommandAgent

	mu       sync.Mutex
	closing  bool
	noStarts bool                  // StopStarting was called: running operations go on
	local    map[string]*operation // operations this node writes
	perUser  map[string]int
	total    int
	perType  map[string]int // running command operations per agent/type
	workers  map[string][]*worker
	runSubs  map[string]*nats.Subscription
	// followers are the running pumps (watchers reading an operation's
	// events), so that a drain can stop those it does not wait for.
	followers map[*follower]struct{}
	// ending, set by the first Drain or Close, holds the operations this
	// node was running then and ends as interrupted: those whose watchers
	// it lets deliver the final event.
	ending map[string]bool
	// expiries fail, once WorkerGrace has passed, the remote operations of
	// a node that stopped, unless a worker reclaimed them (reclaim.go);
	// expiring counts those running.
	expiries map[string]*time.Timer
	expiring sync.WaitGroup

	runs     sync.WaitGroup // command agent processes
	watchers sync.WaitGroup // watcher goroutines
	m        *opMetrics
	ctx      context.Context
	cancel   context.CancelFunc
}

// New opens the operations storage, fails the operations this node was
// running when it last stopped, and returns the service.
func New(ctx context.Context, bb *backbone.Backbone, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = agents.DefaultKillGrace
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 256
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = agents.DefaultMaxEventBytes
	}
	if err := agents.ValidateAgents(cfg.Agents); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, bb, cfg.MaxAge, cfg.MaxBytes)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg: cfg, log: cfg.Logger, nc: bb.NC, store: st, commands: map[string]agents.CommandAgent{},
		local: map[string]*operation{}, perUser: map[string]int{}, perType: map[string]int{},
		workers: map[string][]*worker{}, runSubs: map[string]*nats.Subscription{}, followers: map[*follower]struct{}{},
		expiries: map[string]*time.Timer{},
		ctx:      bg, cancel: cancel, m: newOpMetrics(),
	}
	for _, a := range cfg.Agents {
		s.commands[a.ID] = a
	}
	if err := s.recoverInterrupted(ctx); err != nil {
		s.stopExpiries()
		cancel()
		return nil, err
	}
	return s, nil
}

// recoverInterrupted fails the operations this node was writing when it
// stopped without ending them (a crash): nobody else will. Remote ones
// are left to their workers to reclaim for WorkerGrace.
func (s *Service) recoverInterrupted(ctx context.Context) error {
	return s.failNode(ctx, s.cfg.Node, "the node running the operation stopped before it ended")
}

// NodeDown fails, as interrupted, the operations another node was running
// when it died. Every surviving node may call it: the final event's seq is
// the same from all of them, and JetStream's duplicate detection (message
// id operation:seq) stores it once. Remote operations are failed only
// once WorkerGrace has passed without a worker reclaiming them, by the
// one surviving node that claims each (reclaim.go).
func (s *Service) NodeDown(node string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.failNode(ctx, node, "the node running the operation stopped"); err != nil {
		s.log.Warn("operations of a dead node", "node", node, "err", err)
	}
}

// failNode fails the running operations whose events node was writing.
func (s *Service) failNode(ctx context.Context, node, why string) error {
	recs, err := s.store.list(ctx)
	if err != nil {
		return fmt.Errorf("recover operations: %w", err)
	}
	for _, rec := range recs {
		if !protocol.Live(rec.Status) || rec.Node != node {
			continue
		}
		if rec.Kind == kindRemote && s.cfg.WorkerGrace > 0 {
			s.expireLater(rec, "its node stopped")
			continue
		}
		o, err := s.orphan(ctx, rec)
		if err != nil {
			return err
		}
		if o == nil {
			continue
		}
		s.log.Warn("operation interrupted: its node stopped", "operation", rec.OperationID, "agent", rec.AgentID, "node", node)
		o.finish(protocol.StatusFailed, protocol.CodeInterrupted, why, nil)
	}
	return nil
}

// orphan returns an operation whose writer is gone, numbered after its
// last stored event, for this node to end; nil when that event ended it
// already (the record, which said otherwise, is then corrected).
func (s *Service) orphan(ctx context.Context, rec *stored) (*operation, error) {
	o := &operation{svc: s, kind: rec.Kind, rec: *rec, seq: rec.LastSeq}
	if last, err := s.store.lastEvent(ctx, rec.OperationID); err == nil && last.StreamSeq >= rec.StreamSeq {
		if isFinal(last.Type) {
			// The final event was stored but not the record.
			o.rec.Status = statusOf(last.Type)
			o.rec.LastSeq = last.Seq
			if err := s.store.put(ctx, &o.rec); err != nil {
				return nil, fmt.Errorf("recover %s: %w", rec.OperationID, err)
			}
			return nil, nil
		}
		o.seq = last.Seq
		o.rec.LastSeq = last.Seq
	}
	return o, nil
}

// Drain is the first step of a node's shutdown, taken before its
// connections are closed: it refuses new operations and watchers, ends
// the operations this node runs as interrupted (a command agent gets
// SIGTERM, then SIGKILL after KillGrace), and lets their watchers deliver
// every event up to that final one (on a WebSocket, until it is written to
// the socket). With a WorkerGrace, remote operations are not ended but
// released (their workers reclaim them through another node) and their
// workers' connections closed. Watchers of operations that this node does
// not end stop at once: their clients resume elsewhere. It returns once
// all of that is done, or when ctx ends, having then stopped every
// watcher.
func (s *Service) Drain(ctx context.Context) error {
	s.stopRunning()
	done := make(chan struct{})
	go func() {
		s.runs.Wait()
		s.watchers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel() // every watcher
		return fmt.Errorf("operations: final events not delivered: %w", ctx.Err())
	}
}

// StopStarting makes the node refuse new operations (node_draining) while
// the ones it runs go on: the first step of a drain.
func (s *Service) StopStarting() {
	s.mu.Lock()
	s.noStarts = true
	s.mu.Unlock()
}

// Running returns how many operations this node runs.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.local)
}

// Close stops every operation this node runs, failing them as interrupted,
// stops the watchers, and waits for all of it. After Drain it only waits.
func (s *Service) Close() {
	s.stopRunning()
	s.runs.Wait()
	s.stopExpiries()
	s.cancel()
	s.watchers.Wait()
}

// stopRunning refuses new operations and watchers and stops the running
// operations; Drain and Close then wait for them. Calling it again stops
// what may have begun meanwhile.
func (s *Service) stopRunning() {
	s.mu.Lock()
	s.closing = true
	ops := make([]*operation, 0, len(s.local))
	for _, o := range s.local {
		ops = append(ops, o)
	}
	release := s.cfg.WorkerGrace > 0
	if s.ending == nil {
		s.ending = map[string]bool{}
		for id, o := range s.local {
			s.ending[id] = o.kind != kindRemote || !release
		}
		for f := range s.followers {
			if !s.ending[f.id] {
				f.stop()
			}
		}
	}
	subs := s.runSubs
	s.runSubs = map[string]*nats.Subscription{}
	var workers []*worker
	for _, list := range s.workers {
		workers = append(workers, list...)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	for _, o := range ops {
		switch {
		case o.kind == kindRemote && release:
			o.release(fmt.Sprintf("tether: the node running the operation is shutting down; its worker has %s to reclaim it through another node", s.cfg.WorkerGrace))
			continue
		case o.kind == kindRemote:
			o.finish(protocol.StatusFailed, protocol.CodeInterrupted, "the node running the operation shut down", nil)
		}
		o.requestStop()
	}
	if release {
		// Told now rather than with every other connection, so that they
		// reclaim elsewhere at once instead of sending events this node
		// no longer stores.
		for _, w := range workers {
			w.c.Close(protocol.CloseGoingAway, "server shutting down")
		}
	}
}

// draining reports whether the node is shutting down.
func (s *Service) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// addFollower registers a pump; during a drain it refuses (and does not
// register) one for an operation the drain does not end.
func (s *Service) addFollower(f *follower) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ending != nil && !s.ending[f.id] {
		return false
	}
	s.followers[f] = struct{}{}
	return true
}

func (s *Service) removeFollower(f *follower) {
	s.mu.Lock()
	delete(s.followers, f)
	s.mu.Unlock()
}

// addWatcher counts a watcher goroutine, unless the service is closing.
func (s *Service) addWatcher() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.watchers.Add(1)
	s.m.watching.Add(1)
	return true
}

// doneWatcher ends what addWatcher counted.
func (s *Service) doneWatcher() {
	s.m.watching.Add(-1)
	s.watchers.Done()
}

// Started is a successfully started operation.
type Started struct {
	// Event is its operation_started event.
	Event protocol.OperationStarted `json:"started"`
	// StreamSeq is where that event is in the stream.
	StreamSeq uint64 `json:"stream_seq"`
}

// Start starts an operation owned by owner. The error is an *Error for
// refusals.
func (s *Service) Start(ctx context.Context, owner string, req protocol.StartOperation) (Started, error) {
	return s.start(ctx, owner, req, "")
}

// start is Start; thread, when set, makes the operation an AG-UI run of
// that threadId started by the AG-UI endpoint: its input is a
// RunAgentInput, bounded by MaxAGUIInputBytes instead of MaxInputBytes.
func (s *Service) start(ctx context.Context, owner string, req protocol.StartOperation, thread string) (Started, error) {
	id := req.OperationID
	maxInput := s.cfg.MaxInputBytes
	if thread != "" && s.cfg.MaxAGUIInputBytes > 0 {
		maxInput = s.cfg.MaxAGUIInputBytes
	}
	if id == "" {
		id = newID()
	} else if !protocol.ValidID(id) {
		return Started{}, refuse(protocol.CodeInvalidOperationID, "operation_id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if len(req.Input) > maxInput && maxInput > 0 {
		return Started{}, refuse(protocol.CodeInputTooLarge, "input is %d bytes; the limit is %d", len(req.Input), maxInput)
	}
	if len(req.Input) > 0 && !json.Valid(req.Input) {
		return Started{}, refuse(protocol.CodeBadRequest, "input must be valid JSON")
	}
	cmd, isCommand := s.commands[req.AgentID]
	var spec agents.OperationSpec
	if isCommand {
		var ok bool
		if spec, ok = cmd.Operations[req.OperationType]; !ok {
			return Started{}, refuse(protocol.CodeUnknownOperationType, "agent %s has no operation type %q", req.AgentID, req.OperationType)
		}
	} else if !protocol.ValidID(req.AgentID) || !s.store.knownAgent(ctx, req.AgentID) {
		return Started{}, refuse(protocol.CodeUnknownAgent, "no agent %q", req.AgentID)
	}
	if req.OperationType == "" {
		return Started{}, refuse(protocol.CodeUnknownOperationType, "operation_type is required")
	}
	t := now()
	rec := &stored{OperationRecord: protocol.OperationRecord{
		OperationID: id, AgentID: req.AgentID, OperationType: req.OperationType, Owner: owner,
		Status: protocol.StatusRunning, StartedAt: t, UpdatedAt: t, Node: s.cfg.Node,
	}, ThreadID: thread}
	if err := s.store.create(ctx, rec); err != nil {
		if errors.Is(err, errExists) {
			return Started{}, refuse(protocol.CodeOperationExists, "operation %s already exists", id)
		}
		return Started{}, err
	}
	var st Started
	var err error
	if isCommand {
		st, err = s.launchCommand(rec, spec, req.Input)
	} else {
		st, err = s.requestRun(ctx, rec, req.Input)
	}
	if err != nil {
		// Nothing ran: the id is free again.
		if rerr := s.store.release(context.WithoutCancel(ctx), id); rerr != nil {
			s.log.Warn("release operation id", "operation", id, "err", rerr)
		}
		return Started{}, err
	}
	return st, nil
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "op_" + hex.EncodeToString(b)
}

// acquire reserves a running slot for owner (and for the command agent's
// operation type, when typeKey is set).
func (s *Service) acquire(owner, typeKey string, typeLimit int) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return refuse(protocol.CodeAgentUnavailable, "the node is shutting down")
	case s.noStarts:
		return refuse(protocol.CodeNodeDraining, "this node is draining before a restart; start the operation through another node")
	case s.cfg.MaxTotal > 0 && s.total >= s.cfg.MaxTotal:
		return refuse(protocol.CodeCapacity, "this node runs %d operations, its limit", s.total)
	case s.cfg.MaxPerUser > 0 && s.perUser[owner] >= s.cfg.MaxPerUser:
		return refuse(protocol.CodeCapacity, "you have %d running operations, the limit", s.perUser[owner])
	case typeKey != "" && s.perType[typeKey] >= typeLimit:
		return refuse(protocol.CodeCapacity, "%s already runs %d operations at once, its limit", typeKey, typeLimit)
	}
	s.total++
	s.perUser[owner]++
	if typeKey != "" {
		s.perType[typeKey]++
	}
	return nil
}

func (s *Service) releaseSlot(owner, typeKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perUser[owner]--; s.perUser[owner] <= 0 {
		delete(s.perUser, owner)
	}
	if typeKey != "" {
		if s.perType[typeKey]--; s.perType[typeKey] <= 0 {
			delete(s.perType, typeKey)
		}
	}
}

func (s *Service) track(o *operation) {
	s.mu.Lock()
	s.local[o.rec.OperationID] = o
	s.m.started.WithLabelValues(o.rec.AgentID).Inc()
	s.mu.Unlock()
}

// trackRun tracks a command operation about to run and counts it in runs,
// unless the node is shutting down. Counting under s.mu, while closing is
// false, orders it before the runs.Wait of a shutdown.
func (s *Service) trackRun(o *operation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.local[o.rec.OperationID] = o
	s.m.started.WithLabelValues(o.rec.AgentID).Inc()
	s.runs.Add(1)
	return true
}

func (s *Service) untrack(o *operation) {
	s.mu.Lock()
	delete(s.local, o.rec.OperationID)
	s.mu.Unlock()
}

// launchCommand runs a command agent's operation on this node.
func (s *Service) launchCommand(rec *stored, spec agents.OperationSpec, input json.RawMessage) (Started, error) {
	typeKey := rec.AgentID + "/" + rec.OperationType
	if e := s.acquire(rec.Owner, typeKey, spec.EffectiveConcurrency()); e != nil {
		return Started{}, e
	}
	o := s.newOperation(rec, kindCommand)
	var answers chan []byte
	if spec.Interactive {
		// As many as requests may be made: delivery never blocks.
		answers = make(chan []byte, maxInputRequests)
		o.input.deliver = func(in protocol.Input) bool {
			line, _ := json.Marshal(struct {
				RequestID string          `json:"request_id"`
				Status    string          `json:"status"`
				Value     json.RawMessage `json:"value"`
			}{in.RequestID, in.Status, in.Value})
			select {
			case answers <- line:
				return true
			default:
				return false
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.stop = cancel
	ev, err := o.begin(input)
	if err != nil {
		cancel()
		s.releaseSlot(rec.Owner, typeKey)
		return Started{}, fmt.Errorf("start %s: %w", rec.OperationID, err)
	}
	if !s.trackRun(o) {
		// The node began shutting down while it was being stored.
		cancel()
		s.m.started.WithLabelValues(rec.AgentID).Inc()
		o.finish(protocol.StatusFailed, protocol.CodeInterrupted, "the node running the operation shut down", nil)
		s.releaseSlot(rec.Owner, typeKey)
		return Started{Event: ev, StreamSeq: o.rec.StreamSeq}, nil
	}
	go func() {
		defer s.runs.Done()
		defer s.releaseSlot(rec.Owner, typeKey)
		defer s.untrack(o)
		defer cancel()
		out := agents.Run(ctx, agents.RunRequest{
			OperationID: rec.OperationID, AgentID: rec.AgentID, OperationType: rec.OperationType,
			Input: input, Spec: spec, MaxEventBytes: s.cfg.MaxEventBytes, KillGrace: s.cfg.KillGrace, Answers: answers,
		}, func(e agents.Event) error {
			switch e.Kind {
			case agents.EventProgress:
				return o.progress(e.Progress, e.Message, e.Step, e.Data)
			case agents.EventLog:
				return o.log(e.Log)
			case agents.EventInputRequest:
				err := o.requestInput(e.Input.ID, e.Input.Prompt, e.Input.Schema)
				if re, ok := errors.AsType[*Error](err); ok {
					return o.log("tether: input request refused (" + re.Code + "): " + re.Message)
				}
				return err
			case agents.EventAGUI:
				err := o.aguiEvent(e.AGUI)
				if ae, ok := errors.AsType[*agui.Error](err); ok {
					// The agent is told in its own log, which its
					// watchers see too; nothing of the event is stored.
					return o.log(refusalLog(ae))
				}
				return err
			}
			return nil // the result goes into operation_completed
		})
		s.endCommand(o, out)
	}()
	return Started{Event: ev, StreamSeq: o.rec.StreamSeq}, nil
}

// endCommand turns a command agent's Outcome into the final event.
func (s *Service) endCommand(o *operation, out agents.Outcome) {
	switch out.Status {
	case agents.StatusCompleted:
		o.finish(protocol.StatusCompleted, "", "", out.Result)
	case agents.StatusFailed:
		o.finish(protocol.StatusFailed, out.Code, out.Message, out.Result)
	default:
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			o.finish(protocol.StatusFailed, protocol.CodeInterrupted, "the node running the operation shut down", out.Result)
			return
		}
		o.finish(protocol.StatusCancelled, "", "cancelled", out.Result)
	}
}

// authorize loads an operation's record for cl: owners and admins only.
func (s *Service) authorize(ctx context.Context, cl *auth.Claims, id string) (*stored, error) {
	if !protocol.ValidID(id) {
		return nil, refuse(protocol.CodeNotFound, "no operation %q", id)
	}
	rec, err := s.store.get(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, refuse(protocol.CodeNotFound, "no operation %s", id)
	}
	if err != nil {
		return nil, err
	}
	if rec.Owner != cl.Subject && !cl.IsAdmin() {
		return nil, refuse(protocol.CodeForbidden, "operation %s belongs to another user", id)
	}
	s.mu.Lock()
	o := s.local[id]
	s.mu.Unlock()
	if o != nil {
		// This node writes it: its copy is the freshest.
		snap := o.snapshot()
		rec = &snap
	}
	return rec, nil
}

// Get returns an operation's record.
func (s *Service) Get(ctx context.Context, cl *auth.Claims, id string) (protocol.OperationRecord, error) {
	rec, err := s.authorize(ctx, cl, id)
	if err != nil {
		return protocol.OperationRecord{}, err
	}
	return rec.OperationRecord, nil
}

// List returns the operations cl may see (its own; every one for admins),
// optionally filtered by agent and by status (a nil status matches all),
// newest first.
func (s *Service) List(ctx context.Context, cl *auth.Claims, agent string, status func(string) bool) ([]protocol.OperationRecord, error) {
	recs, err := s.store.list(ctx)
	if err != nil {
		return nil, err
	}
	out := []protocol.OperationRecord{}
	for _, r := range recs {
		if (r.Owner != cl.Subject && !cl.IsAdmin()) || (agent != "" && r.AgentID != agent) || (status != nil && !status(r.Status)) {
			continue
		}
		out = append(out, r.OperationRecord)
	}
	slices.SortFunc(out, func(a, b protocol.OperationRecord) int { return strings.Compare(b.StartedAt, a.StartedAt) })
	return out, nil
}

// Cancel asks the node running an operation to cancel it. The operation then
// ends with operation_cancelled (or whichever final event came first).
func (s *Service) Cancel(ctx context.Context, cl *auth.Claims, id string) error {
	rec, err := s.authorize(ctx, cl, id)
	if err != nil {
		return err
	}
	if !protocol.Live(rec.Status) {
		return refuse(protocol.CodeNotFound, "operation %s has already ended (%s)", id, rec.Status)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(ctx, cancelSubject(id), nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return refuse(protocol.CodeNotFound, "operation %s is not running on any node", id)
	}
	if err != nil {
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	if strings.Contains(string(resp.Data), `"ended"`) {
		return refuse(protocol.CodeNotFound, "operation %s has already ended", id)
	}
	return nil
}
