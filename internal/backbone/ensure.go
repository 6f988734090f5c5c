package backbone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureTimeout bounds how long EnsureStream and EnsureKeyValue keep trying.
const EnsureTimeout = 60 * time.Second

// ensureAttempt bounds one attempt of EnsureStream or EnsureKeyValue.
const ensureAttempt = 3 * time.Second

// logEvery spaces the log lines of a wait that goes on.
const logEvery = 10 * time.Second

// EnsureStream creates the stream cfg describes or updates it to cfg, and
// converges when several nodes do so at once: a stream that already exists
// with this configuration is success, one with another configuration is
// updated, and passing errors (a cluster still forming, a creation that
// raced with another, a timeout) are retried with backoff until ctx ends or
// EnsureTimeout passes. Errors that no retry can fix (an invalid or
// unsupported configuration) are returned at once.
//
// While the storage is full (Writable), an existing stream is used as it
// is: updating its configuration writes to the disk, and a node must start
// on a full disk.
func (b *Backbone) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if b.Writable() != nil {
		if st, err := b.JS.Stream(ctx, cfg.Name); err == nil {
			b.log.Warn("storage full: stream used with its existing configuration", "stream", cfg.Name)
			return st, nil
		}
	}
	var st jetstream.Stream
	err := b.ensure(ctx, "stream "+cfg.Name, func(ctx context.Context) (err error) {
		st, err = b.JS.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// EnsureKeyValue is EnsureStream for a key-value bucket. A read from the
// bucket it returns sees every write acknowledged before it: a replicated
// bucket reads from its stream's leader (see leaderKV).
func (b *Backbone) EnsureKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if b.Writable() != nil {
		if kv, err := b.JS.KeyValue(ctx, cfg.Bucket); err == nil {
			b.log.Warn("storage full: bucket used with its existing configuration", "bucket", cfg.Bucket)
			return newLeaderKV(kv, b.NC), nil // replicated or not: its configuration is not known here
		}
	}
	var kv jetstream.KeyValue
	err := b.ensure(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) (err error) {
		kv, err = b.JS.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	if cfg.Replicas > 1 {
		return newLeaderKV(kv, b.NC), nil
	}
	// One replica: the direct get is answered by the stream's one server,
	// which has every write it acknowledged, in 40% of the leader get's time.
	return kv, nil
}

func (b *Backbone) ensure(ctx context.Context, what string, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, EnsureTimeout)
	defer cancel()
	var last time.Time
	for attempt := 0; ; attempt++ {
		// A short attempt: when several nodes create the same stream at
		// once, JetStream may leave all but one request unanswered; the
		// next attempt finds the stream made and returns at once.
		actx, acancel := context.WithTimeout(ctx, ensureAttempt)
		err := try(actx)
		acancel()
		if err == nil {
			if attempt > 0 {
				b.log.Info("created "+what, "attempts", attempt+1)
			}
			return nil
		}
		if permanent(err) {
			return err
		}
		if time.Since(last) >= logEvery {
			b.log.Warn("creating "+what+": retrying", "err", err)
			last = time.Now()
		}
		if serr := sleep(ctx, backoff(attempt)); serr != nil {
			return err
		}
	}
}

// permanent reports errors that retrying cannot fix: JetStream refused the
// configuration itself.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10003, // bad request
		10052, // invalid stream configuration
		10065, // subjects overlap with an existing stream
		10074, // replicas > 1 not supported in non-clustered mode
		10039: // JetStream not enabled for the account
		return true
	}
	return false
}

// backoff is the pause before retry attempt+1: 100 ms doubling up to 2 s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 5)
	return min(d, 2*time.Second)
}

// sleep waits d or until ctx ends (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsConflict reports whether err is a key-value compare-and-set conflict:
// a Create of a key that exists, or an Update or Delete against a revision
// that is no longer the latest. Unreplicated streams answer 10071 (which
// matches jetstream.ErrKeyExists), replicated ones 10164 (which matches
// only jetstream.ErrKeyRevisionMismatch): both are a conflict, to be
// resolved by reading again.
func IsConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	// A stream write with an expected last sequence (not through the
	// key-value API) answers with the bare API error.
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}
