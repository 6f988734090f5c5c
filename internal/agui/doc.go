// Package agui implements the AG-UI protocol (@ag-ui/core and
// @ag-ui/client 1.0.0 on npm) for Tether's agent operations: it parses and
// checks the events agents emit, keeps each run's lifecycle and state,
// coalesces streamed deltas, and writes the SSE frames of the AG-UI
// endpoint. It does no I/O of its own beyond writing frames, holds no
// locks, and is used by the one goroutine that stores an operation's
// events.
//
// # Mapping
//
// An operation is an AG-UI run: its operation_id is the runId. A command
// agent's stdout line, or a worker's {"type":"event","operation_id":…,
// "event":{…}}, whose "type" is an AG-UI event type is that event. Tether
// writes the run lifecycle itself: RUN_STARTED when the operation starts
// (threadId and runId, and the RunAgentInput as input when the run came
// from the AG-UI endpoint), RUN_FINISHED (with the result) or RUN_ERROR
// (message and code) when it ends. Every stored event has the operation's
// seq; the SSE endpoint sends it as the frame's id.
//
// # Events (event.go)
//
// Parse checks each event against the @ag-ui/core 1.0.0 schema of its type:
// required fields present, every known field of the right JSON type,
// nested messages, content parts, JSON patches, outcomes and usage
// included. Unknown fields are kept (the core schemas are looseObject; the
// stock client strips them with a console warning). An optional field sent
// as null is removed (the schemas reject null there; @ag-ui/client itself
// drops a few such nulls). Unknown members of discriminated unions (a
// content part, message role or outcome type that 1.0 does not define)
// pass, as the client drops them with a warning instead of failing.
//
// Refusals are *Error values with a stable code and a detail; each code has
// one fixed sentence (Sentence). Both may be sent to the agent:
//
//	invalid_event        The event is not a valid AG-UI 1.0 event.
//	unknown_event_type   The event type is not an AG-UI 1.0 event type.
//	unsupported_event    Chunk events are not supported; send the START, CONTENT and END events instead.
//	reserved_event       RUN_STARTED, RUN_FINISHED and RUN_ERROR are written by Tether, not by the agent.
//	lifecycle_violation  The event does not fit the messages, tool calls, steps or subagents that are open.
//	state_patch_failed   The state delta does not apply to the current state.
//	limit_exceeded       The event exceeds a limit of the run.
//
// Nothing refused is stored.
//
// # Lifecycle (lifecycle.go)
//
// Tracker applies the rules of @ag-ui/client 1.0.0's verifier (which
// runAgent always applies; a stream it refuses fails the run in the
// browser): messages, tool calls, reasoning, steps and subagents may
// interleave freely; a delta or END needs its entity open; an id open may
// not be opened again, a closed one may; steps are keyed by owner and name;
// subagentRunId attribution must agree with the owner recorded for an id;
// RUN_FINISHED needs nothing open; nothing follows the final event. See
// Tracker for the full list. TestTrackerMatchesVerifier runs every rule's
// case through the real verifier.
//
// Before an operation's final event Tether stores Tracker.Close: the events
// closing everything still open, innermost first (a subagent still open gets
// SUBAGENT_ERROR with code run_ended), so every stored run is valid whatever
// the agent did.
//
// # State (patch.go)
//
// State holds the run's current AG-UI state: the initial state (the
// RunAgentInput's, else {} as the client starts), then each STATE_SNAPSHOT
// and STATE_DELTA. A delta is an RFC 6902 JSON Patch (add, remove,
// replace, move, copy, test; RFC 6901 pointers with ~0, ~1 and "-" to
// append) applied atomically: all of it or, with state_patch_failed,
// nothing. The state's size and depth are bounded (DocLimits;
// limit_exceeded). A watcher that starts where history was dropped gets
// State.Snapshot first.
//
// # Coalescing (coalesce.go)
//
// Consecutive TEXT_MESSAGE_CONTENT, TOOL_CALL_ARGS and
// REASONING_MESSAGE_CONTENT events of one message (same type, id and
// subagentRunId; no other fields but timestamp) are merged into one event
// before they are stored: flushed 50 ms after the first delta held, when the
// text reaches 16 KiB, and before any other event of the run. An agent
// printing 2,000 deltas a second stores about 20 events a second; no
// character is lost, doubled or reordered. The operation's event rate limit
// counts stored events. Run bundles Tracker, State and Coalescer in the
// order the pipeline uses them.
//
// # SSE and resume (sse.go, run.go)
//
// The AG-UI endpoint answers text/event-stream: per event, "id: <seq>\n"
// and "data: <event JSON>\n\n" (the JSON is compact, so never holds a raw
// newline; the client splits frames on "\n\n" and ignores the id line). A
// stream starts with RUN_STARTED and ends with RUN_FINISHED or RUN_ERROR.
// With Last-Event-ID: N it resumes after event N: first ResumePrefix of
// the events up to N, without ids (RUN_STARTED, a STATE_SNAPSHOT of the
// state at N, the START events of the messages, tool calls, reasoning,
// steps and subagents open at N, so that the verifier accepts what
// continues them), then the events after N with their ids. When N is the
// final event, the prefix ends with that event again, since a stream must
// end with it.
//
// # What the verifier requires (findings)
//
//   - The first event must be RUN_STARTED (or RUN_ERROR); after RUN_FINISHED
//     only RUN_STARTED (a new run) or RUN_ERROR; after RUN_ERROR only
//     RUN_STARTED.
//   - Interleaving is free, but attribution is strict: a subagentRunId on a
//     continuation must equal the opener's (absent always passes), and owners
//     outlive closes for the whole run.
//   - RUN_FINISHED refuses open steps, text messages, reasoning messages and
//     spans, tool calls and subagents; RUN_ERROR does not.
//   - The client ignores SSE "id:" lines entirely and has no resume: resuming
//     is a new POST whose stream must itself be valid from RUN_STARTED.
//   - *_CHUNK events are expanded by the client before the verifier; Tether
//     refuses them from agents instead of expanding them.
package agui
