package agui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func mustParse(t testing.TB, s string) *Event {
	t.Helper()
	ev, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return ev
}

func delta(t testing.TB, id, d string) *Event {
	return mustParse(t, fmt.Sprintf(`{"type":"TEXT_MESSAGE_CONTENT","messageId":%q,"delta":%q}`, id, d))
}

// assembled returns each message's text from stored events, and the
// sequence of non-delta events, checking the stored stream is valid.
func assembled(t *testing.T, stored []*Event) (map[string]string, []string) {
	t.Helper()
	texts := map[string]string{}
	var others []string
	tr := NewTracker(Limits{})
	for _, ev := range stored {
		if err := tr.Check(ev); err != nil {
			t.Fatalf("stored event %s is invalid: %v", ev.Raw, err)
		}
		tr.Apply(ev)
		switch ev.Type {
		case TextMessageContent, ReasoningMessageContent:
			texts[ev.MessageID] += ev.Delta
		case ToolCallArgs:
			texts[ev.ToolCallID] += ev.Delta
		default:
			others = append(others, string(ev.Raw))
		}
	}
	return texts, others
}

func TestCoalesce10000Deltas(t *testing.T) {
	c := NewCoalescer(CoalesceConfig{Interval: time.Hour, MaxBytes: 16 << 10})
	var stored []*Event
	add := func(ev *Event) { stored = append(stored, c.Add(ev, time.Unix(0, 0))...) }
	want := map[string]*strings.Builder{"m1": {}, "m2": {}, "t1": {}}
	var wantOthers []string
	other := func(s string) {
		wantOthers = append(wantOthers, s)
		add(mustParse(t, s))
	}
	other(`{"type":"TEXT_MESSAGE_START","messageId":"m1"}`)
	other(`{"type":"TEXT_MESSAGE_START","messageId":"m2"}`)
	other(`{"type":"TOOL_CALL_START","toolCallId":"t1","toolCallName":"f"}`)
	words := []string{"héllo ", "wörld", "\n", "日本", "\"q\"", "", "\\", "😀", "<&>", "\u2028"}
	for i := 0; i < 10000; i++ {
		w := words[i%len(words)] + fmt.Sprint(i)
		switch {
		case i%1000 == 999:
			other(fmt.Sprintf(`{"type":"CUSTOM","name":"tick","value":%d}`, i))
		case i%97 < 3: // short runs of another message and the tool call
			want["m2"].WriteString(w)
			add(delta(t, "m2", w))
		case i%97 < 5:
			want["t1"].WriteString(w)
			add(mustParse(t, fmt.Sprintf(`{"type":"TOOL_CALL_ARGS","toolCallId":"t1","delta":%q}`, w)))
		default:
			want["m1"].WriteString(w)
			add(delta(t, "m1", w))
		}
	}
	other(`{"type":"TEXT_MESSAGE_END","messageId":"m1"}`)
	stored = append(stored, c.Flush()...)
	texts, others := assembled(t, stored)
	for id, b := range want {
		if texts[id] != b.String() {
			t.Fatalf("%s: assembled text differs (%d bytes, want %d)", id, len(texts[id]), b.Len())
		}
	}
	if strings.Join(others, "\n") != strings.Join(wantOthers, "\n") {
		t.Fatalf("other events:\n%s\nwant\n%s", strings.Join(others, "\n"), strings.Join(wantOthers, "\n"))
	}
	if len(stored) > 600 {
		t.Fatalf("%d events stored for 10,000 deltas", len(stored))
	}
	t.Logf("10,000 deltas stored as %d events", len(stored))
}

func TestCoalesceSizeFlush(t *testing.T) {
	c := NewCoalescer(CoalesceConfig{Interval: time.Hour, MaxBytes: 100})
	var stored []*Event
	for i := 0; i < 25; i++ {
		stored = append(stored, c.Add(delta(t, "m", "0123456789"), time.Time{})...)
	}
	if len(stored) != 2 || len(stored[0].Delta) != 100 || len(stored[1].Delta) != 100 || c.Pending() != 5 {
		t.Fatalf("stored %d events, %d pending", len(stored), c.Pending())
	}
}

