package conn

import (
	"runtime/debug"

	"github.com/tether-dev/tether/internal/protocol"
)

// A panic in any goroutine of a connection closes that connection alone
// (1011, reason internal_error), is logged at error level with its stack,
// and counted in tether_connection_panics_total. Goroutines a connection
// starts for itself go through Conn.Go.

// Go runs f on a goroutine of its own for the connection: a panic in f is
// logged and closes this connection (1011) instead of the process.
// Endpoints start their per-connection goroutines with it.
func (c *Conn) Go(f func()) {
	go func() {
		defer c.recoverPanic("goroutine")
		f()
	}()
}

// recoverPanic, deferred, turns a panic into a close of the connection.
func (c *Conn) recoverPanic(where string) {
	if v := recover(); v != nil {
		c.panicked(where, v)
	}
}

// panicked logs a recovered panic with its stack, counts it, and closes
// the connection with 1011 (the close frame goes out if the writer still
// can; the socket is cut after 2×WriteTimeout regardless).
func (c *Conn) panicked(where string, v any) {
	c.srv.m.ConnectionPanics.WithLabelValues(c.ep.Name).Inc()
	c.srv.log.Error("panic in connection", "endpoint", c.ep.Name, "conn", c.id, "in", where, "panic", v, "stack", string(debug.Stack()))
	c.closeWith(protocol.CloseInternal, protocol.CodeInternal, true)
}
