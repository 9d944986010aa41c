package agent

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// testParallel is how many of the tests marked parallel run at once when
// go test's -parallel does not say. They wait far more than they compute
// (a simulator running in data time, Raft elections, a Prometheus
// scraping, the agent's own waits), so go test's default (GOMAXPROCS, two
// on a 2-core CI machine) left the CPU mostly idle.
const testParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", fmt.Sprint(testParallel)); err != nil {
			fmt.Fprintln(os.Stderr, "agent: -parallel:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
