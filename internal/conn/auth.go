package conn

import (
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/protocol"
)

// Authentication's rules:
//   - A connection is authenticated at the handshake or by its first
//     message within AuthTimeout, else closed with 4001 (auth_timeout).
//   - Authentication counts the connection against the user's limit.
//   - Expiry is enforced on the live connection at exp plus Leeway: the
//     server sends expired and closes with 4001. refresh (or auth with the
//     same subject) moves exp later, never earlier.

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
	defer c.recoverPanic("expiry")
	c.mu.Lock()
	live := c.claims != nil && time.Now().Before(c.claims.ExpiresAt.Add(c.srv.opts.Leeway))
	c.mu.Unlock()
	if live {
		return // refreshed in the meantime
	}
	c.Send(protocol.TypeExpired, protocol.Expired{Type: protocol.TypeExpired, Message: "token expired"})
	c.Close(protocol.CloseUnauthenticated, "token_expired")
}

func (c *Conn) expired(now time.Time) bool {
	cl := c.Claims()
	return cl != nil && !now.Before(cl.ExpiresAt.Add(c.srv.opts.Leeway))
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
