package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// StreamName is the JetStream stream holding every operation event.
const StreamName = "TETHER_OPERATIONS"

// BucketName is the JetStream key-value bucket holding operation records,
// keyed by operation id.
const BucketName = "TETHER_OPERATIONS"

// AgentsBucket is the key-value bucket remembering which remote agents have
// ever registered, so that an agent without a worker right now is reported
// as agent_unavailable rather than unknown_agent.
const AgentsBucket = "TETHER_AGENTS"

// Subjects. Operation and agent ids go through backbone.SubjectToken because
// they may contain dots.
const (
	// EventSubjectPrefix + token(operation id) carries the operation's events
	// into StreamName.
	EventSubjectPrefix = "tether.op."
	// cancelSubjectPrefix + token(operation id) + ".cancel" reaches the node
	// writing the operation, whichever it is; ".input" and ".reclaim" too
	// (input.go, reclaim.go).
	cancelSubjectPrefix = "tether.opctl."
	// RunSubjectPrefix + token(agent id) + ".run" reaches, in queue group
	// WorkerQueue, one node holding a worker of the agent.
	RunSubjectPrefix = "tether.agents."
	// WorkerQueue is the queue group of run subscriptions.
	WorkerQueue = "workers"
)

// Headers of stored events: the per-operation seq and the message type, so
// that readers need not decode the JSON to route or skip an event.
const (
	headerSeq  = "Tether-Seq"
	headerType = "Tether-Type"
)

func eventSubject(id string) string { return EventSubjectPrefix + backbone.SubjectToken(id) }
func cancelSubject(id string) string {
	return cancelSubjectPrefix + backbone.SubjectToken(id) + ".cancel"
}
func reclaimSubject(id string) string {
	return cancelSubjectPrefix + backbone.SubjectToken(id) + ".reclaim"
}
func runSubject(agent string) string { return RunSubjectPrefix + backbone.SubjectToken(agent) + ".run" }

// errNotFound reports a missing operation record or event.
var errNotFound = errors.New("not found")

// stored is an operation record as kept in the bucket: the public record and
// what readers need to find its events.
type stored struct {
	protocol.OperationRecord
	// StreamSeq is the stream sequence of the operation_started event; a
	// reader starts there instead of scanning the stream from its start.
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// AGUIState is the operation's AG-UI state (agui.State) as of the
	// record's update: what a watcher starting where history was dropped
	// gets as a STATE_SNAPSHOT. Absent when the agent never set one.
	AGUIState json.RawMessage `json:"agui_state,omitempty"`
	// ThreadID is the threadId of an operation started by the AG-UI
	// endpoint (empty otherwise: its threadId is then its operation id).
	ThreadID string `json:"thread_id,omitempty"`
	// Claim is set, fresh, by each node that takes the operation over
	// (reclaim.go), so that its compare-and-set write is never mistaken
	// for another node's identical one.
	Claim string `json:"claim,omitempty"`
	// rev is the bucket revision the record was read at (get, list): what
	// claim compares against.
	rev uint64
}

// store is the operations' JetStream storage: the event stream and the
// record bucket.
type store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	agents jetstream.KeyValue
	bb     *backbone.Backbone
}

func openStore(ctx context.Context, bb *backbone.Backbone, maxAge time.Duration, maxBytes int64) (*store, error) {
	st, err := bb.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Tether agent operation events",
		Subjects:    []string{EventSubjectPrefix + "*"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Replicas:    bb.Replicas,
		// Writers set Nats-Msg-Id so that a retried publish is not stored
		// twice; two minutes covers any retry.
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketName,
		Description: "Tether agent operation records",
		// Records live as long as their events: a record without events
		// could not be resumed, and events without a record could not be
		// authorised.
		TTL:      maxAge,
		Storage:  jetstream.FileStorage,
		Replicas: bb.Replicas,
	})
	if err != nil {
		return nil, err
	}
	agents, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      AgentsBucket,
		Description: "Tether remote agents seen",
		Storage:     jetstream.FileStorage,
		Replicas:    bb.Replicas,
	})
	if err != nil {
		return nil, err
	}
	return &store{js: bb.JS, stream: st, kv: kv, agents: agents, bb: bb}, nil
}

