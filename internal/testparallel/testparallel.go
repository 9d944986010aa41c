// Package testparallel sets how many parallel tests a package's test
// binary runs at once when go test's -parallel does not say. It is for
// TestMain functions only: it must never be imported by non-test code.
package testparallel

import (
	"flag"
	"fmt"
	"os"
)

// Default parses the test binary's flags and, unless -test.parallel was
// given, sets it to n. Tests that wait far more than they compute (on a
// simulator running in data time, Raft elections, child processes) leave
// the CPU mostly idle at go test's default of GOMAXPROCS. It exits the
// process, naming pkg, if the flag cannot be set.
func Default(pkg string, n int) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if set {
		return
	}
	if err := flag.Set("test.parallel", fmt.Sprint(n)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: -parallel: %v\n", pkg, err)
		os.Exit(1)
	}
}
