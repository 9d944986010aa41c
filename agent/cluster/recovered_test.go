package cluster_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
)

// leaderWork is a leader loop on a node, as the agent's cycle and act
// half are: active says whether one runs now, terms how many began.
type leaderWork struct{ active, terms atomic.Int32 }

func watchLeaderWork(n *cluster.Node) *leaderWork {
	w := &leaderWork{}
	go n.RunLeaderLoop(context.Background(), func(ctx context.Context) {
		w.terms.Add(1)
		w.active.Add(1)
		<-ctx.Done()
		w.active.Add(-1)
	})
	return w
}

// supersededMsg begins the ERROR line of a server told its cluster was
// recovered as another.
const supersededMsg = "this server's cluster was recovered from a lost quorum as another"

// quiet is how long a test watches servers that must not lead: three
// election timeouts of recServer's (500 ms). A follower that hears no
// leader stands for election within twice its timeout, a second; a
// returning leader was superseded 1.1 s after the recovered server started
// again (TestReturningOldServersStopLeading's log, -race at load 9). A
// shorter window can only miss what a longer one sees, never see more:
// 3 s cost TestASupersededServerStandsForNoElection, which runs alone,
// 3 s more.
const quiet = 1500 * time.Millisecond

// returningPair loses two servers of three, recovers the survivor s1 alone
// (started with tweakRecovered), stops it, and starts s0 and s2 again with
// their data_dirs (with tweakOld): they elect a leader of the old cluster,
// whose leader loop runs; s1 is then started again, at its address. It
// returns the servers, the old cluster's ID, the recovered one's, the old
// leader, the leader loops of s0 and s2, and when s1 was started again.
func returningPair(t *testing.T, tweakRecovered, tweakOld func(*cluster.Config)) (s0, s1, s2 *recServer, reg *registry, oldID, newID string, old *recServer, work map[*recServer]*leaderWork, back time.Time) {
	t.Helper()
	root := t.TempDir()
	reg, servers, a := lostQuorum(t, root)
	s0, s1, s2 = servers[0], servers[1], servers[2]
	oldID = s1.node.ClusterID()
	s1.stop(t)
	s1.peersFile(t, []*recServer{s1})
	s1.mustStart(t, reg, tweakRecovered)
	waitLeading(t, s1.node)
	a.waitHolds(t, "s1 recovered", s1.fsm)
	newID = s1.node.ClusterID()
	s1.stop(t)

	s0.mustStart(t, reg, tweakOld)
	s2.mustStart(t, reg, tweakOld)
	work = map[*recServer]*leaderWork{s0: watchLeaderWork(s0.node), s2: watchLeaderWork(s2.node)}
	ln := leaderOf(t, s0.node, s2.node)
	old = s0
	if ln == s2.node {
		old = s2
	}
	clustertest.Eventually(t, "the old leader's leader loop", func() bool { return work[old].active.Load() == 1 })
	if st := mustStatus(t, old.node); st.ClusterID != oldID || st.Superseded != "" {
		t.Fatalf("old leader: cluster %s, superseded %q; want the old cluster's, not superseded", st.ClusterID, st.Superseded)
	}

	back = time.Now()
	s1.mustStart(t, reg, tweakRecovered)
	waitLeading(t, s1.node)
	return s0, s1, s2, reg, oldID, newID, old, work, back
}

