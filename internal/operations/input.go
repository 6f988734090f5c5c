package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// Human input: an agent asks (a command agent's {"input_request": …} line,
// a worker's input_request message), Tether stores
// operation_input_requested and the operation's status becomes
// waiting_input; the owner or an admin answers (answer_input, POST
// /api/operations/{id}/input, or an AG-UI resume entry), which reaches the
// node writing the operation on tether.opctl.<id>.input; that node stores
// operation_input_answered and delivers the answer to the agent. One
// answer per request; an unanswered request fails the operation with
// input_timeout after InputTimeout.

// maxInputRequests bounds the input requests of one operation (open or
// answered): each answer may wait in an interactive agent's queue.
const maxInputRequests = 64

// inputState is an operation's input requests.
type inputState struct {
	open     map[string]*time.Timer // request id → its timeout (nil: none)
	answered map[string]bool
	// deliver hands an answer to the agent; it must not block.
	deliver func(protocol.Input) bool
}

// has reports whether request id was made, answered or not.
func (in *inputState) has(id string) bool {
	_, open := in.open[id]
	return open || in.answered[id]
}

func inputSubject(id string) string {
	return cancelSubjectPrefix + backbone.SubjectToken(id) + ".input"
}

// inputReply is what the writer answers on the input subject.
type inputReply struct {
	Error *Error `json:"error,omitempty"`
}

// inputMsg is what Service.AnswerInput sends on the input subject.
type inputMsg struct {
	protocol.AnswerInput
	By string `json:"by"`
}

// requestInput records an agent's input request. Refusals are *Error.
func (o *operation) requestInput(reqID, prompt string, schema json.RawMessage) error {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return errEnded
	}
	switch {
	case !protocol.ValidID(reqID):
		o.mu.Unlock()
		return refuse(protocol.CodeBadRequest, "input request id %q must be 1 to 64 letters, digits, '_', '.' or '-'", reqID)
	case o.input.deliver == nil:
		o.mu.Unlock()
		return refuse(protocol.CodeBadRequest, "this agent cannot receive answers: declare its operation type interactive: true")
	case o.input.has(reqID):
		o.mu.Unlock()
		return refuse(protocol.CodeBadRequest, "input request %s exists already", reqID)
	case len(o.input.open)+len(o.input.answered) >= maxInputRequests:
		o.mu.Unlock()
		return refuse(protocol.CodeBadRequest, "an operation may make at most %d input requests", maxInputRequests)
	}
	o.flushPendingLocked()
	if err := o.flushAGUILocked(); errors.Is(err, errRateLimited) || !o.limiter.Allow() {
		o.mu.Unlock()
		return o.rateLimited(errRateLimited)
	}
	defer o.mu.Unlock()
	ev := &protocol.OperationInput{
		Type: protocol.TypeOperationInputRequested, OperationID: o.rec.OperationID,
		RequestID: reqID, Prompt: prompt, Schema: schema, Time: now(),
	}
	if err := o.storeLocked(ev.Type, &ev.Seq, ev); err != nil {
		return err
	}
	o.input.open[reqID] = o.inputTimer(reqID)
	o.setStatusLocked(protocol.StatusWaitingInput)
	return nil
}

// inputTimer returns the timer failing the operation when request reqID
// is not answered within InputTimeout (nil: no limit).
func (o *operation) inputTimer(reqID string) *time.Timer {
	d := o.svc.cfg.InputTimeout
	if d <= 0 {
		return nil
	}
	return time.AfterFunc(d, func() {
		o.finish(protocol.StatusFailed, protocol.CodeInputTimeout,
			fmt.Sprintf("input request %s was not answered within %s", reqID, d), nil)
		o.requestStop()
	})
}

// setStatusLocked changes the running status and stores the record now, so
// that listings show waiting_input at once.
func (o *operation) setStatusLocked(status string) {
	if o.rec.Status == status {
		return
	}
	o.rec.Status = status
	o.rec.UpdatedAt = now()
	o.lastKV = time.Now()
	o.stateIntoRecordLocked()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := o.svc.store.put(ctx, &o.rec); err != nil {
		o.svc.log.Warn("update record", "operation", o.rec.OperationID, "err", err)
	}
}