// get returns an operation's record.
func (s *store) get(ctx context.Context, id string) (*stored, error) {
	var e jetstream.KeyValueEntry
	err := backbone.Retry(ctx, func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, id)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get record %s: %w", id, err)
	}
	var rec stored
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", id, err)
	}
	rec.rev = e.Revision()
	return &rec, nil
}

// errClaimed is claim's conflict: the record changed since it was read.
var errClaimed = errors.New("the record changed since it was read")

// claim makes this node the writer of rec, read at rec.rev, by writing it
// only if nobody did meanwhile; it fails with errClaimed otherwise.
func (s *store) claim(ctx context.Context, rec *stored) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", rec.OperationID, err)
	}
	rev, err := backbone.UpdateKey(ctx, s.kv, rec.OperationID, b, rec.rev)
	if backbone.IsConflict(err) {
		return errClaimed
	}
	if err != nil {
		return fmt.Errorf("claim record %s: %w", rec.OperationID, err)
	}
	rec.rev = rev
	return nil
}

// create claims id for rec; it fails with errExists if the id is taken.
func (s *store) create(ctx context.Context, rec *stored) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", rec.OperationID, err)
	}
	// On a full disk no operation starts: its events could not be stored.
	if err := s.bb.Writable(); err != nil {
		return refuse(protocol.CodeStorageFull, "the node's storage is full: the operation was not started; try again later")
	}
	_, err = backbone.CreateKey(ctx, s.kv, rec.OperationID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errExists
	}
	if err = s.bb.WriteResult(err); errors.Is(err, backbone.ErrStorageFull) {
		return refuse(protocol.CodeStorageFull, "the node's storage is full: the operation was not started; try again later")
	}
	if err != nil {
		return fmt.Errorf("create record %s: %w", rec.OperationID, err)
	}
	return nil
}

var errExists = errors.New("exists")

// put stores rec; only the operation's writer calls it after creation.
func (s *store) put(ctx context.Context, rec *stored) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", rec.OperationID, err)
	}
	if err := backbone.Retry(ctx, func(ctx context.Context) error {
		_, err := s.kv.Put(ctx, rec.OperationID, b)
		return err
	}); err != nil {
		return fmt.Errorf("put record %s: %w", rec.OperationID, err)
	}
	return nil
}

// release frees an id claimed by an operation that never started.
func (s *store) release(ctx context.Context, id string) error {
	if err := s.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("release id %s: %w", id, err)
	}
	return nil
}

// list returns every record in the bucket.
func (s *store) list(ctx context.Context) ([]*stored, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*stored
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return out, nil
			}
			if e == nil {
				// The watcher sends nil once the current values are all in.
				return out, nil
			}
			var rec stored
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				continue // not ours to fail a listing over
			}
			rec.rev = e.Revision()
			out = append(out, &rec)
		case <-ctx.Done():
			return nil, fmt.Errorf("list records: %w", ctx.Err())
		}
	}
}

