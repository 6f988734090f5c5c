// Package cluster lets the Tether nodes that share one NATS cluster know
// about each other: which nodes are up (a heartbeat in a JetStream
// key-value bucket), what to do when one dies (callbacks that finish its
// terminals and operations as interrupted), and how many connections a
// user holds across all of them.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
)

// NodesBucket holds one key per live node, refreshed every heartbeat.
const NodesBucket = "TETHER_NODES"

// DefaultDeadAfter is how long after its last heartbeat a node is
// considered down when Options.DeadAfter is zero: three heartbeats of the
// default two seconds.
const DefaultDeadAfter = 6 * time.Second

// Options configures a Registry.
type Options struct {
	// Interval is how often this node writes its heartbeat.
	Interval time.Duration
	// DeadAfter is how long after the arrival of a node's last heartbeat
	// the others consider it down. It should be several Intervals, so that
	// one late heartbeat (a busy machine, a NATS leader election) does not
	// fail a live node's work; zero means 3 × Interval.
	DeadAfter time.Duration
}

// Node describes one node as the cluster sees it.
type Node struct {
	Name      string    `json:"name"`
	Addr      string    `json:"addr,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Up is false once the node's heartbeat is older than DeadAfter (or it
	// left).
	Up bool `json:"up"`
	// LastSeen is when this node last received the other's heartbeat.
	LastSeen time.Time `json:"last_seen"`
	Self     bool      `json:"self,omitempty"`
}

// Registry publishes this node's heartbeat and follows the others'.
//
// Heartbeats are followed with a watch on the bucket, so a heartbeat is
// timed when it arrives rather than when this node next polls, and the
// check runs when the oldest heartbeat turns DeadAfter old. Every observer
// therefore declares a dead node down DeadAfter after its last heartbeat
// arrived, which is nearly the same moment on every node (they all receive
// the same heartbeat at about the same time). Seen from the moment the node
// died, that is DeadAfter − Interval to DeadAfter, since it died somewhere
// between two heartbeats.
//
// A node only judges others while its own heartbeats come back to it
// (within two heartbeats), and counts silences from when they came back
// at the earliest: one cut off from NATS, or a bucket whose stream is
// electing a new leader, would otherwise see everyone go quiet at once and
// fail their work.
type Registry struct {
	kv        jetstream.KeyValue
	self      Node
	interval  time.Duration
	deadAfter time.Duration
	log       *slog.Logger

	mu       sync.Mutex
	nodes    map[string]*seen
	selfSeen time.Time // arrival of this node's own latest heartbeat
	// resumed is when this node's own heartbeats came back after a gap
	// (NATS unreachable, or the bucket without a leader): silences are
	// counted from then at the earliest, since nobody's heartbeat could
	// arrive before.
	resumed time.Time
	onDown  []func(node string)

	stop chan struct{}
	done sync.WaitGroup
}

type seen struct {
	node     Node
	revision uint64
	present  bool      // the key exists (false once deleted: the node left)
	changed  time.Time // local clock: immune to skew between machines
}

// Join creates or opens the nodes bucket, writes the first heartbeat and
// starts beating every opts.Interval and following the other nodes.
func Join(ctx context.Context, bb *backbone.Backbone, self Node, opts Options, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		return nil, errors.New("cluster: heartbeat interval must be positive")
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 3 * opts.Interval
	}
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      NodesBucket,
		Description: "Tether nodes and their heartbeats",
		Storage:     jetstream.MemoryStorage,
		Replicas:    bb.Replicas,
		History:     1,
		// Keys of nodes that died without leaving disappear eventually;
		// liveness itself is judged from heartbeats, not from this age.
		TTL: 10 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	self.StartedAt = time.Now().UTC()
	r := &Registry{
		kv: kv, self: self, interval: opts.Interval, deadAfter: opts.DeadAfter, log: log,
		nodes: map[string]*seen{}, stop: make(chan struct{}),
	}
	if err := r.beat(ctx); err != nil {
		return nil, err
	}
	// The watch delivers every current key first, then each change as it
	// happens; it resumes by itself after a reconnect. It lives until
	// Leave (follow stops it), not as long as ctx, which only bounds the
	// join: a watch bound to it stopped with it, and a node whose ctx
	// ended (a test node's start timeout, or the signal that began a
	// drain) no longer saw any node go down.
	// Its own context, cancelled when follow stops: the library keeps a
	// goroutine per watch until the watch's context ends, even after Stop.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(wctx)
	if err != nil {
		wcancel()
		return nil, fmt.Errorf("watch bucket %s: %w", NodesBucket, err)
	}
	r.done.Add(2)
	go r.beatLoop()
	go r.follow(w, wcancel)
	return r, nil
}

// Self returns this node's name.
func (r *Registry) Self() string { return r.self.Name }

// DeadAfter is how long after its last heartbeat a node is considered down.
func (r *Registry) DeadAfter() time.Duration { return r.deadAfter }

// OnDown registers fn to run (on the registry's goroutine) when a node that
// was up stops beating. Every surviving node calls it, so fn must be
// idempotent across nodes (compare-and-set updates are).
func (r *Registry) OnDown(fn func(node string)) {
	r.mu.Lock()
	r.onDown = append(r.onDown, fn)
	r.mu.Unlock()
}

// Nodes returns every node this node knows of, itself included.
func (r *Registry) Nodes() []Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Node, 0, len(r.nodes))
	for _, s := range r.nodes {
		n := s.node
		n.Self = n.Name == r.self.Name
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Up reports whether the named node is up.
func (r *Registry) Up(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.nodes[name]
	return s != nil && s.node.Up
}

// Leave stops the heartbeat and removes this node's key, so that the
// others see it leave at once instead of after missed heartbeats.
func (r *Registry) Leave() {
	if !r.halt() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.kv.Delete(ctx, r.self.Name)
}

// halt stops both goroutines and reports whether this call stopped them.
func (r *Registry) halt() bool {
	select {
	case <-r.stop:
		return false
	default:
	}
	close(r.stop)
	r.done.Wait()
	return true
}

func (r *Registry) beatLoop() {
	defer r.done.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.interval)
			if err := r.beat(ctx); err != nil {
				r.log.Warn("cluster heartbeat", "err", err)
			}
			cancel()
		}
	}
}

// beat writes this node's heartbeat.
func (r *Registry) beat(ctx context.Context) error {
	b, _ := json.Marshal(r.self)
	if _, err := r.kv.Put(ctx, r.self.Name, b); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// follow records each heartbeat as it arrives, and checks for silent nodes
// at the moment the oldest heartbeat it has turns DeadAfter old (and at
// least every Interval), so that observers agree to within the delivery
// of one heartbeat rather than a polling period.
func (r *Registry) follow(w jetstream.KeyWatcher, cancel context.CancelFunc) {
	defer r.done.Done()
	defer cancel()
	defer func() { _ = w.Stop() }()
	t := time.NewTimer(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil { // nil marks the end of the initial values
				r.record(e, time.Now())
			}
		case <-t.C:
			// Heartbeats already delivered count before the verdict: select
			// picks at random among ready cases, and a check run ahead of a
			// heartbeat waiting in the channel would call its node down,
			// then up again when it is recorded.
			if !r.recordPending(w) {
				return
			}
			t.Reset(r.check(time.Now()))
		}
	}
}

// recordPending records the updates waiting in w's channel, at most one
// channel's worth so that a stream of updates cannot hold off the check.
// It returns false when the watcher has stopped.
func (r *Registry) recordPending(w jetstream.KeyWatcher) bool {
	for range max(cap(w.Updates()), 1) {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return false
			}
			if e != nil {
				r.record(e, time.Now())
			}
		default:
			return true
		}
	}
	return true
}

// record notes one change of the bucket.
func (r *Registry) record(e jetstream.KeyValueEntry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := e.Key()
	s := r.nodes[key]
	if s == nil {
		s = &seen{}
		r.nodes[key] = s
	}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		s.present = false
	default:
		var n Node
		if json.Unmarshal(e.Value(), &n) == nil {
			up := s.node.Up
			s.node = n
			s.node.Up = up
		}
		if s.node.Name == "" {
			s.node.Name = key
		}
		s.present, s.revision, s.changed = true, e.Revision(), now
		s.node.LastSeen = now
		if key == r.self.Name {
			if r.selfSeen.IsZero() || now.Sub(r.selfSeen) > r.selfGap() {
				r.resumed = now
			}
			r.selfSeen = now
		}
	}
	if s.present && !s.node.Up && (key == r.self.Name || now.Sub(s.changed) < r.deadAfter) {
		s.node.Up = true
	}
}

// selfGap is how long this node's own heartbeat may take to come back
// before the bucket counts as unreachable from here: two heartbeats.
func (r *Registry) selfGap() time.Duration { return 2 * r.interval }

// check marks down every node whose heartbeat is older than DeadAfter, or
// that left, runs the OnDown callbacks for each, and returns how long to
// wait before the next check: until the next node would turn silent, at
// most an Interval.
func (r *Registry) check(now time.Time) time.Duration {
	var down []string
	next := r.interval
	r.mu.Lock()
	// Judge others only while this node's own heartbeats arrive: if they
	// stopped, the silence is everyone's (NATS unreachable, or the bucket
	// electing a leader), not theirs.
	healthy := !r.selfSeen.IsZero() && now.Sub(r.selfSeen) <= r.selfGap()
	for name, s := range r.nodes {
		if name == r.self.Name {
			s.node.Up = true
			continue
		}
		since := s.changed
		if r.resumed.After(since) {
			since = r.resumed
		}
		left := r.deadAfter - now.Sub(since)
		up := s.present && (left > 0 || !healthy)
		if s.node.Up && !up {
			down = append(down, name)
		}
		s.node.Up = up
		if up && left > 0 && left < next {
			next = left
		}
	}
	fns := append([]func(string){}, r.onDown...)
	r.mu.Unlock()
	for _, name := range down {
		r.log.Warn("node down", "node", name, "dead_after", r.deadAfter)
		for _, fn := range fns {
			fn(name)
		}
	}
	// A millisecond past the deadline, so the check after a wake-up
	// finds the node already silent rather than a hair short of it.
	return next + time.Millisecond
}
