package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/backbone"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(NATSNodeEnv); spec != "" {
		os.Exit(runNATSNode(spec))
	}
	goleak.VerifyTestMain(m)
}

func startBackbone(t *testing.T) *backbone.Backbone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bb, err := backbone.Start(ctx, backbone.Config{DataDir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bb.Close)
	return bb
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two nodes see each other; one that stops beating is reported down once,
// and one that leaves is down at once.
func TestRegistry(t *testing.T) {
	bb := startBackbone(t)
	ctx := context.Background()
	const beat = 100 * time.Millisecond
	a, err := Join(ctx, bb, Node{Name: "a", Addr: "127.0.0.2:8000"}, Options{Interval: beat}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave()
	b, err := Join(ctx, bb, Node{Name: "b"}, Options{Interval: beat}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Join(ctx, bb, Node{Name: "c"}, Options{Interval: beat}, nil)
	if err != nil {
		t.Fatal(err)
	}
	downs := make(chan string, 10)
	a.OnDown(func(n string) { downs <- n })
	eventually(t, "a to see b and c", func() bool { return a.Up("b") && a.Up("c") })
	nodes := a.Nodes()
	if len(nodes) != 3 || nodes[0].Name != "a" || !nodes[0].Self || nodes[0].Addr != "127.0.0.2:8000" {
		t.Fatalf("nodes = %+v", nodes)
	}

	// b crashes: its heartbeat stops but its key stays.
	b.halt()
	select {
	case n := <-downs:
		if n != "b" {
			t.Fatalf("down %q", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b never reported down")
	}
	if a.Up("b") || !a.Up("c") {
		t.Fatalf("up: b=%v c=%v", a.Up("b"), a.Up("c"))
	}
	// c leaves cleanly.
	c.Leave()
	eventually(t, "c down", func() bool { return !a.Up("c") })
	select {
	case n := <-downs:
		if n != "c" {
			t.Fatalf("down %q", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("c never reported down")
	}
}

func TestUserCounterAcrossNodes(t *testing.T) {
	bb := startBackbone(t)
	ctx := context.Background()
	a, err := NewUserCounter(ctx, bb, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := NewUserCounter(ctx, bb, "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if !a.Acquire("alice@example.com", 2) || !b.Acquire("alice@example.com", 2) {
		t.Fatal("first two refused")
	}
	if a.Acquire("alice@example.com", 2) || b.Acquire("alice@example.com", 2) {
		t.Fatal("third allowed")
	}
	if !a.Acquire("bob", 2) {
		t.Fatal("another user refused")
	}
	a.Release("alice@example.com")
	for deadline := time.Now().Add(10 * time.Second); !a.Idle(); {
		if time.Now().After(deadline) {
			t.Fatal("the release was never written")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, bounded above
	}
	if !b.Acquire("alice@example.com", 2) {
		t.Fatal("freed slot refused")
	}
	// b dies: its two connections of alice are forgotten by a survivor.
	a.Forget("b")
	if !a.Acquire("alice@example.com", 2) || !a.Acquire("alice@example.com", 2) {
		t.Fatal("slots of the dead node not freed")
	}
	if a.Acquire("alice@example.com", 2) {
		t.Fatal("limit not enforced after forget")
	}
	// Releasing more than was acquired never goes below zero.
	a.Release("nobody")
}

// Every observer declares a silent node down DeadAfter after its last
// heartbeat arrived, nearly together, rather than
// whenever each next happens to poll.
func TestObserversAgreeOnDeath(t *testing.T) {
	bb := startBackbone(t)
	ctx := context.Background()
	opts := Options{Interval: 100 * time.Millisecond, DeadAfter: 600 * time.Millisecond}
	var obs []*Registry
	// Each observer's first verdict, by observer: they may come in either
	// order, and each is judged against that observer's own last heartbeat.
	type verdict struct {
		obs int
		at  time.Time
	}
	downs := make(chan verdict, 4)
	for _, name := range []string{"a", "b", "c"} {
		r, err := Join(ctx, bb, Node{Name: name}, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Leave()
		obs = append(obs, r)
	}
	for i, r := range obs[:2] {
		r.OnDown(func(n string) {
			if n == "c" {
				downs <- verdict{i, time.Now()}
			}
		})
	}
	eventually(t, "everyone to see c", func() bool { return obs[0].Up("c") && obs[1].Up("c") })
	obs[2].halt() // c dies: its key stays, its heartbeat stops
	var at [2]time.Time
	for at[0].IsZero() || at[1].IsZero() {
		select {
		case v := <-downs:
			if !at[v.obs].IsZero() {
				t.Fatalf("observer %d declared c down twice: it came back up in between", v.obs)
			}
			at[v.obs] = v.at
		case <-time.After(10 * time.Second):
			t.Fatal("c never reported down by both observers")
		}
	}
	for i, r := range obs[:2] {
		var last time.Time
		for _, n := range r.Nodes() {
			if n.Name == "c" {
				last = n.LastSeen
			}
		}
		if d := at[i].Sub(last); d < opts.DeadAfter || d > opts.DeadAfter+time.Second {
			t.Errorf("observer %d declared c down %v after its last heartbeat, want %v to %v", i, d, opts.DeadAfter, opts.DeadAfter+time.Second)
		}
	}
	t.Logf("spread %v", at[0].Sub(at[1]).Abs())
	if spread := at[0].Sub(at[1]).Abs(); spread > 250*time.Millisecond {
		t.Errorf("observers disagree by %v", spread)
	}
	// The survivors stay up for each other.
	if obs[0].Up("c") || !obs[0].Up("b") {
		t.Fatalf("after c's death: a sees b=%v c=%v", obs[0].Up("b"), obs[0].Up("c"))
	}
}
