package milestones

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/terminal"
)

// Config configures the milestone service.
type Config struct {
	Node string
	// DataDir holds recordings under recordings/.
	DataDir string
	// DefaultCommand runs when a milestone is created without a command.
	DefaultCommand []string
	// RingSize is each session's replay ring (default 1 MiB).
	RingSize int
	// Scrollback is the lines of history each session's screen model
	// keeps, as terminal.Options.Scrollback (0: 1000, negative: none).
	Scrollback int
	// RecordingMaxBytes caps each recording.
	RecordingMaxBytes int64
	// DetachTimeout ends a session with no client for this long; 0 never.
	DetachTimeout time.Duration
	// KillGrace is how long finish waits after SIGHUP/SIGTERM before SIGKILL.
	KillGrace time.Duration
	// ClientQueue is how many output frames may wait in one client's send
	// queue before the client is paced (it then reads from the ring).
	// Default 32: enough in flight to ride out scheduling hiccups of a
	// fast reader (8 made bursts skip), at most 2 MiB per client.
	ClientQueue int
	// NC relays terminals between nodes; nil serves local terminals only.
	NC     *nats.Conn
	Logger *slog.Logger
}

// Service owns the milestones of this node and their live sessions.
type Service struct {
	cfg   Config
	store *Store
	log   *slog.Logger

	nc   *nats.Conn
	subs []*nats.Subscription

	// mu guards the maps below and closed. It is never held across I/O
	// (the store, NATS, a program's start): every relay credit and every
	// attach of every terminal of the node takes it.
	mu       sync.Mutex
	live     map[string]*live
	starting map[string]chan struct{}              // milestones being started here, closed when done
	relays   map[string]*hostRelay                 // clients of other nodes attached here
	remotes  map[string]map[*remoteSource]struct{} // by host node: clients here of terminals elsewhere
	closed   bool                                  // Close has begun: nothing new starts
	draining bool                                  // StopStarting was called: running sessions go on
	// wg counts session watchers, relay pumps and end requests. Add is
	// only called under mu while !closed, so every Add precedes Close's Wait.
	wg    sync.WaitGroup
	ended endedTotals // counters of sessions no longer in live
}

// live is a running session on this node and the connections attached.
type live struct {
	id      string
	svc     *Service
	sess    *terminal.Session
	mu      sync.Mutex
	clients map[peer]struct{}
	detach  *time.Timer
	reason  string        // why it is being ended, if it is
	ended   chan struct{} // closed once the end is recorded
}

// NewService creates the service and marks milestones that were running on
// this node before a restart as finished (interrupted): their processes
// died with the node.
func NewService(ctx context.Context, store *Store, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.DefaultCommand) == 0 {
		cfg.DefaultCommand = []string{"/bin/sh"}
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 3 * time.Second
	}
	if cfg.ClientQueue <= 0 {
		cfg.ClientQueue = 32
	}
	s := &Service{
		cfg: cfg, store: store, log: cfg.Logger, nc: cfg.NC, live: map[string]*live{}, starting: map[string]chan struct{}{},
		relays: map[string]*hostRelay{}, remotes: map[string]map[*remoteSource]struct{}{},
	}
	if err := os.MkdirAll(s.recordingDir(), 0o755); err != nil {
		return nil, fmt.Errorf("recordings dir: %w", err)
	}
	stale, err := store.List(ctx, func(m *Milestone) bool {
		return m.Status == StatusRunning && m.Node == cfg.Node
	})
	if err != nil {
		return nil, err
	}
	for _, m := range stale {
		if _, err := store.Update(ctx, m.ID, func(m *Milestone) bool {
			if m.Status != StatusRunning || m.Node != cfg.Node {
				return false
			}
			finish(m, ReasonInterrupted)
			return true
		}); err != nil {
			return nil, err
		}
		s.log.Info("milestone interrupted by restart", "milestone", m.ID)
	}
	if s.nc != nil {
		if err := s.serveRelays(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NodeDown finishes, as interrupted, the milestones that were running on a
// node that died: their processes died with it. Every surviving node may
// call it; the compare-and-set update makes that harmless.
func (s *Service) NodeDown(node string) {
	s.dropRemotes(node)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := s.store.List(ctx, func(m *Milestone) bool { return m.Status == StatusRunning && m.Node == node })
	if err != nil {
		s.log.Warn("milestones of a dead node", "node", node, "err", err)
		return
	}
	for _, m := range ms {
		if _, err := s.store.Update(ctx, m.ID, func(m *Milestone) bool {
			if m.Status != StatusRunning || m.Node != node {
				return false
			}
			finish(m, ReasonInterrupted)
			return true
		}); err != nil {
			s.log.Warn("finish milestone of a dead node", "milestone", m.ID, "err", err)
			continue
		}
		s.log.Info("milestone interrupted: its node is down", "milestone", m.ID, "node", node)
	}
}

// Store returns the record store.
func (s *Service) Store() *Store { return s.store }

func (s *Service) recordingDir() string { return filepath.Join(s.cfg.DataDir, "recordings") }

// RecordingPath is where a milestone's asciicast recording is kept.
func (s *Service) RecordingPath(id string) string {
	return filepath.Join(s.recordingDir(), id+".cast")
}

func finish(m *Milestone, reason string) {
	now := time.Now().UTC()
	m.Status = StatusFinished
	m.Reason = reason
	m.FinishedAt = &now
	m.PID = 0
}

// NewID returns a generated milestone id.
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "ms-" + hex.EncodeToString(b)
}

// Start starts a pending milestone's program on this node, or returns the
// session that already runs it. A finished milestone cannot be started.
// Starts of one milestone are single-flight: a caller arriving while
// another starts it waits for that start and then looks again. No lock is
// held across the store's I/O or the program's start, so a slow store
// delays the callers starting this milestone and nobody else.
func (s *Service) Start(ctx context.Context, id string) (*live, *Milestone, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, nil, errClosed
		}
		l, busy := s.live[id], s.starting[id]
		if l == nil && busy == nil && s.draining {
			s.mu.Unlock()
			return nil, nil, errDraining
		}
		if l == nil && busy == nil {
			done := make(chan struct{})
			s.starting[id] = done
			s.mu.Unlock()
			l, m, err := s.start(ctx, id)
			s.mu.Lock()
			delete(s.starting, id)
			s.mu.Unlock()
			close(done)
			return l, m, err
		}
		s.mu.Unlock()
		if l != nil {
			m, _, err := s.store.Get(ctx, id)
			return l, m, err
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("start milestone %s: %w", id, ctx.Err())
		}
	}
}

