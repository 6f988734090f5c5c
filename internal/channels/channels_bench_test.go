package channels

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkEncode builds the {"type":"message",…} frame shared by all the
// local subscribers of a channel message.
func BenchmarkEncode(b *testing.B) {
	data := []byte(`{"text":"hello there","t":1763800000000000000,"i":17}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode("room:lobby", "alice", data, 123456)
	}
}

// countingSubscriber counts deliveries, as a connection's Deliver would
// queue them without blocking.
type countingSubscriber struct{ n atomic.Int64 }

func (s *countingSubscriber) Deliver([]byte) { s.n.Add(1) }

// fakeMsg is the one JetStream message dispatch reads.
type fakeMsg struct {
	jetstream.Msg
	hdr  nats.Header
	data []byte
	meta *jetstream.MsgMetadata
}

func (m *fakeMsg) Headers() nats.Header                      { return m.hdr }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }

// BenchmarkDispatch is the hub handing one channel message to its local
// subscribers (encode once, Deliver to each): per op, one message to all
// of them. The connection layer's Deliver (queueing a write) is not in it.
func BenchmarkDispatch(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			h := &Hub{log: slog.New(slog.DiscardHandler), subs: map[string]map[Subscriber]struct{}{}}
			subs := make([]*countingSubscriber, n)
			for i := range subs {
				subs[i] = &countingSubscriber{}
				h.Subscribe("room:lobby", subs[i])
			}
			h.Subscribe("room:other", &countingSubscriber{})
			m := &fakeMsg{
				hdr:  nats.Header{headerChannel: {"room:lobby"}, headerFrom: {"alice"}},
				data: []byte(`{"text":"hello there","t":1763800000000000000,"i":17}`),
				meta: &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: 42}},
			}
			b.ReportAllocs()
			for b.Loop() {
				h.dispatch(m, 42)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			if got := subs[n-1].n.Load(); got == 0 {
				b.Fatal("no delivery")
			}
		})
	}
}
