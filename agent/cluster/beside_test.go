package cluster_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
)

// TestLeaderBesideAnotherCluster: a server whose own Raft state lets it
// lead alone (a single server's data_dir), started again with a
// retry_join naming a server of another cluster, wins its own election
// and leads its own cluster; it says so at ERROR, naming both clusters
// and what to do, once while it lasts (again after a while), where it
// said it only at INFO before its first election and never again.
func TestLeaderBesideAnotherCluster(t *testing.T) {
	t.Parallel()
	b := alone(t, t.TempDir(), "127.0.0.1:0", &logBuffer{})
	bID := waitClusterID(t, b)
	bst, err := b.Status()
	if err != nil {
		t.Fatal(err)
	}
	// Back at its address, as a server with a static port comes back, and
	// at another, which its own configuration no longer names; both at
	// once, each with a server of its own (b only refuses them).
	for _, moved := range []bool{false, true} {
		t.Run(map[bool]string{false: "same address", true: "moved"}[moved], func(t *testing.T) {
			t.Parallel()
			leaderBeside(t, bID, bst.Address, moved)
		})
	}
}

func leaderBeside(t *testing.T, bID, bAddr string, moved bool) {
	aDir := t.TempDir()
	addr := closedAddr(t)
	a := alone(t, aDir, addr, &logBuffer{})
	aID := waitClusterID(t, a)
	a.Close()
	if moved {
		addr = closedAddr(t)
	}

	logs := &logBuffer{}
	a2, _ := tcpServerLog(t, aDir, &registry{}, func(c *cluster.Config) {
		c.Discover, c.BootstrapExpect, c.RetryJoin, c.BindAddr = nil, 3, []string{bAddr}, addr
		c.RetryInterval = 100 * time.Millisecond
	}, teeLogger(t, filepath.Base(aDir), logs))
	waitLeading(t, a2)
	want := "this server's cluster runs beside another"
	clustertest.Eventually(t, "the leader to say it runs beside another cluster", func() bool {
		return strings.Contains(logs.String(), want)
	})
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, want) {
			line = l
			break
		}
	}
	for _, w := range []string{"[ERROR]", aID, bID, bAddr, "move its data_dir aside", "retry_join"} {
		if !strings.Contains(line, w) {
			t.Errorf("the line %q does not say %q", line, w)
		}
	}
	// Not again at every look (every 12 retry intervals, 1.2 s here).
	time.Sleep(3 * time.Second)
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("said %d times in 3 s; want once", n)
	}
	if _, ok := a2.LeaderContext(); !ok {
		t.Error("it stopped leading: the check only says so")
	}
	// Its status says so too, as its log does.
	st, err := a2.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{aID, bID, bAddr} {
		if !strings.Contains(st.BesideOther, w) {
			t.Errorf("status beside_other %q does not say %q", st.BesideOther, w)
		}
	}
}
