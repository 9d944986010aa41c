package cluster_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
)

// recServer is one server of the recovery tests: a TCP server on loopback
// with its Raft state in dir and agent/state's FSM, restarted at the
// address it first took.
type recServer struct {
	name string
	dir  string
	id   string
	addr string
	node *cluster.Node
	fsm  *state.FSM
	logs *logBuffer
}

// newRecServer makes a server in root/name; start starts it.
func newRecServer(t *testing.T, root, name string) *recServer {
	t.Helper()
	dir := filepath.Join(root, name)
	id, err := cluster.LoadOrCreateNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &recServer{name: name, dir: dir, id: id, logs: &logBuffer{}}
}

// start starts s (at its first address once it has one) with a fresh
// state machine, joining through reg, and returns New's error.
func (s *recServer) start(t *testing.T, reg *registry, tweak func(*cluster.Config)) error {
	t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg := fastTCP(s.id, s.name, addr, s.dir, reg)
	cfg.Voters, cfg.PromoteAfter = 3, 2*time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	fsm, err := state.NewFSM(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.New(cfg, fsm, teeLogger(t, s.name, s.logs))
	if err != nil {
		return err
	}
	t.Cleanup(func() { n.Close() })
	s.node, s.fsm = n, fsm
	st := mustStatus(t, n)
	if s.addr == "" {
		s.addr = st.Address
		reg.add(st.Address)
	}
	return nil
}

func (s *recServer) mustStart(t *testing.T, reg *registry, tweak func(*cluster.Config)) {
	t.Helper()
	if err := s.start(t, reg, tweak); err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
}

func (s *recServer) stop(t *testing.T) {
	t.Helper()
	if err := s.node.Close(); err != nil {
		t.Logf("%s: close: %v", s.name, err)
	}
}

// crash stops s as a lost machine stops: without a word to its peers.
func (s *recServer) crash(t *testing.T) {
	t.Helper()
	if err := cluster.Crash(s.node); err != nil {
		t.Fatal(err)
	}
	s.node.Close()
}

// peersFile writes data_dir/peers.json naming servers (each a voter unless
// listed in nonVoters).
func (s *recServer) peersFile(t *testing.T, servers []*recServer, nonVoters ...*recServer) {
	t.Helper()
	var lines []string
	for _, o := range servers {
		lines = append(lines, fmt.Sprintf(`  {"id": %q, "address": %q, "non_voter": %v}`, o.id, o.addr, slices.Contains(nonVoters, o)))
	}
	writeFile(t, filepath.Join(s.dir, cluster.PeersFile), "[\n"+strings.Join(lines, ",\n")+"\n]\n")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// acked is what the cluster acknowledged: the queue's requests and the
// samples of one series.
type acked struct {
	requests []string
	minutes  int
}

var (
	recKey = state.Key{Locality: "dc1/web", Metric: "cpu"}
	recT0  = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
)

// write submits a request and appends a sample through the leader among
// nodes, and records both as acknowledged.
func (a *acked) write(t *testing.T, nodes ...*cluster.Node) {
	t.Helper()
	res := applyResult(t, nodes, submitCmd(fmt.Sprintf("alloc-%d", len(a.requests))))
	a.requests = append(a.requests, res.ID)
	applyResult(t, nodes, state.Encode(state.AppendSamples{Step: time.Minute, Samples: []state.Sample{
		{Key: recKey, Time: recT0.Add(time.Duration(a.minutes) * time.Minute), Value: float64(a.minutes)},
	}}))
	a.minutes++
}

// applyResult applies cmd through the leader among nodes and returns the
// state machine's result.
func applyResult(t *testing.T, nodes []*cluster.Node, cmd []byte) state.Result {
	t.Helper()
	l := leaderOf(t, nodes...)
	res := apply(t, l, cmd)
	r, ok := res.(state.Result)
	if !ok {
		t.Fatalf("apply result %#v; want a state.Result", res)
	}
	return r
}

// holds says how fsm differs from what was acknowledged ("" when it holds
// exactly that).
func (a *acked) holds(fsm *state.FSM) string {
	var ids []string
	for _, r := range fsm.Act().Requests {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, a.requests) {
		return fmt.Sprintf("requests %v, want %v", ids, a.requests)
	}
	g, err := fsm.Range(recKey, time.Minute, recT0, recT0.Add(time.Duration(a.minutes)*time.Minute))
	if err != nil {
		return fmt.Sprintf("series: %v", err)
	}
	for m := range a.minutes {
		if m >= len(g.Mean) || g.Mean[m] != float64(m) {
			return fmt.Sprintf("series %v, want 0 … %d", g.Mean, a.minutes-1)
		}
	}
	return ""
}

// waitHolds waits until fsm holds what was acknowledged.
func (a *acked) waitHolds(t *testing.T, who string, fsm *state.FSM) {
	t.Helper()
	var diff string
	for deadline := time.Now().Add(clustertest.Timeout); ; time.Sleep(10 * time.Millisecond) {
		if diff = a.holds(fsm); diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", who, diff)
		}
	}
}

// lostQuorum starts three servers in root (s0 bootstraps, s1 and s2 join
// and are promoted), writes through the leader, snapshots, writes more,
// waits until s1 (a follower) has applied every write, and crashes s0 and
// s2: s1 is left alone with every acknowledged write and no quorum.
func lostQuorum(t *testing.T, root string) (reg *registry, servers []*recServer, a *acked) {
	t.Helper()
	return lostMajority(t, root, 3, 1)
}

// lostMajority is lostQuorum with n servers, of which survivors (followers,
// never s0) are left with every acknowledged write, and the others crashed.
func lostMajority(t *testing.T, root string, n int, survivors ...int) (reg *registry, servers []*recServer, a *acked) {
	t.Helper()
	reg, a = &registry{}, &acked{}
	for i := range n {
		s := newRecServer(t, root, fmt.Sprintf("s%d", i))
		s.mustStart(t, reg, func(c *cluster.Config) {
			c.Voters = n
			if i == 0 {
				c.Bootstrap, c.Discover = true, nil
				return
			}
			slowToElect(c)
		})
		if i == 0 {
			waitLeading(t, s.node)
		}
		servers = append(servers, s)
	}
	var nodes []*cluster.Node
	for _, s := range servers {
		nodes = append(nodes, s.node)
	}
	clustertest.Eventually(t, fmt.Sprintf("%d voters", n), func() bool {
		v := suffrage(t, servers[0].node)
		for _, s := range servers {
			if v[s.id] != "voter" {
				return false
			}
		}
		return true
	})
	for range 3 {
		a.write(t, nodes...)
	}
	if err := leaderOf(t, nodes...).Snapshot(); err != nil {
		t.Fatal(err)
	}
	for _, i := range survivors {
		if err := servers[i].node.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		a.write(t, nodes...)
	}
	for _, i := range survivors {
		a.waitHolds(t, servers[i].name+" before the loss", servers[i].fsm)
		if _, ok := servers[i].node.LeaderContext(); ok {
			t.Fatalf("%s leads; the test wants each survivor a follower", servers[i].name)
		}
	}
	for i, s := range servers {
		if !slices.Contains(survivors, i) {
			s.crash(t)
		}
	}
	return reg, servers, a
}

// recoveryLines are the WARN lines a server logged recovering from a
// peers file.
func recoveryLines(logs *logBuffer) []string {
	var out []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "recovered the Raft configuration from a peers file") {
			out = append(out, l)
		}
	}
	return out
}

