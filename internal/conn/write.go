package conn

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/protocol"
)

// The write side's rules:
//   - Nothing ever blocks on a client: enqueue hands the frame to gws's
//     write queue and returns. A connection whose queue holds SendQueue
//     messages is closed as a slow consumer (4008); control frames (pings,
//     pongs) do not count against it.
//   - Producers that can hold their own backlog pace themselves with
//     WaitQueueBelow instead of filling the queue.
//   - Every write has a deadline of WriteTimeout.

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
		defer c.written() // also recovers a panic of the write
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

// written is deferred by every queued write: it uncounts the frame and
// wakes waiters, and turns a panic of the write into a close of this
// connection (recover works here because written is the deferred call).
func (c *Conn) written() {
	c.queued.Add(-1)
	c.signal()
	if v := recover(); v != nil {
		c.panicked("write", v)
	}
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
