package cluster_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/internal/testpki"
)

// errorsSince returns the ERROR lines of log after its first from bytes.
func errorsSince(log string, from int) []string {
	var out []string
	for _, line := range strings.Split(log[from:], "\n") {
		if strings.Contains(line, "[ERROR]") {
			out = append(out, line)
		}
	}
	return out
}

// threeLoggedServers starts three servers over TCP (mutual TLS when tlsFor
// is set), each logging into its own buffer as well as the test's, waits
// for three voters and applies entries through the leader.
func threeLoggedServers(t *testing.T, tlsFor func(name string) *cluster.TLS, entries int) ([]*cluster.Node, []*logBuffer, *cluster.Node) {
	t.Helper()
	logs := []*logBuffer{{}, {}, {}}
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	for i := range 3 {
		name := fmt.Sprintf("s%d", i)
		nd, _ := tcpServerLog(t, filepath.Join(root, name), reg, func(c *cluster.Config) {
			if tlsFor != nil {
				c.TLS = tlsFor(name)
			}
		}, teeLogger(t, name, logs[i]))
		nodes = append(nodes, nd)
	}
	l := leaderOf(t, nodes...)
	clustertest.Eventually(t, "three voters", func() bool { return len(suffrage(t, l)) == 3 })
	for i := range entries {
		applyToLeader(t, nodes, []byte(fmt.Sprintf("v%d", i)))
	}
	return nodes, logs, l
}

// restartable are servers over TCP in one directory of the test's, each
// logging into a buffer of its own as well as the test's.
type restartable struct {
	t     *testing.T
	reg   *registry
	root  string
	nodes []*cluster.Node // the first three
	logs  []*logBuffer    // one per start, in order
}

// threeRestartable starts s0, s1 and s2 and waits until one leads three
// voters.
func threeRestartable(t *testing.T) *restartable {
	t.Helper()
	s := &restartable{t: t, reg: &registry{}, root: t.TempDir()}
	for i := range 3 {
		s.nodes = append(s.nodes, s.start(fmt.Sprintf("s%d", i), ""))
	}
	l := leaderOf(t, s.nodes...)
	clustertest.Eventually(t, "three voters", func() bool { return len(suffrage(t, l)) == 3 })
	return s
}

// start starts the server name, on bind when set: a stopped server back
// on its data and address. Its log is the last of s.logs.
func (s *restartable) start(name, bind string) *cluster.Node {
	buf := &logBuffer{}
	n, _ := tcpServerLog(s.t, filepath.Join(s.root, name), s.reg, func(c *cluster.Config) {
		if bind != "" {
			c.BindAddr = bind
		}
	}, teeLogger(s.t, name, buf))
	s.logs = append(s.logs, buf)
	return n
}

// TestCleanShutdownLogsNoError: a server that stops cleanly, the leader
// (which hands leadership over) and then a follower, logs no ERROR while
// it stops: the connections its peers had open to it are closed by its
// own shutdown, which raft's transport reported as "failed to decode
// incoming command" at ERROR. Nor do its peers, which it told it was
// leaving, about failing to reach it, nor the new leader at WARN ("failed
// to contact", three lines in its first 1.5 s). A peer that sends the
// transport garbage still gets its ERROR line. Over plain TCP and mutual
// TLS.
func TestCleanShutdownLogsNoError(t *testing.T) {
	t.Parallel()
	t.Run("tcp", func(t *testing.T) {
		t.Parallel()
		cleanShutdownLogsNoError(t, nil)
	})
	ca := testpki.NewCA(t, "foreshape")
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		cleanShutdownLogsNoError(t, func(name string) *cluster.TLS {
			return &cluster.TLS{Certificate: ca.Issue(t, name).TLSCertificate(t), CAs: ca.Pool()}
		})
	})
}

func cleanShutdownLogsNoError(t *testing.T, tlsFor func(name string) *cluster.TLS) {
	nodes, logs, l := threeLoggedServers(t, tlsFor, 20)
	// Every peer's replication and heartbeat connections are open.
	time.Sleep(200 * time.Millisecond)

	// A peer that speaks garbage on the Raft port: a real transport
	// failure, logged as ERROR by the server that reads it.
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	idx := func(n *cluster.Node) int {
		for i := range nodes {
			if nodes[i] == n {
				return i
			}
		}
		t.Fatal("not a node of the test")
		return -1
	}
	li := idx(l)
	var c net.Conn
	if tlsFor != nil {
		c, err = tls.Dial("tcp", st.Address, tlsFor("garbage").ClientConfig())
	} else {
		c, err = net.Dial("tcp", st.Address)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte{'R', 0xee, 0xee})
	clustertest.Eventually(t, "the garbage's ERROR line", func() bool {
		return len(errorsSince(logs[li].String(), 0)) > 0 &&
			strings.Contains(strings.Join(errorsSince(logs[li].String(), 0), "\n"), "failed to decode incoming command: error=\"unknown rpc type 238\"")
	})
	c.Close()

	// stop stops n and checks, two seconds later (raft's replication and
	// heartbeats to it have failed by then, and the leader's lease checks
	// warned three times), that no server logged an ERROR meanwhile, nor
	// a WARN naming n: neither n nor the peers it told it was leaving.
	stop := func(n *cluster.Node, what string) {
		id := n.Info().ID
		from := make([]int, len(logs))
		for i := range logs {
			from[i] = len(logs[i].String())
		}
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", what, err)
		}
		time.Sleep(2 * time.Second)
		for i := range logs {
			if errs := errorsSince(logs[i].String(), from[i]); len(errs) > 0 {
				t.Errorf("%s (s%d) stopping cleanly: s%d logged %d ERROR lines:\n%s", what, idx(n), i, len(errs), strings.Join(errs, "\n"))
			}
			for _, line := range strings.Split(logs[i].String()[from[i]:], "\n") {
				if strings.Contains(line, "[WARN]") && strings.Contains(line, id) {
					t.Errorf("%s (s%d) stopping cleanly: s%d warned about it: %s", what, idx(n), i, line)
				}
			}
		}
	}
	stop(l, "the leader")
	var rest []*cluster.Node
	for _, n := range nodes {
		if n != l {
			rest = append(rest, n)
		}
	}
	nl := leaderOf(t, rest...)
	applyToLeader(t, rest, []byte("after"))
	for _, n := range rest {
		if n != nl {
			stop(n, "a follower")
		}
	}
}

