package protocol

import "encoding/json"

// Message types of the /ws/agent-guidance endpoint.
const (
	TypeStartOperation        = "start_operation"
	TypeCancelOperation       = "cancel_operation"
	TypeSubscribeOperation    = "subscribe_operation"
	TypeUnsubscribeOperation  = "unsubscribe_operation"
	TypeOperationStarted      = "operation_started"
	TypeOperationProgress     = "operation_progress"
	TypeOperationLog          = "operation_log"
	TypeOperationCompleted    = "operation_completed"
	TypeOperationFailed       = "operation_failed"
	TypeOperationCancelled    = "operation_cancelled"
	TypeOperationError        = "operation_error"
	TypeOperationSubscribed   = "operation_subscribed"
	TypeOperationUnsubscribed = "operation_unsubscribed"
	TypeOperationState        = "operation_state"
	TypeCancelRequested       = "cancel_requested"
	// TypeAGUIEvent is an AG-UI event of an operation (OperationAGUIEvent).
	TypeAGUIEvent = "agui_event"
	// TypeOperationInputRequested and TypeOperationInputAnswered are an
	// agent's request for input and its answer (OperationInput).
	TypeOperationInputRequested = "operation_input_requested"
	TypeOperationInputAnswered  = "operation_input_answered"
	// TypeAnswerInput answers an input request (AnswerInput); the reply is
	// TypeInputAccepted (OperationInputReply).
	TypeAnswerInput   = "answer_input"
	TypeInputAccepted = "input_accepted"
)

// Message types of the /ws/agent-worker endpoint. Run and cancel go from the
// server to the worker; the others from the worker to the server.
const (
	TypeRegister   = "register"
	TypeRegistered = "registered"
	TypeRun        = "run"
	TypeCancel     = "cancel"
	TypeProgress   = "progress"
	TypeLog        = "log"
	TypeCompleted  = "completed"
	TypeFailed     = "failed"
	TypeCancelled  = "cancelled"
	// TypeEvent carries an AG-UI event (WorkerEvent.Event).
	TypeEvent = "event"
	// TypeInputRequest asks for a person's input (WorkerEvent.RequestID,
	// Prompt, Schema); TypeInput ("input", shared with the terminals'),
	// from the server, carries the answer (Input).
	TypeInputRequest = "input_request"
	// TypeReclaim takes back a running operation after a reconnect
	// (Reclaim); the reply is TypeReclaimed (Reclaimed).
	TypeReclaim   = "reclaim"
	TypeReclaimed = "reclaimed"
)

// Error codes of operation_error replies (and the REST API's error field).
const (
	CodeUnknownAgent         = "unknown_agent"
	CodeUnknownOperationType = "unknown_operation_type"
	CodeInvalidOperationID   = "invalid_operation_id"
	CodeOperationExists      = "operation_exists"
	CodeCapacity             = "capacity"
	CodeAgentUnavailable     = "agent_unavailable"
	// CodeOperationHeld refuses a worker's reclaim: another worker
	// connection holds the operation (or reclaimed it first).
	CodeOperationHeld = "operation_held"
)

// Failure codes of operation_failed that Tether itself assigns, besides the
// command-agent codes of package agents (exit_status, crashed, timeout,
// malformed_output, start_failed, emit_failed).
const (
	// CodeAgentDisconnected: the remote worker running the operation
	// disconnected before it ended.
	CodeAgentDisconnected = "agent_disconnected"
	// CodeInterrupted: the node running the operation stopped (shut down or
	// crashed) before it ended.
	CodeInterrupted = "interrupted"
	// CodeAgentError: a remote worker reported a failure without a code.
	CodeAgentError = "agent_error"
)

// Operation statuses, in records and operation_subscribed.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusWaitingInput: running, with an input request unanswered.
	StatusWaitingInput = "waiting_input"
)

// Codes about input requests.
const (
	// CodeInputTimeout: an input request was not answered in time; the
	// operation failed with it.
	CodeInputTimeout = "input_timeout"
	// CodeAlreadyAnswered: the input request has been answered.
	CodeAlreadyAnswered = "already_answered"
)

// Statuses lists every operation status, and StatusGroups the names a
// list's status filter accepts for several: live (not ended) and ended.
var (
	Statuses     = []string{StatusRunning, StatusWaitingInput, StatusCompleted, StatusFailed, StatusCancelled}
	StatusGroups = map[string][]string{
		"live":  {StatusRunning, StatusWaitingInput},
		"ended": {StatusCompleted, StatusFailed, StatusCancelled},
	}
)

