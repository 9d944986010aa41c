package command

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestStatusOfAServerThatCannotWrite: a server whose data_dir cannot be
// written says why in status's "Data dir" line.
func TestStatusOfAServerThatCannotWrite(t *testing.T) {
	const why = "this server cannot write /var/lib/foreshape/raft.db in its data_dir since 2026-12-06T10:38:02Z: the disk is full (write /var/lib/foreshape/raft.db: no space left on device); it takes no new entries until it can"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Node: "fs-1", State: "Follower", NoLeader: "no leader elected", DataDirError: why})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK || !strings.Contains(out, "Data dir    "+why) {
		t.Errorf("status: exit %d (%s), output lacks the Data dir line:\n%s", code, errOut, out)
	}
}

// TestStatusNamesAPeerThatCannotWrite: asked of the leader, status's
// servers table calls a server whose data_dir fails not healthy, and a line
// under it says why, as list-peers does; an agent older than the field
// prints no such line.
func TestStatusNamesAPeerThatCannotWrite(t *testing.T) {
	const why = "this server cannot write /data/raft.db in its data_dir since 2026-12-06T11:59:00Z: the disk is full (write /data/raft.db: no space left on device); it takes no new entries and cannot lead until it can"
	yes, no := true, false
	older := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := api.Status{Node: "id-1", State: "Leader", IsLeader: true, Leader: "10.0.0.11:7576", Peers: []api.Peer{
			{ID: "id-1", Name: "fs-1", Address: "10.0.0.11:7576", Suffrage: "voter", Leader: true, Healthy: &yes},
			{ID: "id-2", Name: "fs-2", Address: "10.0.0.12:7576", Suffrage: "voter", Healthy: &no, DataDirError: why + "\x1b[2J"},
		}}
		if older {
			st.Peers[1].DataDirError = ""
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	want := "\nfs-2 (id-2) cannot write to its data_dir, so it is not healthy: " + why + `\x1b[2J` + "\n"
	if code != ExitOK || !strings.Contains(out, want) {
		t.Errorf("status: exit %d (%s), output lacks %q:\n%s", code, errOut, want, out)
	}
	if rawControl(out) {
		t.Errorf("the agent's control characters reached the terminal raw: %q", out)
	}
	older = true
	if code, out, _ = runCLI(t, "status", "-address", srv.URL); code != ExitOK || strings.Contains(out, "cannot write") {
		t.Errorf("an agent older than the field: exit %d, output:\n%s", code, out)
	}
}
