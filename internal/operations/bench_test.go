package operations_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tether-dev/tether/internal/testkit"
)

// BenchmarkFanout measures progress events going from one remote worker to
// many watchers: each op is one worker event stored in JetStream and read
// back by every watcher's own consumer.
func BenchmarkFanout(b *testing.B) {
	for _, watchers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			cfg := opsConfig(b)
			cfg.OperationEventRate = 0
			n := testkit.Start(b, cfg, nil)
			w := workerConn(b, n, "bench", "work")
			owner := guidance(b, n, "alice")
			id := "bench-op"
			start(b, owner, id, "bench", "work", nil)
			w.Expect("run")
			cs := make([]*testkit.Client, watchers)
			for i := range cs {
				cs[i] = guidance(b, n, fmt.Sprintf("admin-%d", i), "admin")
				cs[i].Send(map[string]any{"type": "subscribe_operation", "operation_id": id, "after_seq": 1})
				cs[i].Expect("operation_subscribed")
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			var mu sync.Mutex
			delivered := 0
			for _, c := range cs {
				wg.Go(func() {
					k := 0
					for {
						_, data, err := c.ReadRaw()
						if err != nil {
							b.Error(err)
							return
						}
						var m struct {
							Type string `json:"type"`
						}
						_ = json.Unmarshal(data, &m)
						k++
						if m.Type == "operation_completed" {
							mu.Lock()
							delivered += k
							mu.Unlock()
							return
						}
					}
				})
			}
			p := 50.0
			for range b.N {
				w.Send(map[string]any{"type": "progress", "operation_id": id, "progress": p})
			}
			w.Send(map[string]any{"type": "completed", "operation_id": id})
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "deliveries/s")
			// The owner's connection also watched; drain nothing, just close.
			_ = owner.C.CloseNow()
		})
	}
}

// BenchmarkReplay is a watcher catching up on an operation's history: one
// op is a reconnect that replays every stored event (the resume scenario
// of `tether bench`, which misses 10,000). Log events: progress would be
// coalesced for a lagging watcher.
func BenchmarkReplay(b *testing.B) {
	const events = 2000
	cfg := opsConfig(b)
	cfg.OperationEventRate = 0
	n := testkit.Start(b, cfg, nil)
	w := workerConn(b, n, "bench", "work")
	owner := guidance(b, n, "alice")
	id := "replay-op"
	start(b, owner, id, "bench", "work", nil)
	w.Expect("run")
	for k := range events {
		w.Send(map[string]any{"type": "log", "operation_id": id, "message": "step " + strconv.Itoa(k)})
	}
	w.Send(map[string]any{"type": "completed", "operation_id": id})
	waitStatus(b, n, "alice", id, "completed")
	b.ResetTimer()
	for b.Loop() {
		c := guidance(b, n, "alice")
		c.Send(map[string]any{"type": "subscribe_operation", "operation_id": id, "after_seq": 0})
		k := 0
		for {
			_, data, err := c.ReadRaw()
			if err != nil {
				b.Fatal(err)
			}
			k++
			if strings.Contains(string(data), `"operation_completed"`) {
				break
			}
		}
		if k < events {
			b.Fatalf("replayed %d frames, want at least %d", k, events)
		}
		closeClient(c)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/events, "µs/event")
}
