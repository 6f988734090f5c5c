package agui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Type is an AG-UI event type, the value of an event's "type" field.
type Type string

// The event types of @ag-ui/core 1.0.0.
const (
	TextMessageStart        Type = "TEXT_MESSAGE_START"
	TextMessageContent      Type = "TEXT_MESSAGE_CONTENT"
	TextMessageEnd          Type = "TEXT_MESSAGE_END"
	TextMessageChunk        Type = "TEXT_MESSAGE_CHUNK"
	ToolCallStart           Type = "TOOL_CALL_START"
	ToolCallArgs            Type = "TOOL_CALL_ARGS"
	ToolCallEnd             Type = "TOOL_CALL_END"
	ToolCallChunk           Type = "TOOL_CALL_CHUNK"
	ToolCallResult          Type = "TOOL_CALL_RESULT"
	StateSnapshot           Type = "STATE_SNAPSHOT"
	StateDelta              Type = "STATE_DELTA"
	MessagesSnapshot        Type = "MESSAGES_SNAPSHOT"
	ActivitySnapshot        Type = "ACTIVITY_SNAPSHOT"
	ActivityDelta           Type = "ACTIVITY_DELTA"
	Raw                     Type = "RAW"
	Custom                  Type = "CUSTOM"
	RunStarted              Type = "RUN_STARTED"
	RunFinished             Type = "RUN_FINISHED"
	RunError                Type = "RUN_ERROR"
	StepStarted             Type = "STEP_STARTED"
	StepFinished            Type = "STEP_FINISHED"
	ReasoningStart          Type = "REASONING_START"
	ReasoningMessageStart   Type = "REASONING_MESSAGE_START"
	ReasoningMessageContent Type = "REASONING_MESSAGE_CONTENT"
	ReasoningMessageEnd     Type = "REASONING_MESSAGE_END"
	ReasoningMessageChunk   Type = "REASONING_MESSAGE_CHUNK"
	ReasoningEnd            Type = "REASONING_END"
	ReasoningEncryptedValue Type = "REASONING_ENCRYPTED_VALUE"
	SubagentStarted         Type = "SUBAGENT_STARTED"
	SubagentFinished        Type = "SUBAGENT_FINISHED"
	SubagentError           Type = "SUBAGENT_ERROR"
)

// IsRunLifecycle reports whether t is RUN_STARTED, RUN_FINISHED or
// RUN_ERROR: the operation's lifecycle, which Tether writes and agents may
// not.
func (t Type) IsRunLifecycle() bool {
	return t == RunStarted || t == RunFinished || t == RunError
}

// IsChunk reports whether t is one of the *_CHUNK shorthands, which Tether
// refuses (see ErrUnsupportedEvent).
func (t Type) IsChunk() bool {
	return t == TextMessageChunk || t == ToolCallChunk || t == ReasoningMessageChunk
}

// IsDelta reports whether t appends a fragment to an open entity: the
// events the Coalescer merges.
func (t Type) IsDelta() bool {
	return t == TextMessageContent || t == ToolCallArgs || t == ReasoningMessageContent
}

// Event is one validated AG-UI event.
//
// Raw is the event as stored and sent: a compact JSON object (no
// insignificant whitespace, so never a raw newline) holding every field the
// producer sent, unknown ones included (the 1.0.0 zod schemas are
// looseObject: they pass unknown fields through). The other fields are read
// from Raw for Tether's rules and are empty when the event has no such field.
type Event struct {
	Type Type
	Raw  []byte

	// MessageID is messageId (text, reasoning and activity events,
	// TOOL_CALL_RESULT) or entityId (REASONING_ENCRYPTED_VALUE).
	MessageID string
	// ToolCallID is toolCallId.
	ToolCallID string
	// ParentMessageID is parentMessageId (TOOL_CALL_START, SUBAGENT_STARTED),
	// HasParentMessage whether it is present.
	ParentMessageID  string
	HasParentMessage bool
	// StepName is stepName (STEP_*).
	StepName string
	// Subagent is subagentRunId, Tagged whether the event carries one (the
	// empty string is a legal id).
	Subagent string
	Tagged   bool
	// ParentSubagent is parentSubagentRunId (SUBAGENT_STARTED),
	// HasParentSubagent whether it is present.
	ParentSubagent    string
	HasParentSubagent bool
	// Subtype is REASONING_ENCRYPTED_VALUE's subtype.
	Subtype string
	// Delta is the fragment of a *_CONTENT / TOOL_CALL_ARGS event.
	Delta string
	// Timestamp is timestamp, HasTimestamp whether it is present.
	Timestamp    int64
	HasTimestamp bool
	// Snapshot is STATE_SNAPSHOT's snapshot, decoded (numbers as
	// json.Number).
	Snapshot any
	// Patch is STATE_DELTA's delta or ACTIVITY_DELTA's patch, checked
	// structurally (it may still fail to apply).
	Patch Patch
	// Replace is ACTIVITY_SNAPSHOT's replace; true when absent.
	Replace bool
	// Messages lists the messages of MESSAGES_SNAPSHOT, or of RUN_STARTED's
	// input: what the verifier records owners from.
	Messages []MessageRef

	// plain: the event has no fields beyond type, its id, delta,
	// subagentRunId and timestamp, so the Coalescer may merge it.
	plain bool
}

