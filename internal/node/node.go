// Package node assembles a Tether node from its configuration: the token
// verifier, the NATS backbone, the connection layer, the endpoints and the
// HTTP routes, and shuts them down in the reverse order.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/internal/agents"
	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/channels"
	"github.com/tether-dev/tether/internal/cluster"
	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/messaging"
	"github.com/tether-dev/tether/internal/metrics"
	"github.com/tether-dev/tether/internal/milestones"
	"github.com/tether-dev/tether/internal/operations"
	"github.com/tether-dev/tether/internal/webui"
)

// DevSecretFile is the file under the data directory where --dev keeps the
// secret it generated, so that `tether token` can use it too.
const DevSecretFile = "dev-secret"

// NATSTokenFile is the file under the data directory where a node with
// --nats-listen and no NATS credentials configured keeps the token it
// generated for the backends that connect to its embedded server.
const NATSTokenFile = "nats-token"

// Node is one running Tether node.
type Node struct {
	Config   *config.Config
	Log      *slog.Logger
	Metrics  *metrics.Metrics
	Verifier *auth.Verifier
	Backbone *backbone.Backbone
	Hub      *channels.Hub
	Conns    *conn.Server
	// Milestones owns the milestones and the terminals running on this node.
	Milestones *milestones.Service
	// Cluster knows the other nodes on the same NATS.
	Cluster *cluster.Registry
	// counter counts each user's connections cluster-wide (nil on one
	// node, or without a per-user limit).
	counter *cluster.UserCounter
	// Ops runs agent operations and serves /ws/agent-guidance,
	// /ws/agent-worker and /api/operations.
	Ops *operations.Service
	// Secret is the HMAC secret tokens are signed with, when one is
	// configured or generated (nil with public keys).
	Secret []byte
	// GeneratedSecret is true when --dev generated Secret.
	GeneratedSecret bool

	mux      *http.ServeMux
	handler  http.Handler
	httpSrv  *http.Server
	cancel   context.CancelFunc
	draining atomic.Bool // Drain has begun: /readyz says so
}

