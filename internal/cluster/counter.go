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
//
// Each node writes only its own count, and writes it whole (the number of
// the user's connections it holds, not a change): a write that fails or
// times out leaves nothing to undo, since the next one sets the right
// number, and a node retries until its entry is right. Concurrent
// handshakes and closes of one user on a node are applied together, in
// one compare-and-set, by whichever of them flushes first: contention on a
// user's entry is then between nodes, not between connections.
type UserCounter struct {
	kv   jetstream.KeyValue
	node string
	log  *slog.Logger
	// warn spaces the warnings of failed updates: a NATS outage fails every
	// handshake's update, and one line per handshake would flood the log.
	warn rateLog

	ctx    context.Context // ends with Close: background retries stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	users map[string]*userCount
}

// userCount is this node's view of one user: the connections it holds and
// the handshakes waiting to be admitted.
type userCount struct {
	local    int         // connections admitted here and not released
	written  int         // local as last written to the entry; -1: unknown
	waiting  []chan bool // handshakes to admit or refuse, with their limit
	limits   []int
	flushing bool // a goroutine is writing the entry
	failing  bool // its last write failed: handshakes are let in at once
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
	u := &UserCounter{kv: kv, node: node, log: log, warn: rateLog{log: log, every: 10 * time.Second}, users: map[string]*userCount{}}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.wg.Add(1)
	go u.resync()
	return u, nil
}

// Close lets the writes under way finish for up to a few seconds (the
// releases of a shutdown's closed connections), then stops them. Counts
// not written by then are left to Forget, as for a node that died.
func (u *UserCounter) Close() {
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	t := time.NewTimer(2 * opTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	u.cancel()
	<-done
}

// resync writes this node's count (none yet) into every entry that still
// holds one from before it started: a node restarted before the others
// declared it dead would otherwise keep its old connections counted.
func (u *UserCounter) resync() {
	defer u.wg.Done()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	lister, err := u.kv.ListKeys(ctx)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoKeysFound) {
			u.log.Warn("cluster connection count: resync", "err", err)
		}
		return
	}
	for k := range lister.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(k[2:])
		if err != nil {
			continue
		}
		e, err := u.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var counts map[string]int
		if json.Unmarshal(e.Value(), &counts) != nil || counts[u.node] == 0 {
			continue
		}
		u.mu.Lock()
		u.kickLocked(string(raw), u.userLocked(string(raw)))
		u.mu.Unlock()
	}
}

// key maps a user id to a valid key-value key.
func key(user string) string { return "u." + base64.RawURLEncoding.EncodeToString([]byte(user)) }

// Acquire counts one more connection of user unless the user already has
// limit connections on all nodes together. If NATS cannot be reached it
// lets the connection in (and logs): availability over strictness; the
// connection is still counted here, and written once NATS is back.
func (u *UserCounter) Acquire(user string, limit int) bool {
	if limit <= 0 {
		return true
	}
	done := make(chan bool, 1)
	u.mu.Lock()
	uc := u.userLocked(user)
	uc.waiting = append(uc.waiting, done)
	uc.limits = append(uc.limits, limit)
	u.kickLocked(user, uc)
	u.mu.Unlock()
	return <-done // answered by the flush, within opTimeout
}

// Release uncounts one connection of user on this node; the entry is
// written in the background.
func (u *UserCounter) Release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	uc := u.userLocked(user)
	if uc.local > 0 {
		uc.local--
	}
	u.kickLocked(user, uc)
}

func (u *UserCounter) userLocked(user string) *userCount {
	uc := u.users[user]
	if uc == nil {
		uc = &userCount{written: -1}
		u.users[user] = uc
	}
	return uc
}

// kickLocked starts a flush of user's entry unless one is running (it
// will see the new work). Called with mu held.
func (u *UserCounter) kickLocked(user string, uc *userCount) {
	if u.ctx.Err() != nil {
		for _, d := range uc.waiting { // closed: let them in, as when NATS is unreachable
			d <- true
		}
		uc.waiting, uc.limits = nil, nil
		return
	}
	if uc.flushing {
		if uc.failing {
			// NATS is not answering: let handshakes in now, counted here,
			// rather than after the retry's pause.
			uc.local += len(uc.waiting)
			for _, d := range uc.waiting {
				d <- true
			}
			uc.waiting, uc.limits = nil, nil
		}
		return // the running flush takes the new work
	}
	uc.flushing = true
	u.wg.Add(1)
	go u.flush(user, uc)
}

// flush writes user's entry until it holds this node's count and every
// waiting handshake is answered. A failed write admits the handshakes it
// carried (they are counted here) and is retried after a pause.
func (u *UserCounter) flush(user string, uc *userCount) {
	defer u.wg.Done()
	pause := 100 * time.Millisecond
	for {
		u.mu.Lock()
		waiting, limits := uc.waiting, uc.limits
		uc.waiting, uc.limits = nil, nil
		local := uc.local
		if len(waiting) == 0 && uc.written == local {
			uc.flushing = false
			if local == 0 {
				delete(u.users, user) // nothing held: forget the user
			}
			u.mu.Unlock()
			return
		}
		u.mu.Unlock()

		admitted, err := u.write(user, local, limits)
		u.mu.Lock()
		uc.failing = err != nil
		if err != nil {
			// Let them in uncounted by the cluster for now: counted here,
			// and written by the retry.
			admitted = len(waiting)
		} else {
			uc.written = local + admitted
		}
		uc.local += admitted
		for i, d := range waiting {
			d <- i < admitted
		}
		u.mu.Unlock()
		if err == nil {
			pause = 100 * time.Millisecond
			continue
		}
		u.warn.Warn("cluster connection count unavailable; allowing, and retrying", err)
		select {
		case <-u.ctx.Done():
			u.mu.Lock()
			uc.flushing = false
			for _, d := range uc.waiting {
				d <- true
			}
			uc.waiting, uc.limits = nil, nil
			u.mu.Unlock()
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// write sets this node's count of user to local plus as many of the
// handshakes (with their limits, in order) as fit under their limit with
// every node's connections counted, and returns how many fitted.
func (u *UserCounter) write(user string, local int, limits []int) (int, error) {
	admitted := 0
	_, err := u.update(user, func(counts map[string]int) bool {
		others := 0
		for n, c := range counts {
			if n != u.node {
				others += c
			}
		}
		admitted = 0
		for _, limit := range limits {
			if others+local+admitted >= limit {
				break
			}
			admitted++
		}
		if v := local + admitted; v > 0 {
			counts[u.node] = v
		} else {
			delete(counts, u.node)
		}
		return true
	})
	return admitted, err
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
