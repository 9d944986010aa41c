package anomaly

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far. Benchmarks
// report throughput per CPU second as well as per wall second, because on
// a shared machine the wall clock also counts time spent waiting for a
// core.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
