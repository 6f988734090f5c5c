package operations

// ReclaimSubject is the subject on which a node asks the node writing
// operation id to hand it over.
func ReclaimSubject(id string) string { return reclaimSubject(id) }

// ExpiryArmed reports whether this node has armed the failure of operation
// id for when its grace passes (expireLater).
func (s *Service) ExpiryArmed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiries[id] != nil
}

// WaitExpiring waits for the expiries whose timers fired to finish.
func (s *Service) WaitExpiring() { s.expiring.Wait() }
