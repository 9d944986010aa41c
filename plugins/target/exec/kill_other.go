//go:build !unix

package exec

import osexec "os/exec"

// killGroup leaves the default: the command alone is killed at the timeout.
func killGroup(cmd *osexec.Cmd) {}
