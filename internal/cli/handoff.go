package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/httpapi"
)

// handoff lets two HTTP servers take turns on one listening socket: one
// that answers while the node starts (starting), then the node's own. The
// port is open from the first moment, so /readyz can say that the node is
// starting (waiting for NATS or JetStream) instead of refusing
// connections, and nothing is refused at the switch: connections accepted
// meanwhile wait in a channel for the next server.
type handoff struct {
	ln     net.Listener
	conns  chan net.Conn
	errc   chan error
	closed chan struct{}
	once   sync.Once
	done   chan struct{} // the accept loop has returned
}

func newHandoff(ln net.Listener) *handoff {
	h := &handoff{ln: ln, conns: make(chan net.Conn), errc: make(chan error, 1),
		closed: make(chan struct{}), done: make(chan struct{})}
	go h.accept()
	return h
}

// accept hands every accepted connection to whichever turn is serving.
func (h *handoff) accept() {
	defer close(h.done)
	for {
		c, err := h.ln.Accept()
		if err != nil {
			h.errc <- err
			return
		}
		select {
		case h.conns <- c:
		case <-h.closed:
			_ = c.Close()
			return
		}
	}
}

// turn returns a listener for one server; closing it ends that server's
// turn without closing the socket.
func (h *handoff) turn() *turn {
	return &turn{h: h, done: make(chan struct{})}
}

// last returns the listener of the last server: closing it closes the
// socket, so that a node shutting down stops accepting at once.
func (h *handoff) last() *turn {
	t := h.turn()
	t.last = true
	return t
}

// close closes the socket and waits for the accept loop to end.
func (h *handoff) close() {
	h.once.Do(func() {
		close(h.closed)
		_ = h.ln.Close()
	})
	<-h.done
}

// errTurnOver ends a server's Serve when its turn is closed.
var errTurnOver = errors.New("listener turn over")

type turn struct {
	h    *handoff
	done chan struct{}
	once sync.Once
	last bool
}

func (t *turn) Accept() (net.Conn, error) {
	select {
	case c := <-t.h.conns:
		return c, nil
	case err := <-t.h.errc:
		t.h.errc <- err // for the next turn too
		return nil, err
	case <-t.done:
		return nil, errTurnOver
	}
}

func (t *turn) Close() error {
	t.once.Do(func() { close(t.done) })
	if t.last {
		t.h.close()
	}
	return nil
}

func (t *turn) Addr() net.Addr { return t.h.ln.Addr() }

// serveStarting answers on l until stop is called: /readyz and /healthz
// say the node is starting, everything else 503 starting.
func serveStarting(l net.Listener, node string) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", httpapi.Health)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusServiceUnavailable, httpapi.Readiness{
			Status: "starting", Node: node, NATS: "connecting", JetStream: "waiting",
			Reason: "the node is connecting to NATS and waiting for JetStream (see its log)",
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "starting", "the node is starting; try again in a moment")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // closes l: the turn, not the socket
		<-done
	}
}