// TestReturningOldServersStopLeading: two lost servers back together with
// their data_dirs elect a leader of the old cluster, whose leader loop
// runs. Once that leader reaches the recovered server, which refuses it
// saying the old cluster was recovered as its own, it stops: its leader
// loop ends, it steps down and does not lead again; the other old server
// learns it too. Both say so in Status, Ready and OpInfo, each logs it
// once at ERROR, a restart keeps them out, and the recovered server leads
// on undisturbed. Moved aside, a data_dir's server joins the recovered
// cluster.
func TestReturningOldServersStopLeading(t *testing.T) {
	t.Parallel()
	s0, s1, s2, reg, oldID, newID, old, work, back := returningPair(t, nil, nil)
	lctx := waitLeading(t, s1.node)
	term := mustStatus(t, s1.node).Term

	clustertest.Eventually(t, old.name+"'s leader loop ended", func() bool { return work[old].active.Load() == 0 })
	t.Logf("the old leader %s's leader loop ended by %s after s1 started again", old.name, time.Since(back).Round(time.Millisecond))
	for _, s := range []*recServer{s0, s2} {
		clustertest.Eventually(t, s.name+" superseded, not leading", func() bool {
			st := mustStatus(t, s.node)
			return st.Superseded != "" && st.State != "Leader" && work[s].active.Load() == 0
		})
		t.Logf("%s superseded and not leading by %s after s1 started again", s.name, time.Since(back).Round(time.Millisecond))
	}
	began := map[*recServer]int32{s0: work[s0].terms.Load(), s2: work[s2].terms.Load()}
	marks := map[*recServer]int{s0: len(s0.logs.String()), s2: len(s2.logs.String())}
	time.Sleep(quiet)
	for _, s := range []*recServer{s0, s2} {
		st := mustStatus(t, s.node)
		if st.State == "Leader" || work[s].terms.Load() != began[s] {
			t.Errorf("%s: %s, %d leader terms began since it was superseded; want none", s.name, st.State, work[s].terms.Load()-began[s])
		}
		for _, want := range []string{oldID, newID, s1.id, "move its data_dir aside"} {
			if !strings.Contains(st.Superseded, want) {
				t.Errorf("%s: status says %q; want it to name %q", s.name, st.Superseded, want)
			}
		}
		if err := s.node.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "recovered as another") {
			t.Errorf("%s: ready: %v; want it not ready, superseded", s.name, err)
		}
		if got := s.node.Info().Superseded; got == "" {
			t.Errorf("%s: its info does not say it is superseded", s.name)
		}
		if c := strings.Count(s.logs.String(), supersededMsg); c != 1 {
			t.Errorf("%s: logged %q %d times; want once", s.name, supersededMsg, c)
		}
		// Standing for election again and again, reaching no one, raft
		// says nothing above DEBUG.
		for _, l := range strings.Split(s.logs.String()[marks[s]:], "\n") {
			if strings.Contains(l, s.name+".raft") && (strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]")) {
				t.Errorf("%s, superseded, logged: %s", s.name, l)
			}
		}
	}
	if !strings.Contains(old.logs.String(), "[ERROR]") {
		t.Errorf("%s: the supersession is not logged at ERROR", old.name)
	}
	if lctx.Err() != nil {
		t.Errorf("s1's leadership ended")
	}
	if st := mustStatus(t, s1.node); st.Term != term || st.State != "Leader" || st.ClusterID != newID || st.Superseded != "" {
		t.Errorf("s1: %s in term %d (was %d), cluster %s, superseded %q; want it leading as before in cluster %s", st.State, st.Term, term, st.ClusterID, st.Superseded, newID)
	}

	// Restarted with their data_dirs, they stay out.
	s0.stop(t)
	s2.stop(t)
	for _, s := range []*recServer{s0, s2} {
		mark := len(s.logs.String())
		s.mustStart(t, reg, nil)
		work[s] = watchLeaderWork(s.node)
		if st := mustStatus(t, s.node); !strings.Contains(st.Superseded, newID) {
			t.Errorf("%s restarted: superseded %q; want it still superseded by %s", s.name, st.Superseded, newID)
		}
		if !strings.Contains(s.logs.String()[mark:], "[ERROR]") {
			t.Errorf("%s restarted: no ERROR line says it is superseded", s.name)
		}
	}
	time.Sleep(quiet)
	for _, s := range []*recServer{s0, s2} {
		if st := mustStatus(t, s.node); st.State == "Leader" || work[s].terms.Load() != 0 {
			t.Errorf("%s restarted: %s, %d leader terms; want none", s.name, st.State, work[s].terms.Load())
		}
	}

	// Its data_dir moved aside, s0 is a new server and joins s1.
	s0.stop(t)
	if err := os.Rename(s0.dir, s0.dir+".old"); err != nil {
		t.Fatal(err)
	}
	fresh := newRecServer(t, t.TempDir(), "s0")
	fresh.addr = s0.addr
	fresh.mustStart(t, reg, nil)
	clustertest.Eventually(t, "s0 anew a voter", func() bool { return suffrage(t, s1.node)[fresh.id] == "voter" })
	// A voter in the leader's configuration may not have applied the
	// entry that names the cluster yet: it reads the cluster ID once it
	// has caught up.
	clustertest.Eventually(t, "s0 anew in the recovered cluster", func() bool { return mustStatus(t, fresh.node).ClusterID != "" })
	if st := mustStatus(t, fresh.node); st.ClusterID != newID || st.Superseded != "" {
		t.Errorf("s0 anew: cluster %s, superseded %q; want cluster %s, not superseded", st.ClusterID, st.Superseded, newID)
	}
	// It took the recovered cluster's recoveries, as a server that joins
	// after a recovery does: it can tell the old cluster's servers too.
	clustertest.Eventually(t, "s0 anew holding the recovery", func() bool {
		rs := fresh.node.Recoveries()
		return len(rs) == 1 && rs[0].Old == oldID && rs[0].New == newID
	})
}

