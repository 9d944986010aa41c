package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/hashicorp/raft"

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

// hasRequest reports whether v holds the request for alloc.
func hasRequest(v state.ActView, alloc string) bool {
	for _, r := range v.Requests {
		if r.Resource.ID == alloc {
			return true
		}
	}
	return false
}

// restoredSnapshot returns the state of the snapshot that raft stored in
// dataDir for a restore of the backup of index backup, whose state was
// applied up to applied: a snapshot past the backup's index holding a
// state of the backup's applied index. It returns nil while there is
// none.
func restoredSnapshot(t *testing.T, dataDir string, backup, applied uint64) []byte {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*"))
	for _, dir := range dirs {
		if strings.HasSuffix(dir, ".tmp") {
			continue // being written
		}
		mb, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		var m struct{ Index uint64 }
		if err != nil || json.Unmarshal(mb, &m) != nil || m.Index <= backup {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "state.bin"))
		if err != nil {
			continue
		}
		if s, err := state.Summarize(bytes.NewReader(b)); err == nil && s.Applied == applied {
			return b
		}
	}
	return nil
}

// TestSnapshotSaveAndRestoreThroughServers runs three servers: a backup
// saved through a follower is taken on the leader (with the three
// servers in it); a request submitted after it is gone from every server
// once the backup is restored through another follower, whose answer
// says what it replaced and describes the upload (its size and SHA-256
// as inspect gives them), the leader keeping nothing of the upload in
// its data_dir, and every server's queue is paused by the restore,
// naming the backup, as the answer says, in the very snapshot its raft
// stored for the restore (read by a fresh state machine); and a client
// agent passes a save on to the
// leader, and a restore of a backup larger than any other request it
// holds (over maxForwardedBody), which it passes on as it arrives.
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
	res, err := tc.servers[f2].api.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced.Requests != 2 || res.Restored.State.Requests != 1 || res.Restored.Index != info.Index || res.Index <= info.Index || res.Restored.SHA256 != info.SHA256 || res.Restored.Size != info.Size {
		t.Errorf("the restore's answer: %+v; want 2 requests replaced by the backup's 1, at an index past %d", res, info.Index)
	}
	if left, _ := filepath.Glob(filepath.Join(tc.servers[l].cfg.DataDir, "restore-*")); len(left) > 0 {
		t.Errorf("the leader kept the uploaded state in its data_dir: %v", left)
	}
	by := fmt.Sprintf("snapshot restore (the backup of index %d taken %s)", info.Index, info.Time.UTC().Format(time.RFC3339))
	if q := res.Queue; !q.Paused || q.PausedBy != by || q.Kept {
		t.Errorf("the restore's answer: queue %+v; want it paused by %q", q, by)
	}
	for i, s := range tc.servers {
		eventually(t, 30*time.Second, "the restored state, its queue paused by the restore, on every server", func() bool {
			v := s.a.fsm.Act()
			return hasMarker(s.a, "alloc-before") && !hasMarker(s.a, "alloc-after") && v.Paused && v.PausedBy == by
		})
		if h := s.a.fsm.Halted(); h != nil {
			t.Errorf("server %d halted: %v", i, h)
		}
	}
	// The pause is part of the state restored, not a write after it:
	// the snapshot each server's raft stored for the restore (the
	// leader's own, the one each follower installed), read by a fresh
	// state machine with no log after it, holds the queue paused by the
	// restore. A leadership change after raft's restore leaves no server
	// with the backup's running queue.
	for i, s := range tc.servers {
		var stored []byte
		eventually(t, 30*time.Second, "the snapshot of the restore in every server's data_dir", func() bool {
			stored = restoredSnapshot(t, s.cfg.DataDir, info.Index, res.Restored.State.AppliedIndex)
			return stored != nil
		})
		fresh, err := state.NewFSM(s.a.fsm.Config())
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Restore(io.NopCloser(bytes.NewReader(stored))); err != nil {
			t.Fatalf("server %d: the snapshot of the restore: %v", i, err)
		}
		if v := fresh.Act(); !v.Paused || v.PausedBy != by || !hasRequest(v, "alloc-before") {
			t.Errorf("server %d: the snapshot of the restore holds the queue paused %v by %q; want the backup's state paused by %q", i, v.Paused, v.PausedBy, by)
		}
	}
	// The leader leads again from the restored state, and writes go on.
	l = tc.leader()
	submitMarker(t, tc.servers[l].a, "alloc-later")

	// A client agent passes a save to the leader.
	ca := tc.startClientOnANode("client-1")
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
	// A backup larger than any other request the client agent holds to
	// send again (a day of 1-minute samples of 340 series, some 4.5 MB
	// against the 4 MiB bound; 380 series, 5.0 MB, and 600, 7.9 MB,
	// checked nothing more and made the fill, the save and the restore
	// longer) is restored through the client agent, which passes the
	// upload on as it arrives rather than hold it.
	const bulk = 340
	fillState(t, tc, time.Now(), bulk)
	var big bytes.Buffer
	if _, err := cc.SaveSnapshot(ctx, &big); err != nil {
		t.Fatalf("save through a client agent: %v", err)
	}
	bigInfo, err := InspectSnapshot(bytes.NewReader(big.Bytes()))
	if err != nil || big.Len() <= maxForwardedBody || bigInfo.State.Series < bulk {
		t.Fatalf("the large backup: %d bytes, %+v, %v; want over the %d bytes a client agent holds of any other request, with the %d series", big.Len(), bigInfo, err, maxForwardedBody, bulk)
	}
	t.Logf("the large backup: %d bytes", big.Len())
	submitMarker(t, tc.servers[tc.leader()].a, "alloc-after-big")
	res, err = cc.RestoreSnapshot(ctx, bytes.NewReader(big.Bytes()), nil)
	if err != nil {
		t.Fatalf("restoring a %d-byte backup through a client agent: %v", big.Len(), err)
	}
	if res.Restored.SHA256 != bigInfo.SHA256 || res.Restored.Size != bigInfo.Size || !res.Queue.Paused {
		t.Errorf("the restore through a client agent answered %+v; want the %d-byte backup restored, the queue paused", res, big.Len())
	}
	for _, s := range tc.servers {
		eventually(t, 30*time.Second, "the large backup restored on every server", func() bool {
			return hasMarker(s.a, "alloc-later") && !hasMarker(s.a, "alloc-after-big") && s.a.fsm.Act().Paused
		})
	}
}

