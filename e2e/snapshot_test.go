package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// cli runs the foreshape binary with args and returns its exit code and
// output.
func cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestSnapshotRestoreAfterLosingEveryServer runs three server processes
// against the simulator, submits moves, saves a snapshot with the CLI
// through a follower, kills every server (SIGKILL), starts one new server
// with an empty data_dir, and restores the snapshot into it with the CLI:
// the new server's queue then holds every request the old cluster's did
// when the snapshot was saved (by ID and resource), and inspect's counts
// are those restore says it restored.
func TestSnapshotRestoreAfterLosingEveryServer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	r := startClusterRun(t, 20, "testdata/cluster", 0, "")
	leader, _ := r.leader(-1, time.Time{})
	var before api.Queue
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		q, err := r.queue(leader)
		if err == nil && len(q.Requests) >= 2 {
			before = q
			break
		}
		if err == nil {
			if err := r.submitMove(leader); err != nil {
				t.Logf("submit: %v", err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two requests in the queue within 90s (%v)", err)
		}
	}
	file := filepath.Join(t.TempDir(), "cluster.snap")
	code, out := cli(t, "operator", "snapshot", "save", "-address", r.urls[(leader+1)%3], file)
	if code != 0 || !strings.Contains(out, "Saved "+file) {
		t.Fatalf("save: exit %d:\n%s", code, out)
	}
	for i := range 3 {
		r.kill(i)
	}

	dir := t.TempDir()
	httpPort := freePort(t)
	cfg := fmt.Sprintf(`
name      = "fresh"
data_dir  = %q
bind_addr = "127.0.0.1"
server {
  bootstrap_expect = 1
  raft_port        = %d
}
nomad {
  address = %q
}
http {
  address = "127.0.0.1:%d"
}
policies {
  dir = "testdata/cluster"
}
reserve {
  driver = "raw_exec"
  config = {
    command = "/bin/sleep"
    args    = ["infinity"]
  }
}
`, filepath.Join(dir, "data"), freePort(t), r.simURL, httpPort)
	path := filepath.Join(dir, "fresh.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := start(t, "fresh", "agent", "-config", path, "-sim-clock")
	url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, url+"/v1/health", 30*time.Second)
	fresh := &api.Client{Address: url}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st, err := fresh.Status(context.Background()); err == nil && st.IsLeader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new server does not lead within 60s:\n%s", tail(logs.String(), 30))
		}
	}
	code, out = cli(t, "operator", "snapshot", "restore", "-address", url, "-json", file)
	var res api.SnapshotRestore
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("restore: exit %d:\n%s\n%s", code, out, tail(logs.String(), 30))
	}
	code, out = cli(t, "operator", "snapshot", "inspect", "-json", file)
	var info api.SnapshotInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("inspect: exit %d:\n%s", code, out)
	}
	if info.State != res.Restored.State || info.SHA256 != res.Restored.SHA256 || res.Index <= info.Index || len(info.Servers) != 3 {
		t.Errorf("inspect %+v; restore answered %+v", info, res)
	}
	t.Logf("restored a backup of %d requests and %d series (state at index %d) into the new server, replacing %d requests and %d series; it stands at index %d",
		info.State.Requests, info.State.Series, info.Index, res.Replaced.Requests, res.Replaced.Series, res.Index)
	after, err := fresh.Queue(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, mr := range after.Requests {
		have[mr.ID] = mr.Resource
	}
	for _, mr := range before.Requests {
		if have[mr.ID] != mr.Resource {
			t.Errorf("request %s (%s) of the old cluster is not in the new server's queue: %v", mr.ID, mr.Resource, have)
		}
	}
}
