package cluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
)

// TestJoinWaitCountsEveryServerFound: a voting server without Raft state
// that finds more servers than bootstrap_expect, and is not among the
// first by ID, says how many it found, not how many bootstrap: with four
// found and bootstrap_expect = 3 it said "3 servers found". Here the
// other three wait for five, so none bootstraps and the fourth keeps
// waiting.
func TestJoinWaitCountsEveryServerFound(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	reg := &registry{}
	var last *cluster.Node
	for i := 1; i <= 4; i++ {
		dir := filepath.Join(root, string(rune('a'+i-1)))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		id := "00000000-0000-4000-8000-00000000000" + string(rune('0'+i))
		if err := os.WriteFile(filepath.Join(dir, "node-id"), []byte(id+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		expect := 5
		if i == 4 {
			expect = 3
		}
		last, _ = tcpServer(t, dir, reg, func(c *cluster.Config) {
			c.BootstrapExpect, c.Voters = expect, expect
		})
	}
	want := "4 servers found; the first 3 by id bootstrap"
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := last.JoinError()
		if err != nil && strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fourth server's join error: %v; want it to say %q", err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
