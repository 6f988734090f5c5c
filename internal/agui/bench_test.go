package agui

import (
	"testing"
	"time"
)

// BenchmarkDeltaPipeline is what Tether does per TEXT_MESSAGE_CONTENT line
// of an agent: Parse, Tracker.Check, Coalescer.Add, and Tracker.Apply of
// what is stored (one merged event per 16 KiB here; the timer is not run).
func BenchmarkDeltaPipeline(b *testing.B) {
	line := []byte(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"msg-0001","delta":" token"}`)
	tr := NewTracker(Limits{})
	start := mustParse(b, `{"type":"TEXT_MESSAGE_START","messageId":"msg-0001","role":"assistant"}`)
	tr.Apply(start)
	c := NewCoalescer(CoalesceConfig{Interval: time.Hour})
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		ev, err := Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Check(ev); err != nil {
			b.Fatal(err)
		}
		for _, out := range c.Add(ev, now) {
			tr.Apply(out)
		}
	}
}

// BenchmarkParseDelta is Parse alone.
func BenchmarkParseDelta(b *testing.B) {
	line := []byte(`{"type":"TEXT_MESSAGE_CONTENT","messageId":"msg-0001","delta":" token"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