// MessageRef is what lifecycle tracking reads of a message in a
// MESSAGES_SNAPSHOT or a RUN_STARTED input.
type MessageRef struct {
	ID          string
	Role        string
	Subagent    string
	Tagged      bool
	ToolCallIDs []string
}

func messageRefs(v any) []MessageRef {
	arr, _ := v.([]any)
	refs := make([]MessageRef, 0, len(arr))
	for _, e := range arr {
		m, _ := e.(map[string]any)
		id, ok := m["id"].(string)
		if !ok {
			continue
		}
		r := MessageRef{ID: id}
		r.Role, _ = m["role"].(string)
		r.Subagent, r.Tagged = m["subagentRunId"].(string)
		tcs, _ := m["toolCalls"].([]any)
		for _, tc := range tcs {
			tm, _ := tc.(map[string]any)
			if tid, ok := tm["id"].(string); ok {
				r.ToolCallIDs = append(r.ToolCallIDs, tid)
			}
		}
		refs = append(refs, r)
	}
	return refs
}

// MarshalJSON returns e.Raw.
func (e *Event) MarshalJSON() ([]byte, error) { return e.Raw, nil }

// Refusal codes. Each has one fixed sentence (Sentence); an Error adds a
// detail naming what exactly was wrong. Both may be sent to the agent: they
// hold only what the agent itself sent.
const (
	// CodeInvalidEvent: not a JSON object, or a field of the event's type
	// missing or of the wrong type (per the @ag-ui/core 1.0.0 schemas).
	CodeInvalidEvent = "invalid_event"
	// CodeUnknownEventType: "type" is not an AG-UI 1.0 event type.
	CodeUnknownEventType = "unknown_event_type"
	// CodeUnsupportedEvent: a *_CHUNK shorthand, which Tether does not
	// expand; send the START/CONTENT/END events instead.
	CodeUnsupportedEvent = "unsupported_event"
	// CodeReservedEvent: RUN_STARTED, RUN_FINISHED and RUN_ERROR are the
	// operation's lifecycle and only Tether writes them.
	CodeReservedEvent = "reserved_event"
	// CodeLifecycleViolation: the event does not fit what is open (the
	// @ag-ui/client verifier would reject the stream).
	CodeLifecycleViolation = "lifecycle_violation"
	// CodeStatePatchFailed: a STATE_DELTA that does not apply to the current
	// state.
	CodeStatePatchFailed = "state_patch_failed"
	// CodeLimitExceeded: a bound of Limits was reached.
	CodeLimitExceeded = "limit_exceeded"
)

var sentences = map[string]string{
	CodeInvalidEvent:       "The event is not a valid AG-UI 1.0 event.",
	CodeUnknownEventType:   "The event type is not an AG-UI 1.0 event type.",
	CodeUnsupportedEvent:   "Chunk events are not supported; send the START, CONTENT and END events instead.",
	CodeReservedEvent:      "RUN_STARTED, RUN_FINISHED and RUN_ERROR are written by Tether, not by the agent.",
	CodeLifecycleViolation: "The event does not fit the messages, tool calls, steps or subagents that are open.",
	CodeStatePatchFailed:   "The state delta does not apply to the current state.",
	CodeLimitExceeded:      "The event exceeds a limit of the run.",
}

// Sentence returns the fixed human sentence of a refusal code, or "" for a
// code this package does not define.
func Sentence(code string) string { return sentences[code] }

// Error is a refusal of an event: a stable Code (one of the Code*
// constants) and a Detail naming what was wrong.
type Error struct {
	Code   string
	Detail string
}

