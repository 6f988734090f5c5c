package agui

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Limits bounds what a Tracker keeps for one run.
type Limits struct {
	// MaxOpen bounds the entities open at once: text messages, tool calls,
	// reasoning spans and messages, steps and subagents together.
	MaxOpen int
	// MaxIDs bounds the ids whose owner the run keeps (every message, tool
	// call, activity and reasoning id it has seen, open or closed).
	MaxIDs int
}

// DefaultLimits are the Tracker limits used when a field is zero.
var DefaultLimits = Limits{MaxOpen: 1000, MaxIDs: 100_000}

// owner is the subagent an entity belongs to: tagged false is the parent
// agent (no subagentRunId), which is as much an owner as a subagent; the
// empty string is a legal subagent id.
type owner struct {
	tagged bool
	sub    string
}

func (o owner) String() string {
	if !o.tagged {
		return "the parent agent"
	}
	return fmt.Sprintf("subagent %q", o.sub)
}

func ownerOf(ev *Event) owner { return owner{ev.Tagged, ev.Subagent} }

// Entity kinds of the open list.
type entityKind uint8

const (
	entMessage entityKind = iota
	entToolCall
	entReasoningSpan
	entReasoningMessage
	entStep
	entSubagent
)

// entity is something open: its kind, its key (id, or step name) and the
// event that opened it (replayed by Open).
type entity struct {
	kind  entityKind
	key   string
	owner owner // steps only: the owner is part of a step's key
	start *Event
}

// Tracker follows one run's open text messages, tool calls, reasoning spans
// and messages, steps and subagents, with the rules of @ag-ui/client
// 1.0.0's event verifier (src/verify/verify.ts), so that every stream
// Tether stores is one the verifier accepts. The rules:
//
//   - Text messages, tool calls, reasoning messages, steps and subagents
//     may interleave freely: several may be open at once, in any mix; only
//     an id already open may not be opened again (an id that was closed may
//     be reopened).
//   - TEXT_MESSAGE_CONTENT/END need their message open; TOOL_CALL_ARGS/END
//     their tool call; REASONING_MESSAGE_CONTENT/END their reasoning
//     message; REASONING_END its span (REASONING_START and
//     REASONING_MESSAGE_START are separate entities, which may share an id).
//   - STEP_FINISHED needs a step of that name open under the same owner
//     (subagentRunId, or none for the parent agent).
//   - SUBAGENT_STARTED may not reuse an id open or finished in this run, and
//     its parentSubagentRunId must have been started; SUBAGENT_FINISHED and
//     SUBAGENT_ERROR need the subagent open.
//   - Attribution: an event that carries a subagentRunId must agree with the
//     owner recorded for its message, tool call, activity or reasoning id
//     (recorded by the first opener and kept after the close;
//     TOOL_CALL_RESULT and a replacing ACTIVITY_SNAPSHOT record anew;
//     MESSAGES_SNAPSHOT replaces, RUN_STARTED's input seeds); an event
//     without one always agrees. A tool call inherits the owner of its
//     parentMessageId, and may not disagree with it.
//   - RUN_FINISHED needs nothing open. Nothing follows RUN_FINISHED or
//     RUN_ERROR.
//
// The verifier also rejects events before RUN_STARTED; a Tracker is made for
// one run, which Tether starts with RUN_STARTED itself.
//
// Use: Check each agent event before storing it, store it, then Apply it.
// Before the final event, store and Apply the events of Close. A Tracker is
// not safe for concurrent use; the operation's event pipeline owns it.
type Tracker struct {
	lim Limits

	open []entity // in the order opened

	messages  map[string]bool // open text messages
	toolCalls map[string]bool
	spans     map[string]bool
	reasoning map[string]bool
	steps     map[owner]map[string]bool
	subagents map[string]bool
	closedSub map[string]bool

	owners [4]map[string]owner // by ownerKind
	nIDs   int

	finished, errored bool
}

type ownerKind uint8

const (
	ownMessage ownerKind = iota
	ownToolCall
	ownActivity
	ownReasoning
)

var ownerKindName = [4]string{"message", "tool call", "activity", "reasoning message"}

