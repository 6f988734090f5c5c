package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coder/websocket"
)

// fanoutProcs is how many worker processes n subscribers use: --procs, or
// none (they share this process) up to 4000, beyond which this process
// would hold both ends of too many sockets for its file limit.
func (e *env) fanoutProcs(n int) int {
	if e.opts.Procs >= 0 {
		return e.opts.Procs
	}
	if n <= 4000 {
		return 0
	}
	return (n + 4999) / 5000
}

// group is n subscribers spread over worker processes.
type group struct {
	e       *env
	n       int
	procs   int
	expect  int
	timeout time.Duration
	// ready, if set, reports whether the server has registered every
	// subscriber (the bare server adds one just after its handshake).
	ready func() bool
}

// run starts the subscribers (jobs built by mk for each share), calls
// publish for each of the expected messages once they are all subscribed,
// and summarises the deliveries.
func (g *group) run(ctx context.Context, mk func(first, count int) job, publish func(ctx context.Context, k int) error, m *meter) (sample, error) {
	shares := []int{g.n}
	inProcess := g.procs == 0
	if !inProcess {
		shares = split(g.n, g.procs)
	}
	ws := make([]*workerProc, 0, len(shares))
	defer func() { _ = stopAll(ws) }()
	first := 0
	for k, n := range shares {
		j := mk(first, n)
		j.Expect, j.Timeout, j.Await, j.SrcIP = g.expect, g.timeout, g.timeout/2, srcIP(j.URL, k)
		first += n
		w, err := g.e.startWorker(ctx, j, inProcess)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		r, err := w.next(ctx, "open")
		if err != nil {
			return nil, err
		}
		if r.Failed > 0 {
			return nil, fmt.Errorf("%d subscribers failed: %s", r.Failed, r.FirstErr)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); g.ready != nil && !g.ready() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	for k := range g.expect {
		if err := publish(ctx, k); err != nil {
			return nil, err
		}
		if g.e.opts.Interval > 0 {
			time.Sleep(g.e.opts.Interval)
		}
	}
	var lat []float64
	var last int64
	missing := 0
	for _, w := range ws {
		r, err := w.next(ctx, "done")
		if err != nil {
			return nil, err
		}
		lat = append(lat, r.Latencies...)
		missing += r.Missing
		last = max(last, r.Last)
	}
	u, merr := m.finish(ctx)
	if len(lat) == 0 {
		return nil, fmt.Errorf("no message was delivered (%d missing)", missing)
	}
	slices.Sort(lat)
	s := sample{
		"deliveries": float64(len(lat)) / (float64(last-start.UnixNano()) / 1e9),
		"p50":        percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[len(lat)-1],
		"missing": float64(missing),
	}
	usageSample(s, u)
	return s, merr
}

// split divides n into k near-equal shares.
func split(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// publisher is a connection that sends fan-out messages and ignores what
// it is sent back (acknowledgements).
type publisher struct {
	c    *websocket.Conn
	done chan struct{}
}

func newPublisher(ctx context.Context, url, tok string) (*publisher, error) {
	c, err := dial(ctx, url, tok)
	if err != nil {
		return nil, err
	}
	p := &publisher{c: c, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return // closed by close
			}
		}
	}()
	return p, nil
}

func (p *publisher) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

func (p *publisher) close() {
	p.c.CloseNow()
	<-p.done
}

// stamp is a fan-out payload: the publisher's clock and the message's
// index.
func stamp(k int) map[string]any { return map[string]any{"t": time.Now().UnixNano(), "i": k} }

