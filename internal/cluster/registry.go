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

// MissedBeats is how many heartbeats in a row a node may miss before the
// others consider it down.
const MissedBeats = 3

// Node describes one node as the cluster sees it.
type Node struct {
	Name      string    `json:"name"`
	Addr      string    `json:"addr,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Up is false once the node missed MissedBeats heartbeats (or left).
	Up bool `json:"up"`
	// LastSeen is when this node last saw the other's heartbeat change.
	LastSeen time.Time `json:"last_seen"`
	Self     bool      `json:"self,omitempty"`
}

// Registry publishes this node's heartbeat and follows the others'.
type Registry struct {
	kv       jetstream.KeyValue
	self     Node
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*seen
	onDown []func(node string)

	stop chan struct{}
	done chan struct{}
}

type seen struct {
	node     Node
	revision uint64
	changed  time.Time // local clock: immune to skew between machines
}

// Join creates or opens the nodes bucket, writes the first heartbeat and
// starts beating every interval.
func Join(ctx context.Context, bb *backbone.Backbone, self Node, interval time.Duration, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
		kv: kv, self: self, interval: interval, log: log,
		nodes: map[string]*seen{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := r.beat(ctx); err != nil {
		return nil, err
	}
	go r.loop()
	return r, nil
}

// Self returns this node's name.
func (r *Registry) Self() string { return r.self.Name }

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
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.kv.Delete(ctx, r.self.Name)
}

func (r *Registry) loop() {
	defer close(r.done)
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

// beat writes this node's heartbeat and reads everyone else's.
func (r *Registry) beat(ctx context.Context) error {
	b, _ := json.Marshal(r.self)
	if _, err := r.kv.Put(ctx, r.self.Name, b); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	now := time.Now()
	present := map[string]jetstream.KeyValueEntry{}
	for key := range lister.Keys() {
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			_ = lister.Stop()
			return fmt.Errorf("read node %s: %w", key, err)
		}
		present[key] = e
	}
	var down []string
	r.mu.Lock()
	for key, e := range present {
		s := r.nodes[key]
		if s == nil {
			s = &seen{changed: now}
			r.nodes[key] = s
			_ = json.Unmarshal(e.Value(), &s.node)
		}
		if e.Revision() != s.revision {
			s.revision, s.changed = e.Revision(), now
		}
	}
	for name, s := range r.nodes {
		_, ok := present[name]
		up := name == r.self.Name || (ok && now.Sub(s.changed) < MissedBeats*r.interval)
		if s.node.Up && !up {
			down = append(down, name)
		}
		s.node.Up = up
		s.node.LastSeen = s.changed
	}
	fns := append([]func(string){}, r.onDown...)
	r.mu.Unlock()
	for _, name := range down {
		r.log.Warn("node down", "node", name)
		for _, fn := range fns {
			fn(name)
		}
	}
	return nil
}
