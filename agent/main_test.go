package agent

import (
	"os"
	"testing"

	"github.com/foreshape/foreshape/internal/testparallel"
)

// testParallel is how many of the tests marked parallel run at once when
// go test's -parallel does not say. They wait far more than they compute
// (a simulator running in data time, Raft elections, a Prometheus
// scraping, the agent's own waits), so go test's default (GOMAXPROCS, two
// on a 2-core CI machine) left the CPU mostly idle.
const testParallel = 4

func TestMain(m *testing.M) {
	testparallel.Default("agent", testParallel)
	os.Exit(m.Run())
}