// answerInput stores the answer to an open request and delivers it.
func (o *operation) answerInput(a protocol.AnswerInput, by string) *Error {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return refuse(protocol.CodeNotFound, "operation %s has ended", o.rec.OperationID)
	}
	timer, open := o.input.open[a.RequestID]
	if !open {
		o.mu.Unlock()
		if o.input.answered[a.RequestID] {
			return refuse(protocol.CodeAlreadyAnswered, "input request %s has been answered", a.RequestID)
		}
		return refuse(protocol.CodeNotFound, "operation %s has no input request %q", o.rec.OperationID, a.RequestID)
	}
	if timer != nil {
		timer.Stop()
	}
	delete(o.input.open, a.RequestID)
	o.input.answered[a.RequestID] = true
	value := a.Value
	if len(value) == 0 {
		value = json.RawMessage("null")
	}
	ev := &protocol.OperationInput{
		Type: protocol.TypeOperationInputAnswered, OperationID: o.rec.OperationID,
		RequestID: a.RequestID, Status: a.Status, Value: value, By: by, Time: now(),
	}
	// Answers are not the agent's events: they do not count against its
	// rate. Stored before delivery, so that the agent's reaction follows it.
	if err := o.storeLocked(ev.Type, &ev.Seq, ev); err != nil {
		o.svc.log.Warn("store input answer", "operation", o.rec.OperationID, "err", err)
	}
	if len(o.input.open) == 0 {
		o.setStatusLocked(protocol.StatusRunning)
	}
	deliver := o.input.deliver
	o.mu.Unlock()
	if !deliver(protocol.Input{Type: protocol.TypeInput, OperationID: o.rec.OperationID, RequestID: a.RequestID, Status: a.Status, Value: value}) {
		o.svc.log.Warn("input answer not delivered", "operation", o.rec.OperationID, "request", a.RequestID)
	}
	return nil
}

// stopInputLocked stops the timeouts of open requests (the operation ends).
func (o *operation) stopInputLocked() {
	for _, t := range o.input.open {
		if t != nil {
			t.Stop()
		}
	}
}

// handleInput answers an answer routed from any node.
func (o *operation) handleInput(m *nats.Msg) {
	var msg inputMsg
	var reply inputReply
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		reply.Error = refuse(protocol.CodeBadRequest, "bad answer: %v", err)
	} else {
		reply.Error = o.answerInput(msg.AnswerInput, msg.By)
	}
	b, _ := json.Marshal(reply)
	_ = m.Respond(b)
}

// AnswerInput answers an input request of an operation owned by cl (or
// any, for admins), on whichever node runs it.
func (s *Service) AnswerInput(ctx context.Context, cl *auth.Claims, a protocol.AnswerInput) error {
	switch a.Status {
	case "":
		a.Status = "resolved"
	case "resolved", "cancelled":
	default:
		return refuse(protocol.CodeBadRequest, `status must be "resolved" or "cancelled"`)
	}
	if len(a.Value) > 0 && !json.Valid(a.Value) {
		return refuse(protocol.CodeBadRequest, "value must be JSON")
	}
	if len(a.Value) > s.cfg.MaxInputBytes && s.cfg.MaxInputBytes > 0 {
		return refuse(protocol.CodeInputTooLarge, "value is %d bytes; the limit is %d", len(a.Value), s.cfg.MaxInputBytes)
	}
	rec, err := s.authorize(ctx, cl, a.OperationID)
	if err != nil {
		return err
	}
	if !protocol.Live(rec.Status) {
		return refuse(protocol.CodeNotFound, "operation %s has already ended (%s)", a.OperationID, rec.Status)
	}
	b, err := json.Marshal(inputMsg{AnswerInput: a, By: cl.Subject})
	if err != nil {
		return fmt.Errorf("encode answer to %s: %w", a.OperationID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(ctx, inputSubject(a.OperationID), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return refuse(protocol.CodeNotFound, "operation %s is not running on any node", a.OperationID)
	}
	if err != nil {
		return fmt.Errorf("answer input of %s: %w", a.OperationID, err)
	}
	var reply inputReply
	if err := json.Unmarshal(resp.Data, &reply); err != nil {
		return fmt.Errorf("answer input of %s: bad reply: %w", a.OperationID, err)
	}
	if reply.Error != nil {
		return reply.Error
	}
	return nil
}

// openRequests returns the ids of the input requests waiting for an
// answer, sorted.
func (o *operation) openRequests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(maps.Keys(o.input.open))
}
