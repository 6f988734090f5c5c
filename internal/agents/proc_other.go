//go:build !unix

package agents

import (
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr: without process groups only the main process is signalled.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup can only kill the main process on this platform, and cannot
// send a catchable SIGTERM, so cancellation is immediate.
func signalGroup(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// signalName returns "signal N": exits by signal do not happen here.
func signalName(sig syscall.Signal) string { return "signal " + strconv.Itoa(int(sig)) }