// start is Start for the one caller starting milestone id.
func (s *Service) start(ctx context.Context, id string) (*live, *Milestone, error) {
	m, _, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	switch m.Status {
	case StatusFinished:
		return nil, m, errFinished
	case StatusRunning:
		// Running, but not here: its node owns it (or died with it).
		return nil, m, errElsewhere
	}
	sess, err := terminal.Start(terminal.Options{
		Argv: m.Command, Dir: m.Dir, Env: environ(m.Env), Cols: m.Cols, Rows: m.Rows,
		RingSize: s.cfg.RingSize, Scrollback: s.cfg.Scrollback, RecordingPath: s.RecordingPath(id), RecordingMaxBytes: s.cfg.RecordingMaxBytes,
		Logger: s.log.With("milestone", id),
	})
	if err != nil {
		m, uerr := s.store.Update(ctx, id, func(m *Milestone) bool {
			finish(m, ReasonStartFailed)
			m.Error = err.Error()
			return true
		})
		if uerr != nil {
			return nil, nil, uerr
		}
		return nil, m, fmt.Errorf("start milestone %s: %w", id, err)
	}
	m, err = s.store.Update(ctx, id, func(m *Milestone) bool {
		now := time.Now().UTC()
		m.Status, m.Node, m.PID, m.StartedAt = StatusRunning, s.cfg.Node, sess.PID(), &now
		m.Cols, m.Rows = sess.Size()
		return true
	})
	if err != nil {
		_ = sess.Terminate(s.cfg.KillGrace)
		return nil, nil, err
	}
	l := &live{id: id, svc: s, sess: sess, clients: map[peer]struct{}{}, ended: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		// Close took its list of sessions while this one started: end it
		// here, as Close would have.
		s.mu.Unlock()
		_ = sess.Terminate(s.cfg.KillGrace)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := s.store.Update(ctx, id, func(m *Milestone) bool {
			finish(m, ReasonInterrupted)
			return true
		}); err != nil {
			s.log.Warn("record milestone end", "milestone", id, "err", err)
		}
		return nil, nil, errClosed
	}
	s.live[id] = l
	s.wg.Add(1)
	s.mu.Unlock()
	go s.watch(l)
	l.armDetach(s)
	return l, m, nil
}

// track counts a goroutine in wg unless the service is closing.
func (s *Service) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

var (
	errFinished  = errors.New("milestone has finished")
	errElsewhere = errors.New("milestone runs on another node")
	errClosed    = errors.New("the node is shutting down")
	errDraining  = errors.New("the node is draining before a restart")
)

// StopStarting makes the node refuse to start programs (node_draining)
// while the sessions it runs go on: the first step of a drain. Clients may
// still attach to those sessions.
func (s *Service) StopStarting() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Running returns how many terminal sessions this node runs.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// watch records the session's end in the milestone.
func (s *Service) watch(l *live) {
	defer s.wg.Done()
	<-l.sess.Done()
	st, _ := l.sess.ExitStatus()
	l.mu.Lock()
	reason := l.reason
	if l.detach != nil {
		l.detach.Stop()
	}
	l.mu.Unlock()
	if reason == "" {
		reason = ReasonExited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.store.Update(ctx, l.id, func(m *Milestone) bool {
		if m.Status == StatusFinished {
			return false
		}
		finish(m, reason)
		code := st.Code
		m.ExitCode, m.Signal = &code, st.Signal
		return true
	}); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("record milestone end", "milestone", l.id, "err", err)
	}
	final := l.sess.Stats()
	s.mu.Lock()
	if s.live[l.id] == l {
		delete(s.live, l.id)
		s.ended.output += final.OutputBytes
		s.ended.input += final.InputBytes
		s.ended.skips += final.Skips
		s.ended.resyncs += final.ModelResyncs
	}
	s.mu.Unlock()
	close(l.ended)
	s.log.Info("milestone finished", "milestone", l.id, "reason", reason, "code", st.Code, "signal", st.Signal)
}

