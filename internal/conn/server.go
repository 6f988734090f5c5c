package conn

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/metrics"
	"github.com/tether-dev/tether/internal/protocol"
)

// The server's rules:
//   - One Server serves every endpoint of a node; its conns map holds each
//     open connection from OnOpen to finish, and is the one place Shutdown
//     and the heartbeat find them.
//   - s.mu guards conns, closing and drained only; no I/O happens under it
//     (Shutdown and the heartbeat copy the set, then write).
//   - Shutdown refuses new handshakes (503), closes every connection with
//     1001, and cuts the sockets left when its context ends.

// DefaultMaxMessageSize is the largest frame accepted when
// Options.MaxMessageSize is not set (gws's own default).
const DefaultMaxMessageSize = 16 << 20

// Options configures the connection layer.
type Options struct {
	// AllowedOrigins lists the browser origins allowed to connect
	// ("https://app.example.com", or "*"); when empty, PublicURL's origin
	// and, on a loopback Host, loopback origins are (see origin.go).
	// Requests without an Origin header (programs) are allowed.
	AllowedOrigins []string
	// PublicURL is the URL browsers reach this server at ("" if unknown).
	PublicURL       string
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
	origins  originPolicy
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
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	s := &Server{
		opts: opts, verifier: v, log: opts.Logger, m: opts.Metrics, counter: opts.Counter,
		origins: newOriginPolicy(opts.AllowedOrigins, opts.PublicURL),
		conns:   map[*Conn]struct{}{}, stop: make(chan struct{}), done: make(chan struct{}),
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
			// No Recovery: a panic in a handler unwinds to the read loop's
			// goroutine, where serve turns it into a close of that
			// connection alone.
			NewSession: func() gws.SessionStorage { return &connSlot{} },
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