// fillState writes a day of 1-minute samples, up to now, of n series into
// tc's state through its leader: a state of several MiB. Each of its
// commands is sent again to the next leader when the leadership changed
// under it: under load (the three servers apply 36,000 samples a command
// with the race detector on), the leader missed its followers' answers
// for its lease (500 ms) and stepped down mid-fill. One committed before
// the change is then applied twice: the same samples again, in the same
// series, which is all the test asks of the state (n series, its size).
func fillState(t *testing.T, tc *testCluster, now time.Time, n int) {
	t.Helper()
	keys := make([]state.Key, n)
	for i := range keys {
		keys[i] = state.Key{Locality: fmt.Sprintf("bulk/node-%03d", i), Metric: "cpu"}
	}
	start := now.Truncate(time.Minute).Add(-24 * time.Hour)
	rnd := rand.New(rand.NewPCG(1, 2)) // values that do not compress away
	const per = 60                     // minutes per command
	for m := 0; m < 24*60; m += per {
		smp := make([]state.Sample, 0, per*n)
		for k := range per {
			at := start.Add(time.Duration(m+k) * time.Minute)
			for _, key := range keys {
				smp = append(smp, state.Sample{Key: key, Time: at, Value: rnd.Float64() * 100})
			}
		}
		cmd := state.AppendSamples{Step: time.Minute, Samples: smp}
		for try := 1; ; try++ {
			_, err := (applier{tc.servers[tc.leader()].a.node}).Apply(context.Background(), cmd)
			if err == nil {
				break
			}
			if try == 5 || !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrLeadershipLost) {
				t.Fatalf("samples of minutes %d to %d, try %d: %v", m, m+per, try, err)
			}
			t.Logf("samples of minutes %d to %d, try %d: %v; sent again to the leader", m, m+per, try, err)
		}
	}
}