// Session returns the terminal session running milestone id on this node,
// or nil.
func (s *Service) Session(id string) *terminal.Session {
	if l := s.liveOf(id); l != nil {
		return l.sess
	}
	return nil
}

func (s *Service) liveOf(id string) *live {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id]
}

// End terminates a live session with reason (SIGHUP/SIGTERM, then SIGKILL
// after the grace) and waits until its end is recorded; for a milestone
// that is not running here it just marks the record finished.
func (s *Service) End(ctx context.Context, id, reason string) (*Milestone, error) {
	if l := s.liveOf(id); l != nil {
		l.mu.Lock()
		if l.reason == "" {
			l.reason = reason
		}
		l.mu.Unlock()
		_ = l.sess.Terminate(s.cfg.KillGrace)
		// watch records the end; wait for it so callers see the final record.
		select {
		case <-l.ended:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m, _, err := s.store.Get(ctx, id)
		return m, err
	}
	m, _, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Status == StatusRunning && m.Node != s.cfg.Node && s.nc != nil {
		ms, err := s.endRemote(ctx, m.Node, id, reason)
		if err == nil {
			return ms, nil
		}
		// Its node is unreachable: the process died with it.
		s.log.Warn("ending a milestone of an unreachable node", "milestone", id, "node", m.Node, "err", err)
	}
	return s.store.Update(ctx, id, func(m *Milestone) bool {
		if m.Status == StatusFinished {
			return false
		}
		finish(m, reason)
		return true
	})
}

// EndingWithNode tells this node's own clients of its terminals that the
// node is shutting down and ends their terminals (node_down, as clients on
// other nodes are told), before their connections close with 1001: a
// client must not read the program's forced exit, or a plain "going away",
// as the program having exited.
func (s *Service) EndingWithNode() {
	s.mu.Lock()
	ls := make([]*live, 0, len(s.live))
	for _, l := range s.live {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		var cs []*conn.Conn
		for p := range l.clients {
			if c, ok := p.(*conn.Conn); ok {
				cs = append(cs, c)
			}
		}
		l.mu.Unlock()
		// Outside the lock: Fail queues on each connection.
		for _, c := range cs {
			failNodeDown(c)
		}
	}
}

// Close ends every live session (their milestones become finished with
// reason interrupted) and waits for their ends to be recorded.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	ls := make([]*live, 0, len(s.live))
	for _, l := range s.live {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	sort.Slice(ls, func(i, j int) bool { return ls[i].id < ls[j].id })
	var wg sync.WaitGroup
	for _, l := range ls {
		l.mu.Lock()
		if l.reason == "" {
			l.reason = ReasonInterrupted
		}
		l.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.sess.Terminate(s.cfg.KillGrace)
		}()
	}
	wg.Wait()
	s.wg.Wait()
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// endedByNode reports whether the node itself ended the session (it shut
// down), rather than the program exiting or someone finishing it.
func (l *live) endedByNode() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason == ReasonInterrupted
}

// attach registers p with the session and stops any detach timer.
func (l *live) attach(p peer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients[p] = struct{}{}
	if l.detach != nil {
		l.detach.Stop()
		l.detach = nil
	}
}

// count returns the number of attached clients, relayed ones included.
func (l *live) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// leave unregisters p and arms the detach timer when none are left.
func (l *live) leave(s *Service, p peer) {
	l.mu.Lock()
	delete(l.clients, p)
	l.mu.Unlock()
	l.armDetach(s)
}

func (l *live) armDetach(s *Service) {
	if s.cfg.DetachTimeout <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.clients) > 0 || l.detach != nil {
		return
	}
	l.detach = time.AfterFunc(s.cfg.DetachTimeout, func() {
		l.mu.Lock()
		idle := len(l.clients) == 0 && l.reason == ""
		if idle {
			l.reason = ReasonDetachTimeout
		}
		l.mu.Unlock()
		if idle {
			s.log.Info("ending detached session", "milestone", l.id, "after", s.cfg.DetachTimeout)
			go func() { _ = l.sess.Terminate(s.cfg.KillGrace) }()
		}
	})
}

// inherited lists the server environment variables a terminal inherits;
// everything else (TETHER_JWT_SECRET, cloud credentials) stays behind.
var inherited = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR"}

func environ(extra map[string]string) []string {
	var env []string
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}
