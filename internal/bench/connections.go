package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// connections opens C idle connections from worker processes and measures
// how fast the handshakes go and what each connection costs the server.
func connections(ctx context.Context, e *env) ([]Result, error) {
	conns := e.opts.Conns
	if conns <= 0 {
		conns = 15000
	}
	procs := e.opts.Procs
	if procs < 0 {
		procs = (conns + 7999) / 8000
	}
	timeout := 60*time.Second + time.Duration(conns)*time.Millisecond
	specs := []spec{{"handshakes", "/s"}, {"rss_per_conn", "KiB"}, {"heap_per_conn", "KiB"}, {"goroutines_per_conn", ""}}
	// run opens the connections with jobs from mk and measures with
	// before/after (which settles the heap when it can).
	type mem struct{ rss, heap, goroutines float64 }
	run := func(ctx context.Context, mk func(first, count int) job, measure func() mem, open func() int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		before := measure()
		var ws []*workerProc
		defer func() { _ = stopAll(ws) }()
		first := 0
		for k, n := range split(conns, max(procs, 1)) {
			j := mk(first, n)
			j.Timeout, j.SrcIP = timeout, srcIP(j.URL, k)
			first += n
			w, err := e.startWorker(ctx, j, procs == 0)
			if err != nil {
				return nil, err
			}
			ws = append(ws, w)
		}
		opened, slowest := 0, 0.0
		for _, w := range ws {
			r, err := w.next(ctx, "open")
			if err != nil {
				return nil, err
			}
			if r.Failed > 0 {
				return nil, fmt.Errorf("%d of %d connections failed: %s", r.Failed, r.Failed+r.Opened, r.FirstErr)
			}
			opened += r.Opened
			slowest = max(slowest, r.Seconds)
		}
		// The server may still be finishing the last handshakes' work.
		for deadline := time.Now().Add(10 * time.Second); open() >= 0 && open() < opened && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		after := measure()
		err := stopAll(ws)
		ws = nil
		// Let the server see them go before the next round starts.
		for deadline := time.Now().Add(30 * time.Second); open() > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		s := sample{
			"handshakes":    float64(opened) / slowest,
			"rss_per_conn":  (after.rss - before.rss) / float64(opened) / 1024,
			"heap_per_conn": (after.heap - before.heap) / float64(opened) / 1024,
		}
		if after.goroutines > 0 {
			s["goroutines_per_conn"] = (after.goroutines - before.goroutines) / float64(opened)
		}
		return s, err
	}
	local := func() mem {
		rss, heap := settle()
		return mem{rss: rss, heap: heap, goroutines: float64(runtime.NumGoroutine())}
	}
	base := func(ctx context.Context, _ int) (sample, error) {
		b, err := startBare(false)
		if err != nil {
			return nil, err
		}
		defer b.close()
		return run(ctx, func(_, count int) job { return job{URL: b.url, Conns: count} }, local, b.count)
	}
	srv := func(ctx context.Context, _ int) (sample, error) {
		measure, open := local, func() int { return -1 }
		if e.t.node != nil {
			open = e.t.node.Conns.Count
		} else {
			measure = func() mem {
				_, rss, heap, err := e.t.scrape(ctx)
				if err != nil {
					e.logf("connections: %v", err)
				}
				return mem{rss: rss, heap: heap}
			}
		}
		return run(ctx, func(first, count int) job {
			return job{URL: e.t.wsFor(first/max(count, 1)) + "/ws/agent", Token: e.t.token, Secret: string(e.t.secret), First: first, Conns: count}
		}, measure, open)
	}
	r, err := e.rounds(ctx, "connections", map[string]any{"conns": conns, "procs": procs}, specs, base, srv)
	r.Notes = append(r.Notes, "baseline: a bare gws server in this process; clients in worker processes; memory settled (GC, FreeOSMemory) before each reading")
	if e.t.node == nil {
		r.Notes = append(r.Notes, "remote server: RSS and heap as its /metrics report them, without forcing a GC")
	}
	return []Result{r}, err
}