// TestAllStopLogsNoError: the three servers stopped at once, as `nomad job
// stop` stops them, log no ERROR: before, the last ones logged failing to
// reach the first (5-8 lines, "failed to appendEntries to … EOF").
func TestAllStopLogsNoError(t *testing.T) {
	t.Parallel()
	nodes, logs, _ := threeLoggedServers(t, nil, 5)
	time.Sleep(200 * time.Millisecond)
	from := make([]int, len(logs))
	for i := range logs {
		from[i] = len(logs[i].String())
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 30 * time.Millisecond) // the signals arrive a little apart
			if err := n.Close(); err != nil {
				t.Errorf("close s%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range logs {
		if errs := errorsSince(logs[i].String(), from[i]); len(errs) > 0 {
			t.Errorf("s%d logged %d ERROR lines:\n%s", i, len(errs), strings.Join(errs, "\n"))
		}
	}
}

// TestKilledFollowerLoggedOnce: a follower that stops answering without a
// word (killed) is an ERROR in the leader's log once, not once per failed
// heartbeat and append (raft retries at once, then backs off to about ten
// seconds: measured, 505 ERROR lines in 5 minutes about one killed
// follower); the failures after the first are DEBUG; when the follower is
// back, the leader says so at INFO with the failures it folded.
func TestKilledFollowerLoggedOnce(t *testing.T) {
	t.Parallel()
	s := threeRestartable(t)
	nodes := s.nodes
	leaderOf(t, nodes...)
	l := applyToLeader(t, nodes, []byte("v"))
	li := slices.Index(nodes, l)
	f := (li + 1) % 3
	st, err := nodes[f].Status()
	if err != nil {
		t.Fatal(err)
	}
	// The leader names a peer from its health checks' answers: wait for
	// one that heard every server (under load the first may come late).
	clustertest.Eventually(t, "the leader's health checks naming every server", func() bool {
		named := 0
		for _, h := range l.Health() {
			if h.Info != nil && h.Info.Name != "" {
				named++
			}
		}
		return named == 3
	})
	from := len(s.logs[li].String())
	if err := cluster.Crash(nodes[f]); err != nil {
		t.Fatal(err)
	}
	since := func() string { return s.logs[li].String()[from:] }
	about := func(level string) (n int) {
		for _, line := range strings.Split(since(), "\n") {
			if strings.Contains(line, "["+level+"]") && strings.Contains(line, st.Address) {
				n++
			}
		}
		return n
	}
	clustertest.Eventually(t, "the leader's first ERROR line about the killed follower", func() bool { return about("ERROR") > 0 })
	time.Sleep(3 * time.Second) // raft's heartbeats fail about ten times in that
	if n := about("ERROR"); n != 1 || !strings.Contains(since(), fmt.Sprintf("name=s%d then=", f)) {
		t.Errorf("%d ERROR lines about the killed follower in 3 s, want 1 naming it (s%d):\n%s", n, f, strings.Join(errorsSince(since(), 0), "\n"))
	}
	if n := about("DEBUG"); n < 3 {
		t.Errorf("%d folded failures (DEBUG) about the killed follower in 3 s, want several", n)
	}

	// Back on its address, with its data: one INFO line.
	if err := nodes[f].Close(); err != nil {
		t.Fatal(err)
	}
	nodes[f] = s.start(fmt.Sprintf("s%d", f), st.Address)
	clustertest.Eventually(t, "the leader's INFO line that the follower is reachable again", func() bool {
		return strings.Contains(since(), "server reachable again")
	})
	if !regexp.MustCompile(`\[INFO\] .*server reachable again: server=` + regexp.QuoteMeta(st.ID) + ` name=` + fmt.Sprintf("s%d", f) + ` address=` + regexp.QuoteMeta(st.Address) + ` unreachable_for=\S+ failures_folded=[1-9]`).MatchString(since()) {
		t.Errorf("the leader's line on the follower back, want its ID, name, address and the failures folded:\n%s", since())
	}
}
