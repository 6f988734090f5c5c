package milestones_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/milestones"
	"github.com/tether-dev/tether/internal/testkit"
)

// gatedKV is the real milestones bucket, except that reading one key
// blocks until the test opens the gate: a key-value store slow for one
// milestone.
type gatedKV struct {
	jetstream.KeyValue
	key     string
	once    sync.Once
	entered chan struct{} // closed when a read of key first blocks
	gate    chan struct{} // closed by the test
}

func (k *gatedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if key == k.key {
		k.once.Do(func() { close(k.entered) })
		select {
		case <-k.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return k.KeyValue.Get(ctx, key)
}

// A start blocked in the store holds up nothing else of the node: while
// milestone "blocked" waits for its record, a relayed client of another
// milestone on the same node keeps typing and getting output (input,
// output and flow-control credits all go through the host node), and a
// third milestone starts. Both starts of "blocked" then get one session.
func TestSlowStoreDelaysOnlyItsMilestone(t *testing.T) {
	// Node a serves the client; "host" runs the programs and reads its
	// records through the gated bucket. Both are on a's NATS.
	cfgA := testkit.Config(t)
	cfgA.NodeName = "node-a"
	a := testkit.Start(t, cfgA, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := a.Backbone.JS.KeyValue(ctx, milestones.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	gated := &gatedKV{KeyValue: kv, key: "blocked", entered: make(chan struct{}), gate: make(chan struct{})}
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(gated.gate)
		}
	}
	host, err := milestones.NewService(ctx, milestones.StoreOn(gated), milestones.Config{
		Node: "node-host", DataDir: t.TempDir(), NC: a.Backbone.NC,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	t.Cleanup(open) // before Close: nothing may stay blocked
	create(t, a, "flow", quietCat)
	create(t, a, "blocked", quietCat)
	create(t, a, "third", []string{"sleep", "100"})
	if _, _, err := host.Start(ctx, "flow"); err != nil {
		t.Fatalf("start flow: %v", err)
	}
	// The client is on node a: its terminal is relayed from the host.
	c := attach(t, a, "flow", alice(t), "")
	if st := c.status(); st["pid"] == nil {
		t.Fatalf("status = %v", st)
	}
	c.ready()

	type started struct {
		l   any
		err error
	}
	blocked := make(chan started, 2)
	for range 2 {
		go func() {
			l, _, err := host.Start(ctx, "blocked")
			blocked <- started{l, err}
		}()
	}
	select {
	case <-gated.entered:
	case <-time.After(testkit.Timeout):
		t.Fatal("the start of blocked did not reach the store")
	}

	// More round trips than the relay's credit window (8 frames), each
	// bounded by testkit.Timeout: input, echo, output and credits flow.
	began := time.Now()
	for i := range 20 {
		line := fmt.Sprintf("line-%02d", i)
		c.input(line + "\n")
		c.until(line, func(o string) bool { return strings.Contains(o, line+"\r\n") })
	}
	t.Logf("20 relayed round trips in %v while a start was blocked in the store", time.Since(began))

	third := make(chan error, 1)
	go func() {
		_, _, err := host.Start(ctx, "third")
		third <- err
	}()
	select {
	case err := <-third:
		if err != nil {
			t.Fatalf("start third: %v", err)
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("starting another milestone waited for the blocked one")
	}
	select {
	case st := <-blocked:
		t.Fatalf("start of blocked returned while its store read is blocked: %v", st.err)
	default:
	}

	open()
	var first any
	for range 2 {
		select {
		case st := <-blocked:
			if st.err != nil {
				t.Fatalf("start blocked: %v", st.err)
			}
			if first == nil {
				first = st.l
			} else if st.l != first {
				t.Fatal("two starts of one milestone made two sessions")
			}
		case <-time.After(testkit.Timeout):
			t.Fatal("start of blocked did not return once the store answered")
		}
	}
	if host.Session("blocked") == nil {
		t.Fatal("blocked is not running on the host")
	}
}
