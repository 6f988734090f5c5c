package operations

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/protocol"
)

// prefetchBytes is how much one watcher's consumer holds in memory ahead of
// the connection (at least 8 events of the largest size), and
// prefetchEvents how many events; the rest of a backlog stays in
// JetStream. Both are set: with a byte limit alone the library sizes its
// buffer for a million messages, an 8 MB allocation per watcher (the
// bench's 100-watcher fan-out spent half its CPU clearing them).
const (
	prefetchBytes  = 1 << 20
	prefetchEvents = 256
)

// consumerIdleLimit is how long the server keeps a watcher's consumer that
// nobody pulls from: the backstop for consumers not deleted because their
// node died; a live watcher's iterator pulls well within it.
const consumerIdleLimit = time.Minute

// deleteConsumer removes a watcher's consumer from the server.
func (s *Service) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.store.js.DeleteConsumer(ctx, StreamName, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("operations: delete watcher consumer", "consumer", info.Name, "err", err)
	}
}

// plan is how to bring a watcher up to date and keep it there, decided from
// the record and what the stream still holds.
type plan struct {
	rec       stored
	status    string
	lastSeq   uint64
	recovered bool
	// final, when set, is the only event to send: the operation had ended
	// and the watcher asked for no position.
	final *storedEvent
	// follow says to read the stream from stream sequence from, skipping
	// events with seq <= after, until the final event.
	follow      bool
	from, after uint64
}

// state returns the record to send when history cannot be replayed.
func (p *plan) state() protocol.OperationRecord {
	r := p.rec.OperationRecord
	r.Status, r.LastSeq = p.status, p.lastSeq
	return r
}

// planFollow decides how cl resumes operation id after seq after (nil: from
// the start if it runs, only its final event if it ended).
func (s *Service) planFollow(ctx context.Context, cl *auth.Claims, id string, after *uint64) (*plan, error) {
	rec, err := s.authorize(ctx, cl, id)
	if err != nil {
		return nil, err
	}
	p := &plan{rec: *rec, status: rec.Status, lastSeq: rec.LastSeq}
	last, err := s.store.lastEvent(ctx, id)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	if errors.Is(err, errNotFound) || last.StreamSeq < rec.StreamSeq {
		// Retention dropped every event: only the record is left.
		p.follow = protocol.Live(rec.Status)
		p.from, p.after = rec.StreamSeq, rec.LastSeq
		return p, nil
	}
	p.lastSeq = last.Seq
	ended := isFinal(last.Type)
	if ended {
		p.status = statusOf(last.Type)
	} else if protocol.Live(rec.Status) {
		p.status = rec.Status
	} else {
		p.status = protocol.StatusRunning
	}
	if ended && after == nil {
		p.recovered, p.final = true, &last
		return p, nil
	}
	a := uint64(0)
	if after != nil {
		a = *after
	}
	if a > last.Seq {
		// The client cannot have seen events that do not exist yet; going
		// live from there would silently skip the next ones.
		return nil, refuse(protocol.CodeBadRequest, "after_seq %d is beyond the operation's last seq %d", a, last.Seq)
	}
	if a == last.Seq {
		p.recovered = true
		p.follow = !ended
		p.from, p.after = last.StreamSeq+1, a
		return p, nil
	}
	first, err := s.store.firstEvent(ctx, id, rec.StreamSeq)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	if errors.Is(err, errNotFound) || first.Seq > a+1 {
		// A partial replay would look complete to the client: send the
		// state and carry on from the newest event instead.
		p.follow = !ended
		p.from, p.after = last.StreamSeq+1, last.Seq
		return p, nil
	}
	p.recovered, p.follow = true, true
	p.from, p.after = first.StreamSeq, a
	return p, nil
}

// delivery is one event handed to a watcher.
type delivery struct {
	Seq  uint64
	Type string
	Data []byte
}

// pumpOptions adapt pump to a transport.
type pumpOptions struct {
	// send delivers one event; an error stops the pump.
	send func(delivery) error
	// lagging, when set, reports that the watcher is behind; progress
	// followed by more progress is then skipped.
	lagging func() bool
	// flush, when set, waits until what send queued has been written. It is
	// called after the final event when the node is shutting down, so that
	// the final event is out before the connection is closed.
	flush func(context.Context) error
}

// follower is one running pump, as a drain sees it.
type follower struct {
	id      string
	cancel  context.CancelFunc
	stopped atomic.Bool
}

// stop ends the pump: the node shuts down and will not wait for it.
func (f *follower) stop() {
	f.stopped.Store(true)
	f.cancel()
}

// pump reads operation id's events from the stream as the plan says and
// sends them until the final event, an error, or ctx ends. It reports
// whether the final event was sent. When the node shuts down, a pump of
// an operation that it is not ending stops with no error.
func (s *Service) pump(ctx context.Context, id string, p *plan, opts pumpOptions) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &follower{id: id, cancel: cancel}
	if !s.addFollower(f) {
		return false, nil
	}
	defer s.removeFollower(f)
	final, err := s.follow(ctx, id, p, opts)
	if err != nil && f.stopped.Load() {
		err = nil
	}
	if final && opts.flush != nil && s.draining() {
		if err := opts.flush(ctx); err != nil {
			s.log.Debug("operations: final event not flushed", "operation", id, "err", err)
		}
	}
	return final, err
}

// follow is pump's loop.
func (s *Service) follow(ctx context.Context, id string, p *plan, opts pumpOptions) (bool, error) {
	r, err := newEventReader(ctx, s, id, p.from)
	if err != nil {
		return false, err
	}
	defer r.close()

	next := func() (delivery, uint64, error) {
		m, pending, err := r.next()
		if err != nil {
			return delivery{}, 0, err
		}
		seq, _ := strconv.ParseUint(m.Headers().Get(headerSeq), 10, 64)
		return delivery{Seq: seq, Type: m.Headers().Get(headerType), Data: m.Data()}, pending, nil
	}
	var carry *delivery
	var carryPending uint64
	for {
		var d delivery
		var pending uint64
		if carry != nil {
			d, pending, carry = *carry, carryPending, nil
		} else {
			if d, pending, err = next(); err != nil {
				return false, err
			}
		}
		if d.Seq <= p.after {
			continue
		}
		// Coalescing: a lagging watcher skips progress that newer progress
		// already supersedes. Logs and the final event always go out.
		for d.Type == protocol.TypeOperationProgress && pending > 0 && opts.lagging != nil && opts.lagging() {
			n, np, err := next()
			if err != nil {
				return false, err
			}
			if n.Type != protocol.TypeOperationProgress {
				carry, carryPending = &n, np
				break
			}
			d, pending = n, np
		}
		if err := opts.send(d); err != nil {
			return false, err
		}
		if isFinal(d.Type) {
			return true, nil
		}
	}
}