// publish stores one encoded event and returns its stream sequence.
func (s *store) publish(ctx context.Context, id, typ string, seq uint64, frame []byte) (uint64, error) {
	seqStr := strconv.FormatUint(seq, 10)
	msg := &nats.Msg{
		Subject: eventSubject(id),
		Header: nats.Header{
			headerSeq:             []string{seqStr},
			headerType:            []string{typ},
			jetstream.MsgIDHeader: []string{id + ":" + seqStr},
		},
		Data: frame,
	}
	// Its message ID (operation:seq) makes a retry safe: a copy stored by
	// an attempt whose acknowledgement was lost is not stored twice.
	var ack *jetstream.PubAck
	err := backbone.Retry(ctx, func(ctx context.Context) (err error) {
		ack, err = s.js.PublishMsg(ctx, msg)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store %s event %d of %s: %w", typ, seq, id, err)
	}
	return ack.Sequence, nil
}

// storedEvent is an event read back from the stream.
type storedEvent struct {
	Seq       uint64
	Type      string
	StreamSeq uint64
	Data      []byte
}

func eventOf(m *jetstream.RawStreamMsg) storedEvent {
	seq, _ := strconv.ParseUint(m.Header.Get(headerSeq), 10, 64)
	return storedEvent{Seq: seq, Type: m.Header.Get(headerType), StreamSeq: m.Sequence, Data: m.Data}
}

// lastEvent returns the operation's latest stored event.
func (s *store) lastEvent(ctx context.Context, id string) (storedEvent, error) {
	var m *jetstream.RawStreamMsg
	err := backbone.Retry(ctx, func(ctx context.Context) (err error) {
		m, err = s.stream.GetLastMsgForSubject(ctx, eventSubject(id))
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return storedEvent{}, errNotFound
	}
	if err != nil {
		return storedEvent{}, fmt.Errorf("last event of %s: %w", id, err)
	}
	return eventOf(m), nil
}

// firstEvent returns the operation's oldest event still stored at or after
// stream sequence from.
func (s *store) firstEvent(ctx context.Context, id string, from uint64) (storedEvent, error) {
	var m *jetstream.RawStreamMsg
	err := backbone.Retry(ctx, func(ctx context.Context) (err error) {
		m, err = s.stream.GetMsg(ctx, max(from, 1), jetstream.WithGetMsgSubject(eventSubject(id)))
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return storedEvent{}, errNotFound
	}
	if err != nil {
		return storedEvent{}, fmt.Errorf("first event of %s: %w", id, err)
	}
	return eventOf(m), nil
}

// rememberAgent records that a worker registered agent. Agent ids are
// valid keys as they are (see protocol.ValidID).
func (s *store) rememberAgent(ctx context.Context, agent string, ops []string) error {
	b, _ := json.Marshal(map[string]any{"agent_id": agent, "operations": ops, "registered_at": time.Now().UTC().Format(time.RFC3339)})
	if _, err := s.agents.Put(ctx, agent, b); err != nil {
		return fmt.Errorf("remember agent %s: %w", agent, err)
	}
	return nil
}

// remoteAgents returns every agent a worker ever registered, with the
// operation types it registered last.
func (s *store) remoteAgents(ctx context.Context) ([]AgentInfo, error) {
	lister, err := s.agents.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	var out []AgentInfo
	for key := range lister.Keys() {
		e, err := s.agents.Get(ctx, key)
		if err != nil {
			continue // deleted meanwhile
		}
		var rec struct {
			Operations []string `json:"operations"`
		}
		_ = json.Unmarshal(e.Value(), &rec)
		out = append(out, AgentInfo{AgentID: key, Kind: kindRemote, Operations: rec.Operations})
	}
	return out, nil
}

// knownAgent reports whether a worker ever registered agent.
func (s *store) knownAgent(ctx context.Context, agent string) bool {
	_, err := s.agents.Get(ctx, agent)
	return err == nil
}

// isFinal reports whether typ ends an operation.
func isFinal(typ string) bool {
	switch typ {
	case protocol.TypeOperationCompleted, protocol.TypeOperationFailed, protocol.TypeOperationCancelled:
		return true
	}
	return false
}

// statusOf is the status an operation has after an event of type typ.
func statusOf(typ string) string {
	switch typ {
	case protocol.TypeOperationCompleted:
		return protocol.StatusCompleted
	case protocol.TypeOperationFailed:
		return protocol.StatusFailed
	case protocol.TypeOperationCancelled:
		return protocol.StatusCancelled
	}
	return protocol.StatusRunning
}