// Live reports whether an operation with status s has not ended.
func Live(s string) bool { return s == StatusRunning || s == StatusWaitingInput }

// StartOperation is start_operation (and the body of POST /api/operations).
type StartOperation struct {
	OperationID   string          `json:"operation_id"`
	AgentID       string          `json:"agent_id"`
	OperationType string          `json:"operation_type"`
	Input         json.RawMessage `json:"input,omitempty"`
	// Owner may be set by admins through the REST API only.
	Owner string `json:"owner,omitempty"`
}

// OperationRequest is cancel_operation, subscribe_operation and
// unsubscribe_operation. AfterSeq only means something to subscribe.
type OperationRequest struct {
	OperationID string  `json:"operation_id"`
	AfterSeq    *uint64 `json:"after_seq,omitempty"`
}

// OperationStarted is the first event of every operation (seq 1). As the
// reply to start_operation it echoes the request's id.
type OperationStarted struct {
	Type          string          `json:"type"`
	ID            json.RawMessage `json:"id,omitempty"`
	OperationID   string          `json:"operation_id"`
	AgentID       string          `json:"agent_id"`
	OperationType string          `json:"operation_type"`
	StartedAt     string          `json:"started_at"`
	Seq           uint64          `json:"seq"`
}

// OperationProgress reports progress. Progress (0 to 100) is null when the
// agent sent a status without a percentage.
type OperationProgress struct {
	Type        string          `json:"type"`
	OperationID string          `json:"operation_id"`
	Progress    *float64        `json:"progress"`
	Message     string          `json:"message"`
	Step        string          `json:"step"`
	Data        json.RawMessage `json:"data,omitempty"`
	Time        string          `json:"time"`
	Seq         uint64          `json:"seq"`
}

// OperationLog is one log line of an operation.
type OperationLog struct {
	Type        string `json:"type"`
	OperationID string `json:"operation_id"`
	Message     string `json:"message"`
	Time        string `json:"time"`
	Seq         uint64 `json:"seq"`
}

// OperationAGUIEvent is one AG-UI event of an operation, as the agent sent
// it (or as Tether coalesced or closed it): Event is the AG-UI event's JSON
// object. Seq is the operation's seq, shared with its other events; it is
// 0 only for a STATE_SNAPSHOT sent to a watcher in place of history that is
// no longer stored.
type OperationAGUIEvent struct {
	Type        string          `json:"type"`
	OperationID string          `json:"operation_id"`
	Event       json.RawMessage `json:"event"`
	Seq         uint64          `json:"seq"`
}

// OperationInput is operation_input_requested (RequestID, Prompt, Schema)
// and operation_input_answered (RequestID, Status "resolved" or
// "cancelled", Value, By: the user who answered).
type OperationInput struct {
	Type        string          `json:"type"`
	OperationID string          `json:"operation_id"`
	RequestID   string          `json:"request_id"`
	Prompt      string          `json:"prompt,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Status      string          `json:"status,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	By          string          `json:"by,omitempty"`
	Time        string          `json:"time"`
	Seq         uint64          `json:"seq"`
}

// AnswerInput is answer_input (and the body of POST
// /api/operations/{id}/input, without OperationID). Status is "resolved"
// (the default) or "cancelled" (the person declined).
type AnswerInput struct {
	OperationID string          `json:"operation_id"`
	RequestID   string          `json:"request_id"`
	Value       json.RawMessage `json:"value"`
	Status      string          `json:"status,omitempty"`
}

// OperationInputReply answers answer_input.
type OperationInputReply struct {
	Type        string          `json:"type"`
	ID          json.RawMessage `json:"id,omitempty"`
	OperationID string          `json:"operation_id"`
	RequestID   string          `json:"request_id"`
}

// Input gives a worker the answer to one of its input requests.
type Input struct {
	Type        string          `json:"type"`
	OperationID string          `json:"operation_id"`
	RequestID   string          `json:"request_id"`
	Status      string          `json:"status"`
	Value       json.RawMessage `json:"value"`
}

// OperationEnded is the final event: operation_completed (with Result),
// operation_failed (with Code and Message, and Result if the agent sent a
// partial one) or operation_cancelled.
type OperationEnded struct {
	Type        string          `json:"type"`
	OperationID string          `json:"operation_id"`
	Result      json.RawMessage `json:"result,omitempty"`
	Code        string          `json:"code,omitempty"`
	Message     string          `json:"message,omitempty"`
	Time        string          `json:"time"`
	Seq         uint64          `json:"seq"`
}