// Error returns "code: detail".
func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Sentence returns the fixed sentence of e.Code.
func (e *Error) Sentence() string { return Sentence(e.Code) }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Field kinds of the schema tables.
type kind uint8

const (
	kString     kind = iota // a JSON string
	kInt                    // an integer within ±(2^53-1)
	kBool                   // true or false
	kObject                 // a JSON object (metadata, content of activities)
	kAny                    // any JSON value, null included (required ones must be present)
	kNonNull                // any JSON value but null
	kPatch                  // an RFC 6902 patch document
	kMessages               // an array of Message
	kContent                // a string or an array of content parts
	kRole                   // a TextMessageRole
	kLitReason              // the literal "reasoning"
	kLitTool                // the literal "tool"
	kSubtype                // "tool-call" or "message"
	kRunInput               // a RunAgentInput
	kRunOutcome             // a RunFinishedOutcome
	kSubOutcome             // a SubagentFinishedOutcome
	kUsage                  // an array of TokenUsage
)

type field struct {
	name     string
	kind     kind
	required bool
}

func req(name string, k kind) field { return field{name, k, true} }
func opt(name string, k kind) field { return field{name, k, false} }

// base holds the fields every event has; attributable events add
// subagentRunId.
var base = []field{opt("type", kString), opt("timestamp", kInt), opt("rawEvent", kNonNull), opt("metadata", kObject)}

var sub = opt("subagentRunId", kString)

// schema lists each type's fields beyond base, after @ag-ui/core 1.0.0
// src/generated/schemas.ts.
var schema = map[Type][]field{
	TextMessageStart:        {sub, req("messageId", kString), opt("role", kRole), opt("name", kString)},
	TextMessageContent:      {sub, req("messageId", kString), req("delta", kString)},
	TextMessageEnd:          {sub, req("messageId", kString)},
	TextMessageChunk:        {sub, opt("messageId", kString), opt("role", kRole), opt("delta", kString), opt("name", kString)},
	ToolCallStart:           {sub, req("toolCallId", kString), req("toolCallName", kString), opt("parentMessageId", kString)},
	ToolCallArgs:            {sub, req("toolCallId", kString), req("delta", kString)},
	ToolCallEnd:             {sub, req("toolCallId", kString)},
	ToolCallChunk:           {sub, opt("toolCallId", kString), opt("toolCallName", kString), opt("parentMessageId", kString), opt("delta", kString)},
	ToolCallResult:          {sub, req("messageId", kString), req("toolCallId", kString), req("content", kContent), opt("role", kLitTool)},
	StateSnapshot:           {sub, req("snapshot", kAny)},
	StateDelta:              {sub, req("delta", kPatch)},
	MessagesSnapshot:        {req("messages", kMessages)},
	ActivitySnapshot:        {sub, req("messageId", kString), req("activityType", kString), req("content", kObject), opt("replace", kBool)},
	ActivityDelta:           {sub, req("messageId", kString), req("activityType", kString), req("patch", kPatch)},
	Raw:                     {sub, req("event", kAny), opt("source", kString)},
	Custom:                  {sub, req("name", kString), req("value", kAny)},
	RunStarted:              {req("threadId", kString), req("runId", kString), opt("protocolVersion", kString), opt("parentRunId", kString), opt("input", kRunInput)},
	RunFinished:             {req("threadId", kString), req("runId", kString), opt("result", kNonNull), opt("outcome", kRunOutcome), opt("usage", kUsage)},
	RunError:                {req("message", kString), opt("code", kString), opt("usage", kUsage)},
	StepStarted:             {sub, req("stepName", kString)},
	StepFinished:            {sub, req("stepName", kString)},
	ReasoningStart:          {sub, req("messageId", kString)},
	ReasoningMessageStart:   {sub, req("messageId", kString), req("role", kLitReason)},
	ReasoningMessageContent: {sub, req("messageId", kString), req("delta", kString)},
	ReasoningMessageEnd:     {sub, req("messageId", kString)},
	ReasoningMessageChunk:   {sub, opt("messageId", kString), opt("delta", kString)},
	ReasoningEnd:            {sub, req("messageId", kString)},
	ReasoningEncryptedValue: {sub, req("subtype", kSubtype), req("entityId", kString), req("encryptedValue", kString)},
	SubagentStarted:         {req("subagentRunId", kString), req("name", kString), opt("description", kString), opt("parentSubagentRunId", kString), opt("parentToolCallId", kString), opt("parentMessageId", kString)},
	SubagentFinished:        {req("subagentRunId", kString), opt("result", kNonNull), opt("outcome", kSubOutcome)},
	SubagentError:           {req("subagentRunId", kString), req("message", kString), opt("code", kString)},
}

