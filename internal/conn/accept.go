package conn

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
)

// The handshake's rules, in order: a WebSocket upgrade or 426; not while
// shutting down (503); a browser Origin that the policy allows or 403; a
// token, if one came with the request, valid or 401 (the body carries only
// auth.Public's sentence); the user's connection limit or 429. Only then
// is the socket hijacked, behind the frame guard. Errors before the upgrade
// are JSON bodies {"error","message"}; after it, WebSocket messages.

// SubprotocolV1 is the subprotocol a browser offers next to its token
// ("tether.v1, tether.token.<jwt>"); the server answers with it so that the
// token is never echoed back.
const SubprotocolV1 = "tether.v1"

// httpReply answers a refused handshake with status and a JSON error body.
func httpReply(w http.ResponseWriter, status int) func(code, message string) {
	return func(code, message string) { httpapi.WriteError(w, status, code, message) }
}

// tooManyConnections is the sentence of a refusal by the per-user limit,
// at the handshake (429) and in auth_error.
const tooManyConnections = "connection limit per user reached"

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

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := h.srv
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		httpapi.WriteError(w, http.StatusUpgradeRequired, "websocket_required", "this endpoint only accepts WebSocket connections")
		return
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; connect to another node")
		return
	}
	if !s.origins.allows(r) {
		s.refuse(httpReply(w, http.StatusForbidden), "origin_not_allowed", "origin "+strconv.Quote(r.Header.Get("Origin"))+" is not allowed: set --public-url or --allowed-origins")
		return
	}
	var claims *auth.Claims
	if tok, _ := auth.TokenFromRequest(r); tok != "" {
		log := s.log.With("endpoint", h.ep.Name, "remote", r.RemoteAddr)
		if claims = s.checkToken(tok, log, httpReply(w, http.StatusUnauthorized)); claims == nil {
			return
		}
	}
	c := &Conn{srv: s, ep: h.ep, id: s.nextID.Add(1), remote: r.RemoteAddr}
	guard := &frameGuard{max: uint64(s.opts.MaxMessageSize), writeTimeout: s.opts.WriteTimeout, onRefuse: func(declared uint64) {
		s.m.Closes.WithLabelValues(h.ep.Name, strconv.Itoa(protocol.CloseTooBig)).Inc()
		s.log.Debug("frame too large", "conn", c.id, "endpoint", h.ep.Name, "declared", declared, "max", s.opts.MaxMessageSize)
	}}
	if claims != nil && !c.authenticate(claims) {
		s.refuse(httpReply(w, http.StatusTooManyRequests), protocol.CodeTooManyConnections, tooManyConnections)
		return
	}
	if h.ep.Accept != nil {
		c.Params = h.ep.Accept(r)
	}
	c.Subprotocol = chooseSubprotocol(r, h.upgraders)
	ws, err := h.upgraders[c.Subprotocol].Upgrade(&guardWriter{ResponseWriter: w, guard: guard}, r)
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
	go c.serve()
}

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
		defer c.recoverPanic("auth timeout")
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
