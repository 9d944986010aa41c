package command

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// superseded is what a server says once its cluster was recovered as
// another (agent/cluster's SupersededError).
const superseded = "cluster: this server's cluster was recovered as another: cluster d31e285c-c68c-4f01-a4e2-9225bcdc9507 was recovered from a lost quorum as cluster 4e79c2c6-7a46-83a6-8cc9-18773a7260b1 at 2026-12-06T13:33:17Z, by the servers ce557ff3 at 127.0.0.1:17576 (the server at 127.0.0.1:17576 said so at 2026-12-06T13:40:02Z); this server holds the old cluster's Raft state and does not lead or vote in it: stop it, move its data_dir aside and start it again: it joins cluster 4e79c2c6-7a46-83a6-8cc9-18773a7260b1 as a new server and receives its state"

// TestStatusOfASupersededServer: a server whose cluster was recovered as
// another says so in status's State and "Superseded" lines, its Leader
// line says it takes part in no election (not that one is waiting for
// voters), and list-peers asked of it says it under the table, escaped as
// other text from the agent is.
func TestStatusOfASupersededServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/operator/raft/configuration") {
			_ = json.NewEncoder(w).Encode(api.RaftConfiguration{AnsweredBy: "fs-0", Servers: []api.RaftServer{
				{ID: "id-0", Name: "fs-0", Address: "10.0.0.10:7576", Suffrage: "voter", Superseded: superseded + "\x1b[2J"},
				{ID: "id-1", Address: "10.0.0.11:7576", Suffrage: "voter"},
			}})
			return
		}
		_ = json.NewEncoder(w).Encode(api.Status{Node: "fs-0", State: "Superseded", NoLeader: "no leader elected: a leader needs 2 of the 3 voters running (" + superseded + ")", Superseded: superseded})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	for _, want := range []string{"\nState       Superseded\n", "\nSuperseded  " + superseded + "\n", "\nLeader      none: this server takes part in no election (Superseded, above)\n"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("status: exit %d (%s), output lacks %q:\n%s", code, errOut, want, out)
		}
	}
	if strings.Contains(out, "no leader elected") {
		t.Errorf("status of a superseded server says a leader is to be elected:\n%s", out)
	}
	code, out, errOut = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if want := "\nfs-0 no longer leads or votes: " + superseded + `\x1b[2J` + "\n"; code != ExitOK || !strings.Contains(out, want) {
		t.Errorf("list-peers: exit %d (%s), output lacks %q:\n%s", code, errOut, want, out)
	}
	if strings.Contains(out, "id-1 no longer") {
		t.Errorf("list-peers says a server that is not superseded is:\n%s", out)
	}
}
