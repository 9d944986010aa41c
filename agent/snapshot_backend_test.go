package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
)

// submitMarker writes a migration request for the allocation alloc
// through the leader a, as a mark in the state.
func submitMarker(t *testing.T, a *Agent, alloc string) {
	t.Helper()
	if _, err := (applier{a.node}).Apply(context.Background(), state.SubmitRequest{Request: state.MigrationRequest{
		Resource: state.Resource{Kind: state.ResourceAllocation, ID: alloc},
		Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 1, Created: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
}

// hasMarker reports whether a's state holds the request for alloc.
func hasMarker(a *Agent, alloc string) bool {
	for _, r := range a.fsm.Act().Requests {
		if r.Resource.ID == alloc {
			return true
		}
	}
	return false
}

// TestSnapshotSaveAndRestoreThroughServers runs three servers: a backup
// saved through a follower is taken on the leader (with the three
// servers in it); a request submitted after it is gone from every server
// once the backup is restored through another follower, whose answer
// says what it replaced (and the leader keeps nothing of the upload in
// its data_dir); and a client agent passes a save on to the
// leader, while it refuses an upload above what it forwards (4 MiB),
// restoring nothing.
func TestSnapshotSaveAndRestoreThroughServers(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	f1, f2 := (l+1)%3, (l+2)%3
	leader := tc.servers[l].a
	ctx := context.Background()
	submitMarker(t, leader, "alloc-before")
	// The leader writes the servers' records after it gains leadership;
	// the backup is taken once they are in the state.
	eventually(t, 30*time.Second, "the servers' records in the leader's state", func() bool {
		return len(leader.fsm.Servers()) > 0
	})

	var archive bytes.Buffer
	if _, err := tc.servers[f1].api.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	info, err := InspectSnapshot(bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if info.TakenBy != leader.node.Info().ID || len(info.Servers) != 3 || info.State.Requests != 1 || info.Release != "test" || info.State.Servers == 0 {
		t.Errorf("the backup: %+v", info)
	}

	submitMarker(t, leader, "alloc-after")
	res, err := tc.servers[f2].api.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced.Requests != 2 || res.Restored.State.Requests != 1 || res.Restored.Index != info.Index || res.Index <= info.Index || res.Restored.SHA256 != info.SHA256 {
		t.Errorf("the restore's answer: %+v; want 2 requests replaced by the backup's 1, at an index past %d", res, info.Index)
	}
	if left, _ := filepath.Glob(filepath.Join(tc.servers[l].cfg.DataDir, "restore-*")); len(left) > 0 {
		t.Errorf("the leader kept the uploaded state in its data_dir: %v", left)
	}
	for i, s := range tc.servers {
		eventually(t, 30*time.Second, "the restored state on every server", func() bool {
			return hasMarker(s.a, "alloc-before") && !hasMarker(s.a, "alloc-after")
		})
		if h := s.a.fsm.Halted(); h != nil {
			t.Errorf("server %d halted: %v", i, h)
		}
	}
	// The leader leads again from the restored state, and writes go on.
	l = tc.leader()
	submitMarker(t, tc.servers[l].a, "alloc-later")

	// A client agent passes a save to the leader, and refuses to hold an
	// upload above 4 MiB.
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: tc.sim.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := nomad.Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes: %d, %v", len(nodes), err)
	}
	ca := tc.startClient("client-1", nodes[0].ID)
	cc := &api.Client{Address: "http://" + ca.HTTPAddr()}
	eventually(t, 30*time.Second, "the client agent reaches a server", func() bool {
		_, err := cc.Status(ctx)
		return err == nil
	})
	var viaClient bytes.Buffer
	if _, err := cc.SaveSnapshot(ctx, &viaClient); err != nil {
		t.Fatalf("save through a client agent: %v", err)
	}
	if info, err := InspectSnapshot(&viaClient); err != nil || info.State.Requests != 2 {
		t.Errorf("the backup through a client agent: %+v, %v; want the 2 requests the state holds", info, err)
	}
	big := append(bytes.Clone(archive.Bytes()), make([]byte, 5<<20)...)
	_, err = cc.RestoreSnapshot(ctx, bytes.NewReader(big))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5 MiB restore through a client agent: %v; want 413", err)
	}
	if !hasMarker(tc.servers[tc.leader()].a, "alloc-later") {
		t.Error("the refused restore through the client agent changed the state")
	}
}

// TestSnapshotRestoreRefuses: a dev agent refuses, with 400 and why, a
// backup that is truncated, has a byte changed, is not a backup, whose
// state has other tiers than the agent's or a later state format; with
// ACLs on, a request without one of its tokens (403). Each leaves the
// state as it was, the server leading and not halted.
func TestSnapshotRestoreRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, c := startDevAgentWith(t, 60, Options{Version: "test"}, func(cfg *config.Config) {
		cfg.ACL.Enabled, cfg.ACL.TokenFile = true, tokens
	})
	c.Token = "secret"
	ctx := context.Background()
	eventually(t, 30*time.Second, "the dev agent leads", func() bool {
		_, ok := a.node.LeaderContext()
		return ok
	})
	submitMarker(t, a, "alloc-kept")
	var archive bytes.Buffer
	if _, err := c.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	good := archive.Bytes()

	otherTiers := func() []byte {
		f, err := state.NewFSM(state.Config{Tiers: []state.Tier{{Step: time.Minute, Points: 60}}})
		if err != nil {
			t.Fatal(err)
		}
		return backupOf(t, f.WriteSnapshot, 0)
	}
	laterFormat := func() []byte {
		return backupOf(t, a.fsm.WriteSnapshot, state.SnapshotFormat+1)
	}
	flipped := bytes.Clone(good)
	// A byte of the gzip trailer's CRC-32: always refused (TestReadBackupRefuses
	// changes bytes everywhere, of a backup whose bytes it knows).
	flipped[len(flipped)-6] ^= 0x01
	for _, tc := range []struct {
		name, token string
		body        []byte
		code        int
		says        string
	}{
		{"truncated", "secret", good[:len(good)*2/3], 400, "truncated"},
		{"a byte changed", "secret", flipped, 400, "corrupted"},
		{"not a backup", "secret", []byte("fshstate this is no backup"), 400, "not a foreshape snapshot: it is not gzip-compressed"},
		{"other tiers", "secret", otherTiers(), 400, "other tiers or profiles than this cluster's"},
		{"a later state format", "secret", laterFormat(), 400, "this release reads up to format 1"},
		{"no token", "", good, 403, api.DeniedNoToken},
		{"a bad token", "guess", good, 403, api.DeniedUnknownToken},
	} {
		cl := *c
		cl.Token = tc.token
		_, err := cl.RestoreSnapshot(ctx, bytes.NewReader(tc.body))
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(se.Message, tc.says) {
			t.Errorf("%s: %v; want %d saying %q", tc.name, err, tc.code, tc.says)
			continue
		}
		if tc.code == 400 && !strings.Contains(se.Message, "nothing was restored") {
			t.Errorf("%s: %q does not say that nothing was restored", tc.name, se.Message)
		}
		if !hasMarker(a, "alloc-kept") || a.fsm.Halted() != nil || !a.node.IsLeader() {
			t.Fatalf("%s: after the refusal the state lost its request, or the server halted (%v) or does not lead", tc.name, a.fsm.Halted())
		}
	}
	cl := *c
	cl.Token = "guess"
	if _, err := cl.SaveSnapshot(ctx, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a save with a bad token: %v; want 403", err)
	}
	// The good backup restores.
	if _, err := c.RestoreSnapshot(ctx, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if !hasMarker(a, "alloc-kept") {
		t.Error("the restored state lost the request")
	}
}

// backupOf writes a backup of the state write writes, claiming
// stateFormat when not 0.
func backupOf(t *testing.T, write func(w io.Writer) error, stateFormat int) []byte {
	t.Helper()
	var st, out bytes.Buffer
	if err := write(&st); err != nil {
		t.Fatal(err)
	}
	meta := cluster.BackupMeta{Index: 10, Term: 1, Time: time.Now(), Release: "test", StateFormat: state.SnapshotFormat, Size: int64(st.Len())}
	if stateFormat != 0 {
		meta.StateFormat = stateFormat
	}
	if err := cluster.WriteBackup(&out, meta, &st); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSnapshotUploadOutlastsTheReadBound: the leader reads a restore's
// upload for up to an hour (api's snapshotReadTimeout), not within the
// bound on reading every other request (httpReadTimeout, 30 s; here
// 300 ms): a backup that arrives slowly is restored.
func TestSnapshotUploadOutlastsTheReadBound(t *testing.T) {
	bound := httpReadTimeout
	httpReadTimeout = 300 * time.Millisecond
	a, _, c := startDevAgent(t, 60, Options{Version: "test"})
	httpReadTimeout = bound
	eventually(t, 30*time.Second, "the dev agent leads", func() bool {
		_, ok := a.node.LeaderContext()
		return ok
	})
	var archive bytes.Buffer
	if _, err := c.SaveSnapshot(context.Background(), &archive); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		b := archive.Bytes()
		for len(b) > 0 {
			n := min(len(b), len(archive.Bytes())/8+1)
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(100 * time.Millisecond) // 900 ms in all
		}
		pw.Close()
	}()
	start := time.Now()
	if _, err := c.RestoreSnapshot(context.Background(), pr); err != nil {
		t.Fatalf("a restore uploaded over %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("the upload took %s, within the bound it was to outlast", d)
	}
}

// TestRestoreLeftoversRemovedAtStart: the upload of a restore that a
// stopped process left in data_dir (RestoreSnapshot removes its own as it
// returns; a kill does not), as large as the state, is removed when the
// server starts again, and the log says so; other files stay.
func TestRestoreLeftoversRemovedAtStart(t *testing.T) {
	t.Parallel()
	d := startTestSim(t, 600)
	dir := t.TempDir()
	left := filepath.Join(dir, "restore-1234.state")
	other := filepath.Join(dir, "restore-notes.txt")
	for _, f := range []string{left, other} {
		if err := os.WriteFile(f, []byte("state"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.Name = "server-restart"
	cfg.DataDir = dir
	cfg.Server.RaftPort = freePort(t)
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = d.URL
	var logs syncBuffer
	a, err := New(cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})}),
		Policies: devPolicies(t), Clock: d, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after the start: %v; want it removed", left, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("%s: %v; want it kept", other, err)
	}
	if logs.count("removed the upload of a snapshot restore an earlier stop left: file="+left) != 1 {
		t.Errorf("log:\n%s\nwant one line naming %s", logs.String(), left)
	}
}
