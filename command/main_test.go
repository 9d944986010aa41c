package command

import (
	"os"
	"testing"

	"github.com/foreshape/foreshape/internal/testparallel"
)

// commandParallel is how many of the tests marked parallel run at once
// when go test's -parallel does not say. Those marked run the dev agent or
// an agent (waiting on a simulator in data time) or a simulation of their
// own, with their own ports, directories and writers; tests that set the
// environment or a package variable run alone, before them.
const commandParallel = 4

func TestMain(m *testing.M) {
	testparallel.Default("command", commandParallel)
	os.Exit(m.Run())
}
