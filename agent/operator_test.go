package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
)

// TestRaftConfigurationAgesLastContact: asked of the leader, the Raft
// configuration gives each server's last contact as before (last_contact,
// the leader's timestamp) and its age by the leader's clock
// (last_contact_age_s), which list-peers prints so that its own clock,
// however skewed, does not change it. Without the field list-peers aged
// the timestamp by the CLI machine's clock.
func TestRaftConfigurationAgesLastContact(t *testing.T) {
	t.Parallel()
	a, _, c := startDevAgent(t, 60, Options{})
	ctx := context.Background()
	var servers []map[string]any
	eventually(t, 30*time.Second, "the leader's health of itself", func() bool {
		st, err := c.Status(ctx)
		if err != nil || !st.IsLeader {
			return false
		}
		resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/operator/raft/configuration")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var rc struct {
			Servers []map[string]any `json:"servers"`
		}
		if json.Unmarshal(body, &rc) != nil || len(rc.Servers) != 1 || rc.Servers[0]["healthy"] == nil {
			return false
		}
		servers = rc.Servers
		return true
	})
	s := servers[0]
	age, ok := s["last_contact_age_s"].(float64)
	last, _ := s["last_contact"].(string)
	at, err := time.Parse(time.RFC3339Nano, last)
	if !ok || age < 0 || age > 5 || err != nil || time.Since(at) < 0 || time.Since(at) > time.Minute {
		t.Errorf("last_contact %q (%v), last_contact_age_s %v (%v); want both, the age 0–5 s (the leader checks every second)", last, err, s["last_contact_age_s"], ok)
	}
}

// TestContactAge: the age is in seconds to the millisecond, and never
// below 0.
func TestContactAge(t *testing.T) {
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		last time.Time
		want float64
	}{
		{now.Add(-3400 * time.Millisecond), 3.4},
		{now.Add(-1234567 * time.Microsecond), 1.235},
		{now, 0},
		{now.Add(time.Second), 0},
	} {
		if got := contactAge(now, tc.last); got != tc.want {
			t.Errorf("contactAge(%s before) = %v; want %v", now.Sub(tc.last), got, tc.want)
		}
	}
}

// TestRaftServerHealth: the leader's view of a server in the Raft
// configuration (and the healthy of /v1/status's peers) is healthy only
// while the server answers and can write to its data_dir; a server whose
// disk fails still answers, and is shown not healthy with its reason
// (data_dir_error), which a server of a release from before the field
// never sends. Before, such a server was shown healthy.
func TestRaftServerHealth(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const full = "this server cannot write /data/raft.db in its data_dir since 2026-12-06T11:59:00Z: the disk is full (no space left on device); it takes no new entries and cannot lead until it can"
	for _, tc := range []struct {
		name        string
		h           cluster.ServerHealth
		healthy     bool
		dataDir     string
		haltedShown string
	}{
		{"answers and writes", cluster.ServerHealth{Healthy: true, Info: &cluster.ServerInfo{}}, true, "", ""},
		{"an older release's answer", cluster.ServerHealth{Healthy: true, Info: &cluster.ServerInfo{StateProtocol: 0}}, true, "", ""},
		{"its data_dir fails", cluster.ServerHealth{Healthy: true, Info: &cluster.ServerInfo{DataDirError: full}}, false, full, ""},
		{"silent, last said its data_dir fails", cluster.ServerHealth{Healthy: false, Info: &cluster.ServerInfo{DataDirError: full}}, false, full, ""},
		{"silent, never answered", cluster.ServerHealth{Healthy: false}, false, "", ""},
		{"halted", cluster.ServerHealth{Healthy: true, Info: &cluster.ServerInfo{Halted: "older"}}, true, "", "older"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.LastContact = now.Add(-2 * time.Second)
			var rs api.RaftServer
			withHealth(&rs, tc.h, now)
			if rs.Healthy == nil || *rs.Healthy != tc.healthy || rs.DataDirError != tc.dataDir || rs.Halted != tc.haltedShown ||
				rs.LastContactAgeS == nil || *rs.LastContactAgeS != 2 {
				t.Errorf("got healthy %v, data_dir_error %q, halted %q, age %v; want %v, %q, %q, 2",
					ptrVal(rs.Healthy), rs.DataDirError, rs.Halted, ptrVal(rs.LastContactAgeS), tc.healthy, tc.dataDir, tc.haltedShown)
			}
			var p api.Peer
			peerHealth(&p, tc.h)
			if p.Healthy == nil || *p.Healthy != tc.healthy || p.DataDirError != tc.dataDir {
				t.Errorf("/v1/status's peer: healthy %v, data_dir_error %q; want %v, %q", ptrVal(p.Healthy), p.DataDirError, tc.healthy, tc.dataDir)
			}
		})
	}
}

func ptrVal[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
