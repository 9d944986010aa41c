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
