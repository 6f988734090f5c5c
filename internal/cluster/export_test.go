package cluster

// Idle reports whether the counter has written every count it holds and
// answered every handshake: Release writes in the background.
func (u *UserCounter) Idle() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, uc := range u.users {
		if uc.flushing {
			return false
		}
	}
	return true
}