// appliedFiles lists the renamed peers files in dir.
func appliedFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, cluster.PeersFile+".applied-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecoverLostQuorumAlone: of three servers two are lost for good; the
// survivor, given a peers file naming only itself, recovers: it elects
// itself, holds every acknowledged write (from its snapshot and its log),
// takes new ones, renames the file, logs at WARN what it did and from
// which file, and a restart does not apply the file again. A new empty
// server then joins through the usual join, is promoted, and receives the
// whole state.
func TestRecoverLostQuorumAlone(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, a := lostQuorum(t, root)
	s1 := servers[1]
	oldID := s1.node.ClusterID()
	s1.stop(t)

	s1.peersFile(t, []*recServer{s1})
	s1.mustStart(t, reg, nil)
	waitLeading(t, s1.node)
	a.waitHolds(t, "s1 recovered", s1.fsm)
	a.write(t, s1.node)
	a.waitHolds(t, "s1 after a write", s1.fsm)

	st := mustStatus(t, s1.node)
	if len(st.Servers) != 1 || st.Servers[0].ID != s1.id || st.Servers[0].Address != s1.addr || !st.Servers[0].Voter {
		t.Errorf("configuration %+v; want s1 alone, a voter", st.Servers)
	}
	if st.ClusterID == "" || st.ClusterID == oldID {
		t.Errorf("cluster id %q after recovering, %q before; want a new one", st.ClusterID, oldID)
	}
	if _, err := os.Stat(filepath.Join(s1.dir, cluster.PeersFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("peers.json after the recovery: %v; want it renamed", err)
	}
	applied := appliedFiles(t, s1.dir)
	if len(applied) != 1 {
		t.Errorf("renamed peers files %v; want one", applied)
	}
	lines := recoveryLines(s1.logs)
	if len(lines) != 1 {
		t.Fatalf("recovery lines %q; want one", lines)
	}
	for _, want := range []string{"[WARN]", filepath.Join(s1.dir, cluster.PeersFile), filepath.Base(applied[0]), s1.id + " at " + s1.addr + " (voter)", "cluster_id=" + st.ClusterID, "old_cluster_id=" + oldID} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("recovery line %q; want it to say %q", lines[0], want)
		}
	}
	t.Logf("recovery line: %s", lines[0])

	// A restart does not apply the file again.
	s1.stop(t)
	s1.logs = &logBuffer{}
	s1.mustStart(t, reg, nil)
	waitLeading(t, s1.node)
	a.waitHolds(t, "s1 restarted", s1.fsm)
	if l := recoveryLines(s1.logs); len(l) != 0 {
		t.Errorf("recovery lines after a restart %q; want none", l)
	}
	if got := appliedFiles(t, s1.dir); !slices.Equal(got, applied) {
		t.Errorf("renamed peers files after a restart %v; want %v", got, applied)
	}
	if got := mustStatus(t, s1.node).ClusterID; got != st.ClusterID {
		t.Errorf("cluster id after a restart %s; want %s", got, st.ClusterID)
	}

	// A new server joins as any does, and is promoted.
	s3 := newRecServer(t, root, "s3")
	s3.mustStart(t, reg, nil)
	clustertest.Eventually(t, "s3 a voter", func() bool { return suffrage(t, s1.node)[s3.id] == "voter" })
	a.write(t, s1.node, s3.node)
	a.waitHolds(t, "s3 joined", s3.fsm)
	a.waitHolds(t, "s1 with s3", s1.fsm)
	if got := s3.node.ClusterID(); got != st.ClusterID {
		t.Errorf("s3's cluster id %q; want the recovered %s", got, st.ClusterID)
	}
}