// NewTracker returns a Tracker for a run that has started. Zero fields of
// lim take DefaultLimits.
func NewTracker(lim Limits) *Tracker {
	if lim.MaxOpen <= 0 {
		lim.MaxOpen = DefaultLimits.MaxOpen
	}
	if lim.MaxIDs <= 0 {
		lim.MaxIDs = DefaultLimits.MaxIDs
	}
	t := &Tracker{
		lim:       lim,
		messages:  map[string]bool{},
		toolCalls: map[string]bool{},
		spans:     map[string]bool{},
		reasoning: map[string]bool{},
		steps:     map[owner]map[string]bool{},
		subagents: map[string]bool{},
		closedSub: map[string]bool{},
	}
	for i := range t.owners {
		t.owners[i] = map[string]owner{}
	}
	return t
}

// Ended reports whether RUN_FINISHED or RUN_ERROR was applied.
func (t *Tracker) Ended() bool { return t.finished || t.errored }

// OpenCount returns how many entities are open.
func (t *Tracker) OpenCount() int { return len(t.open) }

func violation(format string, args ...any) *Error {
	return errorf(CodeLifecycleViolation, format, args...)
}

// tagError: a tagged event must name the recorded owner.
func tagError(ev *Event, rec owner, known bool, kind ownerKind, id string) *Error {
	if !ev.Tagged || !known {
		return nil
	}
	if rec != ownerOf(ev) {
		return violation("%s: subagentRunId %q does not match the owner of %s %q, %s", ev.Type, ev.Subagent, ownerKindName[kind], id, rec)
	}
	return nil
}

func (t *Tracker) tagCheck(ev *Event, kind ownerKind, id string) *Error {
	rec, known := t.owners[kind][id]
	return tagError(ev, rec, known, kind, id)
}

// roomFor checks the limits for opening one entity and recording newIDs
// owners.
func (t *Tracker) roomFor(ev *Event, opens bool, newIDs int) error {
	if opens && len(t.open) >= t.lim.MaxOpen {
		return errorf(CodeLimitExceeded, "%s: %d entities are open, the most a run may have", ev.Type, t.lim.MaxOpen)
	}
	if t.nIDs+newIDs > t.lim.MaxIDs {
		return errorf(CodeLimitExceeded, "%s: the run has recorded %d ids, the most it may", ev.Type, t.lim.MaxIDs)
	}
	return nil
}

func (t *Tracker) isNew(kind ownerKind, id string) int {
	if _, ok := t.owners[kind][id]; ok {
		return 0
	}
	return 1
}