// Known reports whether t is an AG-UI 1.0 event type.
func Known(t Type) bool { _, ok := schema[t]; return ok }

// Parse reads one event from a JSON object (a command agent's stdout line,
// or the "event" of a worker's message) and checks it against the
// @ag-ui/core 1.0.0 schema of its type:
//
//   - "type" must be a known event type (else unknown_event_type);
//   - every required field of the type must be present with the right JSON
//     type, every optional one present must have the right type, nested
//     messages, content parts, patches, outcomes and usage included (else
//     invalid_event, the detail naming the field);
//   - an optional top-level field sent as null is read as absent and
//     removed (Python producers often send None for what they omit; the
//     1.0.0 schemas reject null there, and @ag-ui/client itself drops the
//     nulls of rawEvent, result, parentMessageId and outcome);
//   - unknown fields are kept, as the looseObject schemas do (the stock
//     client strips them with a console warning).
//
// Parse does not judge whether the event fits the run (see Tracker) nor
// refuse chunks or run lifecycle events (Tracker.Check does): Tether's own
// events go through Parse too.
func Parse(data []byte) (*Event, error) {
	if ev := parseDelta(data); ev != nil {
		return ev, nil
	}
	return parseGeneral(data)
}

// parseGeneral is Parse without the fast path.
func parseGeneral(data []byte) (*Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errorf(CodeInvalidEvent, "the event is not JSON: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, errorf(CodeInvalidEvent, "the event is followed by more JSON")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errorf(CodeInvalidEvent, "the event is followed by more JSON")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(CodeInvalidEvent, "the event is not a JSON object")
	}
	var raw []byte
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, errorf(CodeInvalidEvent, "the event is not JSON: %s", jsonErr(err))
	}
	raw = buf.Bytes()
	ev, removed, err := fromObject(obj)
	if err != nil {
		return nil, err
	}
	if removed {
		raw, _ = json.Marshal(obj) // a map of decoded JSON always encodes
	}
	ev.Raw = raw
	return ev, nil
}

// deltaWire is the shape of a plain delta event.
type deltaWire struct {
	Type          string      `json:"type"`
	MessageID     string      `json:"messageId"`
	ToolCallID    string      `json:"toolCallId"`
	Delta         string      `json:"delta"`
	SubagentRunID string      `json:"subagentRunId"`
	Timestamp     json.Number `json:"timestamp"`
}

// Presence bits of deltaWire's fields.
const (
	hasType = 1 << iota
	hasMessageID
	hasToolCallID
	hasDelta
	hasSubagent
	hasTimestamp
)

// parseDelta is Parse's fast path for the events that come by the
// thousand: a TEXT_MESSAGE_CONTENT, TOOL_CALL_ARGS or
// REASONING_MESSAGE_CONTENT holding only its own fields, none null. It
// returns nil for anything else (another type, other fields, a null, an
// error), which Parse then reads the general way, with the same result.
func parseDelta(data []byte) *Event {
	if !bytes.Contains(data, []byte(`_CONTENT"`)) && !bytes.Contains(data, []byte(`_ARGS"`)) {
		return nil
	}
	var seen int
	ws, ok := scanTop(data, func(key []byte, first byte) bool {
		var bit int
		switch string(key) {
		case "type":
			bit = hasType
		case "messageId":
			bit = hasMessageID
		case "toolCallId":
			bit = hasToolCallID
		case "delta":
			bit = hasDelta
		case "subagentRunId":
			bit = hasSubagent
		case "timestamp":
			if seen&hasTimestamp != 0 || (first != '-' && (first < '0' || first > '9')) {
				return false
			}
			seen |= hasTimestamp
			return true
		default:
			return false
		}
		if seen&bit != 0 || first != '"' {
			return false
		}
		seen |= bit
		return true
	})
	if !ok {
		return nil
	}
	var w deltaWire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil
	}
	t := Type(w.Type)
	if !t.IsDelta() || seen&hasDelta == 0 {
		return nil
	}
	ev := &Event{Type: t, Replace: true, Delta: w.Delta, plain: true}
	if t == ToolCallArgs {
		if seen&(hasToolCallID|hasMessageID) != hasToolCallID {
			return nil
		}
		ev.ToolCallID = w.ToolCallID
	} else {
		if seen&(hasToolCallID|hasMessageID) != hasMessageID {
			return nil
		}
		ev.MessageID = w.MessageID
	}
	if seen&hasSubagent != 0 {
		ev.Subagent, ev.Tagged = w.SubagentRunID, true
	}
	if seen&hasTimestamp != 0 {
		n, ok := toInt(w.Timestamp)
		if !ok {
			return nil
		}
		ev.Timestamp, ev.HasTimestamp = n, true
	}
	if ws {
		var b bytes.Buffer
		b.Grow(len(data))
		if err := json.Compact(&b, data); err != nil {
			return nil
		}
		ev.Raw = b.Bytes()
	} else {
		ev.Raw = bytes.Clone(data)
	}
	return ev
}

