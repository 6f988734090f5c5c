package operations

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/protocol"
)

// AG-UI events of an operation (see internal/agui and docs/ag-ui.md).
//
// An agent's AG-UI event goes through the operation's agui.Run under o.mu:
// checked against the lifecycle and the state (a refusal stores nothing
// and is returned to the caller, who tells the agent), its deltas held and
// merged by the Coalescer, and what is to be stored published as
// agui_event with the operation's next seq. Held deltas are stored when
// their deadline passes (aguiTimer), and always before any other event of
// the operation (progress, log, the final event), so that events keep the
// order the agent produced them in. Only stored events count against the
// event rate.

// aguiRunLocked returns the operation's AG-UI run, creating it on first
// use. o.mu must be held.
func (o *operation) aguiRunLocked() *agui.Run {
	if o.agui == nil {
		o.agui = agui.NewRun(agui.Config{})
	}
	return o.agui
}

// aguiEvent checks and stores one AG-UI event of the agent. It returns an
// *agui.Error for a refused event (nothing was stored), errEnded,
// errRateLimited (the operation has then been failed) or a storage error.
func (o *operation) aguiEvent(raw []byte) error {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return errEnded
	}
	ev, err := agui.Parse(raw)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	// Held-back progress came first; keep the order.
	o.flushPendingLocked()
	run := o.aguiRunLocked()
	out, err := run.Accept(ev, time.Now())
	if err != nil {
		o.mu.Unlock()
		return err
	}
	err = o.storeAGUILocked(out, true)
	o.armAGUILocked()
	o.mu.Unlock()
	return o.rateLimited(err)
}

// rateLimited fails the operation when err is errRateLimited, and returns
// err. o.mu must not be held.
func (o *operation) rateLimited(err error) error {
	if errors.Is(err, errRateLimited) {
		o.finish(protocol.StatusFailed, protocol.CodeRateLimited,
			fmt.Sprintf("the agent sent more than %g events per second", o.svc.cfg.EventRate), nil)
		o.requestStop()
	}
	return err
}

// storeAGUILocked stores AG-UI events in order. With limited, each counts
// against the event rate and the first over it stops the loop with
// errRateLimited; the events closing a run are stored whatever the rate.
func (o *operation) storeAGUILocked(evs []*agui.Event, limited bool) error {
	for _, e := range evs {
		if limited && !o.limiter.Allow() {
			return errRateLimited
		}
		msg := &protocol.OperationAGUIEvent{Type: protocol.TypeAGUIEvent, OperationID: o.rec.OperationID, Event: e.Raw}
		if err := o.storeLocked(msg.Type, &msg.Seq, msg); err != nil {
			return err
		}
		o.agui.Stored(e)
		if e.Type == agui.StateSnapshot || e.Type == agui.StateDelta {
			o.stateDirty = true
		}
	}
	return nil
}

// flushAGUILocked stores the held delta, if any: call it before storing
// any other event of the operation. Errors are logged (a storage error) or
// returned (errRateLimited: the caller fails the operation once unlocked).
func (o *operation) flushAGUILocked() error {
	if o.agui == nil {
		return nil
	}
	err := o.storeAGUILocked(o.agui.Flush(), true)
	if err != nil && !errors.Is(err, errRateLimited) {
		o.svc.log.Warn("store AG-UI delta", "operation", o.rec.OperationID, "err", err)
	}
	return err
}

// armAGUILocked sets the flush timer to the held delta's deadline.
func (o *operation) armAGUILocked() {
	if o.agui == nil || o.aguiTimer != nil || o.ended {
		return
	}
	if at, ok := o.agui.Deadline(); ok {
		o.aguiTimer = time.AfterFunc(time.Until(at), o.aguiFlushDue)
	}
}

