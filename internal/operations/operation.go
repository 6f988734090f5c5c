package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// Kinds of operation, by what runs it.
const (
	kindCommand = "command"
	kindRemote  = "remote"
)

// recordEvery bounds how often progress is copied into the record: every
// event is in the stream anyway, and the record only has to be roughly
// current for listings and for watchers that cannot be replayed to.
const recordEvery = 250 * time.Millisecond

// storeTimeout bounds one write to JetStream, retries across the loss of
// a NATS server included (backbone.WriteBound).
const storeTimeout = backbone.WriteBound + time.Second

// errEnded is returned for events that arrive after the operation ended.
var errEnded = errors.New("operation has ended")

// errRateLimited is returned for a log event over the operation's budget.
var errRateLimited = errors.New("events per second exceeded")

// operation is the single writer of one running operation on this node: it
// numbers its events, stores them in the stream, keeps its record and ends
// it exactly once. Every method is safe for concurrent use.
type operation struct {
	svc  *Service
	kind string

	mu      sync.Mutex
	rec     stored
	seq     uint64
	ended   bool
	lastKV  time.Time
	limiter *rate.Limiter
	// pending is the latest progress event held back by the rate limit,
	// published when the budget allows or before the next event.
	pending    *protocol.OperationProgress
	flushTimer *time.Timer
	cancelSub  *nats.Subscription
	// stop asks whatever runs the operation to stop: it cancels a command's
	// context or sends cancel to a worker.
	stop func()
	// cancelTimer ends a remote operation whose worker does not confirm a
	// cancel in time.
	cancelTimer *time.Timer
	// onEnd runs once after the final event is stored.
	onEnd func()
	// agui is the operation's AG-UI run, from its first AG-UI event on
	// (agui.go); aguiTimer stores its held delta when due; stateDirty says
	// the AG-UI state changed since it was last copied into the record.
	agui       *agui.Run
	aguiTimer  *time.Timer
	stateDirty bool
	// input holds the input requests (input.go); inputSub takes answers.
	input    inputState
	inputSub *nats.Subscription
	// Of a remote operation (reclaim.go): holder is the worker connection
	// running it, nil while it is detached (that connection ended and
	// WorkerGrace runs on graceTimer); undelivered are the answers stored
	// meanwhile, for the worker that reclaims it; reclaimSub answers
	// other nodes' handover requests; released says this node stopped
	// writing it without ending it (ended is then set too).
	holder      *worker
	graceTimer  *time.Timer
	undelivered []protocol.Input
	reclaimSub  *nats.Subscription
	released    bool
	// expiring: it is being failed for want of a worker; no reclaim now.
	expiring bool
}

func (s *Service) newOperation(rec *stored, kind string) *operation {
	r := rate.Limit(s.cfg.EventRate)
	burst := int(s.cfg.EventRate)
	if s.cfg.EventRate <= 0 {
		r, burst = rate.Inf, 1
	}
	rec.Kind = kind
	rec.Node = s.cfg.Node
	rec.Status = protocol.StatusRunning
	return &operation{svc: s, kind: kind, rec: *rec, limiter: rate.NewLimiter(r, max(burst, 1)),
		input: inputState{open: map[string]*time.Timer{}, answered: map[string]bool{}}}
}