// scanTop walks the top-level members of the JSON object in data, calling
// key for each with the member's name and the first byte of its value (a
// false return stops the walk). It reports whether data holds whitespace
// outside strings (so needs compacting), and false for anything it does
// not walk to the end: not an object, an escaped name, a stop. It does not
// validate values; json.Unmarshal does.
func scanTop(data []byte, key func(name []byte, first byte) bool) (ws, ok bool) {
	i := 0
	skip := func() {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
			i++
			ws = true
		}
	}
	skip()
	if i >= len(data) || data[i] != '{' {
		return false, false
	}
	i++
	for first := true; ; first = false {
		skip()
		if i >= len(data) {
			return false, false
		}
		if data[i] == '}' && first {
			i++
			break
		}
		if data[i] != '"' {
			return false, false
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return false, false
		}
		name := data[i+1 : i+1+end]
		if bytes.IndexByte(name, '\\') >= 0 {
			return false, false
		}
		i += end + 2
		skip()
		if i >= len(data) || data[i] != ':' {
			return false, false
		}
		i++
		skip()
		if i >= len(data) || !key(name, data[i]) {
			return false, false
		}
		var inner bool
		if i, inner = skipValue(data, i); i < 0 {
			return false, false
		}
		ws = ws || inner
		skip()
		if i >= len(data) {
			return false, false
		}
		if data[i] == ',' {
			i++
			continue
		}
		if data[i] != '}' {
			return false, false
		}
		i++
		break
	}
	skip()
	return ws, i == len(data)
}

// skipValue returns the index after the JSON value starting at data[i]
// (-1 if it does not end), and whether it holds whitespace outside
// strings.
func skipValue(data []byte, i int) (int, bool) {
	depth, ws := 0, false
	for i < len(data) {
		switch c := data[i]; c {
		case '"':
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(data) {
				return -1, ws
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, ws
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i, ws
			}
			i++
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, ws
			}
			ws = true
			i++
		default:
			i++
		}
		if depth == 0 && i > 0 && (data[i-1] == '"' || data[i-1] == '}' || data[i-1] == ']') {
			return i, ws
		}
	}
	if depth == 0 {
		return i, ws
	}
	return -1, ws
}

// FromObject builds an event from an object already decoded by the caller
// (numbers as json.Number or float64), as Parse does. The object may be
// changed (optional nulls are removed).
func FromObject(obj map[string]any) (*Event, error) {
	ev, _, err := fromObject(obj)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, errorf(CodeInvalidEvent, "the event does not encode as JSON: %v", err)
	}
	ev.Raw = raw
	return ev, nil
}

func jsonErr(err error) string {
	s := err.Error()
	return strings.TrimPrefix(s, "json: ")
}

