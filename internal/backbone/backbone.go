// Package backbone connects a Tether node to NATS, the backbone every
// feature above the connection is built on: core pub/sub for fan-out,
// JetStream streams for event history, and JetStream key-value buckets for
// state. By default it starts an embedded NATS server with JetStream storing
// under the data directory; with a URL it joins an external server or
// cluster instead, and nothing above this package can tell the difference.
package backbone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says how to reach NATS.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated); empty
	// starts an embedded server.
	URL string
	// DataDir is where the embedded server keeps JetStream's files.
	DataDir string
	// Listen is the host:port on which the embedded server accepts backend
	// clients; empty means in-process only. Port 0 picks a free port.
	Listen string
	// User and Password, or Token, are the credentials clients of the
	// Listen port must present (the node presents them too, in-process);
	// with a URL, the node presents them to the external server. With
	// Listen, one of them is required.
	User, Password, Token string
	// Name identifies this node to NATS.
	Name string
	// Replicas is the replication factor of the streams and buckets that
	// Tether creates.
	Replicas int
	// StorageReserve is the free space the embedded server's file system
	// must keep: below it writes fail with ErrStorageFull (0: no check).
	StorageReserve int64
	// MaxStore is the embedded JetStream's store limit; 0 means the size
	// of DataDir's file system. (JetStream's own default, a share of the
	// space free at start, refused to start a node on a nearly full disk:
	// the streams' size caps did not fit.)
	MaxStore int64
	// OnStorageFull is called when the storage becomes full or stops
	// being full (may be nil).
	OnStorageFull func(full bool)
	Logger        *slog.Logger
}

// Backbone is a live connection to NATS, and the embedded server if any.
type Backbone struct {
	// NC is the core NATS connection.
	NC *nats.Conn
	// JS is the JetStream API on NC.
	JS       jetstream.JetStream
	Replicas int

	srv *server.Server
	log *slog.Logger
	url string
	// user, pass, token: the credentials of the embedded server's clients.
	user, pass, token string

	// js is what the node waits for on JetStream ("" once it answers).
	js atomic.Pointer[string]

	storage   storage
	stopWatch chan struct{}
	watchDone chan struct{}
}

