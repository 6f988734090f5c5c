package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stream: one operation whose agent (a worker driven by the bench) streams
// --stream-rate AG-UI text deltas a second, watched by --stream-watchers
// watchers, half over /ws/agent-guidance and half over the REST SSE
// stream. Each delta is "<index>:<unix nanos>;", so that a watcher can
// tell, from the merged deltas Tether stores, each delta's latency from
// the agent's send and whether any is lost, doubled or out of order. The
// baseline publishes the same bytes on a channel (one message per 10 ms
// tick, the deltas of that tick) to as many /ws/agent subscribers.

// streamTick is how often the sender sends what is due.
const streamTick = 10 * time.Millisecond

// tokenCounter reads the "<index>:<nanos>;" tokens of a watcher's text.
type tokenCounter struct {
	next    int
	bad     int
	partial string
	lat     []float64
	frames  int
}

// add takes a fragment of the text received at now.
func (tc *tokenCounter) add(s string, now int64) {
	tc.frames++
	s = tc.partial + s
	for {
		i := strings.IndexByte(s, ';')
		if i < 0 {
			break
		}
		tok := s[:i]
		s = s[i+1:]
		idx, ts, ok := strings.Cut(tok, ":")
		n, err1 := strconv.Atoi(idx)
		t, err2 := strconv.ParseInt(ts, 10, 64)
		if !ok || err1 != nil || err2 != nil || n != tc.next {
			tc.bad++
			tc.next = n + 1
			continue
		}
		tc.next++
		tc.lat = append(tc.lat, float64(now-t)/1e6)
	}
	tc.partial = s
}

// streamWatcher is one watcher of a round: ready once subscribed, done
// once it has read to the end.
type streamWatcher struct {
	tc  tokenCounter
	err error
}

func streamSpecs() []spec {
	return []spec{{"deltas", "/s"}, {"p50", "ms"}, {"p99", "ms"}, {"max", "ms"}, {"missing", ""},
		{"stored", "events/s"}, {"cpu_per_1000", "ms"}, {"cpu", "s"}, {"peak_rss", "MiB"}}
}

func streamScenario(ctx context.Context, e *env) ([]Result, error) {
	rate, total, n := e.opts.StreamRate, e.opts.StreamDeltas, e.opts.StreamWatchers
	params := map[string]any{"rate": rate, "deltas": total, "watchers": n}
	timeout := 60*time.Second + time.Duration(float64(total)/float64(rate)*float64(time.Second))
	aw, err := e.newAgentWorker(ctx)
	if err != nil {
		return []Result{{Name: "stream", Params: params}}, fmt.Errorf("operations: %w", err)
	}
	defer aw.close()

	base := func(ctx context.Context, round int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		channel := fmt.Sprintf("bench:stream:%d:%d", time.Now().UnixNano()%1e9, round)
		p, err := newPublisher(ctx, e.t.ws+"/ws/agent", e.t.token)
		if err != nil {
			return nil, err
		}
		defer p.close()
		watch := func(ctx context.Context, w *streamWatcher, ready func()) {
			c, err := dial(ctx, e.t.ws+"/ws/agent", e.t.token)
			if err == nil {
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				err = subscribe(ctx, c, map[string]any{"type": "subscribe", "channel": channel, "id": 1}, "subscribed")
			}
			ready()
			for err == nil {
				var b []byte
				if _, b, err = c.Read(ctx); err != nil {
					break
				}
				now := time.Now().UnixNano()
				var m struct {
					Type string
					Data struct {
						Text string `json:"text"`
						End  bool   `json:"end"`
					}
				}
				if json.Unmarshal(b, &m) != nil || m.Type != "message" {
					continue
				}
				if m.Data.End {
					break
				}
				w.tc.add(m.Data.Text, now)
			}
			w.err = err
		}
		send := func(ctx context.Context, text string, end bool) error {
			return p.send(ctx, map[string]any{"type": "publish", "channel": channel, "data": map[string]any{"text": text, "end": end}})
		}
		return streamRound(ctx, e, n, total, rate, watch, send, localMeter(ctx))
	}

	srv := func(ctx context.Context, round int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		id, err := aw.start(ctx, e, fmt.Sprintf("bench-stream-%d-%d", time.Now().UnixNano()%1e9, round))
		if err != nil {
			return nil, err
		}
		var started atomic.Bool
		watch := func(ctx context.Context, w *streamWatcher, ready func()) {
			w.err = streamWatch(ctx, e, id, &w.tc, ready)
		}
		send := func(ctx context.Context, text string, end bool) error {
			if !started.Swap(true) {
				if err := aw.send(ctx, map[string]any{"type": "event", "operation_id": id, "event": map[string]any{"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"}}); err != nil {
					return err
				}
			}
			if end {
				if err := aw.send(ctx, map[string]any{"type": "event", "operation_id": id, "event": map[string]any{"type": "TEXT_MESSAGE_END", "messageId": "m"}}); err != nil {
					return err
				}
				return aw.send(ctx, map[string]any{"type": "completed", "operation_id": id})
			}
			// One worker message per delta, as an agent streaming tokens
			// sends them.
			for tok := range strings.SplitAfterSeq(text, ";") {
				if tok == "" {
					continue
				}
				if err := aw.send(ctx, map[string]any{"type": "event", "operation_id": id, "event": map[string]any{"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": tok}}); err != nil {
					return err
				}
			}
			return nil
		}
		return streamRound(ctx, e, n, total, rate, watch, send, e.t.meter(ctx))
	}
	r, err := e.rounds(ctx, "stream", params, streamSpecs(), base, srv)
	r.Notes = append(r.Notes,
		"tether: one worker sends every delta as its own event message; half the watchers on /ws/agent-guidance, half on GET /api/operations/{id}/events",
		"baseline: the same bytes published on a channel, one message per 10 ms tick, to as many /ws/agent subscribers; stored = messages per second",
		"cpu_per_1000: the server's CPU time per 1,000 deltas sent (with --self, this process's clients included)")
	return []Result{r}, err
}

