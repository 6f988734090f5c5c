package agui

import (
	"errors"
	"testing"
)

// validEvents are valid AG-UI 1.0 events; TestParseMatchesSchemas checks
// @ag-ui/core's schemas accept them too.
var validEvents = []string{
	`{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":""}`,
	`{"type":"TEXT_MESSAGE_END","messageId":"m1","timestamp":1764590000000}`,
	`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"search","parentMessageId":"m1"}`,
	`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{\"q\":"}`,
	`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
	`{"type":"TOOL_CALL_RESULT","messageId":"r1","toolCallId":"t1","content":"42","role":"tool"}`,
	`{"type":"TOOL_CALL_RESULT","messageId":"r1","toolCallId":"t1","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"url","value":"http://x/y.png"}}]}`,
	`{"type":"STATE_SNAPSHOT","snapshot":null}`,
	`{"type":"STATE_DELTA","delta":[]}`,
	`{"type":"MESSAGES_SNAPSHOT","messages":[{"id":"u","role":"user","content":"hi"},{"id":"a","role":"assistant","toolCalls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
	`{"type":"ACTIVITY_SNAPSHOT","messageId":"a1","activityType":"PLAN","content":{"steps":[]},"replace":false}`,
	`{"type":"ACTIVITY_DELTA","messageId":"a1","activityType":"PLAN","patch":[{"op":"add","path":"/steps/-","value":1}]}`,
	`{"type":"RAW","event":{"x":1},"source":"openai"}`,
	`{"type":"CUSTOM","name":"n","value":null}`,
	`{"type":"RUN_STARTED","threadId":"th","runId":"r","input":{"threadId":"th","runId":"r","messages":[],"state":{"a":1},"tools":[],"context":[]}}`,
	`{"type":"RUN_FINISHED","threadId":"th","runId":"r","result":{"ok":true},"outcome":{"type":"success"}}`,
	`{"type":"RUN_ERROR","message":"boom","code":"agent_failed"}`,
	`{"type":"STEP_STARTED","stepName":"plan","subagentRunId":""}`,
	`{"type":"STEP_FINISHED","stepName":"plan"}`,
	`{"type":"REASONING_START","messageId":"r1"}`,
	`{"type":"REASONING_MESSAGE_START","messageId":"r1","role":"reasoning"}`,
	`{"type":"REASONING_MESSAGE_CONTENT","messageId":"r1","delta":"hm"}`,
	`{"type":"REASONING_MESSAGE_END","messageId":"r1"}`,
	`{"type":"REASONING_END","messageId":"r1"}`,
	`{"type":"REASONING_ENCRYPTED_VALUE","subtype":"message","entityId":"r1","encryptedValue":"xx"}`,
	`{"type":"SUBAGENT_STARTED","subagentRunId":"s1","name":"researcher"}`,
	`{"type":"SUBAGENT_FINISHED","subagentRunId":"s1","outcome":{"type":"suspended","interruptIds":["i1"]}}`,
	`{"type":"SUBAGENT_ERROR","subagentRunId":"s1","message":"failed"}`,
	`{"type":"TEXT_MESSAGE_CHUNK","delta":"x"}`,
}

func TestParseValid(t *testing.T) {
	for _, line := range validEvents {
		ev, err := Parse([]byte(line))
		if err != nil {
			t.Errorf("Parse(%s): %v", line, err)
			continue
		}
		if string(ev.Raw) != line {
			t.Errorf("Raw = %s, want %s", ev.Raw, line)
		}
	}
}

func TestParseFields(t *testing.T) {
	ev, err := Parse([]byte("{ \"type\" : \"TEXT_MESSAGE_CONTENT\",\n \"messageId\":\"m\\n1\", \"delta\":\"a\\nb\", \"subagentRunId\":\"s\", \"timestamp\":5 }"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TextMessageContent || ev.MessageID != "m\n1" || ev.Delta != "a\nb" || ev.Subagent != "s" || !ev.Tagged || ev.Timestamp != 5 || !ev.plain {
		t.Fatalf("fields: %+v", ev)
	}
	if want := `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m\n1","delta":"a\nb","subagentRunId":"s","timestamp":5}`; string(ev.Raw) != want {
		t.Fatalf("Raw = %s, want %s", ev.Raw, want)
	}
	ev, _ = Parse([]byte(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"a","metadata":{}}`))
	if ev.plain {
		t.Fatal("an event with metadata is not plain")
	}
}

func TestParseUnknownFieldsKept(t *testing.T) {
	line := `{"type":"STEP_STARTED","stepName":"s","extra":{"a":[1]}}`
	ev, err := Parse([]byte(line))
	if err != nil || string(ev.Raw) != line {
		t.Fatalf("Parse = %v, %v", ev, err)
	}
}

func TestParseOptionalNullsRemoved(t *testing.T) {
	ev, err := Parse([]byte(`{"type":"TOOL_CALL_START","toolCallId":"t","toolCallName":"f","parentMessageId":null,"timestamp":null,"rawEvent":null,"subagentRunId":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"toolCallId":"t","toolCallName":"f","type":"TOOL_CALL_START"}`; string(ev.Raw) != want {
		t.Fatalf("Raw = %s, want %s", ev.Raw, want)
	}
	if ev.Tagged {
		t.Fatal("a null subagentRunId is absent")
	}
	ev, err = Parse([]byte(`{"type":"MESSAGES_SNAPSHOT","messages":[],"subagentRunId":null}`))
	if err != nil || string(ev.Raw) != `{"messages":[],"type":"MESSAGES_SNAPSHOT"}` {
		t.Fatalf("MESSAGES_SNAPSHOT with a null subagentRunId: %v, %v", ev, err)
	}
}

// invalidEvents are refused by Parse; TestParseMatchesSchemas checks
// @ag-ui/core's schemas refuse the invalid_event ones too.
var invalidEvents = map[string]Error{
	`not json`:            {CodeInvalidEvent, "the event is not JSON: invalid character 'o' in literal null (expecting 'u')"},
	`[1]`:                 {CodeInvalidEvent, "the event is not a JSON object"},
	`{"type":"X"} {}`:     {CodeInvalidEvent, "the event is followed by more JSON"},
	`{}`:                  {CodeInvalidEvent, "field type is required"},
	`{"type":7}`:          {CodeInvalidEvent, "field type must be a string"},
	`{"type":"THINKING"}`: {CodeUnknownEventType, `"THINKING" is not an AG-UI 1.0 event type`},
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m"}`:                                                                                {CodeInvalidEvent, "TEXT_MESSAGE_CONTENT: field delta is required"},
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":null,"delta":""}`:                                                                    {CodeInvalidEvent, "TEXT_MESSAGE_CONTENT: field messageId must be a string"},
	`{"type":"TEXT_MESSAGE_START","messageId":"m","role":"tool"}`:                                                                    {CodeInvalidEvent, "TEXT_MESSAGE_START: field role must be one of developer, system, assistant, user"},
	`{"type":"TEXT_MESSAGE_END","messageId":"m","timestamp":1.5}`:                                                                    {CodeInvalidEvent, "TEXT_MESSAGE_END: field timestamp must be an integer within ±(2^53-1)"},
	`{"type":"TEXT_MESSAGE_END","messageId":"m","timestamp":9007199254740992}`:                                                       {CodeInvalidEvent, "TEXT_MESSAGE_END: field timestamp must be an integer within ±(2^53-1)"},
	`{"type":"TEXT_MESSAGE_END","messageId":"m","metadata":[]}`:                                                                      {CodeInvalidEvent, "TEXT_MESSAGE_END: field metadata must be a JSON object"},
	`{"type":"STATE_DELTA","delta":[{"op":"add","path":"x","value":1}]}`:                                                             {CodeInvalidEvent, "STATE_DELTA: field delta: operation 0: path: a JSON Pointer must be empty or start with /"},
	`{"type":"STATE_SNAPSHOT"}`:                                                                                                      {CodeInvalidEvent, "STATE_SNAPSHOT: field snapshot is required"},
	`{"type":"REASONING_MESSAGE_START","messageId":"r"}`:                                                                             {CodeInvalidEvent, "REASONING_MESSAGE_START: field role is required"},
	`{"type":"MESSAGES_SNAPSHOT","messages":[{"id":"u","role":"user"}]}`:                                                             {CodeInvalidEvent, "MESSAGES_SNAPSHOT: field messages[0].content is required"},
	`{"type":"TOOL_CALL_RESULT","messageId":"r","toolCallId":"t","content":[{"type":"image","source":{"type":"data","value":"x"}}]}`: {CodeInvalidEvent, "TOOL_CALL_RESULT: field content[0].source.mimeType is required"},
	`{"type":"RUN_FINISHED","threadId":"t","runId":"r","outcome":{"type":"interrupt","interrupts":[]}}`:                              {CodeInvalidEvent, "RUN_FINISHED: field outcome.interrupts must be a non-empty array"},
	`{"type":"ACTIVITY_SNAPSHOT","messageId":"a","activityType":"p","content":[]}`:                                                   {CodeInvalidEvent, "ACTIVITY_SNAPSHOT: field content must be a JSON object"},
}

func TestParseRefusals(t *testing.T) {
	for line, want := range invalidEvents {
		_, err := Parse([]byte(line))
		var e *Error
		if !errors.As(err, &e) || *e != want {
			t.Errorf("Parse(%s) = %v, want %v", line, err, &want)
		}
	}
}

func TestMake(t *testing.T) {
	ev, err := Make(TextMessageContent, KV{"messageId", "m<1>"}, KV{"delta", "a\u2028\"b\x01"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m\u003c1\u003e","delta":"a\u2028\"b\u0001"}`; string(ev.Raw) != want {
		t.Fatalf("Raw = %s, want %s", ev.Raw, want)
	}
	if ev.MessageID != "m<1>" || ev.Delta != "a\u2028\"b\x01" {
		t.Fatalf("fields: %+v", ev)
	}
	if _, err := Make(TextMessageContent, KV{"messageId", "m"}); err == nil {
		t.Fatal("Make without delta succeeded")
	}
}

func TestSentences(t *testing.T) {
	for _, code := range []string{CodeInvalidEvent, CodeUnknownEventType, CodeUnsupportedEvent, CodeReservedEvent, CodeLifecycleViolation, CodeStatePatchFailed, CodeLimitExceeded} {
		if Sentence(code) == "" {
			t.Errorf("no sentence for %s", code)
		}
	}
}
