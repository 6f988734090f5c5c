// Package httpapi holds Tether's plain HTTP surface: health and readiness,
// metrics, the publish API for backends, request logging with tokens
// redacted, and the helpers every REST handler uses to authenticate and to
// answer with JSON.
package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/channels"
	"github.com/tether-dev/tether/internal/protocol"
)

// MaxBodyBytes bounds a REST request body.
const MaxBodyBytes = 1 << 20

// Error is the JSON body of every error response.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes an Error body with status.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, Error{Error: code, Message: msg})
}

// MissingTokenMessage is the message of a REST 401 missing_token.
const MissingTokenMessage = "a token is required: send it as Authorization: Bearer <token>"

// Authenticator checks the token of REST requests. Every REST handler is
// wrapped in Authed or AdminOnly, the one place that refuses a request
// without a valid token.
type Authenticator struct {
	Verifier *auth.Verifier
	// OnFailure counts refusals by reason (may be nil).
	OnFailure func(reason string)
	// Log receives the detail of each refusal at debug level, and the
	// failures of the handlers of this package (nil: discarded). Clients
	// only get fixed sentences.
	Log *slog.Logger
}

// Authed returns a handler that authenticates the request from its
// Authorization header (or token query parameter) and calls h with the
// token's claims; without a valid token it answers 401 and h is not called.
func (a *Authenticator) Authed(h func(http.ResponseWriter, *http.Request, *auth.Claims)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if cl := a.claims(w, r); cl != nil {
			h(w, r, cl)
		}
	}
}

// AdminOnly is Authed that also requires the admin role (403 forbidden
// otherwise).
func (a *Authenticator) AdminOnly(h func(http.ResponseWriter, *http.Request, *auth.Claims)) http.HandlerFunc {
	return a.Authed(func(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
		if !cl.IsAdmin() {
			WriteError(w, http.StatusForbidden, "forbidden", "this API requires the admin role")
			return
		}
		h(w, r, cl)
	})
}

// claims returns r's verified claims, or writes a 401 and returns nil.
func (a *Authenticator) claims(w http.ResponseWriter, r *http.Request) *auth.Claims {
	tok, _ := auth.TokenFromRequest(r)
	if tok == "" {
		a.fail(w, auth.ReasonMissingToken, MissingTokenMessage)
		return nil
	}
	cl, err := a.Verifier.Verify(tok)
	if err != nil {
		reason, msg := auth.Public(err)
		if a.Log != nil {
			a.Log.Debug("http: token refused", "reason", reason, "err", auth.Redact(err.Error()),
				"method", r.Method, "url", RedactURL(r.URL), "remote", r.RemoteAddr)
		}
		a.fail(w, reason, msg)
		return nil
	}
	return cl
}

func (a *Authenticator) fail(w http.ResponseWriter, reason, msg string) {
	if a.OnFailure != nil {
		a.OnFailure(reason)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tether"`)
	WriteError(w, http.StatusUnauthorized, reason, msg)
}

// UnavailableMessage is the message of every 503 unavailable answer.
const UnavailableMessage = "the service is temporarily unavailable; try again"

// InternalErrorMessage is the message of every 500 internal_error answer.
const InternalErrorMessage = "the server could not complete the request"

// Unavailable answers 503 unavailable for a request that failed on
// something the server depends on (NATS, JetStream, another node). err goes
// to log (at warn, redacted) and never to the client: it describes the
// server's internals and may quote the request.
func Unavailable(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	logFailure(log, r, "unavailable", err)
	WriteError(w, http.StatusServiceUnavailable, "unavailable", UnavailableMessage)
}

// InternalError answers 500 internal_error, logging err as Unavailable does.
func InternalError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	logFailure(log, r, "internal_error", err)
	WriteError(w, http.StatusInternalServerError, "internal_error", InternalErrorMessage)
}

func logFailure(log *slog.Logger, r *http.Request, code string, err error) {
	if log == nil {
		return
	}
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	log.Warn("http: request failed", "code", code, "method", r.Method, "url", RedactURL(r.URL), "err", auth.Redact(msg))
}

// DecodeBody decodes a JSON request body of at most MaxBodyBytes into v; on
// failure it has already written a 400 (413, 408) and returns false. The
// messages name the problem's position or field, never the body's bytes.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err := dec.Decode(v)
	if err == nil {
		return true
	}
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body is larger than 1 MiB")
	case errors.Is(err, io.EOF):
		WriteError(w, http.StatusBadRequest, "bad_request", "a JSON body is required")
	case errors.Is(err, os.ErrDeadlineExceeded):
		WriteError(w, http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time")
	case errors.As(err, &syntax):
		// The parser's sentence quotes at most one character.
		WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid JSON body at byte %d: %s", syntax.Offset, syntax.Error()))
	case errors.As(err, &wrongType) && wrongType.Field != "":
		// Not wrongType.Error(): its Value quotes the number as sent.
		WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid JSON body: %s must be of JSON type %s", fieldName(wrongType.Field), jsonType(wrongType.Type)))
	case errors.As(err, &wrongType):
		WriteError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: it must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		WriteError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: it ends early")
	default:
		WriteError(w, http.StatusBadRequest, "bad_request", "the request body could not be read")
	}
	return false
}

