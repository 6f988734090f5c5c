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
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/auth"
)

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

	finished atomic.Bool  // finish ran: the accounting is released
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

const connKey = "c"

func connOf(ws *gws.Conn) *Conn { return ws.Session().(*connSlot).c }

// connSlot is the gws session storage of a connection: it holds only the
// *Conn, where gws's default is a map per connection.
type connSlot struct{ c *Conn }

func (s *connSlot) Len() int { return 1 }

func (s *connSlot) Load(string) (any, bool) { return s.c, s.c != nil }

func (s *connSlot) Delete(string) {}

func (s *connSlot) Store(_ string, v any) { s.c = v.(*Conn) }

func (s *connSlot) Range(f func(string, any) bool) { f(connKey, s.c) }
