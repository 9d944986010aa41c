package command

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestStatusOfAServerBesideAnotherCluster: a server whose join addresses
// belong to another cluster running its own leader (/v1/status's
// beside_other, 0ab685e) says so in status, escaped as other text from the
// agent is; it was in the JSON alone, and status printed a healthy leader.
func TestStatusOfAServerBesideAnotherCluster(t *testing.T) {
	const beside = "cluster: this server holds the state of cluster 0ffff932 but the server at 10.0.0.21:7576 belongs to cluster 387f74fb, which runs its own leader"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Node: "fs-0", State: "Leader", Leader: "10.0.0.10:7576", IsLeader: true,
			ClusterID: "0ffff932", BesideOther: beside + "\x1b[2J"})
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if want := "\nOther cluster  " + beside + `\x1b[2J` + "\n"; code != ExitOK || !strings.Contains(out, want) {
		t.Errorf("status: exit %d (%s), output lacks %q:\n%s", code, errOut, want, out)
	}
	_, help, helpErr := runCLI(t, "status", "-help")
	if !strings.Contains(strings.Join(strings.Fields(help+helpErr), " "), "belongs to another cluster running its own leader") {
		t.Errorf("status -help does not say it shows a server beside another cluster:\n%s%s", help, helpErr)
	}
}
