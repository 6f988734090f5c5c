// Package conn is the life of a Tether WebSocket connection, shared by every
// endpoint: the origin check and token check at the handshake, the first
// message auth, expiry enforced on the live connection and refresh, server
// pings and the idle timeout, the per-user connection limit, the message
// rate limit, frames that are not JSON, and a bounded send queue that closes
// slow consumers instead of letting them hold anyone else up.
//
// An endpoint plugs in with an [Endpoint]: once a connection is
// authenticated its Open function returns a [Session] that receives every
// message the connection layer does not handle itself (auth, refresh, ping
// and disconnect are handled here, the same on every endpoint).
package conn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/metrics"
	"github.com/tether-dev/tether/internal/protocol"
)

// SubprotocolV1 is the subprotocol a browser offers next to its token
// ("tether.v1, tether.token.<jwt>"); the server answers with it so that the
// token is never echoed back.
const SubprotocolV1 = "tether.v1"

// MaxBadFrames is how many frames in a row that are not JSON a connection
// may send before it is closed with 4000.
const MaxBadFrames = 10

// maxRateStrikes is how many messages in a row may be refused as rate
// limited before the connection is closed with 4008.
const maxRateStrikes = 10

// Options configures the connection layer.
type Options struct {
	// AllowedOrigins lists the browser origins allowed to connect
	// ("https://app.example.com", or "*"); empty allows only the request's
	// own host. Requests without an Origin header (programs) are allowed.
	AllowedOrigins  []string
	AuthTimeout     time.Duration
	PingInterval    time.Duration
	IdleTimeout     time.Duration
	WriteTimeout    time.Duration
	MaxMessageSize  int
	SendQueue       int
	MaxConnsPerUser int
	RateLimit       float64
	RateBurst       int
	Logger          *slog.Logger
	Metrics         *metrics.Metrics
	// Counter counts a user's connections; nil counts on this node only.
	Counter UserCounter
	// Leeway is the clock skew the verifier allows; a live connection
	// expires at exp plus Leeway, as a new one would be refused then.
	Leeway time.Duration
}

// UserCounter counts open connections per user, possibly across nodes.
type UserCounter interface {
	// Acquire counts one more connection of user unless that would exceed
	// limit, and reports whether it did.
	Acquire(user string, limit int) bool
	// Release uncounts one connection of user.
	Release(user string)
}

// Endpoint is one WebSocket endpoint built on the connection layer.
type Endpoint struct {
	// Name labels metrics and logs ("agent", "agent-guidance", …).
	Name string
	// Subprotocols the endpoint speaks besides SubprotocolV1, in order of
	// preference.
	Subprotocols []string
	// Accept extracts what the endpoint needs from the request before the
	// upgrade (path parameters, query); the result is Conn.Params. Errors
	// are reported by Open after the upgrade, over the WebSocket.
	Accept func(r *http.Request) any
	// Open starts the endpoint's session on an authenticated connection. It
	// may send messages, or close the connection and return nil.
	Open func(c *Conn) Session
	// KnownTypes are the message types counted by name in metrics; others
	// are counted as "other" so that clients cannot grow label sets.
	KnownTypes []string
	// Binary, if set, receives binary frames; otherwise they count as
	// frames that are not JSON.
	Binary func(c *Conn, data []byte)
}

// Session is an endpoint's logic for one authenticated connection.
type Session interface {
	// Handle handles one message. env.Raw is only valid during the call.
	// Calls come one at a time, in the order the client sent them.
	Handle(c *Conn, env protocol.Envelope)
	// Closed is called once when the connection is gone.
	Closed()
}

// Server accepts WebSocket connections for endpoints and owns their
// lifecycle.
type Server struct {
	opts     Options
	verifier *auth.Verifier
	log      *slog.Logger
	m        *metrics.Metrics
	counter  UserCounter

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	closing bool
	drained chan struct{} // closed when conns becomes empty during shutdown

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	nextID   atomic.Uint64
}

