package conn

import (
	"errors"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/protocol"
)

// The read side's rules:
//   - gws's read loop is the only caller of OnMessage, so the fields marked
//     "read loop only" on Conn need no lock.
//   - Before authentication only auth (and disconnect) are accepted; any
//     other message closes with 4001.
//   - A frame that is not JSON gets no reply; MaxBadFrames in a row close
//     with 4000. JSON with a bad shape gets an error reply with the id.
//   - Every message is rate limited, then handled here (auth, refresh,
//     ping, disconnect) or passed to the endpoint's session.

// MaxBadFrames is how many frames in a row that are not JSON a connection
// may send before it is closed with 4000.
const MaxBadFrames = 10

// serve runs the connection's read loop. A panic anywhere in it (gws's
// reader, OnOpen, OnMessage, an endpoint's Handle or Closed) closes this
// connection alone; gws's OnClose is then skipped, so finish releases the
// accounting here.
func (c *Conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			// The close frame is queued; writing it closes the socket.
			c.panicked("read loop", v)
			c.finish()
		}
	}()
	c.ws.ReadLoop()
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
		c.ReplyCode(env.ID, protocol.CodeRateLimited, "too many messages; slow down")
		if c.rateStrikes++; c.rateStrikes >= maxRateStrikes {
			c.Close(protocol.ClosePolicy, "rate_limited")
		}
		return
	}
	c.rateStrikes = 0

	authed := c.Claims() != nil
	if err != nil {
		if !authed {
			c.Close(protocol.CloseUnauthenticated, "authentication required")
			return
		}
		c.ReplyError(env.ID, err)
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
			c.ReplyError(env.ID, err)
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

func (h *handler) badFrame(c *Conn) {
	h.srv.m.BadFrames.WithLabelValues(h.ep.Name).Inc()
	c.badFrames++
	h.srv.log.Debug("frame is not JSON", "conn", c.id, "endpoint", h.ep.Name, "in_a_row", c.badFrames)
	if c.badFrames >= MaxBadFrames {
		c.Close(protocol.CloseBadRequest, "too many frames that are not JSON")
	}
}
