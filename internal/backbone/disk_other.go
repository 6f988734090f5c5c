//go:build !(linux || darwin || freebsd)

package backbone

import "errors"

// diskSpace has no figure on this platform: only JetStream's own store
// limit guards the disk.
func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space unknown on this platform")
}