// TestRecoverWithAReplacement: the survivor's peers file names itself and
// a replacement, a new server started empty beforehand (its ID read from
// its data_dir/node-id, its address from its status); the two elect a
// leader, the replacement receives every acknowledged write, and both
// take writes.
func TestRecoverWithAReplacement(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, a := lostQuorum(t, root)
	s1 := servers[1]
	s1.stop(t)

	// The replacement waits: the one server it finds knows no leader.
	s3 := newRecServer(t, root, "s3")
	s3.mustStart(t, reg, nil)
	if st := mustStatus(t, s3.node); len(st.Servers) != 0 {
		t.Fatalf("replacement's configuration %+v before the recovery; want none", st.Servers)
	}
	if id, err := cluster.ReadNodeID(s3.dir); err != nil || id != s3.id {
		t.Fatalf("replacement's node-id %q, %v; want %s", id, err, s3.id)
	}

	s1.peersFile(t, []*recServer{s1, s3})
	s1.mustStart(t, reg, nil)
	l := leaderOf(t, s1.node, s3.node)
	a.waitHolds(t, "s3, the replacement", s3.fsm)
	a.write(t, s1.node, s3.node)
	a.waitHolds(t, "s1 recovered", s1.fsm)
	a.waitHolds(t, "s3 after a write", s3.fsm)
	v := suffrage(t, l)
	if len(v) != 2 || v[s1.id] != "voter" || v[s3.id] != "voter" {
		t.Errorf("configuration %v; want s1 and s3, voters", v)
	}
	if id1, id3 := s1.node.ClusterID(), waitClusterID(t, s3.node); id1 != id3 {
		t.Errorf("cluster ids %s (s1) and %s (s3); want one", id1, id3)
	}
	if n := len(recoveryLines(s1.logs)); n != 1 {
		t.Errorf("%d recovery lines on s1; want one", n)
	}
	if got := appliedFiles(t, s1.dir); len(got) != 1 {
		t.Errorf("renamed peers files %v; want one", got)
	}
}

