package httpapi

import (
	"bufio"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/auth"
)

// MaxHeaderTimeout is the longest a client may take to send a request's
// headers (Timeouts.Read, when shorter, bounds them instead).
const MaxHeaderTimeout = 10 * time.Second

// Timeouts bound how long an HTTP connection may be held without making
// progress. Zero (or negative) leaves that bound off; the header timeout
// is then MaxHeaderTimeout.
//
// http.Server's own ReadTimeout and WriteTimeout are deadlines for a whole
// request and response, which would cut Server-Sent Events streams,
// recording downloads and slow handlers short, so they are left unset:
// [Deadlines] bounds the body and each write instead, per request.
// WebSockets are not affected either way: gws clears both deadlines once it
// has hijacked the connection and written the handshake, and the conn
// layer sets its own from then on.
type Timeouts struct {
	// Idle closes a keep-alive connection that has waited this long for
	// its next request (http.Server.IdleTimeout).
	Idle time.Duration
	// Read bounds reading a request body, from the handler's start; the
	// headers get min(Read, MaxHeaderTimeout).
	Read time.Duration
	// Write bounds each write of a response: a client that stops reading
	// fails the write after this long. Streams renew it with every write.
	Write time.Duration
}

// NewServer returns the http.Server of a node: handler, which must be
// wrapped in Deadlines, with t's idle and header timeouts, and what the
// server itself logs passed to log at warn level, redacted. (net/http
// lifts the write deadline Deadlines left on a connection once the
// response is sent.)
func NewServer(handler http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: headerTimeout(t.Read),
		IdleTimeout:       t.Idle,
		ErrorLog:          stdlog.New(serverLog{log}, "", 0),
	}
}

func headerTimeout(read time.Duration) time.Duration {
	if read > 0 {
		return min(read, MaxHeaderTimeout)
	}
	return MaxHeaderTimeout
}

// serverLog passes what net/http logs (a handler's panic, a failed
// handshake) to the node's log at warn level, redacted: a panic value or an
// error may quote a request.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	l.log.Warn(auth.Redact(strings.TrimSuffix(string(p), "\n")))
	return len(p), nil
}

// Deadlines applies t.Read and t.Write to every request handled by next
// (see Timeouts). A request body must have arrived within t.Read of the
// handler's start; the deadline is lifted when the body ends, since
// net/http then watches the connection for the client going away and would
// otherwise cancel a slower handler's context at the deadline. Each write,
// header and flush of the response renews a write deadline of t.Write.
func Deadlines(t Timeouts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if t.Read > 0 && r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(t.Read))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		if t.Write > 0 {
			// Also covers the 100 Continue the server writes when the
			// body is first read.
			_ = rc.SetWriteDeadline(time.Now().Add(t.Write))
			w = &deadlineWriter{ResponseWriter: w, rc: rc, d: t.Write}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body has ended.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only at the end: after a timeout the server still reads what is
	// left of the body, and that must stay bounded too.
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter renews the write deadline before everything that may
// write to the connection. It does not pass io.ReaderFrom through, so
// io.Copy into it (http.ServeContent) writes in 32 KiB chunks, each with
// its own deadline, rather than in one sendfile call bounded once.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController // of the wrapped writer
	d  time.Duration
}

func (w *deadlineWriter) renew() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) WriteHeader(code int) {
	w.renew()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.renew()
	return w.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController.Flush report a failed flush.
func (w *deadlineWriter) FlushError() error {
	w.renew()
	return w.rc.Flush()
}

func (w *deadlineWriter) Flush() { _ = w.FlushError() }

func (w *deadlineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.rc.Hijack() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
