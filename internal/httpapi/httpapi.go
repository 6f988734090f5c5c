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
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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

// Authenticator checks the token of REST requests.
type Authenticator struct {
	Verifier *auth.Verifier
	// OnFailure counts refusals by reason (may be nil).
	OnFailure func(reason string)
}

// Claims authenticates r from its Authorization header or token query
// parameter; on failure it has already written a 401 and returns nil.
func (a *Authenticator) Claims(w http.ResponseWriter, r *http.Request) *auth.Claims {
	tok, _ := auth.TokenFromRequest(r)
	if tok == "" {
		a.fail(w, auth.ReasonMissingToken, "send a token in the Authorization header: Bearer <token>")
		return nil
	}
	cl, err := a.Verifier.Verify(tok)
	if err != nil {
		a.fail(w, auth.ReasonOf(err), err.Error())
		return nil
	}
	return cl
}

// Admin is Claims that also requires the admin role (403 otherwise).
func (a *Authenticator) Admin(w http.ResponseWriter, r *http.Request) *auth.Claims {
	cl := a.Claims(w, r)
	if cl == nil {
		return nil
	}
	if !cl.IsAdmin() {
		WriteError(w, http.StatusForbidden, "forbidden", "this API requires the admin role")
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

// DecodeBody decodes a JSON request body of at most MaxBodyBytes into v; on
// failure it has already written a 400 (or 413) and returns false.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body is larger than 1 MiB")
			return false
		}
		if errors.Is(err, io.EOF) {
			WriteError(w, http.StatusBadRequest, "bad_request", "a JSON body is required")
			return false
		}
		WriteError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
		return false
	}
	return true
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
	return func(w http.ResponseWriter, r *http.Request) {
		cl := a.Admin(w, r)
		if cl == nil {
			return
		}
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
			WriteError(w, http.StatusServiceUnavailable, "unavailable", "the message could not be stored; try again")
			return
		}
		WriteJSON(w, http.StatusOK, PublishResponse{Channel: ch, Seq: seq})
	}
}

// Health serves /healthz: the process is up.
func Health(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Status is "ready", "not_ready" (503: NATS or JetStream unreachable)
	// or "storage_full" (200: reads work, writes fail with storage_full).
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
		if !st.NATSConnected || st.JetStream != "" {
			r.Status = "not_ready"
			WriteJSON(w, http.StatusServiceUnavailable, r)
			return
		}
		WriteJSON(w, http.StatusOK, r)
	}
}

// RedactURL returns u's request URI with the token query parameter's value
// replaced, so that no log line ever carries a token.
func RedactURL(u *url.URL) string {
	if u.RawQuery == "" || !strings.Contains(u.RawQuery, "token") {
		return u.RequestURI()
	}
	q := u.Query()
	if q.Has("token") {
		q.Set("token", "REDACTED")
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.RequestURI()
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
