package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
)

// ConnectionsBucket holds, per user, how many connections each node has.
const ConnectionsBucket = "TETHER_CONNECTIONS"

// opTimeout bounds one counter update: it runs during a handshake.
const opTimeout = 2 * time.Second

// UserCounter counts a user's connections across every node, so that the
// per-user limit holds cluster-wide. Each user's entry maps node names to
// counts and is updated with compare-and-set; the counts of a node that
// dies are removed by the survivors (Forget).
type UserCounter struct {
	kv   jetstream.KeyValue
	node string
	log  *slog.Logger
	// warn spaces the warnings of failed updates: a NATS outage fails every
	// handshake's update, and one line per handshake would flood the log.
	warn rateLog
}

// NewUserCounter opens the connections bucket.
func NewUserCounter(ctx context.Context, bb *backbone.Backbone, node string, log *slog.Logger) (*UserCounter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ConnectionsBucket,
		Description: "Tether connections per user and node",
		Storage:     jetstream.MemoryStorage,
		Replicas:    bb.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, err
	}
	return &UserCounter{kv: kv, node: node, log: log, warn: rateLog{log: log, every: 10 * time.Second}}, nil
}

// key maps a user id to a valid key-value key.
func key(user string) string { return "u." + base64.RawURLEncoding.EncodeToString([]byte(user)) }

// Acquire counts one more connection of user unless the user already has
// limit connections on all nodes together. If NATS cannot be reached it
// lets the connection in (and logs): availability over strictness.
func (u *UserCounter) Acquire(user string, limit int) bool {
	if limit <= 0 {
		return true
	}
	ok, err := u.update(user, func(counts map[string]int) bool {
		total := 0
		for _, n := range counts {
			total += n
		}
		if total >= limit {
			return false
		}
		counts[u.node]++
		return true
	})
	if err != nil {
		u.warn.Warn("cluster connection count unavailable; allowing", err)
		return true
	}
	return ok
}

// Release uncounts one connection of user on this node.
func (u *UserCounter) Release(user string) {
	if _, err := u.update(user, func(counts map[string]int) bool {
		if counts[u.node] <= 0 {
			return false
		}
		if counts[u.node]--; counts[u.node] == 0 {
			delete(counts, u.node)
		}
		return true
	}); err != nil {
		u.warn.Warn("cluster connection count: release failed", err)
	}
}

// Forget removes a dead node's counts from every user.
func (u *UserCounter) Forget(node string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lister, err := u.kv.ListKeys(ctx)
	if err != nil {
		u.log.Warn("cluster connection count: forget", "node", node, "err", err)
		return
	}
	for k := range lister.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(k[2:])
		if err != nil {
			continue
		}
		_, _ = u.update(string(raw), func(counts map[string]int) bool {
			if _, ok := counts[node]; !ok {
				return false
			}
			delete(counts, node)
			return true
		})
	}
}

// update applies fn to user's counts with compare-and-set, retrying on
// conflicts; fn returns false to change nothing (and update returns false).
func (u *UserCounter) update(user string, fn func(map[string]int) bool) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	k := key(user)
	// Conflicts are retried until opTimeout: every retry follows another
	// writer's success, so the loop makes progress.
	for attempt := 0; ; attempt++ {
		counts := map[string]int{}
		var rev uint64
		e, err := u.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return false, err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &counts); err != nil {
				counts = map[string]int{}
			}
		}
		if !fn(counts) {
			return false, nil
		}
		b, _ := json.Marshal(counts)
		if rev == 0 {
			_, err = u.kv.Create(ctx, k, b)
		} else {
			_, err = u.kv.Update(ctx, k, b, rev)
		}
		if err == nil {
			return true, nil
		}
		if !backbone.IsConflict(err) {
			return false, err
		}
		// Someone else updated it first: read again, after a pause that
		// grows and is random, so that contending nodes spread out.
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("update connection count of %s: %w", k, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// rateLog logs a warning at most once per interval, with how many were
// left out since the last one.
type rateLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Warn logs msg with err unless a warning was logged less than every ago.
func (r *rateLog) Warn(msg string, err error) {
	r.mu.Lock()
	if !r.last.IsZero() && time.Since(r.last) < r.every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = time.Now(), 0
	r.mu.Unlock()
	r.log.Warn(msg, "err", err, "suppressed_since_last", n)
}