// Start connects to NATS, starting the embedded server first when no URL is
// configured.
func Start(ctx context.Context, cfg Config) (*Backbone, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	b := &Backbone{log: cfg.Logger, Replicas: cfg.Replicas, url: cfg.URL}
	b.storage.onChange = cfg.OnStorageFull
	b.setJetStream("connecting")
	opts := []nats.Option{
		nats.Name("tether " + cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// Fan-out subscriptions must not be cut off as slow consumers by the
		// client library: Tether bounds its own queues per connection.
		nats.SyncQueueLen(1 << 16),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				cfg.Logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { cfg.Logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	url := cfg.URL
	if url == "" {
		if cfg.Listen != "" && cfg.User == "" && cfg.Token == "" {
			// Anyone reaching the port could read the stored messages and
			// events through JetStream's API.
			return nil, errors.New("nats-listen requires credentials: a token or a user and password")
		}
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		b.user, b.pass, b.token = cfg.User, cfg.Password, cfg.Token
		opts = append(opts, nats.InProcessServer(srv))
		if cfg.StorageReserve > 0 {
			// Known before the node serves anything: a node started on a
			// full disk starts, and says so.
			b.checkDisk(cfg.DataDir, cfg.StorageReserve)
			b.stopWatch, b.watchDone = make(chan struct{}), make(chan struct{})
			go b.watchDisk(cfg.DataDir, cfg.StorageReserve, b.stopWatch, b.watchDone)
		}
	} else {
		// A node started together with its NATS cluster keeps trying, as
		// long as the wait for JetStream below (as long as ctx lasts).
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to nats %s: %w", redact(url), err)
	}
	b.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	if err := b.waitJetStream(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream unavailable on %s (is it enabled?): %w", redact(url), err)
	}
	return b, nil
}

// waitJetStream waits until JetStream answers, so that a node started
// together with its NATS cluster waits for the cluster to form (a meta
// leader) instead of failing, and says so in the log and in its status. It
// waits as long as ctx lasts: an operator stops a node that waits with a
// signal. It creates nothing: an earlier version created and deleted a
// probe stream, and the server removes an account's empty directories after
// a delete in a goroutine of its own, which raced with the creation of the
// first file-backed stream (`could not create storage directory ... no such
// file or directory`, err_code 10049) on a busy machine.
func (b *Backbone) waitJetStream(ctx context.Context) error {
	var last time.Time
	for attempt := 0; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.JS.AccountInfo(actx)
		acancel()
		if err == nil {
			if attempt > 0 {
				b.log.Info("jetstream available")
			}
			b.setJetStream("")
			return nil
		}
		b.setJetStream("waiting for jetstream: " + err.Error())
		if time.Since(last) >= logEvery {
			b.log.Warn("waiting for jetstream", "url", redact(b.url), "err", err)
			last = time.Now()
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("%w (last error: %v)", err, b.jetStreamState())
		}
	}
}

func startEmbedded(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "tether-" + sanitizeName(cfg.Name),
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.Listen == "",
		// JetStream's own defaults take a share of the machine's memory and
		// disk; bound them so an embedded node stays a good neighbour.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  cfg.MaxStore,
	}
	if opts.JetStreamMaxStore <= 0 {
		// The file system's size rather than JetStream's default (75% of
		// the space free at start): with that, a node restarted on a
		// nearly full disk could not recover its streams ("insufficient
		// storage resources available"); the storage reserve guards the
		// disk instead.
		if _, total, err := diskSpace(cfg.DataDir); err == nil && total > 0 {
			opts.JetStreamMaxStore = int64(total)
		}
	}
	if cfg.Listen != "" {
		// Every client, the node's own in-process connection included,
		// presents these.
		opts.Authorization = cfg.Token
		opts.Username, opts.Password = cfg.User, cfg.Password
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats-listen %q: %w", cfg.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats-listen %q: bad port", cfg.Listen)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLogger(serverLog{cfg.Logger}, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded nats did not become ready within 15s")
	}
	return srv, nil
}

// Ready reports whether the connection to NATS is up and JetStream answered.
func (b *Backbone) Ready() bool {
	return b.Connected() && b.jetStreamState() == ""
}

// Connected reports whether the connection to NATS is up.
func (b *Backbone) Connected() bool { return b.NC != nil && b.NC.IsConnected() }

// JetStreamState says what the node waits for on JetStream, or "" once
// JetStream answered.
func (b *Backbone) JetStreamState() string { return b.jetStreamState() }

func (b *Backbone) jetStreamState() string {
	if p := b.js.Load(); p != nil {
		return *p
	}
	return ""
}

func (b *Backbone) setJetStream(s string) { b.js.Store(&s) }

// ClientURL is the URL backends can use to reach the embedded server, or the
// configured external URL (redacted); empty when the embedded server is
// in-process only. It carries no credentials: see ClientURLWithCredentials.
func (b *Backbone) ClientURL() string {
	if b.srv == nil {
		return b.NC.ConnectedUrlRedacted()
	}
	if b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// ClientURLWithCredentials is ClientURL with the credentials backends must
// present to the embedded server in it (nats://token@host:port or
// nats://user:password@host:port). It is a secret: never log it.
func (b *Backbone) ClientURLWithCredentials() string {
	u := b.ClientURL()
	if b.srv == nil || u == "" {
		return u
	}
	parsed, err := neturl.Parse(u)
	if err != nil {
		return u
	}
	switch {
	case b.token != "":
		parsed.User = neturl.User(b.token)
	case b.user != "":
		parsed.User = neturl.UserPassword(b.user, b.pass)
	}
	return parsed.String()
}

// Embedded reports whether this node runs its own NATS server.
func (b *Backbone) Embedded() bool { return b.srv != nil }

// Close drains the connection and then stops the embedded server, so that
// pending publishes reach JetStream before it stops.
func (b *Backbone) Close() {
	if b.NC != nil {
		done := make(chan struct{})
		b.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := b.NC.Drain(); err != nil {
			b.NC.Close()
		} else {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				b.NC.Close()
			}
		}
	}
	b.shutdownServer()
}

func (b *Backbone) shutdownServer() {
	if b.stopWatch != nil {
		close(b.stopWatch)
		<-b.watchDone
		b.stopWatch = nil
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

// SubjectToken turns an arbitrary string (a user id, a channel name) into a
// single NATS subject token. NATS reserves '.', '*', '>' and white space, so
// those bytes, '%' itself and anything outside printable ASCII are written
// as %XX; a string that needs no escaping is returned unchanged.
func SubjectToken(s string) string {
	clean := s != ""
	for i := 0; i < len(s) && clean; i++ {
		clean = !needsEscape(s[i])
	}
	if clean {
		return s
	}
	if s == "" {
		return "%"
	}
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%'
}

func sanitizeName(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r < 0x80 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

// redact hides credentials in a NATS URL list before it is logged.
func redact(url string) string {
	parts := strings.Split(url, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "REDACTED" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
