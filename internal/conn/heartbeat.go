package conn

import (
	"time"

	"github.com/lxzan/gws"

	"github.com/tether-dev/tether/internal/protocol"
)

// The heartbeat's rules: one goroutine pings every connection each
// PingInterval; a connection from which nothing arrived (no frame, no pong)
// for IdleTimeout is closed with 4008 (idle_timeout). A client's ping is
// answered with a pong through the send queue, after what is queued.

// heartbeat pings every connection each PingInterval and closes those from
// which nothing arrived for IdleTimeout. One goroutine serves every
// connection, which keeps idle connections cheap.
func (s *Server) heartbeat() {
	defer close(s.done)
	tick := s.opts.PingInterval
	if q := s.opts.IdleTimeout / 4; q < tick {
		tick = q
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch []*Conn
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			batch = batch[:0]
			s.mu.Lock()
			for c := range s.conns {
				batch = append(batch, c)
			}
			s.mu.Unlock()
			n := now.UnixNano()
			for _, c := range batch {
				if n-c.lastSeen.Load() >= int64(s.opts.IdleTimeout) {
					c.Close(protocol.ClosePolicy, "idle_timeout")
					continue
				}
				if n-c.lastPing >= int64(s.opts.PingInterval) {
					c.lastPing = n
					c.enqueue(gws.OpcodePing, nil, "", true)
				}
			}
		}
	}
}

func (h *handler) OnPing(ws *gws.Conn, payload []byte) {
	c := connOf(ws)
	c.lastSeen.Store(time.Now().UnixNano())
	c.enqueue(gws.OpcodePong, append([]byte(nil), payload...), "", true)
}

func (h *handler) OnPong(ws *gws.Conn, _ []byte) {
	connOf(ws).lastSeen.Store(time.Now().UnixNano())
}
