package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// bareServer is the baseline: a WebSocket server built with the library
// Tether's server uses (gws), in this process, without authentication or
// protocol. In echo mode it writes every message back; in broadcast mode
// it writes every message to every other connection.
type bareServer struct {
	gws.BuiltinEventHandler
	broadcast bool
	url       string
	srv       *http.Server
	served    chan error

	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

func startBare(broadcast bool) (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare server: listen: %w", err)
	}
	b := &bareServer{broadcast: broadcast, conns: map[*gws.Conn]struct{}{}, served: make(chan error, 1)}
	// The options Tether's connection layer sets that cost something per
	// message (UTF-8 checks) are set here too.
	up := gws.NewUpgrader(b, &gws.ServerOption{ReadMaxPayloadSize: 1 << 20, CheckUtf8Enabled: true})
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		go c.ReadLoop()
	})}
	b.url = "ws://" + ln.Addr().String() + "/"
	go func() { b.served <- b.srv.Serve(ln) }()
	return b, nil
}

// count returns the number of open connections.
func (b *bareServer) count() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.conns)
}

// OnClose forgets a connection.
func (b *bareServer) OnClose(c *gws.Conn, _ error) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// OnMessage echoes or broadcasts a message.
func (b *bareServer) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if !b.broadcast {
		_ = c.WriteMessage(m.Opcode, m.Bytes())
		return
	}
	// Copy: m's buffer goes back to a pool when this returns, and the
	// writes are asynchronous as in Tether, whose fan-out never blocks on
	// one connection.
	data := append([]byte(nil), m.Bytes()...)
	b.mu.RLock()
	for o := range b.conns {
		if o != c {
			o.WriteAsync(m.Opcode, data, nil)
		}
	}
	b.mu.RUnlock()
}

// close closes every connection and stops the server, within a bound.
func (b *bareServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	b.mu.RLock()
	for c := range b.conns {
		_ = c.NetConn().Close()
	}
	b.mu.RUnlock()
	if serr := <-b.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	// The read loops end as their sockets close.
	for b.count() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	return nil
}