// NewServer creates the connection layer and starts its heartbeat.
func NewServer(v *auth.Verifier, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New("")
	}
	if opts.Counter == nil {
		opts.Counter = NewLocalCounter()
	}
	s := &Server{
		opts: opts, verifier: v, log: opts.Logger, m: opts.Metrics, counter: opts.Counter,
		conns: map[*Conn]struct{}{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.heartbeat()
	return s
}

// Verifier is the token verifier the server authenticates with.
func (s *Server) Verifier() *auth.Verifier { return s.verifier }

// Count returns the number of open connections.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Handler returns the HTTP handler that upgrades requests for ep.
func (s *Server) Handler(ep *Endpoint) http.Handler {
	known := map[string]string{}
	for _, t := range append([]string{protocol.TypeAuth, protocol.TypeRefresh, protocol.TypePing, protocol.TypeDisconnect}, ep.KnownTypes...) {
		known[t] = t
	}
	h := &handler{srv: s, ep: ep, known: known, upgraders: map[string]*gws.Upgrader{}}
	for _, p := range append([]string{"", SubprotocolV1}, ep.Subprotocols...) {
		opt := &gws.ServerOption{
			ReadMaxPayloadSize: s.opts.MaxMessageSize,
			CheckUtf8Enabled:   true,
			HandshakeTimeout:   s.opts.WriteTimeout,
			Recovery:           h.recovery,
			NewSession:         func() gws.SessionStorage { return &connSlot{} },
		}
		if p != "" {
			opt.SubProtocols = []string{p}
		}
		h.upgraders[p] = gws.NewUpgrader(h, opt)
	}
	return h
}

// Shutdown closes every connection with 1001 and waits for them to go,
// until ctx ends; then it cuts those left. It stops the heartbeat.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.drained)
		}
	}
	drained := s.drained
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(protocol.CloseGoingAway, "server shutting down")
	}
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.ws.NetConn().Close()
		}
		s.mu.Unlock()
		// The read loops notice the closed sockets at once.
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	return err
}

// heartbeat pings every connection each PingInterval and closes those from
// which nothing arrived for IdleTimeout. One goroutine serves every
// connection, which keeps idle connections cheap.
func (s *Server) heartbeat() {
	defer close(s.done)
	tick := s.opts.PingInterval
	if q := s.opts.IdleTimeout / 4; q < tick {
		tick = q
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch []*Conn
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			batch = batch[:0]
			s.mu.Lock()
			for c := range s.conns {
				batch = append(batch, c)
			}
			s.mu.Unlock()
			n := now.UnixNano()
			for _, c := range batch {
				if n-c.lastSeen.Load() >= int64(s.opts.IdleTimeout) {
					c.Close(protocol.ClosePolicy, "idle_timeout")
					continue
				}
				if n-c.lastPing >= int64(s.opts.PingInterval) {
					c.lastPing = n
					c.enqueue(gws.OpcodePing, nil, "", true)
				}
			}
		}
	}
}

// Conn is one WebSocket connection.
type Conn struct {
	srv *Server
	ep  *Endpoint
	ws  *gws.Conn
	id  uint64

	// Params is what the endpoint's Accept returned.
	Params any
	// Subprotocol is the negotiated subprotocol ("" if none).
	Subprotocol string
	remote      string

	mu        sync.Mutex // guards claims, expTimer
	claims    *auth.Claims
	expTimer  *time.Timer
	authTimer *time.Timer
	counted   bool

	session Session // set once authenticated; read loop only

	lastSeen atomic.Int64 // unix nanos of the last frame received
	lastPing int64        // heartbeat goroutine only
	queued   atomic.Int32
	closing  atomic.Bool
	dropping atomic.Bool
	// wake is closed when a queued frame has been written or the
	// connection closes; allocated only while someone waits.
	wake atomic.Pointer[chan struct{}]

	// read loop only
	badFrames   int
	tokens      float64
	tokensAt    time.Time
	rateStrikes int
}

// ID is a number unique to this connection within the process.
func (c *Conn) ID() uint64 { return c.id }

// Claims returns the connection's identity, or nil before authentication.
func (c *Conn) Claims() *auth.Claims {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims
}

// UserID returns the authenticated subject ("" before authentication).
func (c *Conn) UserID() string {
	if cl := c.Claims(); cl != nil {
		return cl.Subject
	}
	return ""
}

