package conn

import (
	"errors"
	"log/slog"
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

// refuse counts a refused authentication by its code (a metric label and
// the code on the wire) and answers it with reply. Every refusal of the
// handshake, auth and refresh goes through it.
func (s *Server) refuse(reply func(code, message string), code, message string) {
	s.m.AuthFailures.WithLabelValues(code).Inc()
	reply(code, message)
}

// checkToken verifies tok. A refused token is counted and answered with
// reply(reason, sentence) from auth.Public only: the verifier's detail may
// quote the token or describe the keys, so it goes to the log at debug
// level and never to the client.
func (s *Server) checkToken(tok string, log *slog.Logger, reply func(code, message string)) *auth.Claims {
	cl, err := s.verifier.Verify(tok)
	if err != nil {
		log.Debug("token refused", "err", err)
		code, message := auth.Public(err)
		s.refuse(reply, code, message)
		return nil
	}
	return cl
}

// requestMessage is what a client is told of a request that could not be
// decoded: the RequestError's own message (never its code prefix).
func requestMessage(err error) string {
	if re, ok := errors.AsType[*protocol.RequestError](err); ok {
		return re.Message
	}
	return "the request could not be read"
}

func (h *handler) handleAuth(c *Conn, env protocol.Envelope, authed bool) {
	s := h.srv
	reply := func(code, message string) {
		c.Send(protocol.TypeAuthError, protocol.AuthFailure{Type: protocol.TypeAuthError, ID: env.ID, Code: code, Message: message})
		if code == protocol.CodeTooManyConnections {
			c.Close(protocol.ClosePolicy, code)
			return
		}
		c.Close(protocol.CloseUnauthenticated, code)
	}
	var req protocol.AuthRequest
	if err := env.Into(&req); err != nil {
		s.refuse(reply, protocol.CodeBadRequest, requestMessage(err))
		return
	}
	if req.Token == "" {
		s.refuse(reply, auth.ReasonMissingToken, "field token is required")
		return
	}
	cl := s.checkToken(req.Token, c.Logger(), reply)
	if cl == nil {
		return
	}
	if authed {
		cur := c.Claims()
		if cur.Subject != cl.Subject {
			s.refuse(reply, protocol.CodeSubjectMismatch, "this connection is authenticated as another user")
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
		s.refuse(reply, protocol.CodeTooManyConnections, tooManyConnections)
		return
	}
	c.Send(protocol.TypeAuthSuccess, protocol.AuthSuccess{Type: protocol.TypeAuthSuccess, ID: env.ID, UserID: cl.Subject, ExpiresAt: cl.ExpiresAt.UTC().Format(time.RFC3339)})
	h.open(c)
}

// handleRefresh replaces the connection's token; a refusal leaves the
// connection as it was.
func (h *handler) handleRefresh(c *Conn, env protocol.Envelope) {
	s := h.srv
	reply := func(code, message string) {
		c.Send(protocol.TypeRefreshError, protocol.AuthFailure{Type: protocol.TypeRefreshError, ID: env.ID, Code: code, Message: message})
	}
	refuse := func(code, message string) { s.refuse(reply, code, message) }
	var req protocol.AuthRequest
	if err := env.Into(&req); err != nil {
		refuse(protocol.CodeBadRequest, requestMessage(err))
		return
	}
	cl := s.checkToken(req.Token, c.Logger(), reply)
	if cl == nil {
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
