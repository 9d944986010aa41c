package command

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestListPeersAgeIsTheLeaders: list-peers prints how long ago each server
// last answered the leader as the leader measured it (last_contact_age_s),
// not as this machine's clock ages last_contact: with the leader's clock
// two hours ahead of this one it printed -1h59m57s. An agent older than
// the field sends last_contact alone: that is aged by this machine's
// clock, as before.
func TestListPeersAgeIsTheLeaders(t *testing.T) {
	ahead := time.Now().Add(2 * time.Hour) // the leader's clock
	healthy := true
	age := func(s float64) *float64 { return &s }
	leaderAt, followerAt, olderAt := ahead.Add(-200*time.Millisecond), ahead.Add(-3400*time.Millisecond), time.Now().Add(-42*time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.RaftConfiguration{AnsweredBy: "fs-1", Servers: []api.RaftServer{
			{ID: "id-1", Name: "fs-1", Address: "10.0.0.11:7576", Suffrage: "voter", Leader: true, Healthy: &healthy,
				LastContact: &leaderAt, LastContactAgeS: age(0.2)},
			{ID: "id-2", Name: "fs-2", Address: "10.0.0.12:7576", Suffrage: "voter", Healthy: &healthy,
				LastContact: &followerAt, LastContactAgeS: age(3.4)},
			{ID: "id-3", Name: "fs-3", Address: "10.0.0.13:7576", Suffrage: "voter", Healthy: &healthy, LastContact: &olderAt},
		}})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := map[string]string{"fs-1": "0s", "fs-2": "3s", "fs-3": "42s"}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || want[f[0]] == "" {
			continue
		}
		if f[6] != want[f[0]] {
			t.Errorf("%s: last contact %s; want %s\n%s", f[0], f[6], want[f[0]], out)
		}
		delete(want, f[0])
	}
	if len(want) > 0 {
		t.Errorf("no row for %v:\n%s", want, out)
	}
	code, out, _ = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL, "-json")
	if code != ExitOK || !strings.Contains(out, `"last_contact_age_s": 3.4`) || !strings.Contains(out, `"last_contact": "`) {
		t.Errorf("-json: exit %d, want last_contact and last_contact_age_s as sent:\n%s", code, out)
	}
}

// TestListPeersShowsAFailingDataDir: asked of the leader, list-peers
// shows a server that answers but cannot write to its data_dir as not
// healthy (the agent's healthy false) and says under the table which
// server, which file and why, escaped as other text from the agent is;
// -json gives data_dir_error as sent. An agent older than the field
// sends none, and list-peers prints no such line.
func TestListPeersShowsAFailingDataDir(t *testing.T) {
	const full = "this server cannot write /data/raft.db in its data_dir since 2026-12-06T11:59:00Z: the disk is full (write /data/raft.db: no space left on device); it takes no new entries and cannot lead until it can"
	yes, no := true, false
	var older bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := api.RaftConfiguration{AnsweredBy: "fs-1", Servers: []api.RaftServer{
			{ID: "id-1", Name: "fs-1", Address: "10.0.0.11:7576", Suffrage: "voter", Leader: true, Healthy: &yes},
			{ID: "id-2", Name: "fs-2", Address: "10.0.0.12:7576", Suffrage: "voter", Healthy: &no, DataDirError: full + "\x1b[2J"},
			{ID: "id-3", Address: "10.0.0.13:7576", Suffrage: "voter", Healthy: &no, DataDirError: full},
		}}
		if older {
			rc.Servers[1].Healthy, rc.Servers[1].DataDirError = &yes, ""
			rc.Servers = rc.Servers[:2]
		}
		_ = json.NewEncoder(w).Encode(rc)
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	healthy := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 8 && strings.HasPrefix(f[1], "id-") {
			healthy[f[1]] = f[5]
		}
	}
	if healthy["id-1"] != "true" || healthy["id-2"] != "false" || healthy["id-3"] != "false" {
		t.Errorf("healthy column %v; want id-1 true, id-2 and id-3 false:\n%s", healthy, out)
	}
	for _, want := range []string{
		"\nfs-2 cannot write to its data_dir, so it is not healthy: " + full + `\x1b[2J` + "\n",
		"\nid-3 cannot write to its data_dir, so it is not healthy: " + full + "\n", // no name yet: its ID
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if rawControl(out) {
		t.Errorf("the agent's control characters reached the terminal raw: %q", out)
	}
	code, out, _ = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL, "-json")
	if code != ExitOK || !strings.Contains(out, `"data_dir_error": "this server cannot write /data/raft.db`) {
		t.Errorf("-json: exit %d, want data_dir_error as sent:\n%s", code, out)
	}

	older = true
	code, out, _ = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if code != ExitOK || strings.Contains(out, "data_dir") {
		t.Errorf("an agent older than data_dir_error: exit %d, output:\n%s", code, out)
	}
}
