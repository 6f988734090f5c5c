package agui

import (
	"strings"
	"time"
)

// CoalesceConfig sets when a Coalescer flushes.
type CoalesceConfig struct {
	// Interval is the longest a delta waits: the merged event is due this
	// long after the first delta it holds. Default 50 ms.
	Interval time.Duration
	// MaxBytes flushes the merged event once its delta text reaches this
	// many bytes. Default 16 KiB.
	MaxBytes int
}

// DefaultCoalesce is the configuration used for zero fields.
var DefaultCoalesce = CoalesceConfig{Interval: 50 * time.Millisecond, MaxBytes: 16 << 10}

// Coalescer merges consecutive deltas of one message before they are
// stored, so that an agent printing thousands of tokens a second stores
// tens of events a second:
//
//   - TEXT_MESSAGE_CONTENT, TOOL_CALL_ARGS and REASONING_MESSAGE_CONTENT
//     events of the same type, the same messageId / toolCallId and the same
//     subagentRunId (or none), following each other, become one event whose
//     delta is their deltas concatenated in order. It carries the first
//     delta's timestamp, if it had one.
//   - A delta carrying any other field (metadata, rawEvent, unknown fields)
//     is not merged: it is stored as sent, after what was pending.
//   - What is pending is flushed before any other event of the run (so
//     events keep their order: a delta is never stored after an event that
//     followed it), when its delta text reaches MaxBytes, and when it is due
//     (Interval after its first delta; the caller calls FlushDue then).
//
// Nothing is lost, doubled or reordered: the concatenation of the stored
// deltas of a message equals the concatenation of the deltas sent.
//
// A Coalescer is used by one goroutine, the operation's event pipeline,
// and does no I/O: Add returns the events to store now, and the caller
// stores them (holding no lock of the Coalescer). The caller arms a timer
// for Deadline after each Add and calls FlushDue when it fires:
//
//	out := c.Add(ev, time.Now())
//	store(out)
//	if d, ok := c.Deadline(); ok { timer.Reset(time.Until(d)) }
//	...
//	case <-timer.C: store(c.FlushDue(time.Now()))
type Coalescer struct {
	cfg CoalesceConfig

	// The pending merged delta: its first event, its text, how many
	// deltas it holds and when it is due.
	first *Event
	text  strings.Builder
	n     int
	due   time.Time
}

// NewCoalescer returns a Coalescer; zero fields of cfg take
// DefaultCoalesce.
func NewCoalescer(cfg CoalesceConfig) *Coalescer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCoalesce.Interval
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultCoalesce.MaxBytes
	}
	return &Coalescer{cfg: cfg}
}

// Add takes an event of the run (that passed Tracker.Check) and returns
// the events to store now, in order: nothing while a delta is held, else
// what was pending followed by ev.
func (c *Coalescer) Add(ev *Event, now time.Time) []*Event {
	if ev.Type.IsDelta() && ev.plain {
		if c.first != nil && !c.sameEntity(ev) {
			out := []*Event{c.take()}
			c.hold(ev, now)
			return c.flushIfFull(out)
		}
		if c.first == nil {
			c.hold(ev, now)
		} else {
			c.text.WriteString(ev.Delta)
			c.n++
		}
		return c.flushIfFull(nil)
	}
	if c.first == nil {
		return []*Event{ev}
	}
	return []*Event{c.take(), ev}
}

func (c *Coalescer) flushIfFull(out []*Event) []*Event {
	if c.first != nil && c.text.Len() >= c.cfg.MaxBytes {
		out = append(out, c.take())
	}
	return out
}

func (c *Coalescer) sameEntity(ev *Event) bool {
	f := c.first
	return ev.Type == f.Type && ev.MessageID == f.MessageID && ev.ToolCallID == f.ToolCallID &&
		ev.Tagged == f.Tagged && ev.Subagent == f.Subagent
}

func (c *Coalescer) hold(ev *Event, now time.Time) {
	c.first = ev
	c.text.Reset()
	c.text.WriteString(ev.Delta)
	c.n = 1
	c.due = now.Add(c.cfg.Interval)
}

// take returns the pending merged event and empties the Coalescer.
func (c *Coalescer) take() *Event {
	f := c.first
	c.first = nil
	if c.n == 1 {
		return f
	}
	kvs := make([]KV, 0, 4)
	if f.Type == ToolCallArgs {
		kvs = append(kvs, KV{"toolCallId", f.ToolCallID})
	} else {
		kvs = append(kvs, KV{"messageId", f.MessageID})
	}
	kvs = append(kvs, KV{"delta", c.text.String()})
	if f.Tagged {
		kvs = append(kvs, KV{"subagentRunId", f.Subagent})
	}
	if f.HasTimestamp {
		kvs = append(kvs, KV{"timestamp", f.Timestamp})
	}
	return mustMake(f.Type, kvs...)
}

// Pending reports how many deltas are held.
func (c *Coalescer) Pending() int {
	if c.first == nil {
		return 0
	}
	return c.n
}

// Deadline returns when the held delta is due, and false when nothing is
// held.
func (c *Coalescer) Deadline() (time.Time, bool) {
	if c.first == nil {
		return time.Time{}, false
	}
	return c.due, true
}

// FlushDue returns the held merged delta if it is due at now, else
// nothing.
func (c *Coalescer) FlushDue(now time.Time) []*Event {
	if c.first == nil || now.Before(c.due) {
		return nil
	}
	return []*Event{c.take()}
}

// Flush returns the held merged delta, due or not (the run is ending, or
// the caller must store everything now).
func (c *Coalescer) Flush() []*Event {
	if c.first == nil {
		return nil
	}
	return []*Event{c.take()}
}