// Publisher is what the publish API needs from the channel hub.
type Publisher interface {
	Publish(ctx context.Context, channel, from string, data json.RawMessage) (uint64, error)
}

// PublishRequest is the body of POST /api/publish: exactly one of Channel
// and User.
type PublishRequest struct {
	Channel string          `json:"channel"`
	User    string          `json:"user"`
	Data    json.RawMessage `json:"data"`
}

// PublishResponse answers POST /api/publish.
type PublishResponse struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
}

// PublishHandler serves POST /api/publish for backends holding an admin
// token.
func PublishHandler(a *Authenticator, p Publisher, timeout time.Duration) http.HandlerFunc {
	return a.AdminOnly(func(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
		var req PublishRequest
		if !DecodeBody(w, r, &req) {
			return
		}
		ch := req.Channel
		switch {
		case req.Channel != "" && req.User != "":
			WriteError(w, http.StatusBadRequest, "bad_request", "give either channel or user, not both")
			return
		case req.User != "":
			ch = channels.UserChannel(req.User)
		case req.Channel == "":
			WriteError(w, http.StatusBadRequest, "bad_request", "channel or user is required")
			return
		}
		if !channels.ValidName(ch) {
			WriteError(w, http.StatusBadRequest, "invalid_channel", "channel must be 1 to 255 printable ASCII characters without spaces, * or >")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		seq, err := p.Publish(ctx, ch, cl.Subject, req.Data)
		if errors.Is(err, backbone.ErrStorageFull) {
			WriteError(w, http.StatusInsufficientStorage, protocol.CodeStorageFull, "the node's storage is full: the message was not stored; try again later")
			return
		}
		if err != nil {
			Unavailable(w, r, a.Log, err)
			return
		}
		WriteJSON(w, http.StatusOK, PublishResponse{Channel: ch, Seq: seq})
	})
}

// Health serves /healthz: the process is up.
func Health(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Status is "ready", "not_ready" (503: NATS or JetStream unreachable),
	// "draining" (503: the node finishes its work before a restart and
	// starts nothing new) or "storage_full" (200: reads work, writes fail
	// with storage_full).
	Status string `json:"status"`
	Node   string `json:"node"`
	// NATS is "connected" or "disconnected".
	NATS string `json:"nats"`
	// JetStream is "ok" or what the node waits for.
	JetStream string `json:"jetstream"`
	// Storage is "ok" or "full".
	Storage string `json:"storage"`
	// Reason says why the node is not ready or its storage is full.
	Reason string `json:"reason,omitempty"`
}

// ReadyState is what /readyz reports on.
type ReadyState struct {
	NATSConnected bool
	// JetStream is what the node waits for on JetStream, "" once ready.
	JetStream   string
	StorageFull bool
	// StorageReason says why the storage is full.
	StorageReason string
	// Draining is true while the node drains before a restart.
	Draining bool
}

// ReadyHandler serves /readyz: 503 while NATS is disconnected or
// JetStream does not answer; 200 otherwise, with status "storage_full"
// while writes are refused for lack of storage (reads keep working, so the
// node stays in rotation; alert on tether_storage_full).
func ReadyHandler(node string, state func() ReadyState) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		st := state()
		r := Readiness{Status: "ready", Node: node, NATS: "connected", JetStream: "ok", Storage: "ok"}
		if st.StorageFull {
			r.Status, r.Storage, r.Reason = "storage_full", "full", st.StorageReason
		}
		if !st.NATSConnected {
			r.NATS = "disconnected"
		}
		if st.JetStream != "" {
			r.JetStream, r.Reason = st.JetStream, st.JetStream
		}
		if st.Draining {
			r.Status, r.Reason = "draining", "the node is draining before a restart"
			WriteJSON(w, http.StatusServiceUnavailable, r)
			return
		}
		if !st.NATSConnected || st.JetStream != "" {
			r.Status = "not_ready"
			WriteJSON(w, http.StatusServiceUnavailable, r)
			return
		}
		WriteJSON(w, http.StatusOK, r)
	}
}

// RedactURL returns u's request URI with every credential in it (see
// auth.Redact) replaced, so that no log line ever carries a token.
func RedactURL(u *url.URL) string {
	return auth.Redact(u.RequestURI())
}

// Logging logs every request at debug level (errors at warn) with the URL
// redacted. The wrapped writer still supports hijacking for WebSockets and
// flushing for Server-Sent Events.
func Logging(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		status := rec.status
		if rec.hijacked {
			status = http.StatusSwitchingProtocols
		}
		if !log.Enabled(r.Context(), level) {
			return // spares redacting the URL
		}
		log.Log(r.Context(), level, "http", "method", r.Method, "url", RedactURL(r.URL), "status", status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

type recorder struct {
	http.ResponseWriter
	status   int
	wrote    bool
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	r.hijacked = true
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// fieldName bounds a JSON field path for an error message: its map keys
// come from the client.
func fieldName(f string) string {
	const max = 64
	f = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, f)
	if len(f) > max {
		f = strings.ToValidUTF8(f[:max], "") + "…"
	}
	return strconv.Quote(f)
}

// jsonType names the JSON type that decodes into a Go type.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "value"
}
