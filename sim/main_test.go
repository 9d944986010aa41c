package sim

import (
	"os"
	"testing"

	"github.com/foreshape/foreshape/internal/testparallel"
)

// testParallel is how many of the tests marked parallel run at once when
// go test's -parallel does not say. The fidelity checks run their
// simulators at simSpeed against the wall clock and mostly wait, so go
// test's default (GOMAXPROCS) left the CPU mostly idle.
const testParallel = 8

func TestMain(m *testing.M) {
	testparallel.Default("sim", testParallel)
	os.Exit(m.Run())
}
