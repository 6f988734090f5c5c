package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/protocol"
)

// Reclaiming remote operations.
//
// A remote operation's writer is the node its worker is connected to. When
// that connection ends (the network dropped, the node shut down or died),
// the operation is not failed at once: it is detached, still running to
// its watchers, with an operation_log line saying so, and a worker of its
// agent has WorkerGrace to take it back with reclaim, through any node.
//
//   - Worker reconnects to the same node: that node still writes the
//     operation (detach only armed graceTimer), and reattach gives it to
//     the new connection.
//   - Worker reconnects to another node B while the old node A is up: B
//     asks A, on tether.opctl.<id>.reclaim, to hand the operation over; A
//     stores what it held back and the record, stops writing without a
//     final event (releaseLocked) and answers with the answers it could not
//     deliver meanwhile.
//     Should B never claim it (the reply was lost, or B died first), A
//     fails it after the grace unless some node writes it by then
//     (expireLater, as for a node that stopped).
//   - A shut down (it released its remote operations, see stopRunning) or
//     died: nobody answers, and B takes the operation over from the store.
//
// Taking over is a compare-and-set write of the record naming the new
// writer (store.claim), made by a node that already answers the reclaim
// subject for the operation, so that exactly one node writes it: a second
// reclaimer is told operation_held, and a node whose claim lost reads the
// record again and asks its new writer. The new writer continues the
// numbering after the last stored event and rebuilds, from the stored
// events, the open input requests and the AG-UI run (replayLocked).
//
// When the grace passes without a reclaim, whoever is the writer fails the
// operation with agent_disconnected: the node holding the detached
// operation (its graceTimer), or for a node that stopped, one of the nodes
// that learnt it (NodeDown, or recoverInterrupted on its restart): each
// arms a timer (expireLater), and the one whose claim succeeds ends it.

// handoverRequest is what a reclaiming node sends on the reclaim subject.
// With Probe, it only asks whether some node writes the operation (the
// answer is Held, and nothing changes): a node about to fail the
// operations of a node it believes down asks first.
type handoverRequest struct {
	Node  string `json:"node"`
	Probe bool   `json:"probe,omitempty"`
}

// handoverReply answers it. Neither Ended nor Held: the operation is the
// requester's to claim, with the answers stored while it was detached and
// not delivered, and whether a cancel was requested and not confirmed.
type handoverReply struct {
	Ended   bool             `json:"ended,omitempty"`
	Held    bool             `json:"held,omitempty"`
	Answers []protocol.Input `json:"answers,omitempty"`
	Cancel  bool             `json:"cancel,omitempty"`
}

// maxClaimAttempts bounds how often a reclaim reads the record again after
// another node took the operation over first.
const maxClaimAttempts = 3

// bindRemote routes a remote operation's cancels and answers to whichever
// worker holds it, and frees its slot when it ends.
func (s *Service) bindRemote(o *operation) {
	id, owner := o.rec.OperationID, o.rec.Owner
	o.stop = func() {
		if w := o.currentHolder(); w != nil {
			w.c.Send(protocol.TypeCancel, protocol.Cancel{Type: protocol.TypeCancel, OperationID: id})
		}
	}
	o.input.deliver = func(in protocol.Input) bool {
		o.mu.Lock()
		w := o.holder
		if w == nil {
			// Detached: the worker that reclaims it gets the answer.
			o.undelivered = append(o.undelivered, in)
		}
		o.mu.Unlock()
		return w == nil || w.c.Send(protocol.TypeInput, in)
	}
	o.onEnd = func() {
		if w := o.currentHolder(); w != nil {
			w.unassign(id)
		}
		s.untrack(o)
		s.releaseSlot(owner, "")
	}
}

func (o *operation) currentHolder() *worker {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.holder
}

// detach leaves the operation without a worker when w's connection ended:
// it fails with agent_disconnected after WorkerGrace unless reclaimed.
func (o *operation) detach(w *worker) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended || o.holder != w {
		return
	}
	o.holder = nil
	grace := o.svc.cfg.WorkerGrace
	o.graceTimer = time.AfterFunc(grace, func() { o.expire(grace) })
	o.noteLocked(fmt.Sprintf("tether: the worker disconnected; the operation waits up to %s for it to reconnect and reclaim it", grace))
}

// expire fails the operation whose grace passed without a reclaim.
func (o *operation) expire(grace time.Duration) {
	o.mu.Lock()
	o.expiring = true
	o.mu.Unlock()
	o.finish(protocol.StatusFailed, protocol.CodeAgentDisconnected,
		fmt.Sprintf("the worker running the operation disconnected and did not reclaim it within %s", grace), nil)
}

