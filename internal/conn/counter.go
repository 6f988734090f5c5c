package conn

import (
	"sync"
)

// LocalCounter is the UserCounter of a single node; a cluster passes one
// that counts across nodes.

// LocalCounter counts connections per user on this node.
type LocalCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// NewLocalCounter returns an empty LocalCounter.
func NewLocalCounter() *LocalCounter { return &LocalCounter{n: map[string]int{}} }

// Acquire implements UserCounter.
func (l *LocalCounter) Acquire(user string, limit int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit > 0 && l.n[user] >= limit {
		return false
	}
	l.n[user]++
	return true
}

// Release implements UserCounter.
func (l *LocalCounter) Release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[user]--; l.n[user] <= 0 {
		delete(l.n, user)
	}
}
