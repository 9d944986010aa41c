package cluster_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
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

// TestCleanShutdownLogsNoError: a server that stops cleanly, the leader
// (which hands leadership over) and then a follower, logs no ERROR while
// it stops: the connections its peers had open to it are closed by its
// own shutdown, which raft's transport reported as "failed to decode
// incoming command" at ERROR. A peer that sends the transport garbage
// still gets its ERROR line. Over plain TCP and mutual TLS.
func TestCleanShutdownLogsNoError(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { cleanShutdownLogsNoError(t, nil) })
	ca := testpki.NewCA(t, "foreshape")
	t.Run("tls", func(t *testing.T) {
		cleanShutdownLogsNoError(t, func(name string) *cluster.TLS {
			return &cluster.TLS{Certificate: ca.Issue(t, name).TLSCertificate(t), CAs: ca.Pool()}
		})
	})
}

func cleanShutdownLogsNoError(t *testing.T, tlsFor func(name string) *cluster.TLS) {
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
	for i := range 20 {
		applyToLeader(t, nodes, []byte(fmt.Sprintf("v%d", i)))
	}
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

	stop := func(n *cluster.Node, what string) {
		i := idx(n)
		from := len(logs[i].String())
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", what, err)
		}
		if errs := errorsSince(logs[i].String(), from); len(errs) > 0 {
			t.Errorf("%s (s%d) stopping cleanly logged %d ERROR lines:\n%s", what, i, len(errs), strings.Join(errs, "\n"))
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
