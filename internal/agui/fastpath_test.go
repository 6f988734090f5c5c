package agui

import (
	"reflect"
	"testing"
)

var deltaSeeds = []string{
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"hi"}`,
	` { "type" : "TEXT_MESSAGE_CONTENT" ,	"messageId" : "m\"1" , "delta" : "a b\n" } `,
	`{"type":"TOOL_CALL_ARGS","toolCallId":"t","delta":"{\"a\": [1, 2]}","subagentRunId":"","timestamp":17}`,
	`{"type":"REASONING_MESSAGE_CONTENT","messageId":"r","delta":"","timestamp":-1}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"null"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","timestamp":1.5}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","timestamp":1e3}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","subagentRunId":null}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","metadata":{"a":1}}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","delta":"y"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":1,"delta":"x"}`,
	`{"type":"TOOL_CALL_ARGS","messageId":"m","delta":"x"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","toolCallId":"t","delta":"x"}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x"} x`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x"`,
	`{"type":"TEXT_MESSAGE_CONTENT","message\u0049d":"m1","delta":"x"}`,
	`{"type":"STEP_STARTED","stepName":"_CONTENT\""}`,
	`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"\ud800"}`,
}

// TestParseDeltaMatchesGeneral: whatever the fast path accepts, the general
// path accepts with the same event.
func TestParseDeltaMatchesGeneral(t *testing.T) {
	fast := 0
	for _, s := range deltaSeeds {
		if checkFastPath(t, []byte(s)) {
			fast++
		}
	}
	if fast != 7 {
		t.Fatalf("the fast path took %d seeds, want 7", fast)
	}
}

func checkFastPath(t *testing.T, data []byte) bool {
	ev := parseDelta(data)
	if ev == nil {
		return false
	}
	want, err := parseGeneral(data)
	if err != nil {
		t.Fatalf("fast path accepted %q, general path: %v", data, err)
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("%q:\nfast    %+v\ngeneral %+v", data, ev, want)
	}
	return true
}

func FuzzParseDelta(f *testing.F) {
	for _, s := range deltaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastPath(t, data) })
}