// Check returns nil when the agent event ev may be stored now, else an
// *Error: unsupported_event (a *_CHUNK), reserved_event (RUN_*),
// lifecycle_violation (the detail says which rule), limit_exceeded. It
// changes nothing.
func (t *Tracker) Check(ev *Event) error {
	if ev.Type.IsChunk() {
		return errorf(CodeUnsupportedEvent, "%s is not supported; send the START, CONTENT and END events", ev.Type)
	}
	if ev.Type.IsRunLifecycle() {
		return errorf(CodeReservedEvent, "%s is written by Tether", ev.Type)
	}
	if t.Ended() {
		return violation("%s: the run has ended", ev.Type)
	}
	id := ev.MessageID
	switch ev.Type {
	case TextMessageStart:
		if t.messages[id] {
			return violation("TEXT_MESSAGE_START: text message %q is already open; end it with TEXT_MESSAGE_END first", id)
		}
		if err := t.tagCheck(ev, ownMessage, id); err != nil {
			return err
		}
		return t.roomFor(ev, true, t.isNew(ownMessage, id))
	case TextMessageContent, TextMessageEnd:
		if !t.messages[id] {
			return violation("%s: no text message %q is open; start it with TEXT_MESSAGE_START first", ev.Type, id)
		}
		return nilIfNil(t.tagCheck(ev, ownMessage, id))
	case ToolCallStart:
		tc := ev.ToolCallID
		if t.toolCalls[tc] {
			return violation("TOOL_CALL_START: tool call %q is already open; end it with TOOL_CALL_END first", tc)
		}
		inherited, hasParent := owner{}, false
		if ev.HasParentMessage {
			inherited, hasParent = t.owners[ownMessage][ev.ParentMessageID]
		}
		if hasParent && ev.Tagged && inherited != ownerOf(ev) {
			return violation("TOOL_CALL_START: subagentRunId %q does not match the owner of its parent message %q, %s", ev.Subagent, ev.ParentMessageID, inherited)
		}
		if rec, known := t.owners[ownToolCall][tc]; known {
			if err := tagError(ev, rec, true, ownToolCall, tc); err != nil {
				return err
			}
			if !ev.Tagged && hasParent && inherited != rec {
				return violation("TOOL_CALL_START: tool call %q belongs to %s but its parent message %q to %s", tc, rec, ev.ParentMessageID, inherited)
			}
		}
		return t.roomFor(ev, true, t.isNew(ownToolCall, tc))
	case ToolCallArgs, ToolCallEnd:
		tc := ev.ToolCallID
		if !t.toolCalls[tc] {
			return violation("%s: no tool call %q is open; start it with TOOL_CALL_START first", ev.Type, tc)
		}
		return nilIfNil(t.tagCheck(ev, ownToolCall, tc))
	case ToolCallResult:
		return t.roomFor(ev, false, t.isNew(ownMessage, id))
	case StepStarted:
		if t.steps[ownerOf(ev)][ev.StepName] {
			return violation("STEP_STARTED: step %q is already open for %s", ev.StepName, ownerOf(ev))
		}
		return t.roomFor(ev, true, 0)
	case StepFinished:
		o := ownerOf(ev)
		if !t.steps[o][ev.StepName] {
			for other, names := range t.steps {
				if names[ev.StepName] {
					return violation("STEP_FINISHED: step %q is open under %s, not %s; a step is finished by whoever started it", ev.StepName, other, o)
				}
			}
			return violation("STEP_FINISHED: step %q was not started", ev.StepName)
		}
		return nil
	case ActivitySnapshot:
		return t.roomFor(ev, false, t.isNew(ownActivity, id))
	case ActivityDelta:
		return nilIfNil(t.tagCheck(ev, ownActivity, id))
	case ReasoningStart, ReasoningMessageStart:
		set, what, end := t.spans, "reasoning span", ReasoningEnd
		if ev.Type == ReasoningMessageStart {
			set, what, end = t.reasoning, "reasoning message", ReasoningMessageEnd
		}
		if set[id] {
			return violation("%s: %s %q is already open; end it with %s first", ev.Type, what, id, end)
		}
		if err := t.tagCheck(ev, ownReasoning, id); err != nil {
			return err
		}
		return t.roomFor(ev, true, t.isNew(ownReasoning, id))
	case ReasoningMessageContent, ReasoningMessageEnd, ReasoningEnd:
		set, what, start := t.reasoning, "reasoning message", ReasoningMessageStart
		if ev.Type == ReasoningEnd {
			set, what, start = t.spans, "reasoning span", ReasoningStart
		}
		if !set[id] {
			return violation("%s: no %s %q is open; start it with %s first", ev.Type, what, id, start)
		}
		return nilIfNil(t.tagCheck(ev, ownReasoning, id))
	case ReasoningEncryptedValue:
		switch ev.Subtype {
		case "tool-call":
			return nilIfNil(t.tagCheck(ev, ownToolCall, id))
		default: // "message": a text or a reasoning message
			if _, ok := t.owners[ownMessage][id]; ok {
				return nilIfNil(t.tagCheck(ev, ownMessage, id))
			}
			return nilIfNil(t.tagCheck(ev, ownReasoning, id))
		}
	case SubagentStarted:
		s := ev.Subagent
		if t.subagents[s] {
			return violation("SUBAGENT_STARTED: subagent %q is already open; finish it with SUBAGENT_FINISHED first", s)
		}
		if t.closedSub[s] {
			return violation("SUBAGENT_STARTED: subagent %q has already finished in this run; subagent ids are per invocation", s)
		}
		if p, ok := parentSubagent(ev); ok && !t.subagents[p] && !t.closedSub[p] {
			return violation("SUBAGENT_STARTED: parentSubagentRunId %q has not been started in this run", p)
		}
		return t.roomFor(ev, true, 0)
	case SubagentFinished, SubagentError:
		if !t.subagents[ev.Subagent] {
			return violation("%s: no subagent %q is open; start it with SUBAGENT_STARTED first", ev.Type, ev.Subagent)
		}
		return nil
	case MessagesSnapshot:
		n := 0
		for _, m := range ev.Messages {
			n += t.isNew(refKind(m.Role), m.ID) + len(m.ToolCallIDs)
		}
		return t.roomFor(ev, false, n)
	}
	return nil
}

