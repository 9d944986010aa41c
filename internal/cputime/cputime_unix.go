//go:build unix

// Package cputime reads the CPU time the process has used, for benchmarks
// that report cost per CPU second: on a machine busy with other work, wall
// time measures the machine, CPU time the code. It never starts or stops
// timers itself.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the CPU time (user and system) the process has used so
// far, or 0 when the system cannot say.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
