package command

import (
	"os"
	"testing"

	"github.com/foreshape/foreshape/internal/testparallel"
)

// commandParallel is how many of the tests marked parallel run at once
// when go test's -parallel does not say. Those marked run the dev agent or
// an agent (waiting on a simulator in data time), a simulation of their
// own, or commands that take seconds under -race (the golden cases, the
// policies that need too many series, the anomaly detectors over NAB
// files, the package's type-check), with their own ports, directories and
// writers; what they share (runValidate's runs, generateInputs' files) is
// behind a lock. Tests that set the environment or a package variable run
// alone, before them.
const commandParallel = 4

func TestMain(m *testing.M) {
	testparallel.Default("command", commandParallel)
	os.Exit(m.Run())
}