// aguiFlushDue stores the held delta once its deadline has passed.
func (o *operation) aguiFlushDue() {
	o.mu.Lock()
	o.aguiTimer = nil
	if o.ended || o.agui == nil {
		o.mu.Unlock()
		return
	}
	err := o.storeAGUILocked(o.agui.FlushDue(time.Now()), true)
	if err != nil && !errors.Is(err, errRateLimited) {
		o.svc.log.Warn("store AG-UI delta", "operation", o.rec.OperationID, "err", err)
	}
	o.armAGUILocked()
	o.mu.Unlock()
	_ = o.rateLimited(err)
}

// finishAGUILocked stores what closes the run before its final event: the
// held delta and the ends of whatever is still open (agui.Run.Finish), so
// that every stored stream is valid.
func (o *operation) finishAGUILocked() {
	if o.aguiTimer != nil {
		o.aguiTimer.Stop()
		o.aguiTimer = nil
	}
	if o.agui == nil {
		return
	}
	if err := o.storeAGUILocked(o.agui.Finish(), false); err != nil {
		o.svc.log.Warn("store AG-UI closing events", "operation", o.rec.OperationID, "err", err)
	}
}

// stateIntoRecordLocked copies the AG-UI state into the record when it
// changed, so that a watcher starting where history was dropped can get it.
func (o *operation) stateIntoRecordLocked() {
	if o.agui == nil || !o.stateDirty {
		return
	}
	b, err := json.Marshal(o.agui.State.Doc())
	if err != nil {
		o.svc.log.Warn("encode AG-UI state", "operation", o.rec.OperationID, "err", err)
		return
	}
	o.rec.AGUIState = b
	o.stateDirty = false
}

// stateSnapshot returns the agui_event (seq 0) carrying the record's AG-UI
// state as a STATE_SNAPSHOT, or nil when the operation has none: what a
// watcher gets after operation_state when history was dropped.
func stateSnapshot(rec *stored) []byte {
	if len(rec.AGUIState) == 0 {
		return nil
	}
	ev, err := agui.Make(agui.StateSnapshot, agui.KV{Key: "snapshot", Value: rec.AGUIState})
	if err != nil {
		return nil
	}
	b, _ := json.Marshal(protocol.OperationAGUIEvent{Type: protocol.TypeAGUIEvent, OperationID: rec.OperationID, Event: ev.Raw})
	return b
}

// refusalMessage is how a refused AG-UI event is described to a worker,
// in the error reply whose code is e.Code.
func refusalMessage(e *agui.Error) string {
	return e.Sentence() + " " + e.Detail
}

// refusalLog is the operation_log line that tells a command agent (and
// its watchers) that one of its AG-UI events was refused.
func refusalLog(e *agui.Error) string {
	return "tether: AG-UI event refused (" + e.Code + "): " + refusalMessage(e)
}

// beginAGUILocked starts the AG-UI run of an operation started by the
// AG-UI endpoint: when its RunAgentInput has a state other than {}, that
// state is stored as a STATE_SNAPSHOT (seq 2), so that the stored stream
// holds the run's whole state without the input (RUN_STARTED, made from
// operation_started, does not carry it). o.mu must be held.
func (o *operation) beginAGUILocked(input json.RawMessage) error {
	if o.rec.ThreadID == "" {
		return nil
	}
	var in struct {
		State json.RawMessage `json:"state"`
	}
	_ = json.Unmarshal(input, &in) // checked by the endpoint
	run := o.aguiRunLocked()
	st := string(in.State)
	if st == "" || st == "null" || st == "{}" {
		return nil
	}
	ev, err := agui.Make(agui.StateSnapshot, agui.KV{Key: "snapshot", Value: in.State})
	if err != nil {
		return fmt.Errorf("initial state of %s: %w", o.rec.OperationID, err)
	}
	if err := run.State.Check(ev); err != nil {
		return fmt.Errorf("initial state of %s: %w", o.rec.OperationID, err)
	}
	return o.storeAGUILocked([]*agui.Event{ev}, false)
}