// streamWatch follows operation id as AG-UI text, over the WebSocket for
// even watchers and SSE for odd ones (by a shared counter).
var streamWatchers atomic.Int64

func streamWatch(ctx context.Context, e *env, id string, tc *tokenCounter, ready func()) error {
	handle := func(b []byte) (bool, error) {
		now := time.Now().UnixNano()
		var m struct {
			Type  string `json:"type"`
			Event struct {
				Type  string `json:"type"`
				Delta string `json:"delta"`
			} `json:"event"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return false, fmt.Errorf("frame %.100q: %w", b, err)
		}
		switch m.Type {
		case "agui_event":
			if m.Event.Type == "TEXT_MESSAGE_CONTENT" {
				tc.add(m.Event.Delta, now)
			}
		case "operation_completed":
			return true, nil
		case "operation_failed", "operation_cancelled":
			return true, fmt.Errorf("operation ended: %.200s", b)
		}
		return false, nil
	}
	if streamWatchers.Add(1)%2 == 0 {
		c, err := dial(ctx, e.t.ws+"/ws/agent-guidance", e.t.token)
		if err != nil {
			ready()
			return err
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		err = subscribe(ctx, c, map[string]any{"type": "subscribe_operation", "operation_id": id, "after_seq": 1, "id": 1}, "operation_subscribed")
		ready()
		for err == nil {
			var b []byte
			if _, b, err = c.Read(ctx); err != nil {
				return err
			}
			var done bool
			if done, err = handle(b); done {
				return err
			}
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.t.http+"/api/operations/"+id+"/events?after_seq=1", nil)
	if err != nil {
		ready()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.t.token)
	resp, err := http.DefaultClient.Do(req)
	ready()
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if done, err := handle([]byte(line)); done {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("events stream ended before the final event")
}

// streamRound runs one round: n watchers (watch), then total deltas sent
// at rate through send (one call per tick with that tick's tokens, then
// one with end), and the figures.
func streamRound(ctx context.Context, e *env, n, total, rate int,
	watch func(context.Context, *streamWatcher, func()), send func(context.Context, string, bool) error, m *meter) (sample, error) {
	ws := make([]*streamWatcher, n)
	var ready, done sync.WaitGroup
	for i := range ws {
		ws[i] = &streamWatcher{}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			var once sync.Once
			watch(ctx, ws[i], func() { once.Do(ready.Done) })
			once.Do(ready.Done)
		}()
	}
	ready.Wait()
	start := time.Now()
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	sent := 0
	var b strings.Builder
	var sendErr error
	for sent < total && sendErr == nil {
		select {
		case <-ctx.Done():
			sendErr = ctx.Err()
			continue
		case <-tick.C:
		}
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		b.Reset()
		now := time.Now().UnixNano()
		for ; sent < due; sent++ {
			fmt.Fprintf(&b, "%d:%d;", sent, now)
		}
		if b.Len() > 0 {
			sendErr = send(ctx, b.String(), false)
		}
	}
	elapsed := time.Since(start).Seconds()
	if sendErr == nil {
		sendErr = send(ctx, "", true)
	}
	done.Wait()
	u, merr := m.finish(ctx)
	if sendErr != nil {
		return nil, sendErr
	}
	var lat []float64
	missing := 0
	for _, w := range ws {
		if w.err != nil {
			return nil, fmt.Errorf("watcher: %w", w.err)
		}
		lat = append(lat, w.tc.lat...)
		missing += total - len(w.tc.lat)
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("no delta was delivered")
	}
	slices.Sort(lat)
	s := sample{
		"deltas": float64(len(lat)) / elapsed, "p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[len(lat)-1],
		"missing": float64(missing), "stored": float64(ws[0].tc.frames) / elapsed,
	}
	usageSample(s, u)
	if u.cpuSeconds >= 0 {
		s["cpu_per_1000"] = u.cpuSeconds * 1000 / (float64(total) / 1000)
	}
	return s, merr
}
