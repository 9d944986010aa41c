package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
//
// The servers snapshot every few seconds (soakRaft), so that each release
// restores the other's snapshots: each server is replaced only once it has
// written a snapshot of its own (with from), which it restores when it
// starts with to; and it starts only once the leader of the moment has
// written two snapshots since the stop (pausing and resuming the queue
// makes entries for them), so that the leader no longer holds
// the entries the server lacks and sends it its snapshot (when from still
// leads, written by from). Both are checked in the server's log, and every
// decision the leader held before a replacement must still be held at the
// end: a restore that lost state on every server alike would converge.
func rollingReplace(t *testing.T, from, to string) {
	r := startClusterRunOf(t, from, 20, "testdata/cluster", 2, soakRaft)
	leader, _ := r.leader(-1, time.Time{})
	accepted := 0 // submissions a server answered without an error
	submit := func(n int) {
		for range n {
			if err := r.submitMove(leader); err != nil {
				t.Logf("submit: %v", err)
			} else {
				accepted++
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
	// snapshotted waits until server j has written n snapshots not in
	// before. Entries come with moves, which end: it pauses and resumes
	// the queue through the leader via, two more entries each time.
	snapshotted := func(j int, before []string, n, via int) {
		for k := 0; !r.awaitSnapshotsSince(j, before, n, 100*time.Millisecond); k++ {
			if k == 300 {
				t.Fatalf("server-%d wrote no %d snapshots within 30s", j, n)
			}
			for _, paused := range []bool{true, false} {
				if _, err := r.client(via).Pause(context.Background(), paused); err != nil {
					t.Fatalf("server-%d: pause %v: %v", via, paused, err)
				}
			}
		}
	}
	// decisionsHeld are the decisions the leader holds now, by decisionKey.
	decisionsHeld := func() map[string]bool {
		ds, err := r.client(leader).Decisions(context.Background(), api.DecisionFilter{})
		if err != nil {
			t.Fatalf("server-%d decisions: %v", leader, err)
		}
		keys := map[string]bool{}
		for _, d := range ds {
			keys[decisionKey(d)] = true
		}
		return keys
	}
	held := map[string]bool{}
	// Nomad replaces the servers in an order of its own: here by index,
	// whichever leads.
	for i := range 3 {
		wasLeader := i == leader
		snapshotted(i, r.snapshots(i), 1, leader)
		maps.Copy(held, decisionsHeld())
		r.mu.Lock()
		cmd := r.procs[i]
		r.alive[i] = false
		r.mu.Unlock()
		var had [3][]string
		for j := range 3 {
			had[j] = r.snapshots(j)
		}
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
		sender, senderBin := leader, r.bins[leader]
		if wasLeader {
			sender, senderBin = next, r.bins[next]
		}
		snapshotted(sender, had[sender], 2, sender)
		r.bins[i] = to
		started := time.Now()
		r.startServer(i)
		ready(i, 2*time.Minute)
		took := time.Since(started)
		t.Logf("step %d: server-%d (leader: %v) stopped in %.2fs, ready on the new binary %.2fs after its start",
			i+1, i, wasLeader, stopTook.Seconds(), took.Seconds())
		// The process's output reaches its buffer through a pipe: wait
		// for the lines a little.
		logged := func(line string) bool {
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if strings.Contains(r.logs[i].String(), line) {
					return true
				}
				if time.Now().After(deadline) {
					return false
				}
			}
		}
		if !logged("restored from snapshot") {
			t.Errorf("step %d: server-%d, started with the new binary, did not restore the snapshot the old one wrote", i+1, i)
		}
		if !logged("Installed remote snapshot") {
			t.Errorf("step %d: server-%d was not sent server-%d's snapshot", i+1, i, sender)
		}
		t.Logf("step %d: server-%d on %s restored its own snapshot (%s's) and installed leader server-%d's (%s's)",
			i+1, i, buildName(to), buildName(from), sender, buildName(senderBin))
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
		// Every move accepted is in the queue (the last may have been
		// submitted a moment ago) and finished.
		if err == nil && len(unfinished(q)) == 0 && len(q.Requests) >= max(accepted, 1) {
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
			t.Fatalf("requests still unfinished: %+v, or not in the queue: %d accepted, %d there (%v)", unfinished(q), accepted, len(q.Requests), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	stops := r.stoppedOnce(t)
	t.Logf("figures: %d allocations stopped, each once; %d writes to Nomad", len(stops), len(r.writes.writes))
	r.checkWriters()
	r.converged(leader)
	now := decisionsHeld()
	var lost []string
	for k := range held {
		if !now[k] {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of the %d decisions the leader held before a replacement are gone (%d held now), such as %s", len(lost), len(held), len(now), lost[0])
	}
	t.Logf("figures: %d decisions held before the replacements, %d after", len(held), len(now))
	// The first three processes ran from, the restarts to. This build
	// logs failing to send a snapshot to a server that said it is stopping
	// (one of this build) at DEBUG; an older release logs it at ERROR, and
	// says nothing when it stops, so that this build logs it at ERROR too.
	for i, l := range r.allLogs {
		bin := from
		if i >= 3 {
			bin = to
		}
		snaps, installs, refused := 0, 0, 0
		// Raft hellos: the server dialed one without it (a server of a
		// release before the hello had closed it unanswered), or closed
		// one as a connection of an unknown kind (such a server).
		withoutHello, unknownKind := 0, 0
		for line := range strings.SplitSeq(l.String(), "\n") {
			switch {
			case strings.Contains(line, "dialing it without the hello"):
				withoutHello++
			case strings.Contains(line, "refused a connection of unknown kind"):
				unknownKind++
			case strings.Contains(line, "snapshot complete up to"):
				snaps++
			case strings.Contains(line, "Installed remote snapshot"):
				installs++
			case !strings.Contains(line, "[ERROR]"), strings.Contains(line, "nothing new to snapshot"):
			case (bin != binary || from != binary) && slices.ContainsFunc(soakTransferErrors, func(e string) bool { return strings.Contains(line, e) }):
				refused++
			case strings.Contains(line, "snapshot") || strings.Contains(line, "restore"):
				t.Errorf("server process %d (%s): %s", i, buildName(bin), line)
			}
		}
		t.Logf("figures: server process %d (%s): %d snapshots written, %d installed, %d ERROR lines about a transfer to a stopped server; "+
			"%d times it went on without the Raft hello, %d hellos it closed unanswered",
			i, buildName(bin), snaps, installs, refused, withoutHello, unknownKind)
	}
	for i, l := range r.allLogs {
		if strings.Contains(l.String(), "stopped applying the log") {
			t.Errorf("server output %d: a state machine stopped applying the log", i)
		}
	}
}

// decisionKey identifies a decision across servers and restarts.
func decisionKey(d api.Decision) string {
	return strings.Join([]string{d.Time.UTC().Format(time.RFC3339Nano), d.Policy, d.Kind, d.Locality, d.Request, d.Reason}, "|")
}

// buildName names a foreshape binary in the rolling tests' lines.
func buildName(bin string) string {
	if bin == binary {
		return "this build"
	}
	return "release " + filepath.Base(bin)
}