func fanout(ctx context.Context, e *env) ([]Result, error) {
	subs := e.opts.Subs
	M := e.opts.Messages
	timeout := 60*time.Second + time.Duration(M)*e.opts.Interval + time.Duration(subs)*2*time.Millisecond
	specs := []spec{{"deliveries", "/s"}, {"p50", "ms"}, {"p99", "ms"}, {"max", "ms"}, {"missing", ""}, {"cpu", "s"}, {"peak_rss", "MiB"}}
	// base broadcasts through a bare gws server to n subscribers.
	base := func(n int) roundFunc {
		return func(ctx context.Context, _ int) (sample, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			b, err := startBare(true)
			if err != nil {
				return nil, err
			}
			defer b.close()
			g := &group{e: e, n: n, procs: e.fanoutProcs(n), expect: M, timeout: timeout}
			// The publisher connects first so that ready can count it with
			// the subscribers; the first publish reports a failed dial.
			var p *publisher
			g.ready = func() bool {
				if p == nil {
					var err error
					if p, err = newPublisher(ctx, b.url, ""); err != nil {
						return true // reported by the first publish
					}
				}
				return b.count() >= n+1
			}
			defer func() {
				if p != nil {
					p.close()
				}
			}()
			return g.run(ctx, func(_, count int) job { return job{URL: b.url, Conns: count} },
				func(ctx context.Context, k int) error {
					if p == nil {
						if p, err = newPublisher(ctx, b.url, ""); err != nil {
							return err
						}
					}
					return p.send(ctx, map[string]any{"type": "message", "data": stamp(k)})
				}, localMeter(ctx))
		}
	}
	srv := func(ctx context.Context, round int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		channel := fmt.Sprintf("bench:fanout:%d:%d", time.Now().UnixNano()%1e9, round)
		p, err := newPublisher(ctx, e.t.ws+"/ws/agent", e.t.token)
		if err != nil {
			return nil, err
		}
		defer p.close()
		g := &group{e: e, n: subs, procs: e.fanoutProcs(subs), expect: M, timeout: timeout}
		return g.run(ctx, func(first, count int) job {
			return job{URL: e.t.wsFor(first/max(count, 1)) + "/ws/agent", Token: e.t.token, Secret: string(e.t.secret), First: first, Conns: count, Channel: channel}
		}, func(ctx context.Context, k int) error {
			return p.send(ctx, map[string]any{"type": "publish", "channel": channel, "data": stamp(k), "id": k})
		}, e.t.meter(ctx))
	}
	params := map[string]any{"subs": subs, "messages": M, "interval": e.opts.Interval.String(), "procs": e.fanoutProcs(subs)}
	r, err := e.rounds(ctx, "fanout/channel", params, specs, base(subs), srv)
	r.Notes = append(r.Notes, "baseline: a bare gws server in this process writing each message to every other connection")
	out := []Result{r}
	if err != nil {
		return out, err
	}
	if e.opts.OpWatchers <= 0 {
		return out, nil
	}
	r, err = fanoutOperation(ctx, e, base(e.opts.OpWatchers), specs, timeout)
	return append(out, r), err
}

// fanoutOperation measures one operation's progress events reaching
// --op-watchers watchers: a remote agent worker driven by the bench emits
// them, each carrying the worker's clock.
func fanoutOperation(ctx context.Context, e *env, base roundFunc, specs []spec, timeout time.Duration) (Result, error) {
	n, M := e.opts.OpWatchers, e.opts.Messages
	params := map[string]any{"watchers": n, "events": M, "interval": e.opts.Interval.String()}
	aw, err := e.newAgentWorker(ctx)
	if err != nil {
		return Result{Name: "fanout/operation", Params: params}, fmt.Errorf("operations: %w", err)
	}
	defer aw.close()
	srv := func(ctx context.Context, round int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		id, err := aw.start(ctx, e, fmt.Sprintf("bench-fan-%d-%d", time.Now().UnixNano()%1e9, round))
		if err != nil {
			return nil, err
		}
		defer aw.complete(id)
		// Only operation_started (seq 1) precedes: watch from there.
		g := &group{e: e, n: n, procs: e.fanoutProcs(n), expect: M, timeout: timeout}
		return g.run(ctx, func(first, count int) job {
			return job{URL: e.t.wsFor(first/max(count, 1)) + "/ws/agent-guidance", Token: e.t.token, Secret: string(e.t.secret), First: first, Conns: count, Operation: id, AfterSeq: 1}
		}, func(ctx context.Context, k int) error {
			return aw.send(ctx, map[string]any{"type": "progress", "operation_id": id, "progress": k % 101, "data": stamp(k)})
		}, e.t.meter(ctx))
	}
	r, err := e.rounds(ctx, "fanout/operation", params, specs, base, srv)
	r.Notes = append(r.Notes, "baseline: the bare gws broadcast server with as many subscribers")
	return r, err
}