// TestReturningOldServersDoNotSplitTheRecoveredCluster: after the survivor
// recovered alone, the two lost servers come back with their data_dir and
// their old configuration. Alone, one is refused (its Raft state is the
// old cluster's; it is told to move its data_dir aside). Together they
// form a quorum of the old configuration and elect a leader of their own
// (which is why they must not come back with their data_dir; servers of
// this release stop once told, TestReturningOldServersStopLeading, so they
// run here as servers of a release before that answer), but even
// once their terms pass the recovered leader's, that leader is not
// disturbed: its Raft port refuses the old cluster, so it keeps leading in
// its term, with its configuration and state. Moved aside, a lost
// server's data_dir is new and the server joins the recovered cluster.
func TestReturningOldServersDoNotSplitTheRecoveredCluster(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, a := lostQuorum(t, root)
	s0, s1, s2 := servers[0], servers[1], servers[2]
	oldID := s1.node.ClusterID()
	s1.stop(t)
	s1.peersFile(t, []*recServer{s1})
	s1.mustStart(t, reg, nil)
	lctx := waitLeading(t, s1.node)
	a.waitHolds(t, "s1 recovered", s1.fsm)
	newID := s1.node.ClusterID()
	term := mustStatus(t, s1.node).Term

	// The returning servers run a release from before a recovered server
	// told them their cluster was recovered (recovered.go): with it, they
	// stop taking part once they reach s1
	// (TestReturningOldServersStopLeading); here they go on, and the
	// recovered cluster must still hold.
	s0.mustStart(t, reg, cluster.OlderRecovered)
	var jerr error
	clustertest.Eventually(t, "s0's join refused", func() bool {
		jerr = s0.node.JoinError()
		return errors.Is(jerr, cluster.ErrOtherCluster)
	})
	for _, want := range []string{oldID, newID, "move its data_dir aside"} {
		if !strings.Contains(jerr.Error(), want) {
			t.Errorf("s0's join error %q; want it to say %q", jerr, want)
		}
	}

	// Together, s0 and s2 elect a leader of the old configuration, and
	// push their term past s1's.
	s2.mustStart(t, reg, cluster.OlderRecovered)
	old := leaderOf(t, s0.node, s2.node)
	for mustStatus(t, old).Term <= term+1 {
		if err := cluster.TransferLeadership(old, "", ""); err != nil {
			t.Logf("transfer: %v", err)
		}
		old = leaderOf(t, s0.node, s2.node)
	}
	if st := mustStatus(t, old); st.ClusterID != oldID || len(st.Servers) != 3 {
		t.Errorf("old servers' leader: cluster %s, configuration %+v; want the old cluster's, three servers", st.ClusterID, st.Servers)
	}
	// The old leader reaches for s1, which refuses it.
	mark := len(s1.logs.String())
	clustertest.Eventually(t, "s1 refusing the old cluster's leader", func() bool {
		later := s1.logs.String()[mark:]
		return strings.Contains(later, "refused a Raft connection") && strings.Contains(later, oldID)
	})
	if lctx.Err() != nil {
		t.Errorf("s1's leadership ended when the old servers came back")
	}
	st := mustStatus(t, s1.node)
	if st.Term != term || st.State != "Leader" || len(st.Servers) != 1 || st.ClusterID != newID {
		t.Errorf("s1: %s in term %d (was %d), configuration %+v, cluster %s; want it leading alone, as before, in cluster %s", st.State, st.Term, term, st.Servers, st.ClusterID, newID)
	}
	a.write(t, s1.node)
	a.waitHolds(t, "s1 beside the old servers", s1.fsm)

	// What to do: stop them and move their data_dirs aside; started again,
	// a server is new and joins.
	s0.stop(t)
	s2.stop(t)
	if err := os.Rename(s0.dir, s0.dir+".old"); err != nil {
		t.Fatal(err)
	}
	fresh := newRecServer(t, root, "s0")
	fresh.addr = s0.addr
	fresh.mustStart(t, reg, nil)
	clustertest.Eventually(t, "s0 anew a voter", func() bool { return suffrage(t, s1.node)[fresh.id] == "voter" })
	a.waitHolds(t, "s0 anew", fresh.fsm)
	if got := fresh.node.ClusterID(); got != newID {
		t.Errorf("s0 anew: cluster id %q; want %s", got, newID)
	}
}