func fromObject(obj map[string]any) (*Event, bool, error) {
	tv, ok := obj["type"]
	if !ok {
		return nil, false, errorf(CodeInvalidEvent, "field type is required")
	}
	ts, ok := tv.(string)
	if !ok {
		return nil, false, errorf(CodeInvalidEvent, "field type must be a string")
	}
	t := Type(ts)
	fields, ok := schema[t]
	if !ok {
		return nil, false, errorf(CodeUnknownEventType, "%q is not an AG-UI 1.0 event type", truncate(ts))
	}
	removed := false
	// The verifier refuses subagentRunId: null on every event type, those
	// whose schema does not name it (MESSAGES_SNAPSHOT, RUN_*) included.
	if v, ok := obj["subagentRunId"]; ok && v == nil {
		delete(obj, "subagentRunId")
		removed = true
	}
	for _, list := range [][]field{base, fields} {
		for _, f := range list {
			v, present := obj[f.name]
			if present && v == nil && !f.required && f.kind != kAny {
				delete(obj, f.name)
				removed = true
				continue
			}
			if !present {
				if f.required {
					return nil, false, errorf(CodeInvalidEvent, "%s: field %s is required", t, f.name)
				}
				continue
			}
			if err := checkKind(v, f.kind, f.name); err != "" {
				return nil, false, errorf(CodeInvalidEvent, "%s: %s", t, err)
			}
		}
	}
	ev := &Event{Type: t, Replace: true}
	str := func(k string) string { s, _ := obj[k].(string); return s }
	ev.MessageID = str("messageId")
	if t == ReasoningEncryptedValue {
		ev.MessageID = str("entityId")
		ev.Subtype = str("subtype")
	}
	ev.ToolCallID = str("toolCallId")
	ev.ParentMessageID, ev.HasParentMessage = obj["parentMessageId"].(string)
	ev.StepName = str("stepName")
	ev.ParentSubagent, ev.HasParentSubagent = obj["parentSubagentRunId"].(string)
	if s, ok := obj["subagentRunId"].(string); ok {
		ev.Subagent, ev.Tagged = s, true
	}
	if t.IsDelta() {
		ev.Delta = str("delta")
	}
	if n, ok := obj["timestamp"]; ok {
		ev.Timestamp, _ = toInt(n)
		ev.HasTimestamp = true
	}
	switch t {
	case StateSnapshot:
		ev.Snapshot = obj["snapshot"]
	case StateDelta:
		ev.Patch, _ = toPatch(obj["delta"])
	case ActivityDelta:
		ev.Patch, _ = toPatch(obj["patch"])
	case ActivitySnapshot:
		if b, ok := obj["replace"].(bool); ok {
			ev.Replace = b
		}
	case MessagesSnapshot:
		ev.Messages = messageRefs(obj["messages"])
	case RunStarted:
		if in, ok := obj["input"].(map[string]any); ok {
			ev.Messages = messageRefs(in["messages"])
		}
	}
	if t.IsDelta() {
		ev.plain = true
		for k := range obj {
			switch k {
			case "type", "delta", "subagentRunId", "timestamp":
			case "messageId":
				ev.plain = ev.plain && t != ToolCallArgs
			case "toolCallId":
				ev.plain = ev.plain && t == ToolCallArgs
			default:
				ev.plain = false
			}
		}
	}
	return ev, removed, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

const maxSafeInt = 1<<53 - 1

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, i >= -maxSafeInt && i <= maxSafeInt
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || f != float64(int64(f)) || f < -maxSafeInt || f > maxSafeInt {
			return 0, false
		}
		return int64(f), true
	case float64:
		if n != float64(int64(n)) || n < -maxSafeInt || n > maxSafeInt {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

// checkKind returns "" when v is of kind k, else a sentence naming the
// field path.
func checkKind(v any, k kind, path string) string {
	switch k {
	case kString:
		if _, ok := v.(string); !ok {
			return "field " + path + " must be a string"
		}
	case kInt:
		if _, ok := toInt(v); !ok {
			return "field " + path + " must be an integer within ±(2^53-1)"
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return "field " + path + " must be true or false"
		}
	case kObject:
		if _, ok := v.(map[string]any); !ok {
			return "field " + path + " must be a JSON object"
		}
	case kAny:
	case kNonNull:
		if v == nil {
			return "field " + path + " must not be null"
		}
	case kPatch:
		if _, err := toPatch(v); err != nil {
			return "field " + path + ": " + err.Error()
		}
	case kMessages:
		return checkArray(v, path, checkMessage)
	case kContent:
		if _, ok := v.(string); ok {
			return ""
		}
		return checkArray(v, path, checkPart)
	case kRole:
		switch v {
		case "developer", "system", "assistant", "user":
		default:
			return "field " + path + " must be one of developer, system, assistant, user"
		}
	case kLitReason:
		if v != "reasoning" {
			return "field " + path + ` must be "reasoning"`
		}
	case kLitTool:
		if v != "tool" {
			return "field " + path + ` must be "tool"`
		}
	case kSubtype:
		if v != "tool-call" && v != "message" {
			return "field " + path + ` must be "tool-call" or "message"`
		}
	case kRunInput:
		return checkRunInput(v, path)
	case kRunOutcome:
		return checkTagged(v, path, checkRunOutcome)
	case kSubOutcome:
		return checkTagged(v, path, checkSubOutcome)
	case kUsage:
		return checkArray(v, path, func(v any, p string) string {
			return checkObject(v, p, []field{
				opt("provider", kString), opt("model", kString),
				opt("inputTokens", kInt), opt("outputTokens", kInt), opt("totalTokens", kInt),
				opt("reasoningTokens", kInt), opt("cachedInputTokens", kInt), opt("cacheWriteInputTokens", kInt),
			})
		})
	}
	return ""
}

// checkObject checks v is an object whose listed fields are valid; unknown
// fields pass (looseObject). Nested optional fields may not be null.
func checkObject(v any, path string, fields []field) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return "field " + path + " must be a JSON object"
	}
	for _, f := range fields {
		fv, present := obj[f.name]
		p := path + "." + f.name
		if !present {
			if f.required {
				return "field " + p + " is required"
			}
			continue
		}
		if err := checkKind(fv, f.kind, p); err != "" {
			return err
		}
	}
	return ""
}

