package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/cluster"
	"github.com/tether-dev/tether/internal/testkit"
)

// admitExactly acquires limit+5 connections of user at once, spread over
// the counters, and fails unless exactly want are admitted: a count that
// drifted either way admits another number. It returns who holds them.
func admitExactly(t *testing.T, counters []*cluster.UserCounter, user string, limit, want int) []*cluster.UserCounter {
	t.Helper()
	held := make(chan *cluster.UserCounter, limit+5)
	var wg sync.WaitGroup
	for i := range limit + 5 {
		u := counters[i%len(counters)]
		wg.Go(func() {
			if u.Acquire(user, limit) {
				held <- u
			}
		})
	}
	wg.Wait()
	close(held)
	var out []*cluster.UserCounter
	for u := range held {
		out = append(out, u)
	}
	if len(out) != want {
		t.Fatalf("%d connections admitted under a limit of %d, want exactly %d", len(out), limit, want)
	}
	return out
}

// exactCount has three nodes acquire and release one user's connections
// all at once and checks the count stays exact: the limit admits exactly
// limit connections, and the count returns to 0 after the releases.
func exactCount(t *testing.T, bbs []*backbone.Backbone) {
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var counters []*cluster.UserCounter
	for i, bb := range bbs {
		u, err := cluster.NewUserCounter(ctx, bb, fmt.Sprintf("node-%d", i), log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Close)
		counters = append(counters, u)
	}
	const user, limit = "alice", 10
	held := admitExactly(t, counters, user, limit, limit)
	var wg sync.WaitGroup
	for _, u := range held {
		wg.Go(func() { u.Release(user) })
	}
	// Churn: acquire and release at once on every node.
	for _, u := range counters {
		for range 4 {
			wg.Go(func() {
				for range 5 {
					if !u.Acquire(user, 1000) {
						t.Error("refused under the limit")
						return
					}
					u.Release(user)
				}
			})
		}
	}
	wg.Wait()
	// Releases are written in the background: once every node has written
	// its count, a limit of 10 admits 10 again.
	testkit.Eventually(t, "the releases written", func() bool {
		for _, u := range counters {
			if !u.Idle() {
				return false
			}
		}
		return true
	})
	admitExactly(t, counters, user, limit, limit)
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings:\n%s", logs.String())
	}
}

func TestUserCounterExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bb, err := backbone.Start(ctx, backbone.Config{DataDir: t.TempDir(), Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bb.Close)
	exactCount(t, []*backbone.Backbone{bb, bb, bb})
}

// On a replicated bucket a compare-and-set conflict is err_code 10164, not
// 10071: it is a conflict all the same.
func TestUserCounterExactReplicated(t *testing.T) {
	nc := startNATSCluster(t)
	var bbs []*backbone.Backbone
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		bb, err := backbone.Start(ctx, backbone.Config{URL: nc.URL, Name: fmt.Sprintf("r%d", i), Replicas: 3})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bb.Close)
		bbs = append(bbs, bb)
	}
	exactCount(t, bbs)
}
