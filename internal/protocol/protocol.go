// Package protocol defines Tether's wire protocol: the JSON envelope every
// WebSocket message shares, the message types, the error codes carried in
// error replies, and the close codes used across all endpoints.
//
// It knows nothing about transports or PTYs: the connection layer decodes
// frames with [Decode] and the endpoints build replies with the types here,
// so that every endpoint answers bad input the same way.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// WebSocket close codes used by Tether. The 4xxx codes mirror HTTP statuses
// so that a client can map them without a table.
const (
	CloseNormal          = 1000 // the client asked to disconnect, or a session ended
	CloseGoingAway       = 1001 // the server is shutting down: reconnect elsewhere
	CloseTooBig          = 1009 // a frame exceeded the maximum message size
	CloseInternal        = 1011 // the server failed (e.g. its state store is unreachable); retry
	CloseBadRequest      = 4000 // repeated frames that are not JSON, or an invalid path parameter
	CloseUnauthenticated = 4001 // no valid token in time, or the token expired
	CloseForbidden       = 4003 // authenticated, but not allowed
	CloseNotFound        = 4004 // the addressed resource does not exist or has ended
	ClosePolicy          = 4008 // slow consumer, rate limit, or connection limit
)

// Error codes carried in the "code" field of error replies.
const (
	CodeBadRequest      = "bad_request"
	CodeForbidden       = "forbidden"
	CodeRateLimited     = "rate_limited"
	CodeNotFound        = "not_found"
	CodeUnauthenticated = "unauthenticated"
	CodeInvalidChannel  = "invalid_channel"
	CodeInternal        = "internal_error"
	CodeSubjectMismatch = "subject_mismatch"
	CodeOlderExpiry     = "older_expiry"
	// CodeTooManyConnections refuses a connection over the per-user limit.
	CodeTooManyConnections = "too_many_connections"
	// CodeNodeDraining: the node is draining before a restart and starts
	// no new operation or terminal; start it through another node.
	CodeNodeDraining = "node_draining"
	// CodeInputTooLarge refuses an operation input or a terminal input over
	// its limit; nothing was done with it.
	CodeInputTooLarge = "input_too_large"
	// CodeStorageFull refuses a write because the node's storage is full;
	// nothing was stored, reads keep working. Retry later.
	CodeStorageFull = "storage_full"
)

// Message types shared by every endpoint.
const (
	TypeAuth           = "auth"
	TypeAuthSuccess    = "auth_success"
	TypeAuthError      = "auth_error"
	TypeRefresh        = "refresh"
	TypeRefreshSuccess = "refresh_success"
	TypeRefreshError   = "refresh_error"
	TypeExpired        = "expired"
	TypePing           = "ping"
	TypePong           = "pong"
	TypeError          = "error"
	TypeDisconnect     = "disconnect"
)

// ErrNotJSON reports a frame that is not a JSON value at all. Such a frame
// cannot be matched to a request, so it gets no reply; the connection layer
// counts it instead.
var ErrNotJSON = errors.New("frame is not JSON")

// RequestError is a message that is JSON but not a valid request: it is
// answered with an error reply of Code, echoing the id when one was readable.
type RequestError struct {
	Code    string
	Message string
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// BadRequest returns a RequestError with code bad_request.
func BadRequest(format string, args ...any) *RequestError {
	return &RequestError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Envelope is the part every client message shares: its type and its
// optional id, which every reply echoes verbatim (a string or a number).
type Envelope struct {
	Type string
	ID   json.RawMessage
	// Raw is the whole message, for the endpoint to decode into its own type.
	Raw []byte
}

// Decode parses a text frame into its envelope. It returns ErrNotJSON for a
// frame that is not JSON at all and a *RequestError (with whatever id could
// be read) for JSON that is not a valid message.
func Decode(frame []byte) (Envelope, error) {
	if env, ok := decodeFast(frame); ok {
		return env, nil
	}
	return decodeReference(frame)
}

// decodeReference is Decode through encoding/json: it decides every frame
// the fast scanner does not accept, so all errors come from here.
func decodeReference(frame []byte) (Envelope, error) {
	var head struct {
		Type json.RawMessage `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(frame, &head); err != nil {
		if !json.Valid(frame) {
			return Envelope{}, ErrNotJSON
		}
		return Envelope{}, BadRequest("a message must be a JSON object")
	}
	env := Envelope{Raw: frame}
	if len(head.ID) > 0 && !bytes.Equal(head.ID, []byte("null")) {
		switch head.ID[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			env.ID = head.ID
		default:
			return env, BadRequest("field id must be a string or a number")
		}
	}
	if len(head.Type) == 0 || bytes.Equal(head.Type, []byte("null")) {
		return env, BadRequest("missing field type")
	}
	if err := json.Unmarshal(head.Type, &env.Type); err != nil {
		return env, BadRequest("field type must be a string")
	}
	if env.Type == "" {
		return env, BadRequest("field type must not be empty")
	}
	return env, nil
}

// Into decodes the whole message into v, turning JSON type mismatches into
// a bad_request error that names the offending field.
func (e Envelope) Into(v any) error {
	if err := json.Unmarshal(e.Raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return BadRequest("field %s must be %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return BadRequest("invalid message: %v", err)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// idPattern is the shape of every client-chosen identifier (operation ids,
// milestone ids): safe in URLs, NATS subjects, file names and logs.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID reports whether s is a valid operation or milestone id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// ErrorReply is the generic error answer to a request.
type ErrorReply struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

// NewError builds an error reply to the request with the given id.
func NewError(id json.RawMessage, code, message string) ErrorReply {
	return ErrorReply{Type: TypeError, ID: id, Code: code, Message: message}
}

// AuthRequest is {"type":"auth","token":…} and {"type":"refresh","token":…}.
type AuthRequest struct {
	Token string `json:"token"`
}

// AuthSuccess answers auth.
type AuthSuccess struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id,omitempty"`
	UserID    string          `json:"user_id"`
	ExpiresAt string          `json:"expires_at"`
}

// AuthFailure answers a refused auth (auth_error) or refresh (refresh_error).
type AuthFailure struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

// PingRequest is {"type":"ping","timestamp"?:…}; the timestamp is echoed as is.
type PingRequest struct {
	Timestamp json.RawMessage `json:"timestamp"`
}

// Pong answers ping.
type Pong struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	Timestamp  json.RawMessage `json:"timestamp,omitempty"`
	ServerTime string          `json:"server_time"`
}

// Expired is sent when a connection's token expires, right before close 4001.
type Expired struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