func checkArray(v any, path string, each func(any, string) string) string {
	arr, ok := v.([]any)
	if !ok {
		return "field " + path + " must be an array"
	}
	for i, e := range arr {
		if err := each(e, path+"["+strconv.Itoa(i)+"]"); err != "" {
			return err
		}
	}
	return ""
}

func checkStrings(v any, path string) string {
	return checkArray(v, path, func(v any, p string) string { return checkKind(v, kString, p) })
}

// checkTagged checks v is an object with a string "type" and then the
// member of that type. An unknown member passes: @ag-ui/client drops it with
// a warning rather than failing the run.
func checkTagged(v any, path string, member func(map[string]any, string) string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return "field " + path + " must be a JSON object"
	}
	if _, ok := obj["type"].(string); !ok {
		return "field " + path + ".type must be a string"
	}
	return member(obj, path)
}

func checkRunOutcome(obj map[string]any, path string) string {
	switch obj["type"] {
	case "success":
		if ids, ok := obj["pendingToolCallIds"]; ok {
			return checkStrings(ids, path+".pendingToolCallIds")
		}
	case "interrupt":
		arr, ok := obj["interrupts"].([]any)
		if !ok || len(arr) == 0 {
			return "field " + path + ".interrupts must be a non-empty array"
		}
		return checkArray(arr, path+".interrupts", func(v any, p string) string {
			return checkObject(v, p, []field{
				opt("subagentRunId", kString), req("id", kString), req("reason", kString),
				opt("message", kString), opt("toolCallId", kString), opt("responseSchema", kObject),
				opt("expiresAt", kString), opt("metadata", kObject),
			})
		})
	}
	return ""
}

func checkSubOutcome(obj map[string]any, path string) string {
	if obj["type"] == "suspended" {
		if ids, ok := obj["interruptIds"]; ok {
			return checkStrings(ids, path+".interruptIds")
		}
	}
	return ""
}

var messageFields = map[string][]field{
	"developer": {opt("subagentRunId", kString), req("id", kString), opt("name", kString), opt("encryptedValue", kString), opt("metadata", kObject), req("content", kString)},
	"system":    {opt("subagentRunId", kString), req("id", kString), opt("name", kString), opt("encryptedValue", kString), opt("metadata", kObject), req("content", kString)},
	"assistant": {opt("subagentRunId", kString), req("id", kString), opt("name", kString), opt("encryptedValue", kString), opt("metadata", kObject), opt("content", kString)},
	"user":      {opt("subagentRunId", kString), req("id", kString), opt("name", kString), opt("encryptedValue", kString), opt("metadata", kObject), req("content", kContent)},
	"tool":      {opt("subagentRunId", kString), req("id", kString), req("content", kContent), req("toolCallId", kString), opt("error", kString), opt("encryptedValue", kString), opt("metadata", kObject)},
	"activity":  {opt("subagentRunId", kString), req("id", kString), req("activityType", kString), req("content", kObject), opt("metadata", kObject)},
	"reasoning": {opt("subagentRunId", kString), req("id", kString), req("content", kString), opt("encryptedValue", kString), opt("metadata", kObject)},
}

