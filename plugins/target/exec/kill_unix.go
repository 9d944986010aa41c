//go:build unix

package exec

import (
	osexec "os/exec"
	"syscall"
)

// killGroup runs the command in its own process group and kills the whole
// group at the timeout, so a script's children do not outlive it.
func killGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
