package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
)

// TestReadyOfAMemberLeftWithoutAQuorum: a server whose two peers of three
// stopped is not ready, saying no leader is known, and once it has asked
// the others for a leader again (its next join try, RetryInterval later)
// also which servers gave no answer, as docs/clustering.md's Rolling
// restarts says.
func TestReadyOfAMemberLeftWithoutAQuorum(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg := &registry{}
	var nodes []*cluster.Node
	for _, name := range []string{"a", "b", "c"} {
		n, _ := tcpServer(t, filepath.Join(root, name), reg, func(c *cluster.Config) { c.RetryInterval = time.Second })
		nodes = append(nodes, n)
	}
	l := leaderIndex(t, nodes)
	survivor := nodes[(l+1)%3]
	var gone []string
	for i, n := range nodes {
		if n == survivor {
			continue
		}
		st, err := n.Status()
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, st.Address)
		if err := n.Close(); err != nil {
			t.Fatalf("stopping server %d: %v", i, err)
		}
	}
	ctx := context.Background()
	var last error
	clustertest.Eventually(t, "the survivor to say which servers gave no answer", func() bool {
		last = survivor.Ready(ctx)
		if !errors.Is(last, cluster.ErrNotReady) || !strings.Contains(last.Error(), "not ready: no leader known") {
			return false
		}
		for _, a := range gone {
			if !strings.Contains(last.Error(), a) {
				return false
			}
		}
		return strings.Contains(last.Error(), "no foreshape server answered at")
	})
	t.Logf("ready: %v", last)
}