// begin stores operation_started (seq 1) and the record, and starts
// answering cancel requests. It returns the started event. For an AG-UI
// run, input is its RunAgentInput (see beginAGUILocked).
func (o *operation) begin(input json.RawMessage) (protocol.OperationStarted, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev := protocol.OperationStarted{
		Type: protocol.TypeOperationStarted, OperationID: o.rec.OperationID, AgentID: o.rec.AgentID,
		OperationType: o.rec.OperationType, StartedAt: o.rec.StartedAt, Seq: 1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	sseq, err := o.publishLocked(ctx, ev.Type, &ev.Seq, &ev)
	if err != nil {
		return ev, err
	}
	o.rec.StreamSeq = sseq
	if err := o.beginAGUILocked(input); err != nil {
		return ev, err
	}
	if err := o.svc.store.put(ctx, &o.rec); err != nil {
		return ev, err
	}
	o.lastKV = time.Now()
	return ev, o.subscribeLocked()
}

// subscribeLocked makes this node answer the operation's control subjects:
// cancels, answers and, for a remote operation, handovers (reclaim.go).
// o.mu must be held.
func (o *operation) subscribeLocked() error {
	var err error
	id := o.rec.OperationID
	if o.cancelSub, err = o.svc.nc.Subscribe(cancelSubject(id), o.handleCancel); err != nil {
		return fmt.Errorf("subscribe to cancels of %s: %w", id, err)
	}
	if o.inputSub, err = o.svc.nc.Subscribe(inputSubject(id), o.handleInput); err != nil {
		return fmt.Errorf("subscribe to answers of %s: %w", id, err)
	}
	if o.kind == kindRemote && o.reclaimSub == nil {
		if o.reclaimSub, err = o.svc.nc.Subscribe(reclaimSubject(id), o.handleHandover); err != nil {
			return fmt.Errorf("subscribe to handovers of %s: %w", id, err)
		}
	}
	return nil
}

// unsubscribeLocked undoes subscribeLocked: this node no longer writes the
// operation. o.mu must be held.
//
// Drain, not Unsubscribe: a request already delivered to a subscription
// but not yet handed to its handler (waiting for o.mu, held here) would be
// dropped by Unsubscribe and its requester left waiting for its whole
// timeout (a reclaim 21 s); drained, it is answered (the handlers see the
// operation ended or released) and the subscription then goes.
func (o *operation) unsubscribeLocked() {
	for _, sub := range []*nats.Subscription{o.cancelSub, o.inputSub, o.reclaimSub} {
		if sub != nil {
			_ = sub.Drain()
		}
	}
}

// stopTimersLocked stops every timer of the operation: it ends here, or
// this node stops writing it. o.mu must be held.
func (o *operation) stopTimersLocked() {
	o.stopInputLocked()
	for _, t := range []*time.Timer{o.flushTimer, o.cancelTimer, o.graceTimer, o.aguiTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

// publishLocked assigns the next seq to the event through seqField, stores
// it and returns its stream sequence. o.mu must be held.
func (o *operation) publishLocked(ctx context.Context, typ string, seqField *uint64, ev any) (uint64, error) {
	*seqField = o.seq + 1
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode %s of %s: %w", typ, o.rec.OperationID, err)
	}
	sseq, err := o.svc.store.publish(ctx, o.rec.OperationID, typ, *seqField, b)
	if err != nil {
		return 0, err
	}
	o.seq = *seqField
	o.rec.LastSeq = o.seq
	o.svc.m.events.WithLabelValues(typ).Inc()
	return sseq, nil
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// progress records a progress event. Beyond the event rate it is coalesced:
// only the latest held-back progress is published, when the budget allows.
func (o *operation) progress(p *float64, message, step string, data json.RawMessage) error {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return errEnded
	}
	// A held AG-UI delta came first; keep the order.
	if err := o.flushAGUILocked(); errors.Is(err, errRateLimited) {
		o.mu.Unlock()
		return o.rateLimited(err)
	}
	defer o.mu.Unlock()
	ev := &protocol.OperationProgress{
		Type: protocol.TypeOperationProgress, OperationID: o.rec.OperationID,
		Progress: p, Message: message, Step: step, Data: data, Time: now(),
	}
	o.rec.Progress, o.rec.Message, o.rec.Step = p, message, step
	if !o.limiter.Allow() {
		o.pending = ev
		if o.flushTimer == nil {
			o.flushTimer = time.AfterFunc(o.limiter.Reserve().Delay(), o.flush)
		}
		return nil
	}
	o.pending = nil
	return o.storeLocked(ev.Type, &ev.Seq, ev)
}

// flush publishes held-back progress once the budget allows.
func (o *operation) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushTimer = nil
	if o.ended || o.pending == nil {
		return
	}
	// The reservation that armed the timer paid for this event.
	o.flushPendingLocked()
}

func (o *operation) flushPendingLocked() {
	if ev := o.pending; ev != nil {
		o.pending = nil
		if err := o.storeLocked(ev.Type, &ev.Seq, ev); err != nil {
			o.svc.log.Warn("store progress", "operation", o.rec.OperationID, "err", err)
		}
	}
}

// storeLocked publishes an event and refreshes the record now and then.
func (o *operation) storeLocked(typ string, seqField *uint64, ev any) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := o.publishLocked(ctx, typ, seqField, ev); err != nil {
		return err
	}
	if time.Since(o.lastKV) >= recordEvery {
		o.lastKV = time.Now()
		o.rec.UpdatedAt = now()
		o.stateIntoRecordLocked()
		if err := o.svc.store.put(ctx, &o.rec); err != nil {
			o.svc.log.Warn("update record", "operation", o.rec.OperationID, "err", err)
		}
	}
	return nil
}