// OperationError refuses a request about an operation.
type OperationError struct {
	Type        string          `json:"type"`
	ID          json.RawMessage `json:"id,omitempty"`
	OperationID string          `json:"operation_id,omitempty"`
	Code        string          `json:"code"`
	Message     string          `json:"message"`
}

// OperationSubscribed answers subscribe_operation. Recovered is false when
// the events after the requested position are no longer stored; an
// operation_state message with the record follows instead of a replay.
type OperationSubscribed struct {
	Type        string          `json:"type"`
	ID          json.RawMessage `json:"id,omitempty"`
	OperationID string          `json:"operation_id"`
	Status      string          `json:"status"`
	LastSeq     uint64          `json:"last_seq"`
	Recovered   bool            `json:"recovered"`
}

// OperationReply answers unsubscribe_operation (operation_unsubscribed) and
// cancel_operation (cancel_requested).
type OperationReply struct {
	Type        string          `json:"type"`
	ID          json.RawMessage `json:"id,omitempty"`
	OperationID string          `json:"operation_id"`
}

// OperationState carries an operation's record when history cannot be
// replayed.
type OperationState struct {
	Type      string          `json:"type"`
	Operation OperationRecord `json:"operation"`
}

// Failure says why an operation failed.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// OperationRecord is the stored state of an operation, as returned by the
// REST API and operation_state.
type OperationRecord struct {
	OperationID   string          `json:"operation_id"`
	AgentID       string          `json:"agent_id"`
	OperationType string          `json:"operation_type"`
	Owner         string          `json:"owner"`
	Status        string          `json:"status"`
	Progress      *float64        `json:"progress,omitempty"`
	Step          string          `json:"step,omitempty"`
	Message       string          `json:"message,omitempty"`
	StartedAt     string          `json:"started_at"`
	UpdatedAt     string          `json:"updated_at"`
	EndedAt       string          `json:"ended_at,omitempty"`
	Result        json.RawMessage `json:"result,omitempty"`
	Failure       *Failure        `json:"failure,omitempty"`
	LastSeq       uint64          `json:"last_seq"`
	// Node is the node that writes the operation's events.
	Node string `json:"node"`
	// Kind is "command" or "remote".
	Kind string `json:"kind"`
}

// Register is a worker's register message.
type Register struct {
	AgentID    string   `json:"agent_id"`
	Operations []string `json:"operations"`
}

// Registered answers register.
type Registered struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	AgentID    string          `json:"agent_id"`
	Operations []string        `json:"operations"`
}

// Reclaim is a worker's reclaim message: it takes back an operation it ran
// on a connection that ended, on any node.
type Reclaim struct {
	OperationID string `json:"operation_id"`
}

// Reclaimed answers reclaim: the operation is this connection's again.
// LastSeq is the seq of the last event Tether stored: what the worker sent
// after it was lost. OpenRequests are its input requests still waiting for
// an answer.
type Reclaimed struct {
	Type          string          `json:"type"`
	ID            json.RawMessage `json:"id,omitempty"`
	OperationID   string          `json:"operation_id"`
	AgentID       string          `json:"agent_id"`
	OperationType string          `json:"operation_type"`
	Status        string          `json:"status"`
	LastSeq       uint64          `json:"last_seq"`
	OpenRequests  []string        `json:"open_requests,omitempty"`
}

// Run asks a worker to run an operation.
type Run struct {
	Type          string          `json:"type"`
	OperationID   string          `json:"operation_id"`
	AgentID       string          `json:"agent_id"`
	OperationType string          `json:"operation_type"`
	Input         json.RawMessage `json:"input"`
}

// Cancel asks a worker to stop an operation.
type Cancel struct {
	Type        string `json:"type"`
	OperationID string `json:"operation_id"`
}

// WorkerEvent is what a worker sends about one of its operations: progress
// (Progress, Message, Step, Data), log (Message), event (Event, an AG-UI
// event), completed (Result), failed (Code, Message, Result) or cancelled
// (Message).
type WorkerEvent struct {
	OperationID string          `json:"operation_id"`
	Progress    *float64        `json:"progress"`
	Message     string          `json:"message"`
	Step        string          `json:"step"`
	Data        json.RawMessage `json:"data"`
	Result      json.RawMessage `json:"result"`
	Code        string          `json:"code"`
	Event       json.RawMessage `json:"event"`
	RequestID   string          `json:"request_id"`
	Prompt      string          `json:"prompt"`
	Schema      json.RawMessage `json:"schema"`
}
