package agents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/agui"
)

// EventKind says which fields of an Event are meaningful. The final
// completed/failed/cancelled outcome is not an event: Run returns it, so the
// caller can record it exactly once after the last event.
type EventKind string

// The kinds of event an agent can produce on stdout.
const (
	// EventProgress carries Progress (optional), Message, Step and Data.
	EventProgress EventKind = "progress"
	// EventLog carries Log.
	EventLog EventKind = "log"
	// EventResult carries Result.
	EventResult EventKind = "result"
	// EventInputRequest carries Input: the agent asks a person for input
	// ({"input_request": {"id": …, "prompt": …, "schema": …}}).
	EventInputRequest EventKind = "input_request"
	// EventAGUI carries AGUI: a line that is a JSON object whose "type" is
	// an AG-UI 1.0 event type (agui.Known). The operations service checks
	// and stores it; see internal/agui.
	EventAGUI EventKind = "agui"
)

// Event is one line of an agent's stdout, decoded. See the package comment
// for how lines map to events.
type Event struct {
	Kind EventKind `json:"kind"`
	// Progress is the percentage done, 0 to 100; nil when the line had none.
	Progress *float64 `json:"progress,omitempty"`
	// Message is a human-readable status.
	Message string `json:"message,omitempty"`
	// Step names the phase the agent is in.
	Step string `json:"step,omitempty"`
	// Data is arbitrary JSON the agent attached to a progress event.
	Data json.RawMessage `json:"data,omitempty"`
	// Log is the text of a log line.
	Log string `json:"log,omitempty"`
	// Result is the JSON value of a result line, as the agent printed it.
	Result json.RawMessage `json:"result,omitempty"`
	// Input is an input request.
	Input *InputRequest `json:"input,omitempty"`
	// AGUI is the line of an AG-UI event, trimmed of surrounding space.
	AGUI json.RawMessage `json:"agui,omitempty"`
}

// parseLine decodes one stdout line (without its line ending). It returns
// ok=false for a line to ignore, and an error for a malformed one; the error
// text is shown to users, so it names the offending key and value.
func parseLine(line []byte) (ev Event, ok bool, err error) {
	if !utf8.Valid(line) {
		line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return Event{}, false, nil
	}
	var obj map[string]json.RawMessage
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &obj) != nil {
		return Event{Kind: EventLog, Log: string(line)}, true, nil
	}

	// An AG-UI event: its "type" names one. Anything else with a "type"
	// (a structured log record, say) keeps its old meaning.
	if raw, found := obj["type"]; found {
		var t string
		if json.Unmarshal(raw, &t) == nil && agui.Known(agui.Type(t)) {
			// A copy: the scanner reuses its buffer.
			return Event{Kind: EventAGUI, AGUI: bytes.Clone(trimmed)}, true, nil
		}
	}

	if raw, found := obj["input_request"]; found {
		var req InputRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.ID == "" || req.Prompt == "" {
			return Event{}, false, fmt.Errorf(`"input_request" must be an object with a string "id" and "prompt", got %s`, raw)
		}
		if len(req.Schema) > 0 && req.Schema[0] != '{' {
			return Event{}, false, fmt.Errorf(`"input_request" "schema" must be a JSON object, got %s`, req.Schema)
		}
		return Event{Kind: EventInputRequest, Input: &req}, true, nil
	}

	var (
		progress                  *float64
		message, step, log        string
		hasProgressFields, hasLog bool
		data, result              json.RawMessage
		hasResult                 bool
	)
	if raw, found := obj["progress"]; found {
		var p float64
		if !isJSONNumber(raw) || json.Unmarshal(raw, &p) != nil || p < 0 || p > 100 {
			return Event{}, false, fmt.Errorf(`"progress" must be a number from 0 to 100, got %s`, raw)
		}
		progress, hasProgressFields = &p, true
	}
	for _, f := range []struct {
		key string
		dst *string
		has *bool
	}{
		{"message", &message, &hasProgressFields},
		{"step", &step, &hasProgressFields},
		{"log", &log, &hasLog},
	} {
		raw, found := obj[f.key]
		if !found {
			continue
		}
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, f.dst) != nil {
			return Event{}, false, fmt.Errorf("%q must be a string, got %s", f.key, raw)
		}
		*f.has = true
	}
	if raw, found := obj["data"]; found {
		data, hasProgressFields = raw, true
	}
	if raw, found := obj["result"]; found {
		result, hasResult = raw, true
	}

	switch {
	case hasResult:
		return Event{Kind: EventResult, Result: result}, true, nil
	case hasProgressFields:
		return Event{Kind: EventProgress, Progress: progress, Message: message, Step: step, Data: data}, true, nil
	case hasLog:
		return Event{Kind: EventLog, Log: log}, true, nil
	default:
		// An object that speaks none of the protocol, e.g. a structured log
		// record from a library: keep it verbatim.
		return Event{Kind: EventLog, Log: string(line)}, true, nil
	}
}

// InputRequest is an agent's request for a person's input: ID names it
// (unique within the operation), Prompt asks, Schema (optional) is a JSON
// Schema the answer should match, for the UI's form.
type InputRequest struct {
	ID     string          `json:"id"`
	Prompt string          `json:"prompt"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// isJSONNumber reports whether raw, a valid JSON value, is a number, so that
// "50" (a string) is rejected rather than converted.
func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}