// New starts everything a node needs except its listener.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (n *Node, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bg, cancel := context.WithCancel(context.Background())
	n = &Node{Config: cfg, Log: log, Metrics: metrics.New(cfg.NodeName), mux: http.NewServeMux(), cancel: cancel}
	// The returns below set n to nil: release what was started through a
	// copy of the pointer.
	started := n
	defer func() {
		if err != nil {
			started.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	acfg := auth.Config{
		PublicKeyFile: cfg.JWTPublicKey, JWKSURL: cfg.JWKSURL,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway,
	}
	switch {
	case cfg.JWTSecret != "":
		n.Secret = []byte(cfg.JWTSecret)
	case cfg.JWTPublicKey == "" && cfg.JWKSURL == "" && cfg.Dev:
		n.Secret, n.GeneratedSecret, err = DevSecret(cfg.DataDir)
		if err != nil {
			return nil, err
		}
	}
	acfg.Secret = n.Secret
	if n.Verifier, err = auth.NewVerifier(bg, acfg); err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	natsToken := cfg.NATSToken
	if cfg.NATSURL == "" && cfg.NATSListen != "" && natsToken == "" && cfg.NATSUser == "" {
		// The listener never goes without credentials: anyone reaching it
		// could read the stored messages through JetStream's API.
		tok, created, err := storedSecret(cfg.DataDir, NATSTokenFile, "nats token")
		if err != nil {
			return nil, err
		}
		natsToken = string(tok)
		log.Info("backends connecting to the embedded NATS server need the token in "+filepath.Join(cfg.DataDir, NATSTokenFile),
			"generated", created)
	}
	if n.Backbone, err = backbone.Start(ctx, backbone.Config{
		URL: cfg.NATSURL, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Name: cfg.NodeName,
		User: cfg.NATSUser, Password: cfg.NATSPassword, Token: natsToken,
		StorageReserve: cfg.StorageReserve, MaxStore: cfg.JetStreamMaxStore,
		OnStorageFull: n.storageFull, Replicas: cfg.Replicas, Logger: log.With("component", "nats"),
	}); err != nil {
		return nil, err
	}
	if n.Hub, err = channels.NewHub(ctx, n.Backbone, channels.HubConfig{
		MaxAge: cfg.HistoryMaxAge, MaxBytes: cfg.HistoryMaxBytes, Logger: log.With("component", "channels"),
	}); err != nil {
		return nil, err
	}
	mstore, err := milestones.OpenStore(ctx, n.Backbone)
	if err != nil {
		return nil, err
	}
	if n.Milestones, err = milestones.NewService(ctx, mstore, milestones.Config{
		Node: cfg.NodeName, DataDir: cfg.DataDir, DefaultCommand: cfg.TerminalCommand,
		RingSize: int(cfg.TerminalRingSize), RecordingMaxBytes: cfg.TerminalRecordingMaxBytes,
		Scrollback:    scrollback(cfg.TerminalScrollback),
		DetachTimeout: cfg.TerminalDetachTimeout, NC: n.Backbone.NC, Logger: log.With("component", "milestones"),
	}); err != nil {
		return nil, err
	}
	if n.Ops, err = newOperations(ctx, cfg, n.Backbone, log); err != nil {
		return nil, err
	}
	n.Metrics.Registry.MustRegister(n.Ops.Collectors()...)
	n.Metrics.Registry.MustRegister(n.Milestones.Collector())
	if n.Cluster, err = cluster.Join(ctx, n.Backbone, cluster.Node{Name: cfg.NodeName, Addr: cfg.Addr}, cluster.Options{Interval: cfg.ClusterHeartbeat, DeadAfter: cfg.ClusterDeadAfter}, log.With("component", "cluster")); err != nil {
		return nil, err
	}
	n.Cluster.OnDown(n.Milestones.NodeDown)
	n.Cluster.OnDown(n.Ops.NodeDown)
	// One node counts its own connections; nodes sharing an external NATS
	// count them together so that the per-user limit holds cluster-wide.
	var counter conn.UserCounter
	if cfg.NATSURL != "" && cfg.MaxConnsPerUser > 0 {
		uc, err := cluster.NewUserCounter(ctx, n.Backbone, cfg.NodeName, log.With("component", "cluster"))
		if err != nil {
			return nil, err
		}
		n.Cluster.OnDown(uc.Forget)
		counter, n.counter = uc, uc
	}
	n.Conns = conn.NewServer(n.Verifier, conn.Options{
		Counter: counter, AllowedOrigins: cfg.AllowedOrigins, PublicURL: cfg.PublicURL, AuthTimeout: cfg.AuthTimeout, PingInterval: cfg.PingInterval,
		IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout, MaxMessageSize: int(cfg.MaxMessageSize),
		SendQueue: cfg.SendQueue, MaxConnsPerUser: cfg.MaxConnsPerUser, RateLimit: cfg.RateLimit,
		RateBurst: cfg.RateBurst, Logger: log.With("component", "conn"), Metrics: n.Metrics, Leeway: cfg.JWTLeeway,
	})
	n.routes()
	// Built here rather than in Serve, which runs in a goroutine of its
	// own, so that Shutdown never races with its construction.
	n.httpSrv = httpapi.NewServer(n.handler, n.timeouts(), n.Log)
	return n, nil
}

func (n *Node) routes() {
	cfg := n.Config
	authn := &httpapi.Authenticator{Verifier: n.Verifier, Log: n.Log, OnFailure: func(reason string) {
		n.Metrics.AuthFailures.WithLabelValues(reason).Inc()
	}}
	// A publish may be retried for backbone.WriteBound while NATS elects a
	// new leader; its deadline leaves room for that.
	const publishTimeout = backbone.WriteBound + time.Second
	msg := &messaging.Service{Hub: n.Hub, NC: n.Backbone.NC, Node: cfg.NodeName, MaxChannels: cfg.MaxChannels, PublishTimeout: publishTimeout}
	n.mux.Handle("GET /ws/agent", n.Conns.Handler(msg.Endpoint()))
	n.mux.Handle("GET /ws/agent-guidance", n.Conns.Handler(n.Ops.GuidanceEndpoint()))
	n.mux.Handle("GET /ws/agent-worker", n.Conns.Handler(n.Ops.WorkerEndpoint()))
	n.Ops.Routes(n.mux, authn)
	n.mux.HandleFunc("POST /api/publish", httpapi.PublishHandler(authn, n.Hub, publishTimeout))
	n.mux.Handle("GET /api/milestones/{id}/terminal", n.Conns.Handler(n.Milestones.Endpoint()))
	n.Milestones.Routes(n.mux, authn)
	n.mux.HandleFunc("GET /api/cluster/nodes", authn.AdminOnly(func(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"self": cfg.NodeName, "nodes": n.Cluster.Nodes()})
	}))
	n.mux.HandleFunc("GET /healthz", httpapi.Health)
	n.mux.HandleFunc("GET /readyz", httpapi.ReadyHandler(cfg.NodeName, func() httpapi.ReadyState {
		full, why := n.Backbone.StorageFull()
		return httpapi.ReadyState{
			NATSConnected: n.Backbone.Connected(), JetStream: n.Backbone.JetStreamState(),
			StorageFull: full, StorageReason: why, Draining: n.draining.Load(),
		}
	}))
	n.mux.Handle("GET /metrics", n.Metrics.Handler())
	webui.Routes(n.mux, webui.Options{DevToken: n.devToken(), Logger: n.Log}) // the web console at /, see docs/console.md
	if cfg.Pprof {
		admin := func(h http.HandlerFunc) http.HandlerFunc {
			return authn.AdminOnly(func(w http.ResponseWriter, r *http.Request, _ *auth.Claims) { h(w, r) })
		}
		n.mux.HandleFunc("/debug/pprof/", admin(pprof.Index))
		n.mux.HandleFunc("/debug/pprof/profile", admin(pprof.Profile))
		n.mux.HandleFunc("/debug/pprof/trace", admin(pprof.Trace))
		n.mux.HandleFunc("/debug/pprof/symbol", admin(pprof.Symbol))
	}
	n.handler = httpapi.Logging(n.Log, httpapi.Deadlines(n.timeouts(), n.mux))
}

