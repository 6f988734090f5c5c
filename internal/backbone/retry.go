package backbone

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WriteBound is how long Retry keeps trying a write across the loss of a
// NATS server before the write is reported failed. A stream whose leader
// died has no leader until a follower's election timeout fires, 4 to 9 s
// in nats-server (4.2 to 8.5 s were measured, see docs/deploy.md); the
// bound covers a split vote's second round too.
const WriteBound = 20 * time.Second

// attemptTimeout bounds one attempt, so that a request lost with a dying
// server's connection is tried again instead of waiting out the whole
// bound.
const attemptTimeout = 2 * time.Second

// Retry runs op until it succeeds, fails with an error that another try
// cannot fix (see Transient), ctx ends, or WriteBound has passed; it
// returns op's last error. Each attempt gets its own context, at most
// attemptTimeout long.
//
// An attempt that timed out may still have been carried out, so op must
// be safe to repeat: publish with a message ID (the stream drops the
// duplicate and acknowledges the first copy's sequence), and compare what
// a key holds before calling a failed create or update a conflict (see
// CreateKey and UpdateKey).
func Retry(ctx context.Context, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(WriteBound)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wait := 20 * time.Millisecond
	for {
		end := time.Now().Add(attemptTimeout)
		if end.After(deadline) {
			end = deadline
		}
		actx, cancel := context.WithDeadline(ctx, end)
		err := op(actx)
		cancel()
		if err == nil || !Transient(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Transient reports whether err is what NATS answers while a server is
// lost and the cluster recovers: no responder for a stream without a
// leader, a request lost with its connection or timed out, JetStream
// answering 503 during an election. Conflicts, refusals and a full store
// are not transient.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return true
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		return apiErr.Code == 503
	}
	return false
}

// CreateKey creates key with value, retrying across a server's loss. A
// retry that finds the key already holding exactly value counts as the
// earlier attempt's success, not as a conflict.
func CreateKey(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (uint64, error) {
	var rev uint64
	tried := false
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = kv.Create(ctx, key, value)
		if tried && errors.Is(err, jetstream.ErrKeyExists) {
			if e, gerr := kv.Get(ctx, key); gerr == nil && string(e.Value()) == string(value) {
				rev, err = e.Revision(), nil
			}
		}
		tried = true
		return err
	})
	return rev, err
}

// UpdateKey writes value to key if key is still at revision last, retrying
// across a server's loss. A retry that finds the key already holding
// exactly value counts as the earlier attempt's success. A conflict (the
// key changed meanwhile) is returned as it is, for the caller to read
// again.
func UpdateKey(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, last uint64) (uint64, error) {
	var rev uint64
	tried := false
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = kv.Update(ctx, key, value, last)
		if tried && IsConflict(err) {
			if e, gerr := kv.Get(ctx, key); gerr == nil && e.Revision() > last && string(e.Value()) == string(value) {
				rev, err = e.Revision(), nil
			}
		}
		tried = true
		return err
	})
	return rev, err
}

// Live consumers (a node's channel hub, an operation's watchers) pull with
// these: a pull lasts PullExpiry and the server sends a heartbeat every
// PullHeartbeat while it has nothing, so a consumer lost with its NATS
// server is noticed, and recreated on another, within two heartbeats
// rather than the library's default of tens of seconds.
const (
	PullExpiry    = 5 * time.Second
	PullHeartbeat = time.Second
)