// Send encodes v as JSON and queues it; typ labels the metrics. It reports
// false if the connection is closing or was just closed as a slow consumer.
func (c *Conn) Send(typ string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		c.srv.log.Error("encode message", "type", typ, "err", err)
		return false
	}
	return c.SendRaw(typ, b)
}

// SendRaw queues an already encoded text message. b must not be modified
// afterwards; the same slice may be queued on many connections.
func (c *Conn) SendRaw(typ string, b []byte) bool {
	return c.enqueue(gws.OpcodeText, b, typ, false)
}

// SendBinary queues a binary message.
func (c *Conn) SendBinary(typ string, b []byte) bool {
	return c.enqueue(gws.OpcodeBinary, b, typ, false)
}

// Queued returns the number of messages waiting to be written.
func (c *Conn) Queued() int { return int(c.queued.Load()) }

// enqueue hands a frame to the connection's writer. It never blocks: a
// connection whose queue is full is closed as a slow consumer, so that
// whoever is sending (a fan-out, a PTY reader) never waits for one client.
func (c *Conn) enqueue(op gws.Opcode, b []byte, typ string, control bool) bool {
	if c.closing.Load() {
		return false
	}
	if n := c.queued.Add(1); !control && int(n) > c.srv.opts.SendQueue {
		c.queued.Add(-1)
		c.srv.m.SendQueueDrops.WithLabelValues(c.ep.Name).Inc()
		c.srv.log.Warn("slow consumer", "conn", c.id, "user", c.UserID(), "endpoint", c.ep.Name, "queued", n-1)
		c.closeWith(protocol.ClosePolicy, "slow_consumer", true)
		return false
	}
	c.ws.Async(func() {
		defer c.written()
		if c.dropping.Load() {
			return
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
		if err := c.ws.WriteMessage(op, b); err == nil && typ != "" {
			c.srv.m.Out(c.ep.Name, typ)
		}
	})
	return true
}

func (c *Conn) written() {
	c.queued.Add(-1)
	c.signal()
}

// signal wakes every goroutine in WaitQueueBelow by closing the channel
// they wait on; the next waiter makes a new one.
func (c *Conn) signal() {
	if c.wake.Load() != nil {
		if w := c.wake.Swap(nil); w != nil {
			close(*w)
		}
	}
}

// ErrClosed is returned by WaitQueueBelow once the connection is closing.
var ErrClosed = errors.New("connection closed")

// WaitQueueBelow blocks until fewer than n messages are queued, the
// connection closes (ErrClosed) or ctx ends. Producers that can hold their
// backlog themselves (a PTY ring, an event stream) use it to pace a slow
// client instead of filling its queue and getting it closed.
func (c *Conn) WaitQueueBelow(ctx context.Context, n int) error {
	for {
		if c.closing.Load() {
			return ErrClosed
		}
		if int(c.queued.Load()) < n {
			return nil
		}
		w := c.wake.Load()
		if w == nil {
			ch := make(chan struct{})
			if !c.wake.CompareAndSwap(nil, &ch) {
				continue
			}
			w = &ch
		}
		// Re-check after registering: a write may have finished meanwhile.
		if int(c.queued.Load()) < n || c.closing.Load() {
			continue
		}
		select {
		case <-*w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close sends a close frame with code and reason after the messages already
// queued, then closes the connection. Later calls do nothing.
func (c *Conn) Close(code int, reason string) { c.closeWith(code, reason, false) }

// Fail sends an error message and closes the connection with code.
func (c *Conn) Fail(errCode string, closeCode int, message string) {
	c.Send(protocol.TypeError, protocol.NewError(nil, errCode, message))
	c.Close(closeCode, errCode)
}

func (c *Conn) closeWith(code int, reason string, drop bool) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	defer c.signal()
	if drop || code == protocol.CloseGoingAway {
		// Whatever is still queued would only delay the close.
		c.dropping.Store(true)
	}
	c.srv.m.Closes.WithLabelValues(c.ep.Name, strconv.Itoa(code)).Inc()
	if len(reason) > 123 {
		reason = reason[:123]
	}
	c.ws.Async(func() {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
		_ = c.ws.WriteClose(uint16(code), []byte(reason))
	})
	// A writer stuck on a dead peer must not keep the socket open forever.
	time.AfterFunc(2*c.srv.opts.WriteTimeout, func() { _ = c.ws.NetConn().Close() })
}

// authenticate installs claims on the connection: it counts the connection
// against the user's limit and arms the expiry timer.
func (c *Conn) authenticate(cl *auth.Claims) bool {
	if !c.srv.counter.Acquire(cl.Subject, c.srv.opts.MaxConnsPerUser) {
		return false
	}
	c.mu.Lock()
	c.claims = cl
	c.counted = true
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	c.armExpiry(cl.ExpiresAt)
	c.mu.Unlock()
	return true
}

// armExpiry (re)sets the expiry timer; c.mu must be held.
func (c *Conn) armExpiry(at time.Time) {
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	c.expTimer = time.AfterFunc(time.Until(at.Add(c.srv.opts.Leeway)), c.expire)
}

func (c *Conn) expire() {
	c.mu.Lock()
	live := c.claims != nil && time.Now().Before(c.claims.ExpiresAt.Add(c.srv.opts.Leeway))
	c.mu.Unlock()
	if live {
		return // refreshed in the meantime
	}
	c.Send(protocol.TypeExpired, protocol.Expired{Type: protocol.TypeExpired, Message: "token expired"})
	c.Close(protocol.CloseUnauthenticated, "token_expired")
}

// Session returns the endpoint session, nil before authentication.
// Only the connection's read loop (Endpoint.Binary, Session.Handle) may
// call it.
func (c *Conn) Session() Session { return c.session }

// Remote is the client's address as seen by the server.
func (c *Conn) Remote() string { return c.remote }

// Endpoint is the name of the endpoint the connection belongs to.
func (c *Conn) Endpoint() string { return c.ep.Name }

// Logger returns a logger with the connection's attributes.
func (c *Conn) Logger() *slog.Logger {
	return c.srv.log.With("conn", c.id, "endpoint", c.ep.Name, "user", c.UserID())
}

// handshake errors, as JSON bodies.
type httpError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(httpError{Error: code, Message: msg})
}

// originAllowed reports whether a browser request's Origin may connect.
// Cross-site WebSocket hijacking relies on the browser sending the victim's
// cookies or credentials from another site's page; checking Origin stops it.
// OriginAllowed reports whether r's Origin (if any) may use the server:
// one of allowed ("*": any), or, when allowed is empty, r's own host. The
// AG-UI endpoint's CORS uses the same rule as the WebSocket handshake.
func OriginAllowed(r *http.Request, allowed []string) bool { return originAllowed(r, allowed) }

func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(allowed) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// chooseSubprotocol picks the first subprotocol the client offered that the
// endpoint speaks, ignoring the token entry.
func chooseSubprotocol(r *http.Request, supported map[string]*gws.Upgrader) string {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.HasPrefix(p, auth.SubprotocolTokenPrefix) {
				continue
			}
			if _, ok := supported[p]; ok {
				return p
			}
		}
	}
	return ""
}

