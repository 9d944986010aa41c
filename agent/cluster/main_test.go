package cluster_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/testparallel"
)

// clusterParallel is how many of the tests marked parallel run at once
// when go test's -parallel does not say. The tests wait far more than they
// compute (elections, heartbeat and promotion timeouts, quiet periods in
// which nothing may happen): one after another they took 158 s of wall
// time for 29 s of CPU; now 79 s. Those marked parallel are the ones that
// take more than half a second, except the tests of the backup and
// snapshots, TestASupersededServerStandsForNoElection (its comment says
// why), and those on in-memory transports with 50 ms timeouts
// (clustertest's, the disk tests'): the load of other tests at once can
// make those elect again where they count elections or log lines
// (TestLeaderWithFullDiskStepsDown failed so once). A lone in-memory
// server has no one to elect with, so TestLateJoinerGetsItsRemoveAfter is
// marked parallel; TestReadBackupRefuses, as long, is not: it computes
// for its two seconds (17 s beside the parallel tests at a load of 14),
// and two of those lost leadership mid-test while it ran.
const clusterParallel = 8

// The watchdog: when the package's tests run for half of go test's
// -timeout (10 minutes of make test's 20; they take under a minute, two
// under load), it prints, one line per distinct stack, the goroutines that
// run this project's or raft's code, then panics. go test's own timeout
// prints every goroutine in full, and CI keeps only the end of that; the
// watchdog's lines end the output, so its end says where the tests wait.
func TestMain(m *testing.M) {
	testparallel.Default("cluster", clusterParallel)
	stallAfter := time.Duration(0)
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok {
			stallAfter = d / 2
		}
	}
	stop := func() bool { return false }
	if stallAfter > 0 {
		stop = time.AfterFunc(stallAfter, func() {
			fmt.Fprintf(os.Stderr, "cluster tests: still running after %s; where they wait:\n%s", stallAfter, stalled())
			panic("cluster tests: stalled; the goroutines above say where")
		}).Stop
	}
	code := m.Run()
	stop()
	if code == 0 {
		code = raftLeft()
	}
	os.Exit(code)
}

// raftLeft fails the package when a Raft instance still runs after every
// test ended (a test that never closed a node, or a Close that let raft
// run on): it would go on electing itself beside the tests that follow.
func raftLeft() int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !strings.Contains(goroutines(), "hashicorp/raft.(*Raft).run(") {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "cluster tests: a Raft instance still runs after the tests ended:\n%s", stalled())
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stalled condenses the goroutines that run this project's or raft's code
// to one line per distinct stack: how many, their state, then their
// frames of this project, raft and the testing package, innermost first.
// The test goroutines and those closing a node come last, where CI's
// excerpt of the output ends.
func stalled() string {
	count := map[string]int{}
	var order []string
	for _, g := range strings.Split(goroutines(), "\n\n") {
		lines := strings.Split(g, "\n")
		var funcs []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by") {
				continue
			}
			if i := strings.LastIndex(l, "("); i > 0 {
				l = l[:i]
			}
			switch {
			case strings.HasPrefix(l, "github.com/foreshape/foreshape/"):
				funcs = append(funcs, strings.TrimPrefix(l, "github.com/foreshape/foreshape/"))
			case strings.HasPrefix(l, "github.com/hashicorp/raft."), strings.HasPrefix(l, "testing."):
				funcs = append(funcs, strings.TrimPrefix(l, "github.com/hashicorp/"))
			}
		}
		if len(funcs) == 0 || !strings.Contains(g, "foreshape/foreshape") && !strings.Contains(g, "hashicorp/raft") {
			continue
		}
		state := lines[0]
		if i, j := strings.Index(state, "["), strings.LastIndex(state, "]"); i >= 0 && j > i {
			state = state[i : j+1]
		}
		key := state + " " + strings.Join(funcs, " < ")
		if count[key] == 0 {
			order = append(order, key)
		}
		count[key]++
	}
	last := func(k string) bool { return strings.Contains(k, "_test.") || strings.Contains(k, "Close") }
	var b strings.Builder
	for _, pass := range []bool{false, true} {
		for _, k := range order {
			if last(k) == pass {
				fmt.Fprintf(&b, "%d× %s\n", count[k], k)
			}
		}
	}
	return b.String()
}

// goroutines is every goroutine's stack, as a panic prints them.
func goroutines() string {
	buf := make([]byte, 16<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
