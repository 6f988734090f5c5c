package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// messages runs C connections each sending one request and awaiting its
// reply, over and over, for --duration.
func messages(ctx context.Context, e *env) ([]Result, error) {
	conns := e.opts.Conns
	if conns <= 0 {
		conns = 50
	}
	var req, want string // want: the reply's type
	switch e.opts.Kind {
	case "ping":
		req, want = `{"type":"ping","id":%d}`, `"pong"`
	case "message":
		req, want = `{"type":"chat","content":"hello","id":%d}`, `"message_ack"`
	default:
		return nil, fmt.Errorf("--kind must be ping or message, not %q", e.opts.Kind)
	}
	dur := e.opts.Duration
	specs := []spec{{"round_trips", "/s"}, {"p50", "µs"}, {"p99", "µs"}, {"p999", "µs"}, {"cpu", "s"}, {"peak_rss", "MiB"}}
	// run drives conns connections dialled by dialer for dur.
	// The bare server echoes the request itself; Tether answers with want.
	run := func(ctx context.Context, dialer func(ctx context.Context, i int) (*websocket.Conn, error), want string, m *meter) (sample, error) {
		cs := make([]*websocket.Conn, conns)
		defer func() {
			for _, c := range cs {
				if c != nil {
					c.CloseNow()
				}
			}
		}()
		for i := range cs {
			c, err := dialer(ctx, i)
			if err != nil {
				return nil, err
			}
			cs[i] = c
		}
		var mu sync.Mutex
		var all []float64
		var firstErr error
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(dur)
		for _, c := range cs {
			wg.Go(func() {
				lat := make([]float64, 0, 1024)
				var err error
				for id := 1; time.Now().Before(deadline); id++ {
					t0 := time.Now()
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if err = c.Write(rctx, websocket.MessageText, []byte(fmt.Sprintf(req, id))); err == nil {
						var b []byte
						_, b, err = c.Read(rctx)
						if err == nil && (!bytes.Contains(b, []byte(want)) || !bytes.Contains(b, []byte(`"id":`+strconv.Itoa(id)))) {
							err = fmt.Errorf("reply %.100q is not the %s to %d", b, want, id)
						}
					}
					cancel()
					if err != nil {
						break
					}
					lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
				}
				mu.Lock()
				all = append(all, lat...)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		u, merr := m.finish(ctx)
		if firstErr != nil {
			return nil, firstErr
		}
		slices.Sort(all)
		s := sample{"round_trips": float64(len(all)) / elapsed.Seconds(), "p50": percentile(all, 50), "p99": percentile(all, 99), "p999": percentile(all, 99.9)}
		usageSample(s, u)
		return s, merr
	}
	base := func(ctx context.Context, _ int) (sample, error) {
		b, err := startBare(false)
		if err != nil {
			return nil, err
		}
		defer b.close()
		return run(ctx, func(ctx context.Context, _ int) (*websocket.Conn, error) { return dial(ctx, b.url, "") }, `"type"`, localMeter(ctx))
	}
	srv := func(ctx context.Context, _ int) (sample, error) {
		toks := make([]string, conns)
		for i := range toks {
			var err error
			if toks[i], err = e.t.tokenFor(i); err != nil {
				return nil, err
			}
		}
		return run(ctx, func(ctx context.Context, i int) (*websocket.Conn, error) {
			return dial(ctx, e.t.wsFor(i)+"/ws/agent", toks[i])
		}, want, e.t.meter(ctx))
	}
	r, err := e.rounds(ctx, "messages/"+e.opts.Kind, map[string]any{"conns": conns, "duration": dur.String(), "kind": e.opts.Kind}, specs, base, srv)
	r.Notes = append(r.Notes, "baseline: a bare gws echo server in this process (no auth, no protocol); cpu/memory include the clients")
	return []Result{r}, err
}
