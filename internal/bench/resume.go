package bench

import (
	"context"
	"fmt"
	"time"
)

// resume measures reconnects that missed output: a terminal's (?since=)
// and an operation's (after_seq).
func resume(ctx context.Context, e *env) ([]Result, error) {
	r, err := resumeTerminal(ctx, e)
	out := []Result{r}
	if err != nil || e.opts.OpEvents <= 0 {
		return out, err
	}
	r, err = resumeOperation(ctx, e)
	return append(out, r), err
}

// resumeOperation: a watcher reconnects having missed --op-events progress
// events and subscribes with after_seq; the time is from the dial to the
// first event sent after the reconnect. The baseline reconnects with
// after_seq at the newest event.
func resumeOperation(ctx context.Context, e *env) (Result, error) {
	n := e.opts.OpEvents
	params := map[string]any{"missed_events": n}
	aw, err := e.newAgentWorker(ctx)
	if err != nil {
		return Result{Name: "resume/operation", Params: params}, fmt.Errorf("operations: %w", err)
	}
	defer aw.close()
	run := func(catchUp bool) roundFunc {
		return func(ctx context.Context, round int) (sample, error) {
			ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
			defer cancel()
			id, err := aw.start(ctx, e, fmt.Sprintf("bench-res-%d-%d", time.Now().UnixNano()%1e9, round))
			if err != nil {
				return nil, err
			}
			defer aw.complete(id)
			for k := range n {
				if err := aw.send(ctx, map[string]any{"type": "progress", "operation_id": id, "progress": k % 101, "message": "step"}); err != nil {
					return nil, err
				}
			}
			last := int64(n + 1)
			if err := waitSeq(ctx, e, id, last); err != nil {
				return nil, err
			}
			after := int64(1)
			if !catchUp {
				after = last
			}
			start := time.Now()
			g, err := dial(ctx, e.t.ws+"/ws/agent-guidance", e.t.token)
			if err != nil {
				return nil, err
			}
			defer g.CloseNow()
			g.SetReadLimit(1 << 20)
			if err := sendJSON(ctx, g, map[string]any{"type": "subscribe_operation", "id": 1, "operation_id": id, "after_seq": after}); err != nil {
				return nil, err
			}
			// The live event is produced once the subscription is
			// confirmed, so it is live in both rounds (sent earlier, it
			// raced the subscription and could end up in the history).
			if _, err := awaitType(ctx, g, "operation_subscribed", id); err != nil {
				return nil, err
			}
			if err := aw.send(ctx, map[string]any{"type": "log", "operation_id": id, "message": "live"}); err != nil {
				return nil, err
			}
			if _, err := awaitType(ctx, g, "operation_log", id); err != nil {
				return nil, err
			}
			return sample{"first_live_event": float64(time.Since(start).Microseconds()) / 1e3}, nil
		}
	}
	r, err := e.rounds(ctx, "resume/operation", params, []spec{{"first_live_event", "ms"}}, run(false), run(true))
	r.Notes = append(r.Notes, fmt.Sprintf("baseline: the same reconnect with after_seq at the newest event; tether: with %d events missed", n))
	return r, err
}

// waitSeq polls the operation's record until its last_seq reaches want
// (exact on the node running it).
func waitSeq(ctx context.Context, e *env, id string, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var rec struct {
		LastSeq int64 `json:"last_seq"`
	}
	for {
		if err := e.t.do(ctx, "GET", "/api/operations/"+id, nil, &rec); err != nil {
			return err
		}
		if rec.LastSeq >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("operation stored %d of %d events (is --operation-event-rate 0 set?): %w", rec.LastSeq, want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