// nilIfNil turns a nil *Error into a nil error.
func nilIfNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

func parentSubagent(ev *Event) (string, bool) {
	return ev.ParentSubagent, ev.Type == SubagentStarted && ev.HasParentSubagent
}

func refKind(role string) ownerKind {
	switch role {
	case "reasoning":
		return ownReasoning
	case "activity":
		return ownActivity
	}
	return ownMessage
}

func (t *Tracker) setOwner(kind ownerKind, id string, o owner, replace bool) {
	if _, ok := t.owners[kind][id]; ok {
		if replace {
			t.owners[kind][id] = o
		}
		return
	}
	if t.nIDs >= t.lim.MaxIDs {
		return // only Tether's own events get here past the limit; the checks relax
	}
	t.owners[kind][id] = o
	t.nIDs++
}

func (t *Tracker) push(kind entityKind, key string, o owner, ev *Event) {
	t.open = append(t.open, entity{kind: kind, key: key, owner: o, start: ev})
}

func (t *Tracker) pop(kind entityKind, key string, o owner) {
	for i := len(t.open) - 1; i >= 0; i-- {
		e := t.open[i]
		if e.kind == kind && e.key == key && (kind != entStep || e.owner == o) {
			t.open = append(t.open[:i], t.open[i+1:]...)
			return
		}
	}
}

// begin records entity key of set as open (owned by o), unless it is.
func (t *Tracker) begin(set map[string]bool, kind entityKind, key string, o owner, ev *Event) {
	if !set[key] {
		set[key] = true
		t.push(kind, key, o, ev)
	}
}

// end records entity key of set as closed and reports whether it was open.
func (t *Tracker) end(set map[string]bool, kind entityKind, key string) bool {
	if !set[key] {
		return false
	}
	delete(set, key)
	t.pop(kind, key, owner{})
	return true
}

// Apply records a stored event: the agent's after Check passed, Tether's
// own (RUN_STARTED seeds owners from its input; RUN_FINISHED and RUN_ERROR
// end the run), or history replayed to rebuild a Tracker.
func (t *Tracker) Apply(ev *Event) {
	id := ev.MessageID
	switch ev.Type {
	case TextMessageStart:
		t.begin(t.messages, entMessage, id, ownerOf(ev), ev)
		t.setOwner(ownMessage, id, ownerOf(ev), false)
	case TextMessageEnd:
		t.end(t.messages, entMessage, id)
	case ToolCallStart:
		tc := ev.ToolCallID
		t.begin(t.toolCalls, entToolCall, tc, ownerOf(ev), ev)
		o := ownerOf(ev)
		if !ev.Tagged {
			if p, ok := t.owners[ownMessage][ev.ParentMessageID]; ok && ev.HasParentMessage {
				o = p
			}
		}
		t.setOwner(ownToolCall, tc, o, false)
	case ToolCallEnd:
		t.end(t.toolCalls, entToolCall, ev.ToolCallID)
	case ToolCallResult:
		t.setOwner(ownMessage, id, ownerOf(ev), true)
	case StepStarted:
		o := ownerOf(ev)
		if t.steps[o] == nil {
			t.steps[o] = map[string]bool{}
		}
		if !t.steps[o][ev.StepName] {
			t.steps[o][ev.StepName] = true
			t.push(entStep, ev.StepName, o, ev)
		}
	case StepFinished:
		o := ownerOf(ev)
		if t.steps[o][ev.StepName] {
			delete(t.steps[o], ev.StepName)
			if len(t.steps[o]) == 0 {
				delete(t.steps, o)
			}
			t.pop(entStep, ev.StepName, o)
		}
	case ActivitySnapshot:
		_, known := t.owners[ownActivity][id]
		t.setOwner(ownActivity, id, ownerOf(ev), !known || ev.Replace)
	case ReasoningStart, ReasoningMessageStart:
		set, kind := t.spans, entReasoningSpan
		if ev.Type == ReasoningMessageStart {
			set, kind = t.reasoning, entReasoningMessage
		}
		t.begin(set, kind, id, ownerOf(ev), ev)
		t.setOwner(ownReasoning, id, ownerOf(ev), false)
	case ReasoningMessageEnd:
		t.end(t.reasoning, entReasoningMessage, id)
	case ReasoningEnd:
		t.end(t.spans, entReasoningSpan, id)
	case SubagentStarted:
		t.begin(t.subagents, entSubagent, ev.Subagent, owner{}, ev)
	case SubagentFinished, SubagentError:
		if t.end(t.subagents, entSubagent, ev.Subagent) {
			t.closedSub[ev.Subagent] = true
		}
	case MessagesSnapshot, RunStarted:
		auth := ev.Type == MessagesSnapshot
		for _, m := range ev.Messages {
			o := owner{m.Tagged, m.Subagent}
			t.setOwner(refKind(m.Role), m.ID, o, auth)
			for _, tc := range m.ToolCallIDs {
				t.setOwner(ownToolCall, tc, o, auth)
			}
		}
	case RunFinished:
		t.finished = true
	case RunError:
		t.errored = true
	}
}

