package agui_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tether-dev/tether/internal/agui"
)

func ExampleParse() {
	ev, err := agui.Parse([]byte(`{"type":"TEXT_MESSAGE_CONTENT", "messageId":"m1", "delta":"Hi", "subagentRunId":null}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.MessageID, ev.Delta)
	fmt.Println(string(ev.Raw))

	_, err = agui.Parse([]byte(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1"}`))
	var e *agui.Error
	errors.As(err, &e)
	fmt.Println(e.Code, "|", e.Sentence(), "|", e.Detail)
	// Output:
	// TEXT_MESSAGE_CONTENT m1 Hi
	// {"delta":"Hi","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}
	// invalid_event | The event is not a valid AG-UI 1.0 event. | TEXT_MESSAGE_CONTENT: field delta is required
}

func ExampleTracker() {
	tr := agui.NewTracker(agui.Limits{})
	for _, line := range []string{
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"search"}`,
		`{"type":"TOOL_CALL_END","toolCallId":"t1"}`,
		`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":"{}"}`,
	} {
		ev, _ := agui.Parse([]byte(line))
		if err := tr.Check(ev); err != nil {
			fmt.Println("refused:", err)
			continue
		}
		tr.Apply(ev) // after storing it
	}
	for _, ev := range tr.Close() {
		fmt.Println("close:", string(ev.Raw))
	}
	// Output:
	// refused: lifecycle_violation: TOOL_CALL_ARGS: no tool call "t1" is open; start it with TOOL_CALL_START first
	// close: {"type":"TEXT_MESSAGE_END","messageId":"m1"}
}

func ExampleApplyPatch() {
	p, _ := agui.ParsePatch([]byte(`[{"op":"add","path":"/todos/-","value":"milk"},{"op":"test","path":"/n","value":1}]`))
	doc := map[string]any{"todos": []any{}, "n": 1.0}
	next, err := agui.ApplyPatch(doc, p, agui.DocLimits{MaxBytes: 1 << 20, MaxDepth: 32})
	fmt.Println(next, err, doc)
	// Output: map[n:1 todos:[milk]] <nil> map[n:1 todos:[]]
}

func ExampleCoalescer() {
	c := agui.NewCoalescer(agui.CoalesceConfig{Interval: 50 * time.Millisecond})
	now := time.Unix(0, 0)
	for _, d := range []string{"Hel", "lo", "!"} {
		ev, _ := agui.Parse([]byte(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"` + d + `"}`))
		fmt.Println(len(c.Add(ev, now)), "to store")
	}
	due, _ := c.Deadline()
	for _, ev := range c.FlushDue(due) {
		fmt.Println(string(ev.Raw))
	}
	// Output:
	// 0 to store
	// 0 to store
	// 0 to store
	// {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"Hello!"}
}

func ExampleResumePrefix() {
	var history []*agui.Event
	for _, line := range []string{
		`{"type":"RUN_STARTED","threadId":"th","runId":"r1"}`,
		`{"type":"STEP_STARTED","stepName":"answer"}`,
		`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`,
		`{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"Hel"}`,
	} {
		ev, _ := agui.Parse([]byte(line))
		history = append(history, ev)
	}
	// The client saw event 4 (Last-Event-ID: 4): send these without ids,
	// then events 5, 6, … with theirs.
	for _, ev := range agui.ResumePrefix(history, agui.Config{}) {
		agui.WriteEvent(os.Stdout, 0, ev)
	}
	// Output:
	// data: {"type":"RUN_STARTED","threadId":"th","runId":"r1"}
	//
	// data: {"type":"STATE_SNAPSHOT","snapshot":{}}
	//
	// data: {"type":"STEP_STARTED","stepName":"answer"}
	//
	// data: {"type":"TEXT_MESSAGE_START","messageId":"m1"}
	//
}