// TestPeersFileRefused: a peers file that is not valid JSON, names no
// server, names one twice or at a shared address, gives an address that
// does not parse, does not name the server it is in (or names it at
// another address), has no voter, or has a field a server does not take
// stops the start with an error naming the file, the line and column and
// what is wrong, and changes nothing: the file stays, and the server,
// started without it, has its state and configuration as before.
// ReadPeersFile, which only reads, refuses each with the same error.
func TestPeersFileRefused(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg := &registry{}
	s := newRecServer(t, root, "s")
	alone := func(c *cluster.Config) { c.Bootstrap, c.Discover = true, nil }
	s.mustStart(t, reg, alone)
	waitLeading(t, s.node)
	a := &acked{}
	a.write(t, s.node)
	before := mustStatus(t, s.node)
	s.stop(t)

	other := "0b6b3a52-6c4f-4f11-9f4c-3f1d2a9e7b10"
	cases := []struct {
		name, file string
		line       int
		// at is what the line holds where the fault is; "EOF" is its end.
		at, want string
	}{
		{"a comma too many", `[
  {"id": "SELF", "address": "ADDR",}
]`, 2, "}", "not valid JSON: invalid character '}'"},
		{"address not quoted", `[
  {"id": "SELF", "address": 10.0.0.11:7576}
]`, 2, ".0.11:7576", "not valid JSON: invalid character '.'"},
		{"empty file", "\n", 1, "", "the file is empty"},
		{"not a list", `{"id": "SELF", "address": "ADDR"}`, 1, "{", "the file holds an object, not a list of servers"},
		{"empty list", "[ ]", 1, "[", "the list names no server"},
		{"duplicate id", `[
  {"id": "SELF", "address": "ADDR"},
  {"id": "SELF", "address": "127.0.0.1:1"}
]`, 3, `"SELF"`, "server 2 has the id SELF of server 1"},
		{"duplicate address", `[
  {"id": "SELF", "address": "ADDR"},
  {"id": "OTHER", "address": "ADDR"}
]`, 3, `"ADDR"`, "server 2 has the address ADDR of server 1"},
		{"address without a port", `[
  {"id": "SELF", "address": "ADDR"},
  {"id": "OTHER", "address": "10.0.0.12"}
]`, 3, `"10.0.0.12"`, `server 2's "address" "10.0.0.12" is not HOST:PORT (missing port in address)`},
		{"port out of range", `[
  {"id": "SELF", "address": "ADDR"},
  {"id": "OTHER", "address": "10.0.0.12:75760"}
]`, 3, `"10.0.0.12:75760"`, `the port "75760" is not a number from 1 to 65535`},
		{"this server not named", `[
  {"id": "OTHER", "address": "ADDR"}
]`, 1, "[", "the file does not name this server (its id SELF, in its data_dir/node-id)"},
		{"this server at another address", `[
  {"id": "SELF", "address": "127.0.0.1:1"}
]`, 2, `"127.0.0.1:1"`, "the file names this server (SELF) at 127.0.0.1:1, but it serves Raft at ADDR"},
		{"no voter", `[
  {"id": "SELF", "address": "ADDR", "non_voter": true}
]`, 1, "[", "every server is a non_voter"},
		{"unknown field", `[
  {"id": "SELF", "address": "ADDR", "voter": true}
]`, 2, `"voter"`, `"voter" is not a field of a server: each takes "id", "address" and "non_voter"`},
		{"non_voter not a boolean", `[
  {"id": "SELF", "address": "ADDR", "non_voter": "yes"}
]`, 2, `"yes"`, `server 1's "non_voter" is a string, not true or false`},
		{"a field twice", `[
  {"id": "SELF", "id": "SELF", "address": "ADDR"}
]`, 2, `"id": "SELF", "address"`, `server 1 gives "id" twice`},
		{"no id", `[
  {"address": "ADDR"}
]`, 2, "{", `server 1 has no "id"`},
		{"no address", `[
  {"id": "SELF"}
]`, 2, "{", `server 1 (SELF) has no "address"`},
		{"the file ends early", `[
  {"id": "SELF", "address": "ADDR"}`, 2, "EOF", "the file ends before the list does"},
		{"text after the list", `[{"id": "SELF", "address": "ADDR"}] []`, 1, "[]", "not valid JSON: invalid character '[' after top-level value"},
	}
	path := filepath.Join(s.dir, cluster.PeersFile)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := strings.NewReplacer("SELF", s.id, "OTHER", other, "ADDR", s.addr).Replace(c.file)
			want := strings.NewReplacer("SELF", s.id, "OTHER", other, "ADDR", s.addr).Replace(c.want)
			at := strings.NewReplacer("SELF", s.id, "ADDR", s.addr).Replace(c.at)
			writeFile(t, path, file)
			err := s.start(t, reg, alone)
			if err == nil {
				t.Fatal("the server started; want the file refused")
			}
			var pe *cluster.PeersFileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T); want a *cluster.PeersFileError", err, err)
			}
			line := strings.Split(file, "\n")[c.line-1]
			col := strings.Index(line, at) + 1
			if at == "EOF" {
				col = len(line) + 1
			}
			where := fmt.Sprintf("%s:%d,%d: ", path, c.line, col)
			if !strings.Contains(err.Error(), where) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("error %q; want it to say %q, %q and that nothing was changed", err, where, want)
			}
			// ReadPeersFile, which `config validate` runs, says the same.
			if _, found, rerr := cluster.ReadPeersFile(s.dir, s.id, s.addr); !found || rerr == nil || rerr.Error() != pe.Error() {
				t.Errorf("ReadPeersFile: found %v, %v; want the error %q", found, rerr, pe)
			}
			if b, rerr := os.ReadFile(path); rerr != nil || string(b) != file {
				t.Errorf("the file after the refusal: %q, %v; want it as written", b, rerr)
			}
			if got := appliedFiles(t, s.dir); len(got) != 0 {
				t.Errorf("renamed peers files %v; want none", got)
			}
		})
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.mustStart(t, reg, alone)
	waitLeading(t, s.node)
	a.waitHolds(t, "after the refusals", s.fsm)
	after := mustStatus(t, s.node)
	if len(after.Servers) != 1 || after.Servers[0].ID != s.id || after.ClusterID != before.ClusterID {
		t.Errorf("after the refusals: configuration %+v, cluster %s; want it alone, cluster %s as before", after.Servers, after.ClusterID, before.ClusterID)
	}
}