// runEndedMessage is the message of the SUBAGENT_ERROR that Close writes
// for a subagent still open when the run ends.
const runEndedMessage = "The run ended before the subagent finished."

// Close returns the events that close everything still open, innermost
// (last opened) first: TEXT_MESSAGE_END, TOOL_CALL_END,
// REASONING_MESSAGE_END, REASONING_END, STEP_FINISHED, and for a subagent
// SUBAGENT_ERROR with code "run_ended". Each carries its opener's
// subagentRunId. Store and Apply each before the final RUN_FINISHED or
// RUN_ERROR; after them RUN_FINISHED is valid. Close changes nothing itself.
func (t *Tracker) Close() []*Event {
	out := make([]*Event, 0, len(t.open))
	for i := len(t.open) - 1; i >= 0; i-- {
		e := t.open[i]
		var kvs []KV
		var typ Type
		switch e.kind {
		case entMessage:
			typ, kvs = TextMessageEnd, []KV{{"messageId", e.key}}
		case entToolCall:
			typ, kvs = ToolCallEnd, []KV{{"toolCallId", e.key}}
		case entReasoningMessage:
			typ, kvs = ReasoningMessageEnd, []KV{{"messageId", e.key}}
		case entReasoningSpan:
			typ, kvs = ReasoningEnd, []KV{{"messageId", e.key}}
		case entStep:
			typ, kvs = StepFinished, []KV{{"stepName", e.key}}
		case entSubagent:
			out = append(out, mustMake(SubagentError, KV{"subagentRunId", e.key}, KV{"message", runEndedMessage}, KV{"code", "run_ended"}))
			continue
		}
		if e.start.Tagged {
			kvs = append(kvs, KV{"subagentRunId", e.start.Subagent})
		}
		out = append(out, mustMake(typ, kvs...))
	}
	return out
}

// Open returns the events that opened what is open now, in the order they
// were opened: what a stream resumed after this point (Last-Event-ID) sends
// after RUN_STARTED and before the events that follow, so that the
// verifier accepts their continuations. They are the stored START events
// themselves, except that a SUBAGENT_STARTED whose parent subagent is no
// longer open loses its parentSubagentRunId (the resumed stream never
// started that parent, and the verifier would refuse the reference).
//
// To know what was open at an earlier event, Apply the stored events up to
// it to a new Tracker.
func (t *Tracker) Open() []*Event {
	out := make([]*Event, 0, len(t.open))
	for _, e := range t.open {
		ev := e.start
		if p, ok := parentSubagent(ev); ok && !t.subagents[p] {
			ev = withoutField(ev, "parentSubagentRunId")
		}
		out = append(out, ev)
	}
	return out
}

// withoutField returns ev without its top-level field name.
func withoutField(ev *Event, name string) *Event {
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(string(ev.Raw)))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return ev
	}
	delete(obj, name)
	out, err := FromObject(obj)
	if err != nil {
		return ev
	}
	return out
}
