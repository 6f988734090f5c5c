package agui

import "time"

// Config configures a Run. Zero fields take the defaults (DefaultLimits,
// DefaultCoalesce, no document bound, initial state {}).
type Config struct {
	Limits   Limits
	Doc      DocLimits
	Coalesce CoalesceConfig
	// InitialState is the state before any state event: the run's
	// RunAgentInput.state, decoded. Nil means {} (as @ag-ui/client's agent
	// starts); use NewState directly for a JSON null.
	InitialState any
}

// Run is one operation's AG-UI event pipeline: the Tracker of what is open,
// the State, and the Coalescer of deltas, used together by the one
// goroutine that stores the operation's events:
//
//	out, err := run.Accept(ev, time.Now()) // err: tell the agent, store nothing
//	for _, e := range out { seq := store(e); run.Stored(e) }
//	// timer at run.Deadline(): store run.FlushDue(time.Now()) the same way
//	// before any other event of the operation: store run.Flush()
//	// at the end: store run.Finish(), then RUN_FINISHED or RUN_ERROR (Stored too)
//
// Call Stored for every event stored, in order, before the next Accept.
type Run struct {
	Tracker   *Tracker
	State     *State
	Coalescer *Coalescer
}

// NewRun returns a Run for a run that has started.
func NewRun(cfg Config) *Run {
	init := cfg.InitialState
	if init == nil {
		init = map[string]any{}
	}
	return &Run{
		Tracker:   NewTracker(cfg.Limits),
		State:     NewState(init, cfg.Doc),
		Coalescer: NewCoalescer(cfg.Coalesce),
	}
}

// Accept checks an agent event against the lifecycle (Tracker.Check) and
// the state (State.Check) and returns the events to store now, in order
// (held deltas first). On a refusal (*Error) nothing changes and nothing is
// to be stored.
func (r *Run) Accept(ev *Event, now time.Time) ([]*Event, error) {
	if err := r.Tracker.Check(ev); err != nil {
		return nil, err
	}
	if err := r.State.Check(ev); err != nil {
		return nil, err
	}
	return r.Coalescer.Add(ev, now), nil
}

// Stored records an event that was stored: the agent's, Tether's own, or
// one of Finish.
func (r *Run) Stored(ev *Event) {
	r.Tracker.Apply(ev)
	r.State.Apply(ev)
}

// Deadline is when FlushDue must be called; false when nothing is held.
func (r *Run) Deadline() (time.Time, bool) { return r.Coalescer.Deadline() }

// FlushDue returns the held delta when it is due.
func (r *Run) FlushDue(now time.Time) []*Event { return r.Coalescer.FlushDue(now) }

// Flush returns the held delta, due or not: store it before any event of
// the operation that does not go through Accept (a progress or log line,
// an input request, Tether's own), so that events keep their order.
func (r *Run) Flush() []*Event { return r.Coalescer.Flush() }

// Finish returns what to store before the final RUN_FINISHED or RUN_ERROR:
// the held delta, then the events closing everything still open
// (Tracker.Close).
func (r *Run) Finish() []*Event {
	return append(r.Coalescer.Flush(), r.Tracker.Close()...)
}

// ResumePrefix returns what a stream resumed after a stored event sends
// before the events that follow it: the run's RUN_STARTED, a STATE_SNAPSHOT
// of the state at that point, then the START events of what was open at
// that point (Tracker.Open). None of them carries an SSE id. history is the
// run's stored events up to and including the last one the client saw,
// beginning with RUN_STARTED. With an empty history (or one not beginning
// with RUN_STARTED) it returns nil: stream from the beginning instead. When
// the last event of history is the final RUN_FINISHED or RUN_ERROR, the
// prefix ends with it again, since a stream must end with it.
//
// The snapshot makes the resumed stream self-sufficient: a client that
// kept its state gets the same state again, and one that did not (a new
// page resuming a run) gets it, so the STATE_DELTA events that follow
// apply.
func ResumePrefix(history []*Event, cfg Config) []*Event {
	if len(history) == 0 || history[0].Type != RunStarted {
		return nil
	}
	if cfg.InitialState == nil {
		cfg.InitialState = runInputState(history[0])
	}
	r := NewRun(cfg)
	for _, ev := range history {
		r.Stored(ev)
	}
	out := []*Event{history[0], r.State.Snapshot()}
	out = append(out, r.Tracker.Open()...)
	if last := history[len(history)-1]; last.Type == RunFinished || last.Type == RunError {
		out = append(out, last)
	}
	return out
}

// runInputState returns RUN_STARTED's input.state, or nil.
func runInputState(ev *Event) any {
	v, err := decodeJSON(ev.Raw)
	if err != nil {
		return nil
	}
	obj, _ := v.(map[string]any)
	in, _ := obj["input"].(map[string]any)
	return in["state"]
}
