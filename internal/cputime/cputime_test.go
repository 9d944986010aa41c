package cputime

import (
	"runtime"
	"testing"
)

func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no CPU time on this system")
	}
	before := Process()
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	_ = x
	if after := Process(); after <= before {
		t.Fatalf("CPU time did not grow over a busy loop: %v then %v", before, after)
	}
}
