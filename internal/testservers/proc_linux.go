//go:build linux

package testservers

import "syscall"

// sysProcAttr asks the kernel to kill a server when the test binary dies
// without running its cleanups (for example on a go test -timeout panic).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