// TestSnapshotRestoreRefuses: a dev agent refuses, with 400 and why, a
// backup that is truncated, has a byte changed, is not a backup, whose
// state has other tiers than the agent's or a later state format, or
// whose act record is cut short (refused by the rewrite of the queue's
// pause, and, restored with keep_queue, by the scratch state machine); with
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
	// badAct is the state with its act record's JSON cut short, its
	// snapshot checksum made good: intact to Summarize, which does not
	// read the act record, and refused by the restore's rewrite of the
	// queue's pause and by the scratch state machine.
	badAct := func() []byte {
		return backupOf(t, func(w io.Writer) error {
			var st bytes.Buffer
			if err := a.fsm.WriteSnapshot(&st); err != nil {
				return err
			}
			b := st.Bytes()
			i := bytes.Index(b, []byte(`"next_scale":`))
			if i < 0 {
				return errors.New("no act record in the state")
			}
			b[i+len(`"next_scale":`)] = '"'
			body := b[:len(b)-4]
			_, err := w.Write(binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))))
			return err
		}, 0)
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
		{"an act record cut short", "secret", badAct(), 400, "its state cannot be read to pause its migration queue"},
		{"no token", "", good, 403, api.DeniedNoToken},
		{"a bad token", "guess", good, 403, api.DeniedUnknownToken},
	} {
		cl := *c
		cl.Token = tc.token
		_, err := cl.RestoreSnapshot(ctx, bytes.NewReader(tc.body), nil)
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
	// Kept, the queue's pause is not rewritten: the scratch state machine
	// refuses it.
	_, err := c.RestoreSnapshot(ctx, bytes.NewReader(badAct()), &api.RestoreOptions{KeepQueue: true})
	if se := (*api.StatusError)(nil); !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Message, "its state cannot be restored") || !strings.Contains(se.Message, "nothing was restored") {
		t.Errorf("an act record cut short, restored with keep_queue: %v; want 400 saying its state cannot be restored", err)
	}
	if !hasMarker(a, "alloc-kept") || a.fsm.Halted() != nil || !a.node.IsLeader() {
		t.Fatalf("after the refusal with keep_queue the state lost its request, or the server halted (%v) or does not lead", a.fsm.Halted())
	}
	cl := *c
	cl.Token = "guess"
	if _, err := cl.SaveSnapshot(ctx, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a save with a bad token: %v; want 403", err)
	}
	// The good backup restores.
	if _, err := c.RestoreSnapshot(ctx, bytes.NewReader(good), nil); err != nil {
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
// upload for up to an hour (api.SnapshotReadTimeout), not within the
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
	pr := slowUpload(archive.Bytes())
	start := time.Now()
	if _, err := c.RestoreSnapshot(context.Background(), pr, nil); err != nil {
		t.Fatalf("a restore uploaded over %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("the upload took %s, within the bound it was to outlast", d)
	}
}

// slowUpload is b sent in nine parts 100 ms apart (900 ms in all).
func slowUpload(b []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		part := len(b)/8 + 1
		for len(b) > 0 {
			n := min(len(b), part)
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	return pr
}

// TestSnapshotUploadThroughAFollowerOutlastsTheReadBound: a follower,
// and a client agent, pass on to the leader a restore whose upload takes
// longer than the bound they read any other request's body within.
func TestSnapshotUploadThroughAFollowerOutlastsTheReadBound(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	bound := httpReadTimeout
	httpReadTimeout = 300 * time.Millisecond
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	client := tc.startClientOnANode("client-1")
	httpReadTimeout = bound
	l := tc.leader()
	leader, follower := tc.servers[l], tc.servers[(l+1)%3]
	ctx := context.Background()
	var archive bytes.Buffer
	if _, err := leader.api.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	pr := slowUpload(archive.Bytes())
	start := time.Now()
	res, err := follower.api.RestoreSnapshot(ctx, pr, nil)
	if err != nil {
		t.Fatalf("a restore uploaded through a follower over %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || res.AnsweredBy == follower.a.name {
		t.Errorf("the upload took %s, answered by %s; want it past the bound, answered by the leader", d, res.AnsweredBy)
	}

	viaClient := &api.Client{Address: "http://" + client.HTTPAddr()}
	eventually(t, 30*time.Second, "the client agent reaches a server", func() bool {
		_, err := viaClient.Status(ctx)
		return err == nil
	})
	start = time.Now()
	res, err = viaClient.RestoreSnapshot(ctx, slowUpload(archive.Bytes()), nil)
	if err != nil {
		t.Fatalf("a restore uploaded through a client agent over %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || res.AnsweredBy != tc.servers[tc.leader()].a.name {
		t.Errorf("the upload took %s, answered by %s; want it past the bound, answered by the leader", d, res.AnsweredBy)
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

// runningQueueBackup is archive, a backup of a paused queue that holds
// the request id, as the leader would have saved it two entries later:
// the queue resumed and the request's reason set to mark, which no pass
// of the planner writes. It returns the new backup and its metadata.
func runningQueueBackup(t *testing.T, a *Agent, archive []byte, id, mark string) ([]byte, cluster.BackupMeta) {
	t.Helper()
	var st bytes.Buffer
	meta, err := cluster.ReadBackup(bytes.NewReader(archive), &st)
	if err != nil {
		t.Fatal(err)
	}
	f, err := state.NewFSM(a.fsm.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(io.NopCloser(&st)); err != nil {
		t.Fatal(err)
	}
	at := meta.Time
	for _, cmd := range []state.Command{
		state.SetQueuePaused{Paused: false, At: at, By: "operator"},
		state.RescoreRequests{At: at, Items: []state.Rescore{{ID: id, Reason: mark}}},
	} {
		meta.Index++
		if res, ok := f.Apply(&raft.Log{Index: meta.Index, Term: meta.Term, Type: raft.LogCommand, Data: state.Encode(cmd)}).(error); ok {
			t.Fatalf("%T: %v", cmd, res)
		}
	}
	if r, ok := f.Request(id); !ok || r.Reason != mark || !r.State.Queued() || f.QueuePaused() {
		t.Fatalf("the backup's request %+v (held %v), queue paused %v; want it queued with reason %q in a running queue", r, ok, f.QueuePaused(), mark)
	}
	st.Reset()
	if err := f.WriteSnapshot(&st); err != nil {
		t.Fatal(err)
	}
	meta.Size = int64(st.Len())
	var out bytes.Buffer
	if err := cluster.WriteBackup(&out, meta, &st); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), meta
}

// TestSnapshotRestorePausesTheQueue: a backup of a running queue that
// holds a queued request to move a running allocation is restored with
// the queue paused by the restore, the reason naming the backup's index
// and time, which the answer says: the new term's act pass holds the
// request (its reason changes from the backup's) and starts no move of
// it: it stays queued, no intent stops its allocation, which Nomad runs
// on. Restored with keep_queue, the same backup's queue runs, as the
// answer says, and the request's move starts. A backup saved with the
// queue paused by an operator is restored paused by the restore, the
// answer saying the backup had it paused already (by operator); with
// keep_queue, paused by operator as the backup had it.
func TestSnapshotRestorePausesTheQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent until a move starts")
	}
	a, d, c := startDevAgent(t, 60, Options{Version: "test"})
	ctx := context.Background()
	firstCycle(t, c)
	if _, err := c.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	alloc := runningAlloc(t, nc, "web")
	id, err := submitAway(ctx, c, alloc)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if _, err := c.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	const mark = "next in line when the backup was taken"
	backup, meta := runningQueueBackup(t, a, archive.Bytes(), id, mark)
	by := fmt.Sprintf("snapshot restore (the backup of index %d taken %s)", meta.Index, meta.Time.UTC().Format(time.RFC3339))

	res, err := c.RestoreSnapshot(ctx, bytes.NewReader(backup), nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := res.Queue; !q.Paused || q.Kept || q.PausedBy != by || !strings.HasPrefix(q.Reason, "paused by the "+by+": review the restored requests") || q.PauseError != "" {
		t.Errorf("the restore's answer: queue %+v; want paused by %q", q, by)
	}
	eventually(t, 60*time.Second, "an act pass of the new term on the restored request", func() bool {
		r, ok := a.fsm.Request(id)
		return ok && r.Reason != mark
	})
	r, _ := a.fsm.Request(id)
	if !r.State.Queued() || !r.Started.IsZero() {
		t.Errorf("the restored request after the new term's act pass: %s, started %v (%s); want it queued, not started", r.State, r.Started, r.Reason)
	}
	v := a.fsm.Act()
	if !v.Paused || v.PausedBy != by {
		t.Errorf("the queue after the restore: paused %v by %q; want paused by %q", v.Paused, v.PausedBy, by)
	}
	for _, in := range v.OpenIntents {
		if in.Request == id && (in.Kind == state.IntentStopAlloc || in.Kind == state.IntentDrainNode || in.Kind == state.IntentUpdateJob) {
			t.Errorf("an intent of the restored request's move: %+v", in)
		}
	}
	if al, _, err := nc.Allocations().Info(alloc, nil); err != nil || al.DesiredStatus != "run" {
		t.Errorf("the restored request's allocation: %+v, %v; want it running on", al, err)
	}

	res, err = c.RestoreSnapshot(ctx, bytes.NewReader(backup), &api.RestoreOptions{KeepQueue: true})
	if err != nil {
		t.Fatal(err)
	}
	if q := res.Queue; q.Paused || !q.Kept || !strings.HasPrefix(q.Reason, "running, as the backup had it: kept as the restore asked") || q.PauseError != "" {
		t.Errorf("the answer to a restore with keep_queue: queue %+v; want it running, as the backup had it", q)
	}
	eventually(t, 60*time.Second, "the restored request's move starts in the running queue", func() bool {
		r, ok := a.fsm.Request(id)
		return ok && (r.State == state.RequestRunning || !r.Started.IsZero())
	})

	// The backup saved with the queue paused by an operator: the
	// restore's pause replaces the operator's, saying so; kept, the
	// operator's stays.
	info, err := InspectSnapshot(bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	by = fmt.Sprintf("snapshot restore (the backup of index %d taken %s)", info.Index, info.Time.UTC().Format(time.RFC3339))
	res, err = c.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := res.Queue; !q.Paused || q.Kept || q.PausedBy != by || !strings.HasSuffix(q.Reason, "; the backup had it paused already (by operator)") {
		t.Errorf("the answer to a restore of a backup whose queue an operator paused: queue %+v; want paused by %q, saying the backup had it paused by operator", q, by)
	}
	if v := a.fsm.Act(); !v.Paused || v.PausedBy != by {
		t.Errorf("the queue after restoring a backup whose queue an operator paused: paused %v by %q; want paused by %q", v.Paused, v.PausedBy, by)
	}
	res, err = c.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()), &api.RestoreOptions{KeepQueue: true})
	if err != nil {
		t.Fatal(err)
	}
	if q := res.Queue; !q.Paused || !q.Kept || q.PausedBy != "operator" || !strings.HasPrefix(q.Reason, "paused, as the backup had it (by operator): kept as the restore asked") {
		t.Errorf("the answer to a restore with keep_queue of a backup whose queue an operator paused: queue %+v; want it paused by operator, as the backup had it", q)
	}
}

// TestRestoredQueueSaysWhatTheStateHolds: the restore's answer describes
// the queue as the state holds it once the restore is done: paused by
// the restore (saying so when the backup had it paused already, and by
// whom); as the backup had it, kept as asked; changed since by another
// hand.
func TestRestoredQueueSaysWhatTheStateHolds(t *testing.T) {
	const by = "snapshot restore (the backup of index 7 taken 2026-12-06T13:00:00Z)"
	paused := func(who string) state.ActView { return state.ActView{Paused: true, PausedBy: who} }
	byOperator := state.SetQueuePaused{Paused: true, By: "operator"}
	for _, tc := range []struct {
		name   string
		v      state.ActView
		keep   bool
		held   state.SetQueuePaused
		paused bool
		kept   bool
		reason string
	}{
		{"paused by the restore", paused(by), false, state.SetQueuePaused{}, true, false, "paused by the " + by + ": review the restored requests"},
		{"paused by the restore over the backup's pause", paused(by), false, byOperator, true, false, "paused by the " + by + ": review the restored requests ('foreshape queue list'), which may have been done or cancelled since, then resume the queue ('foreshape queue resume'); the backup had it paused already (by operator)"},
		{"kept running", state.ActView{}, true, state.SetQueuePaused{}, false, true, "running, as the backup had it: kept as the restore asked"},
		{"kept paused", paused("operator"), true, byOperator, true, true, "paused, as the backup had it (by operator): kept as the restore asked"},
		{"resumed since", state.ActView{}, false, state.SetQueuePaused{}, false, false, "running: resumed since the restore paused it"},
		{"paused again since", paused("operator"), false, state.SetQueuePaused{}, true, false, "paused by the restore, then again since (by operator)"},
	} {
		q := restoredQueue(tc.v, api.RestoreOptions{KeepQueue: tc.keep}, by, tc.held)
		if q.Paused != tc.paused || q.Kept != tc.kept || q.PauseError != "" || !strings.HasPrefix(q.Reason, tc.reason) {
			t.Errorf("%s: %+v; want paused %v, kept %v, reason %q…", tc.name, q, tc.paused, tc.kept, tc.reason)
		}
		if !tc.held.Paused && strings.Contains(q.Reason, "paused already") {
			t.Errorf("%s: %q says the backup had the queue paused", tc.name, q.Reason)
		}
	}
}