// reclaimedLocked notes that a worker holds the operation again, through
// this node. o.mu must be held.
func (o *operation) reclaimedLocked() {
	o.noteLocked("tether: a worker reclaimed the operation through node " + o.svc.cfg.Node)
}

// errHeld refuses a reclaim of operation id that another connection holds.
func errHeld(id string) *Error {
	return refuse(protocol.CodeOperationHeld, "operation %s is held by another worker connection", id)
}

// noteLocked stores one of Tether's own operation_log lines, after what
// the agent had held back; it does not count against the agent's rate.
// o.mu must be held.
func (o *operation) noteLocked(msg string) {
	o.flushHeldLocked()
	ev := &protocol.OperationLog{Type: protocol.TypeOperationLog, OperationID: o.rec.OperationID, Message: msg, Time: now()}
	if err := o.storeLocked(ev.Type, &ev.Seq, ev); err != nil {
		o.svc.log.Warn("store note", "operation", o.rec.OperationID, "err", err)
	}
}

// flushHeldLocked stores held-back progress and a held AG-UI delta,
// whatever the rate: the next writer could not. o.mu must be held.
func (o *operation) flushHeldLocked() {
	o.flushPendingLocked()
	if o.agui == nil {
		return
	}
	if err := o.storeAGUILocked(o.agui.Flush(), false); err != nil {
		o.svc.log.Warn("store AG-UI delta", "operation", o.rec.OperationID, "err", err)
	}
}

// release makes this node stop writing the operation without ending it (a
// shutdown), after storing why; false if it had ended or is expiring.
func (o *operation) release(why string) bool {
	o.mu.Lock()
	if o.ended || o.expiring || (o.graceTimer != nil && !o.graceTimer.Stop()) {
		o.mu.Unlock()
		return false
	}
	o.noteLocked(why)
	o.releaseLocked()
	o.mu.Unlock()
	o.svc.released(o)
	return true
}

// releaseLocked stores what was held back and the record, so that the
// next writer continues from them, and stops writing: timers stopped,
// control subjects unsubscribed, every later event refused as ended.
// o.mu must be held.
func (o *operation) releaseLocked() {
	o.flushHeldLocked()
	o.ended, o.released = true, true
	o.stopTimersLocked()
	o.stateIntoRecordLocked()
	o.rec.UpdatedAt = now()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := o.svc.store.put(ctx, &o.rec); err != nil {
		o.svc.log.Warn("store released record", "operation", o.rec.OperationID, "err", err)
	}
	o.unsubscribeLocked()
}

// released forgets an operation this node released.
func (s *Service) released(o *operation) {
	if w := o.currentHolder(); w != nil {
		w.unassign(o.rec.OperationID)
	}
	s.untrack(o)
	s.releaseSlot(o.rec.Owner, "")
}

// handleHandover answers another node's request to take the operation
// over for a worker that reclaims it there.
func (o *operation) handleHandover(m *nats.Msg) {
	var req handoverRequest
	_ = json.Unmarshal(m.Data, &req)
	var reply handoverReply
	handed := false
	o.mu.Lock()
	switch {
	case req.Probe && !o.released:
		reply.Held = true
	case o.released:
		// Released already (a shutdown): it is the requester's.
	case o.ended || o.expiring || (o.graceTimer != nil && !o.graceTimer.Stop()):
		reply.Ended = true
	case o.holder != nil:
		reply.Held = true
	default:
		reply.Answers, o.undelivered = o.undelivered, nil
		reply.Cancel = o.cancelTimer != nil
		o.releaseLocked()
		handed = true
	}
	rec := o.rec
	o.mu.Unlock()
	if handed {
		o.svc.released(o)
		// Should the requester never claim it (the reply was lost, or it
		// died first), the operation would run on with no writer and no
		// node to fail it: this node fails it after the grace unless some
		// node writes it by then. Armed before the reply, so that whoever
		// reads the reply finds it armed.
		o.svc.expireLater(&rec, "handed over to node "+req.Node)
	}
	b, _ := json.Marshal(reply)
	_ = m.Respond(b)
}

// reattach gives the detached operation to w, a new connection of its
// worker on this node.
func (o *operation) reattach(w *worker) (handoverReply, *Error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.released:
		// Handed over to another node meanwhile: ask it.
		return handoverReply{}, errRetryClaim
	case o.ended || o.expiring:
		return handoverReply{}, refuse(protocol.CodeNotFound, "operation %s has ended", o.rec.OperationID)
	case o.holder == w:
		return handoverReply{}, nil
	case o.holder != nil:
		return handoverReply{}, errHeld(o.rec.OperationID)
	case o.graceTimer != nil && !o.graceTimer.Stop():
		// The grace has just passed: the operation is failing.
		return handoverReply{}, refuse(protocol.CodeNotFound, "operation %s has ended", o.rec.OperationID)
	}
	o.graceTimer = nil
	o.holder = w
	r := handoverReply{Answers: o.undelivered, Cancel: o.cancelTimer != nil}
	o.undelivered = nil
	o.reclaimedLocked()
	return r, nil
}