// TestAnotherClustersRefusalFencesNothing: a server of a new, unrelated
// cluster at an address a cluster's configuration names refuses that
// cluster's leader's Raft connections as another cluster's, without a
// recovery of its cluster: the leader goes on leading.
func TestAnotherClustersRefusalFencesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, _ := lostQuorum(t, root)
	s0, s1, s2 := servers[0], servers[1], servers[2]
	s1.stop(t)
	s0.mustStart(t, reg, nil)
	s2.mustStart(t, reg, nil)
	ln := leaderOf(t, s0.node, s2.node)
	w := watchLeaderWork(ln)
	clustertest.Eventually(t, "the old cluster's leader loop", func() bool { return w.active.Load() == 1 })

	// A new cluster's server takes s1's address.
	other := newRecServer(t, t.TempDir(), "other")
	other.addr = s1.addr
	other.mustStart(t, reg, func(c *cluster.Config) { c.Bootstrap, c.Discover = true, nil })
	waitLeading(t, other.node)
	clustertest.Eventually(t, "the new cluster's server refusing the leader", func() bool {
		return strings.Contains(other.logs.String(), "refused a Raft connection")
	})
	time.Sleep(quiet)
	if w.active.Load() != 1 || w.terms.Load() != 1 {
		t.Errorf("the old cluster's leader loop: %d running, %d terms; want its one term running on", w.active.Load(), w.terms.Load())
	}
	for _, s := range []*recServer{s0, s2} {
		if st := mustStatus(t, s.node); st.Superseded != "" {
			t.Errorf("%s superseded by an unrelated cluster: %s", s.name, st.Superseded)
		}
	}
}

// TestSupersededNeedsBothReleases: where the recovered server, or the
// returning ones, run a release from before the recovery's answer, the
// returning servers are refused as before and their leader leads on.
func TestSupersededNeedsBothReleases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		recovered, returned func(*cluster.Config)
	}{
		{"recovered server older", cluster.OlderRecovered, nil},
		{"returning servers older", nil, cluster.OlderRecovered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, s1, _, _, oldID, _, old, work, _ := returningPair(t, tc.recovered, tc.returned)
			mark := len(s1.logs.String())
			clustertest.Eventually(t, "s1 refusing the old cluster's leader", func() bool {
				later := s1.logs.String()[mark:]
				return strings.Contains(later, "refused a Raft connection") && strings.Contains(later, oldID)
			})
			time.Sleep(quiet)
			st := mustStatus(t, old.node)
			if st.Superseded != "" || work[old].active.Load() != 1 {
				t.Errorf("old leader %s: superseded %q, leader loop running %d; want it leading on, as before", old.name, st.Superseded, work[old].active.Load())
			}
		})
	}
}

// TestALoneReturningServerIsToldItsClusterWasRecovered: one lost server
// back alone with its data_dir is told, when it asks the recovered server
// to join, or for its vote, that its cluster was recovered: its join error
// and status say so and what to do, and it leads nothing.
func TestALoneReturningServerIsToldItsClusterWasRecovered(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, _ := lostQuorum(t, root)
	s0, s1 := servers[0], servers[1]
	oldID := s1.node.ClusterID()
	s1.stop(t)
	s1.peersFile(t, []*recServer{s1})
	s1.mustStart(t, reg, nil)
	waitLeading(t, s1.node)
	newID := s1.node.ClusterID()

	s0.mustStart(t, reg, nil)
	w := watchLeaderWork(s0.node)
	var jerr error
	clustertest.Eventually(t, "s0 told its cluster was recovered", func() bool {
		jerr = s0.node.JoinError()
		return errors.Is(jerr, cluster.ErrSuperseded)
	})
	for _, want := range []string{oldID, newID, s1.id, "move its data_dir aside"} {
		if !strings.Contains(jerr.Error(), want) || !strings.Contains(mustStatus(t, s0.node).Superseded, want) {
			t.Errorf("s0's join error %q and status; want both to say %q", jerr, want)
		}
	}
	if st := mustStatus(t, s0.node); st.State == "Leader" || w.terms.Load() != 0 {
		t.Errorf("s0: %s, %d leader terms; want none", st.State, w.terms.Load())
	}
}

// warnLines returns the WARN and ERROR lines of logs.
func warnLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]") {
			out = append(out, l)
		}
	}
	return out
}

