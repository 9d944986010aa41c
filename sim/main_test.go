package sim

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// testParallel is how many of the tests marked parallel run at once when
// go test's -parallel does not say. The fidelity checks run their
// simulators at simSpeed against the wall clock and mostly wait, so go
// test's default (GOMAXPROCS) left the CPU mostly idle.
const testParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", fmt.Sprint(testParallel)); err != nil {
			fmt.Fprintln(os.Stderr, "sim: -parallel:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
