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

// TestStatusWithoutALeader: a server that knows no leader says why in the
// Leader line, and does not point at an empty leader for the cycle.
func TestStatusWithoutALeader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{
			Node: "fs-3", State: "Candidate", Term: 7,
			NoLeader: "no leader elected: a leader needs 2 of the 3 voters running and reaching each other",
			Peers:    []api.Peer{{ID: "fs-3", Address: "10.0.0.13:7576", Suffrage: "voter"}},
		})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"none: no leader elected: a leader needs 2 of the 3 voters running and reaching each other",
		"Last cycle  none: no leader runs the cycle",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "leader ()") {
		t.Errorf("output names an empty leader:\n%s", out)
	}
}

// TestListPeersWithoutALeader: asked of a server that knows no leader,
// list-peers does not call the other servers followers, and says there is
// no leader.
func TestListPeersWithoutALeader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.RaftConfiguration{AnsweredBy: "fs-3", Servers: []api.RaftServer{
			{ID: "id-1", Name: "fs-1", Address: "10.0.0.11:7576", Suffrage: "voter"},
			{ID: "id-3", Name: "fs-3", Address: "10.0.0.13:7576", Suffrage: "voter"},
		}})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "follower") || !strings.Contains(out, "No leader: fs-3 knows of none") {
		t.Errorf("output:\n%s", out)
	}
}

// TestStatusOfAServerOlderThanTheLog: a server whose state stopped applying
// the log (its release is older than the cluster's) says so in status, and
// list-peers asked of the leader names it.
func TestStatusOfAServerOlderThanTheLog(t *testing.T) {
	const halted = "state: stopped applying the log at index 812: this build cannot read its entry of type command(68) (state: unknown command type 68); the state is the cluster's as of index 811: this server is older than the cluster's log: upgrade it to the release the other servers run"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/operator/raft/configuration" {
			healthy := true
			_ = json.NewEncoder(w).Encode(api.RaftConfiguration{AnsweredBy: "fs-1", Servers: []api.RaftServer{
				{ID: "id-1", Name: "fs-1", Address: "10.0.0.11:7576", Suffrage: "voter", Leader: true, Healthy: &healthy},
				{ID: "id-3", Name: "fs-3", Address: "10.0.0.13:7576", Suffrage: "voter", Healthy: &healthy, Halted: halted},
			}})
			return
		}
		_ = json.NewEncoder(w).Encode(api.Status{Node: "fs-3", State: "Follower", Leader: "10.0.0.11:7576", Halted: halted})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK || !strings.Contains(out, "Halted      "+halted) {
		t.Errorf("status: exit %d (%s), output lacks the Halted line:\n%s", code, errOut, out)
	}
	code, out, errOut = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	if code != ExitOK || !strings.Contains(out, "fs-3 stopped applying the log: "+halted) {
		t.Errorf("list-peers: exit %d (%s), output:\n%s", code, errOut, out)
	}
}

// TestListPeersOfAServerThatNeverJoined: an empty Raft configuration (a
// server that has not joined a cluster yet) says so, what it waits for and
// where to look; it printed the table's header alone, which passed for an
// answer about a cluster. -json is the agent's answer as it is.
func TestListPeersOfAServerThatNeverJoined(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.RaftConfiguration{AnsweredBy: "fs-3", Servers: []api.RaftServer{}})
	}))
	t.Cleanup(srv.Close)
	code, out, errOut := runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL)
	for _, want := range []string{"No servers: fs-3 has not joined a cluster yet", "server.bootstrap_expect", "server.retry_join",
		"'foreshape status' on it says"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("exit %d (%s), output lacks %q:\n%s", code, errOut, want, out)
		}
	}
	if strings.Contains(out, "Name") || strings.Count(out, "\n") != 1 {
		t.Errorf("output is not the one line:\n%s", out)
	}
	code, out, _ = runCLI(t, "operator", "raft", "list-peers", "-address", srv.URL, "-json")
	var rc api.RaftConfiguration
	if code != ExitOK || json.Unmarshal([]byte(out), &rc) != nil || rc.AnsweredBy != "fs-3" || rc.Servers == nil || len(rc.Servers) != 0 {
		t.Errorf("-json: exit %d, %q", code, out)
	}
}

// TestStatusSaysTheLeaderDoesNotAct: a leader whose act half carries out no
// plan says why in an Acting line, with how long; one that acts has none.
func TestStatusSaysTheLeaderDoesNotAct(t *testing.T) {
	since := time.Now().Add(-90 * time.Second)
	st := api.Status{Node: "fs-1", State: "Leader", IsLeader: true, Leader: "10.0.0.11:7576",
		NotActing: "the start of the term's reconciliation fails (tried again each cycle): Unexpected response code: 503", NotActingSince: &since}
	srv := statusServer(t, &st)
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Acting      no for 1m30s: the start of the term's reconciliation fails (tried again each cycle): Unexpected response code: 503") {
		t.Errorf("output lacks the Acting line:\n%s", out)
	}
	st.NotActing, st.NotActingSince = "", nil
	if _, out, _ = runCLI(t, "status", "-address", srv.URL); strings.Contains(out, "Acting") {
		t.Errorf("a leader that acts has an Acting line:\n%s", out)
	}
}

// TestStatusAgesAreTheAgents: status reads the last cycle's and the
// not-acting ages on the agent's clock (its answer's now), so an agent
// whose clock is two hours ahead of the reader's shows them right (before:
// "-1h59m…" read on the reader's clock); an answer without now (an older
// agent) is read on the reader's clock.
func TestStatusAgesAreTheAgents(t *testing.T) {
	ahead := time.Now().Add(2 * time.Hour) // the agent's clock
	since := ahead.Add(-90 * time.Second)
	st := api.Status{Node: "fs-1", State: "Leader", IsLeader: true, Leader: "10.0.0.11:7576", Now: ahead,
		LastCycle: &api.Cycle{Started: ahead.Add(-12 * time.Second), DataTime: ahead},
		NotActing: "Nomad refuses the token", NotActingSince: &since}
	srv := statusServer(t, &st)
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Last cycle  12s ago") || !strings.Contains(out, "Acting      no for 1m30s: Nomad refuses the token") {
		t.Errorf("ages not read on the agent's clock:\n%s", out)
	}
	st.Now = time.Time{}
	st.LastCycle.Started = time.Now().Add(-7 * time.Second)
	if _, out, _ = runCLI(t, "status", "-address", srv.URL); !strings.Contains(out, "Last cycle  7s ago") {
		t.Errorf("an answer without now: the last cycle's age not read on the reader's clock:\n%s", out)
	}
}

// statusServer answers GET /v1/status with *st as it is at each request,
// closed when the test ends.
func statusServer(t *testing.T, st *api.Status) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv
}