// devToken is the minter of the token that the web console signs in with
// in --dev mode (the token printed by serve --dev), or nil.
func (n *Node) devToken() func() (string, error) {
	if !n.Config.Dev || n.Secret == nil {
		return nil
	}
	return func() (string, error) {
		return auth.Mint(n.Secret, auth.MintClaims{
			Subject: "dev", Roles: []string{auth.RoleAdmin, auth.RoleAgent}, Channels: []string{"*"}, TTL: 24 * time.Hour,
			Issuer: n.Config.JWTIssuer, Audience: n.Config.JWTAudience,
		})
	}
}

// timeouts are the HTTP server's, from the configuration.
func (n *Node) timeouts() httpapi.Timeouts {
	return httpapi.Timeouts{Idle: n.Config.HTTPIdleTimeout, Read: n.Config.HTTPReadTimeout, Write: n.Config.HTTPWriteTimeout}
}

// storageFull sets tether_storage_full when the backbone's storage
// becomes full or has room again.
func (n *Node) storageFull(full bool) {
	v := 0.0
	if full {
		v = 1
	}
	n.Metrics.StorageFull.Set(v)
}

// Handle adds a route; endpoints added by later packages register here.
func (n *Node) Handle(pattern string, h http.Handler) { n.mux.Handle(pattern, h) }

// Handler is the node's HTTP handler (for httptest servers).
func (n *Node) Handler() http.Handler { return n.handler }

// Serve accepts HTTP connections on ln until Shutdown.
func (n *Node) Serve(ln net.Listener) error {
	err := n.httpSrv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Drain prepares the node for a restart: /readyz answers 503 "draining"
// (so that load balancers stop sending it clients) and tether_draining is
// 1; new operations and new terminal programs are refused with
// node_draining; the operations and terminals it runs go on, with their
// clients, until they end by themselves. Drain returns once none is left,
// or when ctx ends; Shutdown then ends whatever still runs.
//
// Remote workers' operations are among those waited for: a worker
// connected to this node keeps running them through it during the drain.
func (n *Node) Drain(ctx context.Context) {
	n.draining.Store(true)
	n.Metrics.Draining.Set(1)
	n.Ops.StopStarting()
	n.Milestones.StopStarting()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ops, terms := n.Ops.Running(), n.Milestones.Running()
		if ops == 0 && terms == 0 {
			n.Log.Info("drained: no operation or terminal left")
			return
		}
		select {
		case <-ctx.Done():
			n.Log.Warn("drain ended with work still running", "operations", ops, "terminals", terms)
			return
		case <-t.C:
		}
	}
}