// TestPeersFileRefusedWithoutRaftState: a server with no Raft state yet
// (a new one) refuses a peers file: there is nothing to recover, and it
// would otherwise make a cluster of its own.
func TestPeersFileRefusedWithoutRaftState(t *testing.T) {
	s := newRecServer(t, t.TempDir(), "new")
	reg := &registry{}
	s.mustStart(t, reg, nil)
	s.stop(t)
	path := filepath.Join(s.dir, cluster.PeersFile)
	s.peersFile(t, []*recServer{s})
	err := s.start(t, reg, nil)
	var pe *cluster.PeersFileError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), path+": this server has no Raft state to recover") {
		t.Fatalf("error %v; want the file refused: no Raft state", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the file after the refusal: %v; want it left", err)
	}
}

// TestPeersFileRefusedBeforeTheRaftStoreIsMade: a server with a node ID
// and nothing else in its data_dir (no raft.db, no snapshot) refuses a
// peers file before it opens the Raft store, so that the refusal's
// "nothing was changed" is true: the data_dir holds the node ID and the
// file alone after it. It made an empty raft.db and snapshots/ first.
// Once a start made them (here: one without the file), the refusal comes
// after the store is opened and names nothing created, as that start
// created nothing.
func TestPeersFileRefusedBeforeTheRaftStoreIsMade(t *testing.T) {
	s := newRecServer(t, t.TempDir(), "new")
	// The file names the server at the address it serves Raft at, so
	// that nothing but the missing state refuses it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.peersFile(t, []*recServer{s})
	reg := &registry{}
	err = s.start(t, reg, nil)
	var pe *cluster.PeersFileError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "this server has no Raft state to recover") || !strings.Contains(err.Error(), "; nothing was changed:") {
		t.Fatalf("error %v; want the file refused: no Raft state, nothing changed", err)
	}
	var left []string
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"node-id", cluster.PeersFile}; !slices.Equal(left, want) {
		t.Errorf("the data_dir after the refusal holds %q; want %q", left, want)
	}

	path := filepath.Join(s.dir, cluster.PeersFile)
	moved := path + ".aside"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	s.mustStart(t, reg, nil)
	s.stop(t)
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	err = s.start(t, reg, nil)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "; nothing was changed:") {
		t.Fatalf("error %v; want the file refused, nothing changed", err)
	}
}