// handler adapts gws events to the connection lifecycle.
type handler struct {
	srv       *Server
	ep        *Endpoint
	known     map[string]string
	upgraders map[string]*gws.Upgrader
}

const connKey = "c"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := h.srv
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeHTTPError(w, http.StatusUpgradeRequired, "websocket_required", "this endpoint only accepts WebSocket connections")
		return
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		writeHTTPError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; connect to another node")
		return
	}
	if !originAllowed(r, s.opts.AllowedOrigins) {
		s.m.AuthFailures.WithLabelValues("origin_not_allowed").Inc()
		writeHTTPError(w, http.StatusForbidden, "origin_not_allowed", "origin "+r.Header.Get("Origin")+" is not allowed")
		return
	}
	var claims *auth.Claims
	if tok, _ := auth.TokenFromRequest(r); tok != "" {
		cl, err := s.verifier.Verify(tok)
		if err != nil {
			reason := auth.ReasonOf(err)
			s.m.AuthFailures.WithLabelValues(reason).Inc()
			writeHTTPError(w, http.StatusUnauthorized, reason, err.Error())
			return
		}
		claims = cl
	}
	c := &Conn{srv: s, ep: h.ep, id: s.nextID.Add(1), remote: r.RemoteAddr}
	if claims != nil && !c.authenticate(claims) {
		s.m.AuthFailures.WithLabelValues("too_many_connections").Inc()
		writeHTTPError(w, http.StatusTooManyRequests, "too_many_connections", "connection limit per user reached")
		return
	}
	if h.ep.Accept != nil {
		c.Params = h.ep.Accept(r)
	}
	c.Subprotocol = chooseSubprotocol(r, h.upgraders)
	ws, err := h.upgraders[c.Subprotocol].Upgrade(w, r)
	if err != nil {
		c.release()
		s.log.Debug("upgrade failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	c.ws = ws
	ws.Session().Store(connKey, c)
	s.m.Handshake.Observe(time.Since(start).Seconds())
	// The read loop runs on its own goroutine so that net/http can free the
	// request and its buffers: idle connections stay small.
	go ws.ReadLoop()
}

func (c *Conn) release() {
	c.mu.Lock()
	counted := c.counted
	c.counted = false
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	user := ""
	if c.claims != nil {
		user = c.claims.Subject
	}
	c.mu.Unlock()
	if counted {
		c.srv.counter.Release(user)
	}
}

func connOf(ws *gws.Conn) *Conn { return ws.Session().(*connSlot).c }

func (h *handler) OnOpen(ws *gws.Conn) {
	c := connOf(ws)
	s := h.srv
	c.lastSeen.Store(time.Now().UnixNano())
	c.lastPing = c.lastSeen.Load()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(protocol.CloseGoingAway, "server shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.m.ConnectionsOpen.WithLabelValues(h.ep.Name).Inc()
	s.m.Connections.WithLabelValues(h.ep.Name).Inc()
	if c.Claims() != nil {
		h.open(c)
		return
	}
	c.mu.Lock()
	c.authTimer = time.AfterFunc(s.opts.AuthTimeout, func() {
		if c.Claims() == nil {
			s.m.AuthFailures.WithLabelValues("auth_timeout").Inc()
			c.Close(protocol.CloseUnauthenticated, "auth_timeout")
		}
	})
	c.mu.Unlock()
}

func (h *handler) open(c *Conn) {
	if h.ep.Open != nil {
		c.session = h.ep.Open(c)
	}
}

func (h *handler) OnClose(ws *gws.Conn, err error) {
	c := connOf(ws)
	s := h.srv
	c.closing.Store(true)
	c.signal()
	c.release()
	if c.session != nil {
		c.session.Closed()
	}
	s.mu.Lock()
	_, registered := s.conns[c]
	delete(s.conns, c)
	if s.drained != nil && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
	s.mu.Unlock()
	if registered {
		s.m.ConnectionsOpen.WithLabelValues(h.ep.Name).Dec()
	}
}

func (h *handler) OnPing(ws *gws.Conn, payload []byte) {
	c := connOf(ws)
	c.lastSeen.Store(time.Now().UnixNano())
	c.enqueue(gws.OpcodePong, append([]byte(nil), payload...), "", true)
}

func (h *handler) OnPong(ws *gws.Conn, _ []byte) {
	connOf(ws).lastSeen.Store(time.Now().UnixNano())
}

func (h *handler) recovery(gws.Logger) {
	if e := recover(); e != nil {
		h.srv.log.Error("panic in message handler", "endpoint", h.ep.Name, "panic", e)
	}
}

func (h *handler) OnMessage(ws *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := connOf(ws)
	now := time.Now()
	c.lastSeen.Store(now.UnixNano())
	if c.closing.Load() {
		return
	}
	if msg.Opcode == gws.OpcodeBinary {
		if h.ep.Binary != nil && c.session != nil {
			h.ep.Binary(c, msg.Bytes())
			return
		}
		h.badFrame(c)
		return
	}
	env, err := protocol.Decode(msg.Bytes())
	if errors.Is(err, protocol.ErrNotJSON) {
		h.badFrame(c)
		return
	}
	c.badFrames = 0
	typ := h.known[env.Type]
	if typ == "" {
		typ = "other"
	}
	h.srv.m.In(h.ep.Name, typ)
	defer func() { h.srv.m.MessageLatency.WithLabelValues(h.ep.Name).Observe(time.Since(now).Seconds()) }()

	if !h.allow(c, now) {
		c.Send(protocol.TypeError, protocol.NewError(env.ID, protocol.CodeRateLimited, "too many messages; slow down"))
		if c.rateStrikes++; c.rateStrikes >= maxRateStrikes {
			c.Close(protocol.ClosePolicy, "rate_limited")
		}
		return
	}
	c.rateStrikes = 0

	authed := c.Claims() != nil
	var reqErr *protocol.RequestError
	if errors.As(err, &reqErr) {
		if !authed {
			c.Close(protocol.CloseUnauthenticated, "authentication required")
			return
		}
		c.Send(protocol.TypeError, protocol.NewError(env.ID, reqErr.Code, reqErr.Message))
		return
	}
	switch env.Type {
	case protocol.TypeAuth:
		h.handleAuth(c, env, authed)
	case protocol.TypeRefresh:
		if !authed {
			c.Close(protocol.CloseUnauthenticated, "authentication required")
			return
		}
		h.handleRefresh(c, env)
	case protocol.TypePing:
		if !authed {
			c.Close(protocol.CloseUnauthenticated, "authentication required")
			return
		}
		var p protocol.PingRequest
		if err := env.Into(&p); err != nil {
			h.reply(c, env, err)
			return
		}
		c.Send(protocol.TypePong, protocol.Pong{Type: protocol.TypePong, ID: env.ID, Timestamp: p.Timestamp, ServerTime: now.UTC().Format(time.RFC3339Nano)})
	case protocol.TypeDisconnect:
		c.Close(protocol.CloseNormal, "client disconnect")
	default:
		if !authed || c.session == nil {
			c.Close(protocol.CloseUnauthenticated, "authentication required")
			return
		}
		if c.expired(now) {
			c.expire()
			return
		}
		c.session.Handle(c, env)
	}
}

// reply answers a request error, or an unexpected error, with an error reply.
func (h *handler) reply(c *Conn, env protocol.Envelope, err error) {
	var reqErr *protocol.RequestError
	if errors.As(err, &reqErr) {
		c.Send(protocol.TypeError, protocol.NewError(env.ID, reqErr.Code, reqErr.Message))
		return
	}
	c.Send(protocol.TypeError, protocol.NewError(env.ID, protocol.CodeInternal, err.Error()))
}

func (c *Conn) expired(now time.Time) bool {
	cl := c.Claims()
	return cl != nil && !now.Before(cl.ExpiresAt.Add(c.srv.opts.Leeway))
}

func (h *handler) badFrame(c *Conn) {
	h.srv.m.BadFrames.WithLabelValues(h.ep.Name).Inc()
	c.badFrames++
	h.srv.log.Debug("frame is not JSON", "conn", c.id, "endpoint", h.ep.Name, "in_a_row", c.badFrames)
	if c.badFrames >= MaxBadFrames {
		c.Close(protocol.CloseBadRequest, "too many frames that are not JSON")
	}
}

// allow applies the token-bucket rate limit.
func (h *handler) allow(c *Conn, now time.Time) bool {
	rate := h.srv.opts.RateLimit
	if rate <= 0 {
		return true
	}
	burst := float64(h.srv.opts.RateBurst)
	if burst < 1 {
		burst = 1
	}
	if c.tokensAt.IsZero() {
		c.tokens = burst
	} else {
		c.tokens += now.Sub(c.tokensAt).Seconds() * rate
		if c.tokens > burst {
			c.tokens = burst
		}
	}
	c.tokensAt = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (h *handler) handleAuth(c *Conn, env protocol.Envelope, authed bool) {
	s := h.srv
	var req protocol.AuthRequest
	if err := env.Into(&req); err != nil {
		h.authFail(c, env, protocol.CodeBadRequest, err.Error())
		return
	}
	if req.Token == "" {
		h.authFail(c, env, auth.ReasonMissingToken, "field token is required")
		return
	}
	cl, err := s.verifier.Verify(req.Token)
	if err != nil {
		h.authFail(c, env, auth.ReasonOf(err), err.Error())
		return
	}
	if authed {
		cur := c.Claims()
		if cur.Subject != cl.Subject {
			h.authFail(c, env, protocol.CodeSubjectMismatch, "this connection is authenticated as another user")
			return
		}
		c.mu.Lock()
		if cl.ExpiresAt.After(c.claims.ExpiresAt) {
			c.claims = cl
			c.armExpiry(cl.ExpiresAt)
		}
		exp := c.claims.ExpiresAt
		c.mu.Unlock()
		c.Send(protocol.TypeAuthSuccess, protocol.AuthSuccess{Type: protocol.TypeAuthSuccess, ID: env.ID, UserID: cl.Subject, ExpiresAt: exp.UTC().Format(time.RFC3339)})
		return
	}
	if !c.authenticate(cl) {
		s.m.AuthFailures.WithLabelValues("too_many_connections").Inc()
		c.Send(protocol.TypeAuthError, protocol.AuthFailure{Type: protocol.TypeAuthError, ID: env.ID, Code: "too_many_connections", Message: "connection limit per user reached"})
		c.Close(protocol.ClosePolicy, "too_many_connections")
		return
	}
	c.Send(protocol.TypeAuthSuccess, protocol.AuthSuccess{Type: protocol.TypeAuthSuccess, ID: env.ID, UserID: cl.Subject, ExpiresAt: cl.ExpiresAt.UTC().Format(time.RFC3339)})
	h.open(c)
}

func (h *handler) authFail(c *Conn, env protocol.Envelope, code, msg string) {
	h.srv.m.AuthFailures.WithLabelValues(code).Inc()
	c.Send(protocol.TypeAuthError, protocol.AuthFailure{Type: protocol.TypeAuthError, ID: env.ID, Code: code, Message: msg})
	c.Close(protocol.CloseUnauthenticated, code)
}

func (h *handler) handleRefresh(c *Conn, env protocol.Envelope) {
	refuse := func(code, msg string) {
		h.srv.m.AuthFailures.WithLabelValues(code).Inc()
		c.Send(protocol.TypeRefreshError, protocol.AuthFailure{Type: protocol.TypeRefreshError, ID: env.ID, Code: code, Message: msg})
	}
	var req protocol.AuthRequest
	if err := env.Into(&req); err != nil {
		refuse(protocol.CodeBadRequest, err.Error())
		return
	}
	cl, err := h.srv.verifier.Verify(req.Token)
	if err != nil {
		refuse(auth.ReasonOf(err), err.Error())
		return
	}
	c.mu.Lock()
	cur := c.claims
	switch {
	case cl.Subject != cur.Subject:
		c.mu.Unlock()
		refuse(protocol.CodeSubjectMismatch, "the new token is for another user")
		return
	case cl.ExpiresAt.Before(cur.ExpiresAt):
		c.mu.Unlock()
		refuse(protocol.CodeOlderExpiry, "the new token expires before the current one")
		return
	}
	c.claims = cl
	c.armExpiry(cl.ExpiresAt)
	c.mu.Unlock()
	c.Send(protocol.TypeRefreshSuccess, protocol.AuthSuccess{Type: protocol.TypeRefreshSuccess, ID: env.ID, UserID: cl.Subject, ExpiresAt: cl.ExpiresAt.UTC().Format(time.RFC3339)})
}

// LocalCounter counts connections per user on this node.
type LocalCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// NewLocalCounter returns an empty LocalCounter.
func NewLocalCounter() *LocalCounter { return &LocalCounter{n: map[string]int{}} }

// Acquire implements UserCounter.
func (l *LocalCounter) Acquire(user string, limit int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit > 0 && l.n[user] >= limit {
		return false
	}
	l.n[user]++
	return true
}

// Release implements UserCounter.
func (l *LocalCounter) Release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[user]--; l.n[user] <= 0 {
		delete(l.n, user)
	}
}

// connSlot is the gws session storage of a connection: it holds only the
// *Conn, where gws's default is a map per connection.
type connSlot struct{ c *Conn }

func (s *connSlot) Len() int { return 1 }

func (s *connSlot) Load(string) (any, bool) { return s.c, s.c != nil }

func (s *connSlot) Delete(string) {}

func (s *connSlot) Store(_ string, v any) { s.c = v.(*Conn) }

func (s *connSlot) Range(f func(string, any) bool) { f(connKey, s.c) }