func TestCoalesceKeepsFieldsAndExtras(t *testing.T) {
	c := NewCoalescer(CoalesceConfig{})
	now := time.Time{}
	var out []*Event
	out = append(out, c.Add(mustParse(t, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"a","subagentRunId":"s","timestamp":7}`), now)...)
	out = append(out, c.Add(mustParse(t, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"b","subagentRunId":"s","timestamp":8}`), now)...)
	// Another owner: not merged with the above.
	out = append(out, c.Add(mustParse(t, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"c"}`), now)...)
	// Metadata: stored as sent.
	out = append(out, c.Add(mustParse(t, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"d","metadata":{"k":1}}`), now)...)
	out = append(out, c.Flush()...)
	got := rawOf(out)
	want := `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"ab","subagentRunId":"s","timestamp":7}
{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"c"}
{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"d","metadata":{"k":1}}
`
	if got != want {
		t.Fatalf("stored:\n%s\nwant\n%s", got, want)
	}
}

// pipeline is the pattern an operation's event pipeline follows: one
// goroutine, a timer armed for the Coalescer's deadline, storing what Add
// and FlushDue return.
func pipeline(in <-chan *Event, store func(*Event)) {
	c := NewCoalescer(CoalesceConfig{Interval: 50 * time.Millisecond})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armed := false
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				for _, e := range c.Flush() {
					store(e)
				}
				return
			}
			for _, e := range c.Add(ev, time.Now()) {
				store(e)
			}
		case <-timer.C:
			armed = false
			for _, e := range c.FlushDue(time.Now()) {
				store(e)
			}
		}
		if d, ok := c.Deadline(); ok && !armed {
			timer.Reset(time.Until(d))
			armed = true
		}
	}
}

func TestCoalesceTimerVirtual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(chan *Event)
		var stored []*Event
		// sentAt[i] is when byte i of the message's text was sent; each
		// stored delta must be stored at most 50 ms after its first byte.
		var sentAt []time.Time
		storedBytes := 0
		var worst time.Duration
		var mu sync.Mutex // the sender and the pipeline share sentAt
		done := make(chan struct{})
		go func() {
			defer close(done)
			pipeline(in, func(ev *Event) {
				mu.Lock()
				defer mu.Unlock()
				stored = append(stored, ev)
				if ev.Type == TextMessageContent && ev.Delta != "" {
					if wait := time.Since(sentAt[storedBytes]); wait > worst {
						worst = wait
					}
					storedBytes += len(ev.Delta)
				}
			})
		}()
		in <- mustParse(t, `{"type":"TEXT_MESSAGE_START","messageId":"m"}`)
		var want strings.Builder
		// 2,000 deltas a second for one second.
		for i := 0; i < 2000; i++ {
			d := fmt.Sprintf("%d,", i)
			want.WriteString(d)
			mu.Lock()
			for range d {
				sentAt = append(sentAt, time.Now())
			}
			mu.Unlock()
			in <- delta(t, "m", d)
			time.Sleep(500 * time.Microsecond)
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		texts, _ := assembled(t, stored)
		mu.Unlock()
		if texts["m"] != want.String() {
			t.Fatalf("50 ms after the last delta the stored text is %d bytes, want %d", len(texts["m"]), want.Len())
		}
		close(in)
		<-done
		if worst > 50*time.Millisecond {
			t.Fatalf("a delta waited %v to be stored", worst)
		}
		// One START, then one merged delta per 50 ms interval over 1 s.
		if n := len(stored) - 1; n < 20 || n > 21 {
			t.Fatalf("%d delta events stored, want 20 or 21", n)
		}
	})
}
