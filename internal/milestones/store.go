// Package milestones manages milestones, the units of agent work that run
// a program in a terminal: their records in a JetStream key-value bucket,
// the REST API, the live PTY sessions on this node, and the terminal
// WebSocket endpoint that attaches browsers to them.
package milestones

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
)

// Bucket is the JetStream key-value bucket of milestone records.
const Bucket = "TETHER_MILESTONES"

// Milestone statuses.
const (
	StatusPending  = "pending"
	StatusRunning  = "running"
	StatusFinished = "finished"
)

// statuses and statusGroups are what GET /api/milestones?status= accepts:
// a status, or live for pending and running.
var (
	statuses     = []string{StatusPending, StatusRunning, StatusFinished}
	statusGroups = map[string][]string{"live": {StatusPending, StatusRunning}}
)

// Reasons a milestone finished.
const (
	ReasonExited        = "exited"         // the program ended by itself
	ReasonFinished      = "finished"       // POST /api/milestones/{id}/finish
	ReasonInterrupted   = "interrupted"    // its node stopped or restarted while it ran
	ReasonDetachTimeout = "detach_timeout" // no client for --terminal-detach-timeout
	ReasonStartFailed   = "start_failed"   // the program could not be started
)

// Milestone is the stored record of a milestone.
type Milestone struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Owner      string            `json:"owner"`
	Command    []string          `json:"command"`
	Dir        string            `json:"dir,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Cols       uint16            `json:"cols"`
	Rows       uint16            `json:"rows"`
	Status     string            `json:"status"`
	Reason     string            `json:"reason,omitempty"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	Signal     string            `json:"signal,omitempty"`
	Error      string            `json:"error,omitempty"`
	PID        int               `json:"pid,omitempty"`
	Node       string            `json:"node,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
}

// ErrNotFound reports a milestone that does not exist.
var ErrNotFound = errors.New("milestone not found")

// ErrExists reports a create with an id already taken.
var ErrExists = errors.New("milestone already exists")

// Store keeps milestone records in JetStream's key-value store, so that
// they survive restarts and every node sees the same ones.
type Store struct {
	kv jetstream.KeyValue
	bb *backbone.Backbone
}

// OpenStore creates or opens the bucket.
func OpenStore(ctx context.Context, bb *backbone.Backbone) (*Store, error) {
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Tether milestones",
		Storage:     jetstream.FileStorage,
		Replicas:    bb.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, bb: bb}, nil
}

// Create stores a new milestone; ErrExists if the id is taken.
func (s *Store) Create(ctx context.Context, m *Milestone) error {
	// On a full disk nothing is stored, and the caller must not report the
	// milestone created (backbone.ErrStorageFull).
	if err := s.bb.Writable(); err != nil {
		return fmt.Errorf("create milestone %s: %w", m.ID, err)
	}
	b, _ := json.Marshal(m)
	_, err := backbone.CreateKey(ctx, s.kv, m.ID, b)
	if err = s.bb.WriteResult(err); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return ErrExists
		}
		return fmt.Errorf("create milestone %s: %w", m.ID, err)
	}
	return nil
}

// Get returns a milestone and its revision.
func (s *Store) Get(ctx context.Context, id string) (*Milestone, uint64, error) {
	var e jetstream.KeyValueEntry
	err := backbone.Retry(ctx, func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, id)
		return err
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("get milestone %s: %w", id, err)
	}
	var m Milestone
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return nil, 0, fmt.Errorf("decode milestone %s: %w", id, err)
	}
	return &m, e.Revision(), nil
}

// Update applies fn to the current record and stores it, retrying when
// another writer got there first. fn returns false to leave it unchanged.
func (s *Store) Update(ctx context.Context, id string, fn func(m *Milestone) bool) (*Milestone, error) {
	for attempt := 0; ; attempt++ {
		m, rev, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !fn(m) {
			return m, nil
		}
		b, _ := json.Marshal(m)
		if _, err := backbone.UpdateKey(ctx, s.kv, id, b, rev); err != nil {
			if attempt < 10 && backbone.IsConflict(err) {
				continue // a concurrent update: read again
			}
			return nil, fmt.Errorf("update milestone %s: %w", id, err)
		}
		return m, nil
	}
}

// Delete removes a milestone record.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete milestone %s: %w", id, err)
	}
	return nil
}

// List returns every milestone for which keep returns true.
func (s *Store) List(ctx context.Context, keep func(*Milestone) bool) ([]*Milestone, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list milestones: %w", err)
	}
	var out []*Milestone
	for key := range lister.Keys() {
		m, _, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			_ = lister.Stop()
			return nil, err
		}
		if keep(m) {
			out = append(out, m)
		}
	}
	return out, nil
}
