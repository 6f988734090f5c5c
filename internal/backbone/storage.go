package backbone

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStorageFull refuses a write because the node's storage is full: the
// embedded server's file system has less free space than the configured
// reserve, or JetStream refused the write for lack of storage. Reads keep
// working. Errors wrapping it say which.
var ErrStorageFull = errors.New("storage full")

// storageCheckEvery is how often the free space of the data directory is
// looked at.
const storageCheckEvery = time.Second

// storage tracks whether writes can be stored.
type storage struct {
	// disk: the data directory's file system is below the reserve; writes
	// are refused before they reach JetStream, so that JetStream never
	// runs out of space (it disables itself when it does, and then reads
	// fail too).
	disk atomic.Bool
	// js: JetStream refused the last write for lack of storage (its store
	// limit, or an account limit); cleared by the next stored write.
	js     atomic.Bool
	reason atomic.Pointer[string]
	full   atomic.Bool // disk || js, as last reported
	// onChange is called with the new state when it changes.
	onChange func(full bool)
}

// StorageFull reports whether the node's storage is full, and why.
func (b *Backbone) StorageFull() (bool, string) {
	if !b.storage.full.Load() {
		return false, ""
	}
	if p := b.storage.reason.Load(); p != nil {
		return true, *p
	}
	return true, "storage full"
}

// Writable returns an error wrapping ErrStorageFull while the data
// directory's free space is below the reserve: a write would fill the disk.
// Writers call it before writing to JetStream.
func (b *Backbone) Writable() error {
	if b.storage.disk.Load() {
		_, why := b.StorageFull()
		return fmt.Errorf("%w: %s", ErrStorageFull, why)
	}
	return nil
}

// WriteResult passes on the result of a JetStream write: a refusal for
// lack of storage becomes an error wrapping ErrStorageFull (and the node's
// storage is reported full until a write succeeds again), other errors and
// nil are returned as they are.
func (b *Backbone) WriteResult(err error) error {
	if err == nil {
		if b.storage.js.Load() && b.storage.js.Swap(false) {
			b.log.Info("jetstream stores writes again")
			b.storageChanged()
		}
		return nil
	}
	if !IsStorageError(err) {
		return err
	}
	if !b.storage.js.Swap(true) {
		b.log.Warn("storage full: jetstream refuses writes; writes fail with storage_full until one is stored again", "err", err)
		s := "jetstream refuses writes: " + err.Error()
		b.storage.reason.Store(&s)
		b.storageChanged()
	}
	return fmt.Errorf("%w: %v", ErrStorageFull, err)
}

// IsStorageError reports whether err is JetStream refusing a write for
// lack of storage: its server store limit (10023 insufficient resources,
// 10047 insufficient storage resources) or the account's (10002).
func IsStorageError(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10002, 10023, 10047:
		return true
	}
	return false
}

func (b *Backbone) storageChanged() {
	full := b.storage.disk.Load() || b.storage.js.Load()
	if b.storage.full.Swap(full) != full && b.storage.onChange != nil {
		b.storage.onChange(full)
	}
}

// checkDisk looks at the free space under dir once.
func (b *Backbone) checkDisk(dir string, reserve int64) {
	free, _, err := diskSpace(dir)
	if err != nil {
		return // no figure on this platform: JetStream's own limit remains
	}
	full := free < uint64(reserve)
	if b.storage.disk.Load() == full {
		return
	}
	if full {
		s := fmt.Sprintf("%s free on %s, below the storage reserve of %s", size(free), dir, size(uint64(reserve)))
		b.storage.reason.Store(&s)
		b.log.Warn("storage full: writes fail with storage_full until space is freed; reads keep working",
			"dir", dir, "free", size(free), "reserve", size(uint64(reserve)))
	} else {
		b.log.Info("storage available again", "dir", dir, "free", size(free))
	}
	b.storage.disk.Store(full)
	b.storageChanged()
}

// watchDisk checks the free space under dir every storageCheckEvery until
// stop is closed.
func (b *Backbone) watchDisk(dir string, reserve int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(storageCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.checkDisk(dir, reserve)
		}
	}
}

// size formats a byte count for logs.
func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
