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
