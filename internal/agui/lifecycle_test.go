package agui

import (
	"errors"
	"strings"
	"testing"
)

// lifecycleCase is a run's agent events (between Tether's RUN_STARTED and
// RUN_FINISHED): the first refused one is at index bad (-1: all accepted),
// with code and detail; finish says whether RUN_FINISHED is valid after the
// accepted ones (nothing left open). The same cases run through
// @ag-ui/client's verifier in TestTrackerMatchesVerifier.
type lifecycleCase struct {
	name   string
	events []string
	bad    int
	code   string
	detail string
	finish bool
}

var lifecycleCases = []lifecycleCase{
	{name: "text message", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"hi"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
	}, bad: -1, finish: true},
	{name: "interleaved messages, tool calls and steps", events: []string{
		`{"type":"STEP_STARTED","stepName":"s"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m2"}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f","parentMessageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"a"}`,
		`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{}"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m2","delta":"b"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
		`{"type":"STEP_FINISHED","stepName":"s"}`,
		`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m2"}`,
		`{"type":"TOOL_CALL_RESULT","messageId":"r1","toolCallId":"t1","content":"ok"}`,
	}, bad: -1, finish: true},
	{name: "content before start", events: []string{
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"hi"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_CONTENT: no text message "m1" is open; start it with TEXT_MESSAGE_START first`, finish: true},
	{name: "content after end", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"hi"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_CONTENT: no text message "m1" is open; start it with TEXT_MESSAGE_START first`, finish: true},
	{name: "end without start", events: []string{
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_END: no text message "m1" is open; start it with TEXT_MESSAGE_START first`, finish: true},
	{name: "double start", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_START: text message "m1" is already open; end it with TEXT_MESSAGE_END first`},
	{name: "reopen after end", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`,
	}, bad: -1, finish: true},
	{name: "tool args before start", events: []string{
		`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `TOOL_CALL_ARGS: no tool call "t1" is open; start it with TOOL_CALL_START first`, finish: true},
	{name: "tool end twice", events: []string{
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f"}`,
		`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
		`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `TOOL_CALL_END: no tool call "t1" is open; start it with TOOL_CALL_START first`, finish: true},
	{name: "message left open", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
	}, bad: -1},
	{name: "step left open", events: []string{
		`{"type":"STEP_STARTED","stepName":"s"}`,
	}, bad: -1},
	{name: "step finished not started", events: []string{
		`{"type":"STEP_FINISHED","stepName":"s"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `STEP_FINISHED: step "s" was not started`, finish: true},
	{name: "step finished by another owner", events: []string{
		`{"type":"STEP_STARTED","stepName":"s"}`,
		`{"type":"STEP_FINISHED","stepName":"s","subagentRunId":"a"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `STEP_FINISHED: step "s" is open under the parent agent, not subagent "a"; a step is finished by whoever started it`},
	{name: "same step name under two owners", events: []string{
		`{"type":"STEP_STARTED","stepName":"s"}`,
		`{"type":"STEP_STARTED","stepName":"s","subagentRunId":""}`,
		`{"type":"STEP_FINISHED","stepName":"s"}`,
		`{"type":"STEP_FINISHED","stepName":"s","subagentRunId":""}`,
	}, bad: -1, finish: true},
	{name: "step started twice", events: []string{
		`{"type":"STEP_STARTED","stepName":"s"}`,
		`{"type":"STEP_STARTED","stepName":"s"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `STEP_STARTED: step "s" is already open for the parent agent`},
	{name: "reasoning span and message share an id", events: []string{
		`{"type":"REASONING_START","messageId":"r"}`,
		`{"type":"REASONING_MESSAGE_START","messageId":"r","role":"reasoning"}`,
		`{"type":"REASONING_MESSAGE_CONTENT","messageId":"r","delta":"hm"}`,
		`{"type":"REASONING_MESSAGE_END","messageId":"r"}`,
		`{"type":"REASONING_END","messageId":"r"}`,
	}, bad: -1, finish: true},
	{name: "reasoning content without message", events: []string{
		`{"type":"REASONING_START","messageId":"r"}`,
		`{"type":"REASONING_MESSAGE_CONTENT","messageId":"r","delta":"hm"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `REASONING_MESSAGE_CONTENT: no reasoning message "r" is open; start it with REASONING_MESSAGE_START first`},
	{name: "reasoning span left open", events: []string{
		`{"type":"REASONING_START","messageId":"r"}`,
	}, bad: -1},
	{name: "subagent attribution mismatch", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1","subagentRunId":"a"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","subagentRunId":"b"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_CONTENT: subagentRunId "b" does not match the owner of message "m1", subagent "a"`},
	{name: "tagged continuation of a parent message", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m1","subagentRunId":"a"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `TEXT_MESSAGE_END: subagentRunId "a" does not match the owner of message "m1", the parent agent`},
	{name: "tool call disagrees with its parent message", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1","subagentRunId":"a"}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f","parentMessageId":"m1","subagentRunId":"b"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `TOOL_CALL_START: subagentRunId "b" does not match the owner of its parent message "m1", subagent "a"`},
	{name: "tool call inherits its parent's owner", events: []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1","subagentRunId":"a"}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f","parentMessageId":"m1"}`,
		`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{}","subagentRunId":"b"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `TOOL_CALL_ARGS: subagentRunId "b" does not match the owner of tool call "t1", subagent "a"`},
	{name: "subagents", events: []string{
		`{"type":"SUBAGENT_STARTED","subagentRunId":"a","name":"x"}`,
		`{"type":"SUBAGENT_STARTED","subagentRunId":"b","name":"y","parentSubagentRunId":"a"}`,
		`{"type":"SUBAGENT_FINISHED","subagentRunId":"a"}`,
		`{"type":"SUBAGENT_ERROR","subagentRunId":"b","message":"no"}`,
	}, bad: -1, finish: true},
	{name: "subagent reused", events: []string{
		`{"type":"SUBAGENT_STARTED","subagentRunId":"a","name":"x"}`,
		`{"type":"SUBAGENT_FINISHED","subagentRunId":"a"}`,
		`{"type":"SUBAGENT_STARTED","subagentRunId":"a","name":"x"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `SUBAGENT_STARTED: subagent "a" has already finished in this run; subagent ids are per invocation`, finish: true},
	{name: "subagent with unknown parent", events: []string{
		`{"type":"SUBAGENT_STARTED","subagentRunId":"b","name":"y","parentSubagentRunId":"a"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `SUBAGENT_STARTED: parentSubagentRunId "a" has not been started in this run`, finish: true},
	{name: "subagent left open", events: []string{
		`{"type":"SUBAGENT_STARTED","subagentRunId":"a","name":"x"}`,
	}, bad: -1},
	{name: "subagent finished not started", events: []string{
		`{"type":"SUBAGENT_FINISHED","subagentRunId":"a"}`,
	}, bad: 0, code: CodeLifecycleViolation, detail: `SUBAGENT_FINISHED: no subagent "a" is open; start it with SUBAGENT_STARTED first`, finish: true},
	{name: "messages snapshot records owners", events: []string{
		`{"type":"MESSAGES_SNAPSHOT","messages":[{"id":"m1","role":"assistant","subagentRunId":"a","toolCalls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f","subagentRunId":"b"}`,
	}, bad: 1, code: CodeLifecycleViolation, detail: `TOOL_CALL_START: subagentRunId "b" does not match the owner of tool call "t1", subagent "a"`, finish: true},
	{name: "encrypted value for a tool call of another owner", events: []string{
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f","subagentRunId":"a"}`,
		`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
		`{"type":"REASONING_ENCRYPTED_VALUE","subtype":"tool-call","entityId":"t1","encryptedValue":"x","subagentRunId":"b"}`,
	}, bad: 2, code: CodeLifecycleViolation, detail: `REASONING_ENCRYPTED_VALUE: subagentRunId "b" does not match the owner of tool call "t1", subagent "a"`, finish: true},
	{name: "state, activity, custom and raw", events: []string{
		`{"type":"STATE_SNAPSHOT","snapshot":{"a":1}}`,
		`{"type":"ACTIVITY_SNAPSHOT","messageId":"act","activityType":"PLAN","content":{"s":[]}}`,
		`{"type":"ACTIVITY_DELTA","messageId":"act","activityType":"PLAN","patch":[{"op":"add","path":"/s/-","value":1}]}`,
		`{"type":"CUSTOM","name":"n","value":1}`,
		`{"type":"RAW","event":{}}`,
	}, bad: -1, finish: true},
	{name: "chunk refused", events: []string{
		`{"type":"TEXT_MESSAGE_CHUNK","messageId":"m1","delta":"x"}`,
	}, bad: 0, code: CodeUnsupportedEvent, detail: `TEXT_MESSAGE_CHUNK is not supported; send the START, CONTENT and END events`, finish: true},
	{name: "run lifecycle is Tether's", events: []string{
		`{"type":"RUN_ERROR","message":"x"}`,
	}, bad: 0, code: CodeReservedEvent, detail: `RUN_ERROR is written by Tether`, finish: true},
}

func parseAll(t *testing.T, lines []string) []*Event {
	t.Helper()
	evs := make([]*Event, len(lines))
	for i, l := range lines {
		ev, err := Parse([]byte(l))
		if err != nil {
			t.Fatalf("Parse(%s): %v", l, err)
		}
		evs[i] = ev
	}
	return evs
}

// runCase feeds events to a Tracker until one is refused.
func runCase(t *testing.T, tr *Tracker, evs []*Event) (int, error) {
	for i, ev := range evs {
		if err := tr.Check(ev); err != nil {
			return i, err
		}
		tr.Apply(ev)
	}
	return -1, nil
}

func TestTrackerRules(t *testing.T) {
	for _, tc := range lifecycleCases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(Limits{})
			bad, err := runCase(t, tr, parseAll(t, tc.events))
			if bad != tc.bad {
				t.Fatalf("refused index %d (%v), want %d", bad, err, tc.bad)
			}
			if bad >= 0 {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code || e.Detail != tc.detail {
					t.Fatalf("refusal = %#v, want %s: %s", err, tc.code, tc.detail)
				}
			}
			if got := tr.OpenCount() == 0; got != tc.finish {
				t.Fatalf("nothing open = %v, want %v", got, tc.finish)
			}
			// Close always leaves nothing open, and a run may then finish.
			for _, ev := range tr.Close() {
				if err := tr.Check(ev); err != nil {
					t.Fatalf("Close event %s refused: %v", ev.Raw, err)
				}
				tr.Apply(ev)
			}
			if tr.OpenCount() != 0 {
				t.Fatalf("after Close %d entities are open", tr.OpenCount())
			}
		})
	}
}

func rawOf(evs []*Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.Write(ev.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestTrackerCloseAndOpen(t *testing.T) {
	tr := NewTracker(Limits{})
	evs := parseAll(t, []string{
		`{"type":"SUBAGENT_STARTED","subagentRunId":"a","name":"x"}`,
		`{"type":"SUBAGENT_STARTED","subagentRunId":"b","name":"y","parentSubagentRunId":"a"}`,
		`{"type":"STEP_STARTED","stepName":"plan","subagentRunId":"b"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant","name":"bot"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m0"}`,
		`{"type":"TEXT_MESSAGE_END","messageId":"m0"}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"search","parentMessageId":"m1"}`,
		`{"type":"REASONING_START","messageId":"r"}`,
		`{"type":"REASONING_MESSAGE_START","messageId":"r","role":"reasoning"}`,
		`{"type":"SUBAGENT_FINISHED","subagentRunId":"a"}`,
	})
	if bad, err := runCase(t, tr, evs); bad >= 0 {
		t.Fatal(err)
	}
	wantOpen := `{"name":"y","subagentRunId":"b","type":"SUBAGENT_STARTED"}
{"type":"STEP_STARTED","stepName":"plan","subagentRunId":"b"}
{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant","name":"bot"}
{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"search","parentMessageId":"m1"}
{"type":"REASONING_START","messageId":"r"}
{"type":"REASONING_MESSAGE_START","messageId":"r","role":"reasoning"}
`
	if got := rawOf(tr.Open()); got != wantOpen {
		t.Fatalf("Open =\n%s", got)
	}
	wantClose := `{"type":"REASONING_MESSAGE_END","messageId":"r"}
{"type":"REASONING_END","messageId":"r"}
{"type":"TOOL_CALL_END","toolCallId":"t1"}
{"type":"TEXT_MESSAGE_END","messageId":"m1"}
{"type":"STEP_FINISHED","stepName":"plan","subagentRunId":"b"}
{"type":"SUBAGENT_ERROR","subagentRunId":"b","message":"The run ended before the subagent finished.","code":"run_ended"}
`
	if got := rawOf(tr.Close()); got != wantClose {
		t.Fatalf("Close =\n%s", got)
	}
}

func TestTrackerLimits(t *testing.T) {
	tr := NewTracker(Limits{MaxOpen: 2, MaxIDs: 3})
	evs := parseAll(t, []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"STEP_STARTED","stepName":"s"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m2"}`,
	})
	bad, err := runCase(t, tr, evs)
	var e *Error
	if bad != 2 || !errors.As(err, &e) || e.Code != CodeLimitExceeded || e.Detail != "TEXT_MESSAGE_START: 2 entities are open, the most a run may have" {
		t.Fatalf("refused %d: %v", bad, err)
	}
	tr = NewTracker(Limits{MaxOpen: 10, MaxIDs: 2})
	evs = parseAll(t, []string{
		`{"type":"TOOL_CALL_RESULT","messageId":"a","toolCallId":"t","content":""}`,
		`{"type":"TOOL_CALL_RESULT","messageId":"b","toolCallId":"t","content":""}`,
		`{"type":"TOOL_CALL_RESULT","messageId":"b","toolCallId":"t","content":""}`,
		`{"type":"TOOL_CALL_RESULT","messageId":"c","toolCallId":"t","content":""}`,
	})
	bad, err = runCase(t, tr, evs)
	if bad != 3 || !errors.As(err, &e) || e.Code != CodeLimitExceeded || e.Detail != "TOOL_CALL_RESULT: the run has recorded 2 ids, the most it may" {
		t.Fatalf("refused %d: %v", bad, err)
	}
}

func TestTrackerEnded(t *testing.T) {
	tr := NewTracker(Limits{})
	fin, _ := Make(RunFinished, KV{"threadId", "t"}, KV{"runId", "r"})
	tr.Apply(fin)
	ev, _ := Parse([]byte(`{"type":"CUSTOM","name":"n","value":1}`))
	var e *Error
	if err := tr.Check(ev); !errors.As(err, &e) || e.Code != CodeLifecycleViolation || e.Detail != "CUSTOM: the run has ended" {
		t.Fatalf("Check after RUN_FINISHED = %v", err)
	}
}
