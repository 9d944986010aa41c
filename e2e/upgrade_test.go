package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestRollingUpgradeFromRelease is the rolling upgrade docs/clustering.md
// describes, with real processes: three servers of an older foreshape
// release (the binary FORESHAPE_E2E_UPGRADE_FROM names; the test skips
// without it) run against the simulator with two client agents while
// moves go on; then, one server at a time as the servers job's update
// block does (max_parallel = 1), each is stopped with SIGTERM and started
// on its data dir with this build, and the next waits until it answers
// /v1/ready 200. Every move finishes, each allocation is stopped once,
// every write to Nomad comes from the leader of the moment, no server's
// state stops applying the log, and every server ends with the same queue,
// reservations and decisions. It logs how long each server took to be ready and how long
// the cluster had no leader.
func TestRollingUpgradeFromRelease(t *testing.T) {
	rollingReplace(t, releaseBinary(t, "FORESHAPE_E2E_UPGRADE_FROM"), binary)
}

// TestRollingDowngradeToRelease is TestRollingUpgradeFromRelease the other
// way: three servers of this build, replaced one at a time by an older
// release (the binary FORESHAPE_E2E_DOWNGRADE_TO names; the test skips
// without it) while moves go on, with the same checks. It holds while this
// build has written nothing of a newer state protocol than that release
// reads (docs/clustering.md, Downgrading).
func TestRollingDowngradeToRelease(t *testing.T) {
	rollingReplace(t, binary, releaseBinary(t, "FORESHAPE_E2E_DOWNGRADE_TO"))
}

// releaseBinary is the foreshape binary the environment variable env
// names; the test skips without one.
func releaseBinary(t *testing.T, env string) string {
	bin := os.Getenv(env)
	if bin == "" {
		t.Skipf("%s names no older foreshape binary", env)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return bin
}

// rollingReplace runs three servers of the binary from, with two client
// agents of this build and moves going on, replaces them one at a time by
// the binary to, and checks what TestRollingUpgradeFromRelease says.
func rollingReplace(t *testing.T, from, to string) {
	r := startClusterRunOf(t, from, 20, "testdata/cluster", 2, "")
	leader, _ := r.leader(-1, time.Time{})
	submit := func(n int) {
		for range n {
			if err := r.submitMove(leader); err != nil {
				t.Logf("submit: %v", err)
			}
		}
	}
	submit(2)
	ready := func(i int, within time.Duration) time.Duration {
		began := time.Now()
		hc := &http.Client{Timeout: 2 * time.Second}
		for time.Since(began) < within {
			if resp, err := hc.Get(r.urls[i] + "/v1/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(began)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("server-%d not ready within %s", i, within)
		return 0
	}
	for i := range 3 {
		ready(i, time.Minute)
	}
	// Nomad replaces the servers in an order of its own: here by index,
	// whichever leads.
	for i := range 3 {
		wasLeader := i == leader
		r.mu.Lock()
		cmd := r.procs[i]
		r.alive[i] = false
		r.mu.Unlock()
		stopped := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("server-%d did not stop within 30s of SIGTERM", i)
		}
		stopTook := time.Since(stopped)
		var next int
		if wasLeader {
			var at time.Time
			next, at = r.leader(i, stopped)
			t.Logf("step %d: server-%d led; server-%d leads %.2fs after the SIGTERM", i+1, i, next, at.Sub(stopped).Seconds())
		}
		r.bins[i] = to
		started := time.Now()
		r.startServer(i)
		ready(i, 2*time.Minute)
		took := time.Since(started)
		t.Logf("step %d: server-%d (leader: %v) stopped in %.2fs, ready on the new binary %.2fs after its start",
			i+1, i, wasLeader, stopTook.Seconds(), took.Seconds())
		if wasLeader {
			leader = next
		}
		submit(1)
		for j := range 3 {
			st, err := r.client(j).Status(context.Background())
			if err != nil {
				t.Fatalf("server-%d status: %v", j, err)
			}
			if st.Halted != "" {
				t.Errorf("server-%d halted: %s", j, st.Halted)
			}
		}
	}
	leader, _ = r.leader(-1, time.Time{})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		q, err := r.queue(leader)
		if err == nil && len(unfinished(q)) == 0 && len(q.Requests) > 0 {
			var states []string
			for _, mr := range q.Requests {
				states = append(states, fmt.Sprintf("%s %s", mr.ID, mr.State))
				if mr.State != api.StateDone {
					t.Logf("%s ended %s: %s", mr.ID, mr.State, mr.Reason)
				}
			}
			t.Logf("figures: %d moves: %s", len(q.Requests), strings.Join(states, ", "))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still unfinished: %+v (%v)", unfinished(q), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	stops := r.stoppedOnce(t)
	t.Logf("figures: %d allocations stopped, each once; %d writes to Nomad", len(stops), len(r.writes.writes))
	r.checkWriters()
	r.converged(leader)
	for i, l := range r.allLogs {
		if strings.Contains(l.String(), "stopped applying the log") {
			t.Errorf("server output %d: a state machine stopped applying the log", i)
		}
	}
}
