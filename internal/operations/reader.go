package operations

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
)

// readerRecoverBound is how long an eventReader keeps trying to get its
// consumer back after losing it before it gives up: a NATS server's loss
// and the election of new leaders take seconds (docs/deploy.md), so this
// is generous.
const readerRecoverBound = time.Minute

// eventReader reads one operation's events in stream order, from a stream
// sequence on, through an ordered consumer of its own.
//
// The library recreates an ordered consumer lost with its NATS server, but
// with a backoff of 1, 2, 4, 8 s and more between attempts: a consumer lost
// during a 5 s leader election came back after 15 s or more. The reader
// lets the library try once, then recreates the consumer itself from the
// stream sequence after the last event it returned, every 100 ms to 1 s,
// so that a watcher resumes within a moment of the stream having a leader
// again, with no gap and no duplicate.
type eventReader struct {
	s       *Service
	ctx     context.Context
	id      string
	from    uint64 // stream sequence of the next event to read
	cons    jetstream.Consumer
	it      jetstream.MessagesContext
	stopCtx func() bool
}

func newEventReader(ctx context.Context, s *Service, id string, from uint64) (*eventReader, error) {
	r := &eventReader{s: s, ctx: ctx, id: id, from: max(from, 1)}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// open creates the consumer and its iterator at r.from.
func (r *eventReader) open() error {
	cons, err := r.s.store.js.OrderedConsumer(r.ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{eventSubject(r.id)},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.from,
		InactiveThreshold: consumerIdleLimit,
		MaxResetAttempts:  1,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", r.id, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(prefetchEvents, max(prefetchBytes, 8*r.s.cfg.MaxEventBytes)),
		jetstream.PullExpiry(backbone.PullExpiry), jetstream.PullHeartbeat(backbone.PullHeartbeat))
	if err != nil {
		r.s.deleteConsumer(cons)
		return fmt.Errorf("follow %s: %w", r.id, err)
	}
	r.cons, r.it = cons, it
	r.stopCtx = context.AfterFunc(r.ctx, it.Stop)
	return nil
}

// close stops the iterator and deletes the consumer: the library leaves an
// ordered consumer on the server when it stops (until its inactivity
// threshold).
func (r *eventReader) close() {
	if r.it == nil {
		return
	}
	r.stopCtx()
	r.it.Stop()
	r.s.deleteConsumer(r.cons)
	r.cons, r.it = nil, nil
}

// next returns the next event and how many more the stream holds for the
// operation. It fails when ctx ends or the consumer could not be had back
// for readerRecoverBound.
func (r *eventReader) next() (jetstream.Msg, uint64, error) {
	var failing time.Time
	wait := 100 * time.Millisecond
	for {
		if r.it != nil {
			m, err := r.it.Next()
			if err == nil {
				meta, merr := m.Metadata()
				if merr != nil {
					return nil, 0, fmt.Errorf("follow %s: %w", r.id, merr)
				}
				r.from = meta.Sequence.Stream + 1
				return m, meta.NumPending, nil
			}
			if r.ctx.Err() != nil {
				return nil, 0, r.ctx.Err()
			}
			r.s.log.Debug("operations: watcher lost its consumer; recreating it", "operation", r.id, "from", r.from, "err", err)
			r.close()
		} else if err := r.open(); err == nil {
			continue
		} else if r.ctx.Err() != nil {
			return nil, 0, r.ctx.Err()
		} else if !failing.IsZero() && time.Since(failing) > readerRecoverBound {
			return nil, 0, err
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return nil, 0, r.ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