// reclaim gives operation id to worker connection w, from wherever it is
// written now: this node, another live node, or the store.
func (s *Service) reclaim(w *worker, id string) (*operation, handoverReply, *Error) {
	if !protocol.ValidID(id) {
		return nil, handoverReply{}, refuse(protocol.CodeNotFound, "no operation %q", id)
	}
	s.mu.Lock()
	closing, noStarts := s.closing, s.noStarts
	s.mu.Unlock()
	if closing || noStarts {
		return nil, handoverReply{}, refuse(protocol.CodeNodeDraining, "this node is draining before a restart; reclaim the operation through another node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*storeTimeout)
	defer cancel()
	for range maxClaimAttempts {
		rec, err := s.store.get(ctx, id)
		if errors.Is(err, errNotFound) {
			return nil, handoverReply{}, refuse(protocol.CodeNotFound, "no operation %s", id)
		}
		if err != nil {
			s.log.Error("reclaim: read record", "operation", id, "err", err)
			return nil, handoverReply{}, refuse(protocol.CodeInternal, "the operation could not be read; try again")
		}
		if e := w.mayReclaim(rec); e != nil {
			return nil, handoverReply{}, e
		}
		s.mu.Lock()
		o := s.local[id]
		s.mu.Unlock()
		if o != nil {
			r, e := o.reattach(w)
			if e != errRetryClaim {
				if e == nil && !w.assign(o) {
					o.detach(w) // the connection ended meanwhile
				}
				return o, r, e
			}
		}
		r, e := s.requestHandover(ctx, id, false)
		if e != nil {
			return nil, handoverReply{}, e
		}
		o, e = s.takeOver(ctx, w, rec, r)
		if e == errRetryClaim {
			continue
		}
		if e != nil {
			return nil, handoverReply{}, e
		}
		return o, r, nil
	}
	return nil, handoverReply{}, refuse(protocol.CodeOperationHeld, "operation %s was taken over by another node meanwhile", id)
}

// mayReclaim checks that w may reclaim the operation of rec.
func (w *worker) mayReclaim(rec *stored) *Error {
	id := rec.OperationID
	// An ended operation gets the same answer whichever of the record, the
	// operation's own state or its writer's reply tells first that it ended
	// (its final event reaches watchers before its record says so).
	switch {
	case rec.Kind != kindRemote:
		return refuse(protocol.CodeNotFound, "operation %s is not a remote operation", id)
	case !protocol.Live(rec.Status):
		return refuse(protocol.CodeNotFound, "operation %s has ended", id)
	}
	w.mu.Lock()
	_, ok := w.agents[rec.AgentID]
	w.mu.Unlock()
	if !ok {
		return refuse(protocol.CodeForbidden, "operation %s belongs to agent %s, which this connection has not registered", id, rec.AgentID)
	}
	return nil
}

// requestHandover asks the node writing operation id, if any, to hand it
// over. A reply without Ended or Held, or no responder at all (its node
// released it or died), lets the caller claim it.
func (s *Service) requestHandover(ctx context.Context, id string, probe bool) (handoverReply, *Error) {
	var r handoverReply
	b, _ := json.Marshal(handoverRequest{Node: s.cfg.Node, Probe: probe})
	// The writer answers under its lock, after a write that may take up
	// to storeTimeout.
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(rctx, reclaimSubject(id), b)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return r, nil
	case err != nil:
		s.log.Warn("reclaim: handover request", "operation", id, "err", err)
		return r, refuse(protocol.CodeInternal, "the node writing operation %s did not answer; try again", id)
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		s.log.Warn("reclaim: bad handover reply", "operation", id, "err", err)
		return r, refuse(protocol.CodeInternal, "the node writing operation %s answered unexpectedly; try again", id)
	}
	switch {
	case r.Ended:
		return r, refuse(protocol.CodeNotFound, "operation %s has ended", id)
	case r.Held:
		return r, errHeld(id)
	}
	return r, nil
}

// errRetryClaim: another node took the operation over first; read the
// record again.
var errRetryClaim = &Error{Code: protocol.CodeOperationHeld, Message: "taken over meanwhile"}

// takeOver makes this node the writer of the operation seen in rec, for
// worker connection w, with what the previous writer handed over.
func (s *Service) takeOver(ctx context.Context, w *worker, seen *stored, r handoverReply) (*operation, *Error) {
	o := s.newOperation(&stored{OperationRecord: seen.OperationRecord}, kindRemote)
	o.holder = w
	s.bindRemote(o)
	o.mu.Lock()
	ended, e := o.claimLocked(ctx, seen)
	if e != nil {
		o.mu.Unlock()
		return nil, e
	}
	if !ended {
		if err := o.subscribeLocked(); err != nil {
			s.log.Error("reclaim: subscribe", "operation", o.rec.OperationID, "err", err)
			ended = true
		}
	}
	if ended {
		// Claimed, but its events could not be read back: it cannot go on
		// without double numbering, so it ends here. It was never adopted:
		// nothing to free.
		o.onEnd = nil
		o.mu.Unlock()
		o.finish(protocol.StatusFailed, protocol.CodeInterrupted, "the operation could not be taken over by node "+s.cfg.Node, nil)
		return nil, refuse(protocol.CodeInternal, "operation %s could not be taken over and was failed", seen.OperationID)
	}
	o.reclaimedLocked()
	o.mu.Unlock()
	s.adopt(o)
	if !w.assign(o) {
		o.detach(w)
	}
	return o, nil
}

// claimLocked takes the operation over from the store: it answers the
// reclaim subject as the operation's (held, or ending), claims the record
// seen unless it changed, and rebuilds the state from the stored events.
// ended reports a claim made whose events could not be read back. o.mu
// must be held; on an error nothing is claimed.
func (o *operation) claimLocked(ctx context.Context, seen *stored) (ended bool, e *Error) {
	s, id := o.svc, seen.OperationID
	var err error
	// First answer for the operation, so that a node that reads the claim
	// below and asks finds this one; then claim.
	if o.reclaimSub, err = s.nc.Subscribe(reclaimSubject(id), o.handleHandover); err == nil {
		err = s.nc.Flush()
	}
	if err != nil {
		s.log.Error("claim: subscribe", "operation", id, "err", err)
		e = refuse(protocol.CodeInternal, "operation %s could not be taken over; try again", id)
	} else {
		ended, e = o.claimRecordLocked(ctx, seen)
	}
	if e != nil {
		// Not claimed: a request that waited for o.mu meanwhile is told
		// the operation is its to claim.
		o.released = true
		o.unsubscribeLocked()
	}
	return ended, e
}

// claimRecordLocked is claimLocked's compare-and-set write of the record
// and replay of the events. o.mu must be held.
func (o *operation) claimRecordLocked(ctx context.Context, seen *stored) (ended bool, e *Error) {
	s, id := o.svc, seen.OperationID
	rec, err := s.store.get(ctx, id)
	switch {
	case errors.Is(err, errNotFound):
		return false, refuse(protocol.CodeNotFound, "no operation %s", id)
	case err != nil:
		s.log.Error("claim: read record", "operation", id, "err", err)
		return false, refuse(protocol.CodeInternal, "operation %s could not be read; try again", id)
	case !protocol.Live(rec.Status):
		return false, refuse(protocol.CodeNotFound, "operation %s has ended", id)
	case rec.Node != seen.Node || rec.Claim != seen.Claim:
		return false, errRetryClaim
	}
	rec.Node, rec.Claim = s.cfg.Node, newID()
	if err := s.store.claim(ctx, rec); errors.Is(err, errClaimed) {
		return false, errRetryClaim
	} else if err != nil {
		s.log.Error("claim: write record", "operation", id, "err", err)
		return false, refuse(protocol.CodeInternal, "operation %s could not be taken over; try again", id)
	}
	o.rec, o.seq = *rec, rec.LastSeq
	if err := o.replayLocked(ctx); errors.Is(err, errEnded) {
		return false, refuse(protocol.CodeNotFound, "operation %s has ended", id)
	} else if err != nil {
		s.log.Error("claim: read events", "operation", id, "err", err)
		return true, nil
	}
	o.lastKV = time.Now()
	return false, nil
}

// replayLocked rebuilds from the stored events what the previous writer
// knew: the last seq, the open input requests (their timeouts start
// again) and the AG-UI run. When the last event ended the operation, it
// corrects the record and returns errEnded. o.mu must be held.
func (o *operation) replayLocked(ctx context.Context) error {
	id := o.rec.OperationID
	last, err := o.svc.store.lastEvent(ctx, id)
	if err != nil {
		return err
	}
	o.seq, o.rec.LastSeq = last.Seq, last.Seq
	if isFinal(last.Type) {
		o.rec.Status = statusOf(last.Type)
		o.ended = true
		if err := o.svc.store.put(ctx, &o.rec); err != nil {
			o.svc.log.Warn("correct record", "operation", id, "err", err)
		}
		return errEnded
	}
	if o.rec.ThreadID != "" {
		o.aguiRunLocked()
	}
	r, err := newEventReader(ctx, o.svc, id, o.rec.StreamSeq)
	if err != nil {
		return err
	}
	defer r.close()
	for {
		m, _, err := r.next()
		if err != nil {
			return err
		}
		seq, _ := strconv.ParseUint(m.Headers().Get(headerSeq), 10, 64)
		o.applyLocked(m.Headers().Get(headerType), m.Data())
		if seq >= last.Seq {
			break
		}
	}
	for reqID := range o.input.open {
		o.input.open[reqID] = o.inputTimer(reqID)
	}
	o.rec.Status = protocol.StatusRunning
	if len(o.input.open) > 0 {
		o.rec.Status = protocol.StatusWaitingInput
	}
	return nil
}

// applyLocked replays one stored event into the operation's state.
func (o *operation) applyLocked(typ string, data []byte) {
	switch typ {
	case protocol.TypeOperationInputRequested, protocol.TypeOperationInputAnswered:
		var ev protocol.OperationInput
		if json.Unmarshal(data, &ev) != nil {
			return
		}
		if typ == protocol.TypeOperationInputRequested {
			o.input.open[ev.RequestID] = nil
		} else {
			delete(o.input.open, ev.RequestID)
			o.input.answered[ev.RequestID] = true
		}
	case protocol.TypeAGUIEvent:
		var ev protocol.OperationAGUIEvent
		if json.Unmarshal(data, &ev) != nil {
			return
		}
		if e, err := agui.Parse(ev.Event); err == nil {
			o.aguiRunLocked().Stored(e)
		}
	}
}

// adopt tracks an operation taken over, in its owner's count without its
// limits: it was admitted when it started.
func (s *Service) adopt(o *operation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local[o.rec.OperationID] = o
	s.total++
	s.perUser[o.rec.Owner]++
}

// expireLater arms the failure, after WorkerGrace, of the remote operation
// rec that no node writes now (why says how that came about), unless a
// worker reclaims it meanwhile.
func (s *Service) expireLater(rec *stored, why string) {
	s.mu.Lock()
	armed := !s.closing && s.expiries[rec.OperationID] == nil
	if armed {
		s.expiries[rec.OperationID] = time.AfterFunc(s.cfg.WorkerGrace, func() { s.expireOrphan(rec) })
	}
	s.mu.Unlock()
	if armed {
		s.log.Info("remote operation detached: "+why+"; waiting for its worker to reclaim it",
			"operation", rec.OperationID, "agent", rec.AgentID, "node", rec.Node, "grace", s.cfg.WorkerGrace)
	}
}

// expireOrphan fails rec's operation with agent_disconnected, if no node
// writes it and its record has not changed since it was seen: no worker
// reclaimed it and no other node ended it first.
func (s *Service) expireOrphan(rec *stored) {
	s.mu.Lock()
	delete(s.expiries, rec.OperationID)
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.expiring.Add(1)
	s.mu.Unlock()
	defer s.expiring.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 3*storeTimeout)
	defer cancel()
	// A node believed down that still writes the operation (its heartbeats
	// were late) answers, and keeps it: its own grace timer applies.
	if _, e := s.requestHandover(ctx, rec.OperationID, true); e != nil {
		if e.Code == protocol.CodeInternal {
			s.log.Warn("expire detached operation", "operation", rec.OperationID, "err", e)
		}
		return
	}
	o := s.newOperation(&stored{OperationRecord: rec.OperationRecord}, kindRemote)
	o.expiring = true
	o.mu.Lock()
	_, e := o.claimLocked(ctx, rec)
	o.mu.Unlock()
	if e != nil {
		if e != errRetryClaim && e.Code != protocol.CodeNotFound {
			s.log.Warn("expire detached operation", "operation", rec.OperationID, "err", e)
		}
		return
	}
	s.log.Warn("remote operation failed: no worker reclaimed it", "operation", rec.OperationID, "agent", rec.AgentID, "grace", s.cfg.WorkerGrace)
	o.expire(s.cfg.WorkerGrace)
}

// stopExpiries stops the pending expiries and waits for those running.
func (s *Service) stopExpiries() {
	s.mu.Lock()
	for id, t := range s.expiries {
		t.Stop()
		delete(s.expiries, id)
	}
	s.mu.Unlock()
	s.expiring.Wait()
}