// log records a log line. Logs are never coalesced or dropped: an operation
// that logs beyond the event rate fails with rate_limited instead.
func (o *operation) log(message string) error {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return errEnded
	}
	// Held-back progress or a held AG-UI delta came first; keep the order
	// (only one of them can be held: storing either flushes the other).
	o.flushPendingLocked()
	if err := o.flushAGUILocked(); errors.Is(err, errRateLimited) || !o.limiter.Allow() {
		o.mu.Unlock()
		return o.rateLimited(errRateLimited)
	}
	defer o.mu.Unlock()
	ev := &protocol.OperationLog{Type: protocol.TypeOperationLog, OperationID: o.rec.OperationID, Message: message, Time: now()}
	return o.storeLocked(ev.Type, &ev.Seq, ev)
}

// finish stores the final event and the final record. Only the first call
// does anything; it reports whether it was that call.
func (o *operation) finish(status, code, message string, result json.RawMessage) bool {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return false
	}
	o.flushPendingLocked()
	o.finishAGUILocked()
	o.stateIntoRecordLocked()
	o.ended = true
	o.stopTimersLocked()
	typ := protocol.TypeOperationCompleted
	switch status {
	case protocol.StatusFailed:
		typ = protocol.TypeOperationFailed
	case protocol.StatusCancelled:
		typ = protocol.TypeOperationCancelled
		code = ""
	}
	if len(result) == 0 {
		result = nil
	}
	ev := &protocol.OperationEnded{Type: typ, OperationID: o.rec.OperationID, Result: result, Code: code, Message: message, Time: now()}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	// Watchers end on the final event, so it is worth a few tries; the
	// Nats-Msg-Id header makes a retry of a publish that did land harmless.
	for attempt := 1; ; attempt++ {
		_, err := o.publishLocked(ctx, typ, &ev.Seq, ev)
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			// The record below still says how it ended.
			o.svc.log.Error("store final event", "operation", o.rec.OperationID, "err", err)
			break
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	o.rec.Status = status
	o.rec.Result = result
	o.rec.EndedAt = ev.Time
	o.rec.UpdatedAt = ev.Time
	if status == protocol.StatusFailed {
		o.rec.Failure = &protocol.Failure{Code: code, Message: message}
	}
	if err := o.svc.store.put(ctx, &o.rec); err != nil {
		o.svc.log.Error("store final record", "operation", o.rec.OperationID, "err", err)
	}
	o.unsubscribeLocked()
	onEnd := o.onEnd
	o.mu.Unlock()
	o.svc.m.finished.WithLabelValues(o.rec.AgentID, status).Inc()
	if onEnd != nil {
		onEnd()
	}
	return true
}

// handleCancel answers a cancel request from any node.
func (o *operation) handleCancel(m *nats.Msg) {
	o.mu.Lock()
	ended := o.ended
	o.mu.Unlock()
	if ended {
		_ = m.Respond([]byte(`{"ended":true}`))
		return
	}
	// Answer first, so that cancel_requested usually reaches the client
	// before the events of the agent stopping (not always: they travel
	// separately).
	_ = m.Respond([]byte(`{}`))
	o.requestStop()
}

// requestStop asks the agent to stop; for a remote agent it also arms the
// grace period after which the operation is cancelled without it.
func (o *operation) requestStop() {
	o.mu.Lock()
	stop := o.stop
	if o.kind == kindRemote && o.cancelTimer == nil && !o.ended {
		o.cancelTimer = time.AfterFunc(o.svc.cfg.KillGrace, func() {
			o.finish(protocol.StatusCancelled, "", "cancelled; the worker did not confirm within "+o.svc.cfg.KillGrace.String(), nil)
		})
	}
	o.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// snapshot returns a copy of the record.
func (o *operation) snapshot() stored {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stateIntoRecordLocked()
	return o.rec
}
