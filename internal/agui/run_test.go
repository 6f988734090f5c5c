package agui

import (
	"errors"
	"testing"
	"time"
)

func TestRunAcceptRefusalChangesNothing(t *testing.T) {
	r := NewRun(Config{Coalesce: CoalesceConfig{Interval: time.Hour}})
	store := func(evs []*Event) {
		for _, ev := range evs {
			r.Stored(ev)
		}
	}
	now := time.Now()
	out, err := r.Accept(mustParse(t, `{"type":"TEXT_MESSAGE_START","messageId":"m"}`), now)
	if err != nil || len(out) != 1 {
		t.Fatalf("Accept START = %v, %v", out, err)
	}
	store(out)
	out, _ = r.Accept(delta(t, "m", "a"), now)
	store(out)
	_, err = r.Accept(mustParse(t, `{"type":"STATE_DELTA","delta":[{"op":"remove","path":"/x"}]}`), now)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeStatePatchFailed || e.Detail != `STATE_DELTA: operation 0 (remove /x): no member "x"` {
		t.Fatalf("Accept bad delta = %v", err)
	}
	if r.Coalescer.Pending() != 1 {
		t.Fatalf("a refusal flushed the held delta")
	}
	out, err = r.Accept(mustParse(t, `{"type":"STATE_DELTA","delta":[{"op":"add","path":"/x","value":1}]}`), now)
	if err != nil || len(out) != 2 || out[0].Delta != "a" || out[1].Type != StateDelta {
		t.Fatalf("Accept good delta = %s, %v", rawOf(out), err)
	}
	store(out)
	if got := string(r.State.Snapshot().Raw); got != `{"type":"STATE_SNAPSHOT","snapshot":{"x":1}}` {
		t.Fatalf("state %s", got)
	}
	if got := rawOf(r.Finish()); got != `{"type":"TEXT_MESSAGE_END","messageId":"m"}`+"\n" {
		t.Fatalf("Finish = %s", got)
	}
}

func TestResumePrefixState(t *testing.T) {
	history := parseAll(t, []string{
		`{"type":"RUN_STARTED","threadId":"th","runId":"r","input":{"threadId":"th","runId":"r","messages":[],"state":{"n":1}}}`,
		`{"type":"STATE_DELTA","delta":[{"op":"replace","path":"/n","value":2}]}`,
	})
	got := rawOf(ResumePrefix(history, Config{}))
	want := string(history[0].Raw) + "\n" + `{"type":"STATE_SNAPSHOT","snapshot":{"n":2}}` + "\n"
	if got != want {
		t.Fatalf("ResumePrefix =\n%s\nwant\n%s", got, want)
	}
	fin := mustParse(t, `{"type":"RUN_ERROR","message":"stopped","code":"cancelled"}`)
	got = rawOf(ResumePrefix(append(history, fin), Config{}))
	if want += string(fin.Raw) + "\n"; got != want {
		t.Fatalf("ResumePrefix after the final event =\n%s\nwant\n%s", got, want)
	}
	if ResumePrefix(history[1:], Config{}) != nil || ResumePrefix(nil, Config{}) != nil {
		t.Fatal("ResumePrefix without RUN_STARTED first is not nil")
	}
}