// TestPeersFileAppliedAgainChangesNothing: a server stopped after it
// recovered and before it renamed the file (here: the file put back)
// applies it again at its next start, which leaves its state, its
// configuration and its cluster ID as the first recovery made them.
func TestPeersFileAppliedAgainChangesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, a := lostQuorum(t, root)
	s1 := servers[1]
	s1.stop(t)
	s1.peersFile(t, []*recServer{s1})
	s1.mustStart(t, reg, nil)
	waitLeading(t, s1.node)
	a.write(t, s1.node)
	first := mustStatus(t, s1.node)
	s1.stop(t)

	s1.peersFile(t, []*recServer{s1})
	s1.logs = &logBuffer{}
	s1.mustStart(t, reg, nil)
	waitLeading(t, s1.node)
	a.waitHolds(t, "s1 after the second recovery", s1.fsm)
	st := mustStatus(t, s1.node)
	if len(st.Servers) != 1 || st.Servers[0].ID != s1.id || st.ClusterID != first.ClusterID {
		t.Errorf("after the second recovery: configuration %+v, cluster %s; want s1 alone, cluster %s", st.Servers, st.ClusterID, first.ClusterID)
	}
	if n := len(recoveryLines(s1.logs)); n != 1 {
		t.Errorf("%d recovery lines at the second start; want one", n)
	}
}

// TestRecoverTwoSurvivorsWithTheSameFile: of five servers three are lost;
// the two left, each given a peers file naming both (in another order on
// each), elect a leader between them, take one cluster ID, hold every
// acknowledged write and take new ones.
func TestRecoverTwoSurvivorsWithTheSameFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg, servers, a := lostMajority(t, root, 5, 1, 2)
	s1, s2 := servers[1], servers[2]
	oldID := s1.node.ClusterID()
	s1.stop(t)
	s2.stop(t)
	s1.peersFile(t, []*recServer{s1, s2})
	s2.peersFile(t, []*recServer{s2, s1})
	s1.mustStart(t, reg, nil)
	s2.mustStart(t, reg, nil)
	l := leaderOf(t, s1.node, s2.node)
	a.write(t, s1.node, s2.node)
	a.waitHolds(t, "s1 recovered", s1.fsm)
	a.waitHolds(t, "s2 recovered", s2.fsm)
	v := suffrage(t, l)
	if len(v) != 2 || v[s1.id] != "voter" || v[s2.id] != "voter" {
		t.Errorf("configuration %v; want s1 and s2, voters", v)
	}
	id1, id2 := s1.node.ClusterID(), s2.node.ClusterID()
	if id1 != id2 || id1 == oldID {
		t.Errorf("cluster ids %s (s1) and %s (s2), %s before; want one, new", id1, id2, oldID)
	}
	for _, s := range []*recServer{s1, s2} {
		if n := len(recoveryLines(s.logs)); n != 1 {
			t.Errorf("%d recovery lines on %s; want one", n, s.name)
		}
	}
}
