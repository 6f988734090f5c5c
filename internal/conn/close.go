package conn

import (
	"strconv"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/protocol"
)

// Closing's rules:
//   - Close is idempotent: the first call wins, queues the close frame
//     after what is already queued (or drops the queue for slow consumers
//     and shutdown), and arms a timer that cuts the socket after
//     2×WriteTimeout whatever the peer does.
//   - finish releases what a connection holds exactly once, whether gws's
//     OnClose or a recovered panic gets there first.

// Close sends a close frame with code and reason after the messages already
// queued, then closes the connection. Later calls do nothing.
func (c *Conn) Close(code int, reason string) { c.closeWith(code, reason, false) }

// Fail sends an error message and closes the connection with code.
func (c *Conn) Fail(errCode string, closeCode int, message string) {
	c.ReplyCode(nil, errCode, message)
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
		defer c.recoverPanic("close")
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
		_ = c.ws.WriteClose(uint16(code), []byte(reason))
	})
	// A writer stuck on a dead peer must not keep the socket open forever.
	time.AfterFunc(2*c.srv.opts.WriteTimeout, func() { _ = c.ws.NetConn().Close() })
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

func (h *handler) OnClose(ws *gws.Conn, err error) { connOf(ws).finish() }

// finish releases everything the connection holds, exactly once, whether
// gws's OnClose or the read loop's panic recovery gets there: the user's
// count and timers, the session (a panic in Closed is logged and the rest
// still runs), the server's conns map and the open gauge.
func (c *Conn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	s := c.srv
	c.closing.Store(true)
	c.signal()
	c.release()
	if c.session != nil {
		func() {
			defer c.recoverPanic("session close")
			c.session.Closed()
		}()
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
		s.m.ConnectionsOpen.WithLabelValues(c.ep.Name).Dec()
	}
}