// TestASupersededServerStandsForNoElection: once superseded, a returning
// old server takes no further part in Raft: over several election timeouts
// its term stays where it was, its state is Superseded (not Candidate, not
// Leader), and it logs nothing more at WARN or ERROR. Started again from
// its data_dir, it is superseded from the start: its state is Superseded,
// its term never rises, and its one ERROR line says so.
//
// It is not run in parallel with the other tests: a hello the old peer
// sent just before it too was superseded may be read after the quiet
// window began, and the refusal is logged at WARN; with eight tests at
// once beside go test -race ./agent/, that happened once in three runs.
func TestASupersededServerStandsForNoElection(t *testing.T) {
	s0, s1, s2, reg, _, _, _, _, _ := returningPair(t, nil, nil)
	for _, s := range []*recServer{s0, s2} {
		clustertest.Eventually(t, s.name+" superseded", func() bool { return mustStatus(t, s.node).Superseded != "" })
	}
	terms := map[*recServer]uint64{s0: mustStatus(t, s0.node).Term, s2: mustStatus(t, s2.node).Term}
	marks := map[*recServer]int{s0: len(s0.logs.String()), s2: len(s2.logs.String())}
	time.Sleep(quiet)
	for _, s := range []*recServer{s0, s2} {
		st := mustStatus(t, s.node)
		if st.Term != terms[s] || st.State != cluster.StateSuperseded || st.Superseded == "" {
			t.Errorf("%s: %s in term %d (was %d) %s after it was superseded; want Superseded in term %d", s.name, st.State, st.Term, terms[s], quiet, terms[s])
		}
		for _, l := range warnLines(s.logs.String()[marks[s]:]) {
			t.Errorf("%s, superseded, logged: %s", s.name, l)
		}
		if c := strings.Count(s.logs.String()[marks[s]:], "entering candidate state"); c != 0 {
			t.Errorf("%s, superseded, stood for election %d times", s.name, c)
		}
		if c := strings.Count(s.logs.String()[marks[s]:], "asking the other servers again"); c != 0 {
			t.Errorf("%s, superseded, said %d times it asks the other servers for a leader", s.name, c)
		}
		if c := strings.Count(s.logs.String(), supersededMsg); c != 1 {
			t.Errorf("%s: logged %q %d times; want once", s.name, supersededMsg, c)
		}
	}
	if st := mustStatus(t, s1.node); st.State != "Leader" {
		t.Errorf("s1: %s; want it leading on", st.State)
	}
	// Its Raft port still answers, with what it is.
	var info cluster.ServerInfo
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (&cluster.RPCClient{}).Call(ctx, s0.addr, cluster.OpInfo, nil, &info); err != nil || info.Superseded == "" || info.State != cluster.StateSuperseded {
		t.Errorf("s0's info: %v, state %s, superseded %q; want it answered, Superseded", err, info.State, info.Superseded)
	}

	// Stopped, it stops at once; started again from its data_dir, it
	// stands for no election.
	for _, s := range []*recServer{s0, s2} {
		start := time.Now()
		if err := s.node.Close(); err != nil {
			t.Errorf("%s: close: %v", s.name, err)
		}
		t.Logf("%s, superseded, stopped in %s", s.name, time.Since(start).Round(time.Millisecond))
	}
	mark := len(s0.logs.String())
	s0.mustStart(t, reg, nil)
	st := mustStatus(t, s0.node)
	term := st.Term
	if st.State != cluster.StateSuperseded || st.Superseded == "" {
		t.Errorf("s0 restarted: %s, superseded %q; want Superseded", st.State, st.Superseded)
	}
	time.Sleep(quiet)
	if st := mustStatus(t, s0.node); st.Term != term || st.State != cluster.StateSuperseded {
		t.Errorf("s0 restarted: %s in term %d (started in %d) after %s; want Superseded in term %d", st.State, st.Term, term, quiet, term)
	}
	if c := strings.Count(s0.logs.String()[mark:], "entering candidate state"); c != 0 {
		t.Errorf("s0 restarted, superseded, stood for election %d times", c)
	}
	// Nor does it ask the other servers for a leader: its join loop ends.
	if c := strings.Count(s0.logs.String()[mark:], "asking the other servers again"); c != 0 {
		t.Errorf("s0 restarted, superseded, said %d times it asks the other servers for a leader", c)
	}
	loud := warnLines(s0.logs.String()[mark:])
	if len(loud) != 1 || !strings.Contains(loud[0], "[ERROR]") || !strings.Contains(loud[0], "move its data_dir aside") {
		t.Errorf("s0 restarted logged at WARN and ERROR:\n%s\nwant one ERROR line that says it is superseded and what to do", strings.Join(loud, "\n"))
	}
	if err := s0.node.Close(); err != nil {
		t.Errorf("s0: close: %v", err)
	}
}
