package channels

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
)

// The hub follows the message stream with one ordered consumer, from the
// stream sequence after the last message it delivered.
//
// The library recreates an ordered consumer lost with its NATS server, but
// 1, 2, 4, 8 s apart and more: a consumer lost during a leader election of
// a few seconds came back many seconds after the stream had a leader again,
// and every subscriber of the node waited as long. The hub lets the library
// try once (MaxResetAttempts 1), then recreates the consumer itself every
// 100 ms to 1 s from the next sequence, so delivery resumes within a moment
// of the stream being available, with no gap and no duplicate. It never
// gives up: a node without its channel consumer would deliver nothing.

// open creates the consumer and its iterator at h.from.
func (h *Hub) open(ctx context.Context) error {
	cons, err := h.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{SubjectPrefix + ">"},
		DeliverPolicy:    jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:      h.from,
		MaxResetAttempts: 1,
	})
	if err != nil {
		return fmt.Errorf("follow stream %s: %w", StreamName, err)
	}
	it, err := cons.Messages(jetstream.PullExpiry(backbone.PullExpiry), jetstream.PullHeartbeat(backbone.PullHeartbeat))
	if err != nil {
		h.deleteConsumer(cons)
		return fmt.Errorf("consume stream %s: %w", StreamName, err)
	}
	h.mu.Lock()
	h.cons, h.it = cons, it
	h.mu.Unlock()
	return nil
}

// follow delivers the stream's messages until Close.
func (h *Hub) follow() {
	defer close(h.done)
	stop := context.AfterFunc(h.ctx, func() {
		// Next returns at once once its iterator is stopped. h.it is
		// only replaced by this goroutine, which is the one waiting.
		if it := h.iterator(); it != nil {
			it.Stop()
		}
	})
	defer stop()
	wait := 100 * time.Millisecond
	for h.ctx.Err() == nil {
		it := h.iterator()
		if it == nil {
			if err := h.open(h.ctx); err != nil {
				if h.ctx.Err() != nil {
					break
				}
				h.log.Debug("channels: recreating the stream consumer", "from", h.from, "err", err)
				h.sleep(wait)
				wait = min(2*wait, time.Second)
				continue
			}
			wait = 100 * time.Millisecond
			if h.ctx.Err() != nil { // closed while opening: AfterFunc saw no iterator
				break
			}
			continue
		}
		m, err := it.Next()
		if err != nil {
			if h.ctx.Err() != nil {
				break
			}
			h.log.Warn("channels: lost the stream consumer; recreating it", "from", h.from, "err", err)
			h.closeConsumer()
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			h.log.Warn("channel message without metadata", "err", err)
			continue
		}
		h.from = meta.Sequence.Stream + 1
		h.dispatch(m, meta.Sequence.Stream)
	}
	h.closeConsumer()
}

// iterator returns the current iterator; guarded by mu because Close's
// AfterFunc reads it from another goroutine.
func (h *Hub) iterator() jetstream.MessagesContext {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.it
}

// sleep waits d or until Close.
func (h *Hub) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.ctx.Done():
	case <-t.C:
	}
}

// closeConsumer stops the iterator and deletes the consumer: the library
// leaves a stopped ordered consumer on the server for its inactivity
// threshold, and on a shared cluster every restart would leave one behind.
func (h *Hub) closeConsumer() {
	h.mu.Lock()
	it, cons := h.it, h.cons
	h.it, h.cons = nil, nil
	h.mu.Unlock()
	if it != nil {
		it.Stop()
	}
	if cons != nil {
		h.deleteConsumer(cons)
	}
}

func (h *Hub) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.js.DeleteConsumer(ctx, StreamName, info.Name)
}

// Close stops following the stream.
func (h *Hub) Close() {
	h.cancel()
	<-h.done
}
