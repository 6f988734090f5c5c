package agents

import (
	"encoding/json"
	"reflect"
	"testing"
)

func pf(f float64) *float64 { return &f }

func TestParseLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want Event
		skip bool
	}{
		{name: "empty", line: "", skip: true},
		{name: "blank", line: " \t ", skip: true},
		{name: "plain text", line: "hello world", want: Event{Kind: EventLog, Log: "hello world"}},
		{name: "plain text keeps spaces", line: "  indented", want: Event{Kind: EventLog, Log: "  indented"}},
		{name: "json number is not an object", line: "42", want: Event{Kind: EventLog, Log: "42"}},
		{name: "json array", line: `[1,2]`, want: Event{Kind: EventLog, Log: `[1,2]`}},
		{name: "broken json", line: `{"progress": 5`, want: Event{Kind: EventLog, Log: `{"progress": 5`}},
		{name: "object with trailing text", line: `{"progress": 5} and more`, want: Event{Kind: EventLog, Log: `{"progress": 5} and more`}},
		{name: "object without known keys", line: `{"level":"info","msg":"hi"}`, want: Event{Kind: EventLog, Log: `{"level":"info","msg":"hi"}`}},
		{name: "log key", line: `{"log": "fetched 3 pages"}`, want: Event{Kind: EventLog, Log: "fetched 3 pages"}},
		{name: "progress", line: `{"progress": 42.5}`, want: Event{Kind: EventProgress, Progress: pf(42.5)}},
		{name: "progress bounds", line: `{"progress": 0}`, want: Event{Kind: EventProgress, Progress: pf(0)}},
		{name: "progress full", line: ` {"progress": 100, "message": "m", "step": "s", "data": {"k": [1]}} `,
			want: Event{Kind: EventProgress, Progress: pf(100), Message: "m", Step: "s", Data: json.RawMessage(`{"k": [1]}`)}},
		{name: "message only", line: `{"message": "waiting for GPU"}`, want: Event{Kind: EventProgress, Message: "waiting for GPU"}},
		{name: "step only", line: `{"step": "fetch"}`, want: Event{Kind: EventProgress, Step: "fetch"}},
		{name: "data only", line: `{"data": 1}`, want: Event{Kind: EventProgress, Data: json.RawMessage(`1`)}},
		{name: "result", line: `{"result": {"a": 1}}`, want: Event{Kind: EventResult, Result: json.RawMessage(`{"a": 1}`)}},
		{name: "null result", line: `{"result": null}`, want: Event{Kind: EventResult, Result: json.RawMessage(`null`)}},
		{name: "result wins over progress", line: `{"result": 1, "progress": 100}`, want: Event{Kind: EventResult, Result: json.RawMessage(`1`)}},
		{name: "progress wins over log", line: `{"log": "x", "progress": 1}`, want: Event{Kind: EventProgress, Progress: pf(1)}},
		{name: "agui event", line: ` {"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"hi","log":"x"} `,
			want: Event{Kind: EventAGUI, AGUI: json.RawMessage(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"hi","log":"x"}`)}},
		{name: "agui lifecycle type is still agui", line: `{"type":"RUN_STARTED"}`, want: Event{Kind: EventAGUI, AGUI: json.RawMessage(`{"type":"RUN_STARTED"}`)}},
		{name: "other type keeps its meaning", line: `{"type":"info","log":"x"}`, want: Event{Kind: EventLog, Log: "x"}},
		{name: "lower-case type is not agui", line: `{"type":"text_message_start"}`, want: Event{Kind: EventLog, Log: `{"type":"text_message_start"}`}},
		{name: "invalid utf-8 replaced", line: "caf\xe9", want: Event{Kind: EventLog, Log: "caf\uFFFD"}},
		{name: "invalid utf-8 inside json", line: "{\"log\": \"caf\xe9\"}", want: Event{Kind: EventLog, Log: "caf\uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := parseLine([]byte(tt.line))
			if err != nil {
				t.Fatalf("parseLine(%q): unexpected error %v", tt.line, err)
			}
			if ok == tt.skip {
				t.Fatalf("parseLine(%q): ok = %v, want %v", tt.line, ok, !tt.skip)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseLine(%q)\n got %s\nwant %s", tt.line, eventString(got), eventString(tt.want))
			}
		})
	}
}

func TestParseLineMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{`{"progress": "50"}`, `"progress" must be a number from 0 to 100, got "50"`},
		{`{"progress": -1}`, `"progress" must be a number from 0 to 100, got -1`},
		{`{"progress": 100.5}`, `"progress" must be a number from 0 to 100, got 100.5`},
		{`{"progress": null}`, `"progress" must be a number from 0 to 100, got null`},
		{`{"progress": 1e999}`, `"progress" must be a number from 0 to 100, got 1e999`},
		{`{"message": 42}`, `"message" must be a string, got 42`},
		{`{"step": ["a"]}`, `"step" must be a string, got ["a"]`},
		{`{"log": {"a": 1}}`, `"log" must be a string, got {"a": 1}`},
		// Known keys are checked whichever kind the line is.
		{`{"result": 1, "progress": "x"}`, `"progress" must be a number from 0 to 100, got "x"`},
	}
	for _, tt := range tests {
		_, _, err := parseLine([]byte(tt.line))
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseLine(%s) error = %v, want %q", tt.line, err, tt.want)
		}
	}
}

// eventString renders an event readably in failure messages.
func eventString(ev Event) string {
	b, _ := json.Marshal(ev)
	return string(b)
}
