package e2e

import (
	"context"
	"fmt"
	"io"
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

// stop stops server i with SIGINT and waits for it to exit.
func (r *clusterRun) stop(i int) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.procs[i]
	r.alive[i] = false
	r.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		r.t.Fatal(err)
	}
	_ = cmd.Wait()
}

// queueStates is a queue's requests as "ID state", in order.
func queueStates(q api.Queue) []string {
	var out []string
	for _, mr := range q.Requests {
		out = append(out, mr.ID+" "+string(mr.State))
	}
	return out
}

// waitUntil polls cond every 100ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
	}
}

// TestRecoverFromALostQuorumWithAgents runs three server processes
// against the simulator, pauses the queue and submits requests, then kills
// two servers with SIGKILL: the survivor, stopped, given a peers.json
// naming itself and started again, leads with the queue as the cluster
// acknowledged it, logs the recovery at WARN and renames the file. The two
// lost servers started again with their data_dirs while the survivor is
// stopped elect a leader of the old cluster, which stops leading once the
// survivor runs again and tells it its cluster was recovered; the other
// learns it too. With its data_dir moved aside a lost server joins and
// receives the state.
func TestRecoverFromALostQuorumWithAgents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := startClusterRun(t, 20, "testdata/cluster", 0, "")
	leader, _ := r.leader(-1, time.Time{})
	if _, err := r.client(leader).Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.submitMove(leader); err != nil {
			t.Fatal(err)
		}
	}
	q, err := r.queue(leader)
	if err != nil {
		t.Fatal(err)
	}
	want := queueStates(q)
	survivor := (leader + 1) % 3
	waitUntil(t, 30*time.Second, "survivor holding the queue", func() bool {
		sq, err := r.queue(survivor)
		return err == nil && sq.Paused && slices.Equal(requestIDs(queueStates(sq)), requestIDs(want))
	})
	st, err := r.client(survivor).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, addr := st.Node, ""
	for _, p := range st.Peers {
		if p.ID == id {
			addr = p.Address
		}
	}
	if b, err := os.ReadFile(filepath.Join(r.data[survivor], "node-id")); err != nil || strings.TrimSpace(string(b)) != id || addr == "" {
		t.Fatalf("survivor's node-id %q, %v; status names it %s at %q", b, err, id, addr)
	}

	var lost []int
	for i := range 3 {
		if i != survivor {
			r.kill(i)
			lost = append(lost, i)
		}
	}
	waitUntil(t, 30*time.Second, "survivor saying no leader is elected", func() bool {
		st, err := r.client(survivor).Status(ctx)
		return err == nil && st.Leader == "" && strings.Contains(st.NoLeader, "no leader elected")
	})
	r.stop(survivor)
	file := filepath.Join(r.data[survivor], "peers.json")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("[\n  {\"id\": %q, \"address\": %q, \"non_voter\": false}\n]\n", id, addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	r.startServer(survivor)
	if l, at := r.leader(-1, started); l != survivor {
		t.Fatalf("server-%d leads; want the survivor, server-%d", l, survivor)
	} else {
		t.Logf("the survivor led %s after its start", at.Sub(started).Round(time.Millisecond))
	}
	// By ID: the leader's planner may have moved a request from pending
	// to waiting before the kill.
	sq, err := r.queue(survivor)
	if err != nil || !sq.Paused || !slices.Equal(requestIDs(queueStates(sq)), requestIDs(want)) {
		t.Errorf("survivor's queue %v (paused %v), %v; want %v, paused", queueStates(sq), sq.Paused, err, want)
	}
	// A write: the queue resumed (its moves may then start, so the
	// requests are compared by ID from here on).
	if _, err := r.client(survivor).Pause(ctx, false); err != nil {
		t.Errorf("resume after the recovery: %v", err)
	}
	log := r.logs[survivor].String()
	if !strings.Contains(log, "[WARN]  foreshape.cluster: recovered the Raft configuration from a peers file") || !strings.Contains(log, "file="+file) {
		t.Errorf("survivor's log has no recovery line naming %s:\n%s", file, tail(log, 30))
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("peers.json after the recovery: %v; want it renamed", err)
	}
	if m, _ := filepath.Glob(file + ".applied-*"); len(m) != 1 {
		t.Errorf("renamed peers files %v; want one", m)
	}

	// The two lost servers back with their data_dirs while the survivor is
	// stopped elect a leader of the old cluster. Once the survivor runs
	// again, that leader reaches it, is told its cluster was recovered,
	// and stops leading; so does the other.
	r.stop(survivor)
	since := time.Now()
	for _, i := range lost {
		r.startServer(i)
	}
	oldLeader, _ := r.leader(survivor, since)
	restarted := time.Now()
	r.startServer(survivor)
	for _, i := range append([]int{oldLeader}, slices.DeleteFunc(slices.Clone(lost), func(i int) bool { return i == oldLeader })...) {
		waitUntil(t, 60*time.Second, fmt.Sprintf("server-%d superseded", i), func() bool {
			st, err := r.client(i).Status(ctx)
			return err == nil && !st.IsLeader && strings.Contains(st.Superseded, "move its data_dir aside")
		})
		t.Logf("server-%d (the old cluster's leader: %v) superseded and not leading %s after the survivor started again",
			i, i == oldLeader, time.Since(restarted).Round(time.Millisecond))
	}
	superseded := len(r.logs[oldLeader].String())
	if l, _ := r.leader(-1, time.Now()); l != survivor {
		t.Errorf("server-%d leads; want the survivor, server-%d", l, survivor)
	}
	if st, err := r.client(survivor).Status(ctx); err != nil || !st.IsLeader || len(st.Peers) != 1 {
		t.Errorf("survivor beside the returning servers: leader %v, peers %+v, %v; want it leading alone", st.IsLeader, st.Peers, err)
	}
	const supersededLine = "[ERROR] foreshape.cluster: this server's cluster was recovered from a lost quorum as another"
	if log := r.logs[oldLeader].String(); strings.Count(log, supersededLine) != 1 {
		t.Errorf("server-%d's log has not one ERROR line saying it was superseded:\n%s", oldLeader, tail(log, 30))
	} else {
		t.Logf("server-%d logged: %s", oldLeader, log[strings.Index(log, supersededLine):][:strings.Index(log[strings.Index(log, supersededLine):], "\n")])
	}
	if rc, err := r.client(oldLeader).RaftConfiguration(ctx); err != nil || !slices.ContainsFunc(rc.Servers, func(s api.RaftServer) bool {
		return strings.Contains(s.Superseded, "move its data_dir aside")
	}) {
		t.Errorf("server-%d's raft configuration %+v, %v; want it to say it is superseded", oldLeader, rc, err)
	}
	for i, want := range map[int]string{oldLeader: "foreshape_cluster_superseded 1", survivor: "foreshape_cluster_superseded 0"} {
		resp, err := http.Get(r.urls[i] + "/v1/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("server-%d's /v1/metrics lacks %s", i, want)
		}
	}
	if h, err := r.client(oldLeader).Ready(ctx); err == nil {
		t.Errorf("server-%d ready: %+v; want it not ready", oldLeader, h)
	} else {
		t.Logf("server-%d ready: %v", oldLeader, err)
	}
	// Its forecasts answer 503 saying why; reads made once it is
	// superseded (status's above, these) log nothing.
	if resp, err := http.Get(r.urls[oldLeader] + "/v1/forecasts"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "move its data_dir aside") {
			t.Errorf("server-%d's /v1/forecasts: %d %s; want 503 saying it is superseded", oldLeader, resp.StatusCode, body)
		}
	}
	if log := r.logs[oldLeader].String()[superseded:]; strings.Contains(log, "cannot read the leader's last cycle") {
		t.Errorf("server-%d, superseded, logged that it cannot read the leader's cycle:\n%s", oldLeader, tail(log, 30))
	}
	back := lost[0]
	for _, i := range lost {
		if i != back {
			r.stop(i)
		}
	}

	// Moved aside, its data_dir is new: it joins and receives the state.
	r.stop(back)
	if err := os.Rename(r.data[back], r.data[back]+".old"); err != nil {
		t.Fatal(err)
	}
	r.startServer(back)
	var bq, svq api.Queue
	var berr, serr error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		bq, berr = r.queue(back)
		svq, serr = r.queue(survivor)
		// By ID in any order: the survivor's moves may have run meanwhile
		// (done requests then come first).
		got, all := requestIDs(queueStates(bq)), requestIDs(want)
		slices.Sort(got)
		slices.Sort(all)
		if berr == nil && serr == nil && !bq.Paused && slices.Equal(got, all) && slices.Equal(queueStates(bq), queueStates(svq)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server joined anew has the queue %v (paused %v, %v); the survivor's %v (paused %v, %v); want the survivor's, resumed",
				queueStates(bq), bq.Paused, berr, queueStates(svq), svq.Paused, serr)
		}
	}
}

// requestIDs is queueStates' IDs without their states.
func requestIDs(reqs []string) []string {
	var out []string
	for _, r := range reqs {
		id, _, _ := strings.Cut(r, " ")
		out = append(out, id)
	}
	return out
}