// Shutdown stops the node, bounded by ctx: it stops accepting, ends the
// operations running here as interrupted and lets their watchers (WebSocket
// and SSE) deliver that final event, closes every WebSocket with 1001 and
// waits for them to drain, then stops the rest, the backbone last so that
// what the connections did on their way out still reaches NATS.
func (n *Node) Shutdown(ctx context.Context) error {
	n.Metrics.Draining.Set(0)
	var errs []error
	httpDone := make(chan error, 1)
	if n.httpSrv != nil {
		// Closes the listeners at once, then waits for the plain HTTP
		// requests, SSE streams included, which end with their operations
		// below; hijacked WebSockets are the conn layer's.
		go func() { httpDone <- n.httpSrv.Shutdown(ctx) }()
	} else {
		httpDone <- nil
	}
	if n.Ops != nil {
		// Before the 1001s: a client told 1001 first would only learn how
		// its operation ended after reconnecting to another node.
		if err := n.Ops.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Milestones != nil {
		// Also before the 1001s: the terminals end with the node.
		n.Milestones.EndingWithNode()
	}
	if n.Conns != nil {
		if err := n.Conns.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connections: %w", err))
		}
		n.Conns = nil
	}
	if err := <-httpDone; err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	n.close()
	return errors.Join(errs...)
}

func (n *Node) close() {
	if n.Conns != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.Conns.Shutdown(ctx)
		cancel()
	}
	// Terminals end after their clients were told 1001 and before NATS
	// stops, so that their milestones are recorded as interrupted.
	if n.Milestones != nil {
		n.Milestones.Close()
	}
	if n.Ops != nil {
		// Before the backbone: failing the running operations as
		// interrupted writes to JetStream.
		n.Ops.Close()
	}
	if n.counter != nil {
		// After the connections: their releases are written first.
		n.counter.Close()
	}
	if n.Cluster != nil {
		n.Cluster.Leave()
	}
	if n.Hub != nil {
		n.Hub.Close()
	}
	if n.Verifier != nil {
		n.Verifier.Close()
	}
	if n.Backbone != nil {
		n.Backbone.Close()
	}
	n.cancel()
}

// newOperations starts the operations service with the agents of the
// config file, or the built-in demo agent in --dev mode when none are
// declared.
func newOperations(ctx context.Context, cfg *config.Config, bb *backbone.Backbone, log *slog.Logger) (*operations.Service, error) {
	var list []agents.CommandAgent
	if node, ok := cfg.Extra["agents"]; ok {
		var err error
		if list, err = agents.DecodeAgents(&node); err != nil {
			return nil, fmt.Errorf("config %s: %w", cfg.ConfigFile, err)
		}
	}
	if len(list) == 0 && cfg.Dev {
		list = []agents.CommandAgent{operations.DemoAgent()}
	}
	return operations.New(ctx, bb, operations.Config{
		Node: cfg.NodeName, Agents: list,
		MaxAge: cfg.OperationHistoryMaxAge, MaxBytes: cfg.OperationHistoryMaxBytes,
		MaxPerUser: cfg.MaxOperationsPerUser, MaxTotal: cfg.MaxOperations, EventRate: cfg.OperationEventRate,
		MaxInputBytes: int(cfg.MaxOperationInput), MaxEventBytes: int(cfg.MaxOperationEvent),
		MaxAGUIInputBytes: int(cfg.MaxAGUIInput), OriginAllowed: conn.OriginPolicy(cfg.AllowedOrigins, cfg.PublicURL), InputTimeout: cfg.OperationInputTimeout,
		KillGrace: cfg.OperationKillGrace, WorkerGrace: cfg.WorkerGrace, SendQueue: cfg.SendQueue, Logger: log.With("component", "operations"),
	})
}

// DevSecret returns the development secret kept under dataDir, generating
// and storing it (mode 0600) the first time.
func DevSecret(dataDir string) (secret []byte, created bool, err error) {
	return storedSecret(dataDir, DevSecretFile, "dev secret")
}

// storedSecret returns the random secret kept in dataDir/file, generating
// and storing it (64 hex digits, mode 0600) the first time; what names it
// in errors.
func storedSecret(dataDir, file, what string) (secret []byte, created bool, err error) {
	path := filepath.Join(dataDir, file)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return []byte(s), false, nil
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("generate %s: %w", what, err)
	}
	s := hex.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("store %s: %w", what, err)
	}
	return []byte(s), true, nil
}

// scrollback maps --terminal-scrollback (0: none) to terminal.Options's
// Scrollback (0: the default, negative: none).
func scrollback(lines int) int {
	if lines == 0 {
		return -1
	}
	return lines
}