// checkMessage checks one Message; an unknown role passes (the client drops
// it with a warning).
func checkMessage(v any, path string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return "field " + path + " must be a JSON object"
	}
	role, ok := obj["role"].(string)
	if !ok {
		return "field " + path + ".role must be a string"
	}
	fields, known := messageFields[role]
	if !known {
		return ""
	}
	if err := checkObject(obj, path, fields); err != "" {
		return err
	}
	if tc, ok := obj["toolCalls"]; ok && role == "assistant" {
		return checkArray(tc, path+".toolCalls", func(v any, p string) string {
			if err := checkObject(v, p, []field{req("id", kString), req("type", kString), req("function", kObject), opt("encryptedValue", kString), opt("metadata", kObject)}); err != "" {
				return err
			}
			m := v.(map[string]any)
			if m["type"] != "function" {
				return "field " + p + `.type must be "function"`
			}
			return checkObject(m["function"], p+".function", []field{req("name", kString), req("arguments", kString)})
		})
	}
	return ""
}

// checkPart checks one content part; an unknown part type passes.
func checkPart(v any, path string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return "field " + path + " must be a JSON object"
	}
	t, ok := obj["type"].(string)
	if !ok {
		return "field " + path + ".type must be a string"
	}
	switch t {
	case "text":
		return checkObject(obj, path, []field{opt("id", kString), req("text", kString), opt("metadata", kNonNull)})
	case "image", "audio", "video", "document":
		if err := checkObject(obj, path, []field{opt("id", kString), req("source", kObject), opt("metadata", kNonNull)}); err != "" {
			return err
		}
		src := obj["source"].(map[string]any)
		p := path + ".source"
		switch src["type"] {
		case "data":
			return checkObject(src, p, []field{req("value", kString), req("mimeType", kString)})
		case "url":
			return checkObject(src, p, []field{req("value", kString), opt("mimeType", kString)})
		case "file":
			return checkObject(src, p, []field{req("value", kString), opt("provider", kString), opt("mimeType", kString)})
		default:
			if _, ok := src["type"].(string); !ok {
				return "field " + p + ".type must be a string"
			}
		}
	}
	return ""
}

func checkRunInput(v any, path string) string {
	if err := checkObject(v, path, []field{
		req("threadId", kString), req("runId", kString), opt("protocolVersion", kString),
		opt("parentRunId", kString), opt("state", kAny), req("messages", kMessages), opt("forwardedProps", kAny),
	}); err != "" {
		return err
	}
	obj := v.(map[string]any)
	if tools, ok := obj["tools"]; ok {
		if err := checkArray(tools, path+".tools", func(v any, p string) string {
			return checkObject(v, p, []field{req("name", kString), req("description", kString), opt("parameters", kNonNull), opt("metadata", kObject)})
		}); err != "" {
			return err
		}
	}
	if ctx, ok := obj["context"]; ok {
		if err := checkArray(ctx, path+".context", func(v any, p string) string {
			return checkObject(v, p, []field{req("description", kString), req("value", kString)})
		}); err != "" {
			return err
		}
	}
	if res, ok := obj["resume"]; ok {
		return checkArray(res, path+".resume", func(v any, p string) string {
			if err := checkObject(v, p, []field{req("interruptId", kString), req("status", kString), opt("payload", kNonNull), opt("metadata", kObject)}); err != "" {
				return err
			}
			if s := v.(map[string]any)["status"]; s != "resolved" && s != "cancelled" {
				return "field " + p + `.status must be "resolved" or "cancelled"`
			}
			return ""
		})
	}
	return ""
}

// KV is one field of an event built by Make.
type KV struct {
	Key   string
	Value any
}

// Make builds an event of type t with the given fields, in that order (type
// first), and checks it with Parse. It is how Tether writes its own events
// (RUN_STARTED, the closing events of Tracker.Close, merged deltas).
func Make(t Type, fields ...KV) (*Event, error) {
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeString(&b, string(t))
	for _, f := range fields {
		b.WriteByte(',')
		writeString(&b, f.Key)
		b.WriteByte(':')
		switch v := f.Value.(type) {
		case string:
			writeString(&b, v)
		case json.RawMessage:
			if err := json.Compact(&b, v); err != nil {
				return nil, fmt.Errorf("agui: field %s: %w", f.Key, err)
			}
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("agui: field %s: %w", f.Key, err)
			}
			b.Write(enc)
		}
	}
	b.WriteByte('}')
	ev, err := Parse(b.Bytes())
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// mustMake is Make for events this package builds from values it already
// validated; an error there is a bug.
func mustMake(t Type, fields ...KV) *Event {
	ev, err := Make(t, fields...)
	if err != nil {
		panic("agui: building " + string(t) + ": " + err.Error())
	}
	return ev
}

// writeString writes s as a JSON string, escaping as encoding/json does
// (including <, >, & and U+2028/U+2029), without allocating.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0xFFFD && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
