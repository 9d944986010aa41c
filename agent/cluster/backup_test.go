package cluster_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
)

// backupInfo is what the agent adds to its backups.
var backupInfo = cluster.BackupInfo{Release: "0.0.0-test", StateFormat: state.SnapshotFormat, StateProtocol: state.Protocol}

// stateCluster starts n in-memory servers with state FSMs.
func stateCluster(t *testing.T, n int) (*clustertest.Cluster, []*state.FSM) {
	t.Helper()
	fsms := make([]*state.FSM, n)
	c := clustertest.New(t, n, func(i int) raft.FSM {
		fsms[i], _ = state.NewFSM(state.Config{})
		return fsms[i]
	}, nil)
	return c, fsms
}

// fill applies sample batches and migration requests (named by tag) to
// the cluster through its leader.
func fill(t *testing.T, c *clustertest.Cluster, tag string, batches int) {
	t.Helper()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range batches {
		b := state.AppendSamples{Step: time.Minute}
		for k := range 20 {
			b.Samples = append(b.Samples, state.Sample{Key: state.Key{Locality: fmt.Sprintf("%s/n%02d", tag, k), Metric: "cpu"},
				Time: t0.Add(time.Duration(i) * time.Minute), Value: float64((i + k) % 100)})
		}
		c.Apply(state.Encode(b))
		c.Apply(state.Encode(state.SubmitRequest{Request: state.MigrationRequest{
			Resource: state.Resource{Kind: state.ResourceAllocation, ID: fmt.Sprintf("%s-alloc-%d", tag, i)},
			Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: t0,
		}}))
	}
}

func stateBytes(t *testing.T, f *state.FSM) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// saveBackup saves a backup on node i and returns the archive and the
// state it holds, read back with ReadBackup.
func saveBackup(t *testing.T, n *cluster.Node) ([]byte, []byte, cluster.BackupMeta) {
	t.Helper()
	var archive, st bytes.Buffer
	saved, err := n.SaveBackup(context.Background(), &archive, backupInfo)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := cluster.ReadBackup(bytes.NewReader(archive.Bytes()), &st)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index != saved.Index || meta.Term != saved.Term || meta.Size != int64(st.Len()) || meta.Kind != cluster.BackupKind {
		t.Fatalf("read back %+v; saved %+v (%d bytes of state)", meta, saved, st.Len())
	}
	return archive.Bytes(), st.Bytes(), meta
}

// TestBackupRestoresEveryServer: a backup saved on a three-server cluster
// holds the state as the leader's state machine writes it, with the Raft
// index and term, the release, the state's format and the three servers;
// after more writes, restoring it through the leader with nothing to
// write after it (as a restore with keep_queue) gives every server the
// saved state byte for byte (the queue paused, as when it was saved, over
// a running one), and later writes go on at indexes past both the
// backup's and the log's.
func TestBackupRestoresEveryServer(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 5)
	c.Apply(state.Encode(state.SetQueuePaused{Paused: true, By: "operator"}))
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	if want := stateBytes(t, fsms[l]); !bytes.Equal(saved, want) {
		t.Fatalf("the backup's state (%d bytes) is not the leader's (%d bytes)", len(saved), len(want))
	}
	if meta.Index == 0 || meta.Term == 0 || meta.Release != backupInfo.Release || meta.StateFormat != state.SnapshotFormat ||
		len(meta.Servers) != 3 || meta.TakenBy != fmt.Sprintf("node%d", l) || meta.ClusterID != c.Nodes[l].ClusterID() || meta.Time.IsZero() {
		t.Errorf("meta %+v", meta)
	}
	fill(t, c, "after", 3)
	c.Apply(state.Encode(state.SetQueuePaused{Paused: false, By: "operator"}))
	before := c.Nodes[l].LastIndex()
	if bytes.Equal(stateBytes(t, fsms[l]), saved) {
		t.Fatal("the writes after the backup changed nothing")
	}

	if err := c.Nodes[l].RestoreBackup(context.Background(), meta, bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	for i, f := range fsms {
		c.Eventually(fmt.Sprintf("node%d holds the saved state", i), func() bool { return bytes.Equal(stateBytes(t, f), saved) })
	}
	if got := fsms[l].Len(); got != 20 {
		t.Errorf("%d series after the restore; the backup holds 20", got)
	}
	// Nothing written after the restore: the queue is paused as the
	// backup had it.
	for i, f := range fsms {
		if !f.QueuePaused() {
			t.Errorf("node%d: the queue runs after restoring a backup saved with it paused", i)
		}
	}
	res := c.Apply(state.Encode(state.SubmitRequest{Request: state.MigrationRequest{
		Resource: state.Resource{Kind: state.ResourceAllocation, ID: "alloc-after-restore"},
		Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 50,
	}}))
	r, ok := res.(state.Result)
	if !ok || r.Index <= before || r.Index <= meta.Index {
		t.Errorf("a write after the restore: %#v; want an index past %d (the log's before the restore) and %d (the backup's)", res, before, meta.Index)
	}
	c.WaitApplied(r.Index)
	for i := 1; i < 3; i++ {
		if !bytes.Equal(stateBytes(t, fsms[i]), stateBytes(t, fsms[0])) {
			t.Errorf("node%d's state differs from node0's after a write that followed the restore", i)
		}
	}
}

// TestBackupRestoredPausedWithoutAWrite: a backup whose queue ran, its
// state rewritten with the queue paused (state.RewriteQueuePause, as the
// agent's restore does) and handed to RestoreBackup with the rewritten
// state's size, is restored paused on every server with no write after
// it: the new term's leader work sees the queue paused from its start,
// and once the leader stops right after the restore, both other servers
// hold the backup's requests with the queue paused, the act state as the
// backup left it (no entry of the act state applied since).
func TestBackupRestoredPausedWithoutAWrite(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 3)
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	fill(t, c, "after", 2)
	if fsms[l].QueuePaused() {
		t.Fatal("the queue is paused before the restore")
	}
	scratch, _ := state.NewFSM(state.Config{})
	if err := scratch.Restore(io.NopCloser(bytes.NewReader(saved))); err != nil {
		t.Fatal(err)
	}
	const by = "snapshot restore (test)"
	var rewritten bytes.Buffer
	if _, err := state.RewriteQueuePause(&rewritten, bytes.NewReader(saved), state.SetQueuePaused{Paused: true, At: meta.Time, By: by}); err != nil {
		t.Fatal(err)
	}
	node := c.Nodes[l]
	type seen struct {
		paused bool
		by     string
	}
	terms := make(chan seen, 8)
	loopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go node.RunLeaderLoop(loopCtx, func(lctx context.Context) {
		v := fsms[l].Act()
		terms <- seen{v.Paused, v.PausedBy}
		<-lctx.Done()
	})
	if first := <-terms; first.paused {
		t.Fatalf("the term before the restore saw the queue paused (%q)", first.by)
	}
	restoreMeta := meta
	restoreMeta.Size = int64(rewritten.Len())
	if err := node.RestoreBackup(context.Background(), restoreMeta, bytes.NewReader(rewritten.Bytes())); err != nil {
		t.Fatal(err)
	}
	select {
	case second := <-terms:
		if !second.paused || second.by != by {
			t.Errorf("the new term's leader work began with the queue paused %v by %q; want paused by %q", second.paused, second.by, by)
		}
	case <-time.After(clustertest.Timeout):
		t.Fatal("no new leadership term after the restore")
	}
	c.Stop(l)
	for i, f := range fsms {
		if i == l {
			continue
		}
		c.Eventually(fmt.Sprintf("node%d holds the restored state", i), func() bool { return f.Len() == 20 })
		v := f.Act()
		if !v.Paused || v.PausedBy != by {
			t.Errorf("node%d: the queue paused %v by %q after the restore; want paused by %q", i, v.Paused, v.PausedBy, by)
		}
		if v.Modified != scratch.ActModified() {
			t.Errorf("node%d: the act state last changed at index %d; the backup's at %d, and nothing was to be written since", i, v.Modified, scratch.ActModified())
		}
		var requests int
		for _, r := range v.Requests {
			if !strings.HasPrefix(r.Resource.ID, "before-") {
				t.Errorf("node%d holds %s, written after the backup", i, r.Resource.ID)
			}
			requests++
		}
		if requests != 3 {
			t.Errorf("node%d holds %d requests; the backup holds 3", i, requests)
		}
	}
}

// TestBackupIntoAFreshCluster is the disaster case: every server of a
// cluster is lost, and its backup is restored into a new single server,
// which ends with the backup's state byte for byte, keeps its own cluster
// ID and configuration, starts its leader work again in a new term (the
// one before it ends), and writes on past the backup's index. The first
// term's leader work writes without pause until its term ends: none of
// its writes lands on the restored state (it ends before the restore).
func TestBackupIntoAFreshCluster(t *testing.T) {
	old, _ := stateCluster(t, 3)
	fill(t, old, "old", 6)
	_, saved, meta := saveBackup(t, old.Nodes[old.Leader()])
	old.Close()

	fresh, fsms := stateCluster(t, 1)
	fresh.Leader()
	id := fresh.Nodes[0].ClusterID()
	terms := make(chan context.Context, 4)
	loopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	n := 0
	go fresh.Nodes[0].RunLeaderLoop(loopCtx, func(lctx context.Context) {
		terms <- lctx
		if n++; n > 1 {
			<-lctx.Done()
			return
		}
		for i := 0; lctx.Err() == nil; i++ {
			b := state.AppendSamples{Step: time.Minute, Samples: []state.Sample{{Key: state.Key{Locality: fmt.Sprintf("late/n%d", i), Metric: "cpu"},
				Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Value: 1}}}
			fresh.Nodes[0].Apply(lctx, state.Encode(b))
		}
	})
	first := <-terms
	fresh.Eventually("the first term writes", func() bool { return fsms[0].Len() > 10 })
	if err := fresh.Nodes[0].RestoreBackup(context.Background(), meta, bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	// Leader work starts again from the restored state: the term it ran
	// under ends, and a new one starts.
	select {
	case second := <-terms:
		if first.Err() == nil || second.Err() != nil {
			t.Errorf("after the restore: the first term's context %v, the second's %v; want the first ended and the second live", first.Err(), second.Err())
		}
	case <-time.After(clustertest.Timeout):
		t.Fatal("no new leadership term after the restore")
	}
	if got := stateBytes(t, fsms[0]); !bytes.Equal(got, saved) {
		t.Fatalf("the new server's state (%d bytes) is not the backup's (%d bytes)", len(got), len(saved))
	}
	if got := fresh.Nodes[0].ClusterID(); got != id || id == "" {
		t.Errorf("cluster id %q after the restore; want the new cluster's %q", got, id)
	}
	st, _ := fresh.Nodes[0].Status()
	if len(st.Servers) != 1 || st.Servers[0].ID != "node0" {
		t.Errorf("configuration after the restore: %+v; want the new server alone", st.Servers)
	}
	fresh.Leader() // the term starts again after the restore
	res := fresh.Apply(state.Encode(state.MarkStale{Keys: []state.Key{{Locality: "old/n00", Metric: "cpu"}}, Since: time.Now(), Reason: "test"}))
	if r, ok := res.(state.Result); !ok || r.Index <= meta.Index || r.Applied != 1 {
		t.Errorf("a write after the restore: %#v; want it applied at an index past the backup's %d", res, meta.Index)
	}
}

// TestBackupOnAFollower: a follower neither saves nor restores a backup;
// it answers which server leads.
func TestBackupOnAFollower(t *testing.T) {
	c, _ := stateCluster(t, 3)
	fill(t, c, "x", 1)
	l := c.Leader()
	f := (l + 1) % 3
	var nl *cluster.NotLeaderError
	if _, err := c.Nodes[f].SaveBackup(context.Background(), &bytes.Buffer{}, backupInfo); !errors.As(err, &nl) || nl.LeaderID != fmt.Sprintf("node%d", l) {
		t.Errorf("save on a follower: %v", err)
	}
	if err := c.Nodes[f].RestoreBackup(context.Background(), cluster.BackupMeta{}, strings.NewReader("")); !errors.As(err, &nl) {
		t.Errorf("restore on a follower: %v", err)
	}
}

// TestReadBackupRefuses: ReadBackup refuses, saying why, a backup cut
// short anywhere, one with any byte changed (unless the change leaves the
// content as it was: a bit deflate does not read), and files that are not backups, or of a later
// archive version; and a read of the file that fails is said to be one
// (ErrBackupUnread), not a damaged backup.
func TestReadBackupRefuses(t *testing.T) {
	c, _ := stateCluster(t, 1)
	fill(t, c, "r", 3)
	archive, saved, meta := saveBackup(t, c.Nodes[0])
	var got bytes.Buffer
	read := func(b []byte) error {
		got.Reset()
		_, err := cluster.ReadBackup(bytes.NewReader(b), &got)
		return err
	}
	for cut := 0; cut < len(archive); cut += max(1, len(archive)/97) {
		err := read(archive[:cut])
		want := cluster.ErrBackupTruncated
		if cut == 0 {
			want = cluster.ErrNotBackup // empty
		}
		if !errors.Is(err, want) {
			t.Errorf("cut at %d of %d bytes: %v; want %v", cut, len(archive), err, want)
		}
	}
	for i := 0; i < 2*len(archive); i++ {
		at := i / 2
		b := bytes.Clone(archive)
		b[at] ^= []byte{0x20, 0x01}[i%2]
		err := read(b)
		if err == nil {
			// A bit deflate ignores (one of a code table's unused
			// codes) changes none of the content, which every check
			// then passes: the backup is whole.
			if !bytes.Equal(got.Bytes(), saved) {
				t.Errorf("byte %d of %d changed: accepted with another state", at, len(archive))
			}
			continue
		}
		// The gzip header's first bytes are its magic: changed, the file
		// is not gzip at all.
		if !errors.Is(err, cluster.ErrBackupCorrupt) && !errors.Is(err, cluster.ErrBackupTruncated) && !(at < 4 && errors.Is(err, cluster.ErrNotBackup)) {
			t.Errorf("byte %d of %d changed: %v", at, len(archive), err)
		}
	}
	for _, n := range []int{0, 1, 300, len(archive) / 2, len(archive)} {
		_, err := cluster.ReadBackup(io.MultiReader(bytes.NewReader(archive[:n]), iotest.ErrReader(errors.New("disk gone"))), &bytes.Buffer{})
		if !errors.Is(err, cluster.ErrBackupUnread) || errors.Is(err, cluster.ErrBackupCorrupt) || !strings.Contains(err.Error(), "disk gone") {
			t.Errorf("a read failing after %d bytes: %v; want ErrBackupUnread with the reader's error, not corrupted", n, err)
		}
	}
	if err := read(append(bytes.Clone(archive), 0)); !errors.Is(err, cluster.ErrBackupCorrupt) {
		t.Errorf("a byte after the archive: %v", err)
	}

	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	tarOf := func(files ...string) []byte {
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		for i := 0; i < len(files); i += 2 {
			tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o600, Size: int64(len(files[i+1]))})
			tw.Write([]byte(files[i+1]))
		}
		tw.Close()
		return out.Bytes()
	}
	var st bytes.Buffer
	c.FSMs[0].(*state.FSM).WriteSnapshot(&st)
	newer := meta
	newer.Version = cluster.BackupVersion + 1
	var newerArchive bytes.Buffer
	if err := cluster.WriteBackup(&newerArchive, meta, bytes.NewReader(st.Bytes()[:meta.Size])); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file []byte
		want error
		says string
	}{
		{"the state alone", st.Bytes(), cluster.ErrNotBackup, "not gzip-compressed"},
		{"a text file", []byte("hello\n"), cluster.ErrNotBackup, "not gzip-compressed"},
		{"gzip of text", gz([]byte("hello, this is not a tar archive at all\n")), cluster.ErrNotBackup, "meta.json"},
		{"an uncompressed tar", tarOf("meta.json", `{"kind":"foreshape-snapshot","version":1}`), cluster.ErrNotBackup, "not gzip-compressed"},
		{"another tar.gz", gz(tarOf("README", "hi")), cluster.ErrNotBackup, `holds "README" where meta.json should be`},
		{"another kind", gz(tarOf("meta.json", `{"kind":"consul-snapshot","version":1}`)), cluster.ErrNotBackup, `kind "foreshape-snapshot"`},
		{"a later version", gz(tarOf("meta.json", `{"kind":"foreshape-snapshot","version":2}`)), cluster.ErrBackupVersion, "archive version 2, this release reads version 1"},
	} {
		err := read(tc.file)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	if err := read(newerArchive.Bytes()); err != nil {
		t.Errorf("WriteBackup sets the version it writes: %v", err)
	}
}

// TestBackupRestoredAtTheRestoresIndex: RestoreBackupAt asks for the
// state with the Raft index the restore takes (past the log's and the
// backup's), and a state rewritten with it as the act state's index
// (state.RewriteActModified, as the agent's restore does) gives every
// server that index: the leader, a follower cut off during the restore
// that installs the leader's snapshot once back, and a state machine
// started from the leader's state. It is past every act index the
// replaced state showed, so a client holding one sees a change.
func TestBackupRestoredAtTheRestoresIndex(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 3)
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	fill(t, c, "after", 2)
	held := fsms[l].ActModified()
	f := (l + 1) % 3
	// The follower cut off holds the writes after the backup (40 series):
	// one that lagged behind them held the backup's 20 already, so the
	// wait below for the restored state passed before it installed the
	// snapshot, and its act index was its own (in two runs in a row at a
	// load of 15).
	c.Eventually(fmt.Sprintf("node%d to hold the writes after the backup", f), func() bool { return fsms[f].Len() == 40 })
	c.Partition(f)
	var asked uint64
	err := c.Nodes[l].RestoreBackupAt(context.Background(), meta, func(index uint64) (io.Reader, int64, error) {
		asked = index
		var rewritten bytes.Buffer
		if err := state.RewriteActModified(&rewritten, bytes.NewReader(saved), index); err != nil {
			return nil, 0, err
		}
		return bytes.NewReader(rewritten.Bytes()), int64(rewritten.Len()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if si := c.Nodes[l].SnapshotIndex(); asked != si || asked <= held || asked <= meta.Index {
		t.Errorf("asked for the state at index %d; the restore's Raft index is %d, the act state's before %d, the backup's %d: want the restore's, past both",
			asked, si, held, meta.Index)
	}
	c.Heal(f)
	for i, fsm := range fsms {
		c.Eventually(fmt.Sprintf("node%d holds the restored state", i), func() bool { return fsm.Len() == 20 })
		if got := fsm.ActModified(); got != asked {
			t.Errorf("node%d: the act state's index is %d after the restore; want the restore's, %d", i, got, asked)
		}
	}
	restarted, _ := state.NewFSM(state.Config{})
	if err := restarted.Restore(io.NopCloser(bytes.NewReader(stateBytes(t, fsms[l])))); err != nil {
		t.Fatal(err)
	}
	if got := restarted.ActModified(); got != asked {
		t.Errorf("a state machine started from the leader's state: act index %d; want %d", got, asked)
	}
}

// submitDuring is a migration request sent while a backup is restored.
func submitDuring() []byte {
	return state.Encode(state.SubmitRequest{Request: state.MigrationRequest{
		Resource: state.Resource{Kind: state.ResourceAllocation, ID: "during-alloc"},
		Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}})
}

// holdsDuring reports whether fsm holds submitDuring's request.
func holdsDuring(fsm *state.FSM) bool {
	return slices.ContainsFunc(fsm.Act().Requests, func(r state.MigrationRequest) bool { return r.Resource.ID == "during-alloc" })
}

// restoreWith restores saved through node l as the agent does, with the
// restore's index as the act state's, calling during with that index once
// the restore has read it and before raft's restore; it returns the index.
func restoreWith(t *testing.T, n *cluster.Node, meta cluster.BackupMeta, saved []byte, during func(index uint64)) uint64 {
	t.Helper()
	var asked uint64
	err := n.RestoreBackupAt(context.Background(), meta, func(index uint64) (io.Reader, int64, error) {
		asked = index
		during(index)
		var rewritten bytes.Buffer
		if err := state.RewriteActModified(&rewritten, bytes.NewReader(saved), index); err != nil {
			return nil, 0, err
		}
		return bytes.NewReader(rewritten.Bytes()), int64(rewritten.Len()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return asked
}

// TestWriteDuringARestoreLandsAfterIt: a write sent to the leader once a
// restore has read its index, before raft restores, waits for the
// restore and applies to the restored state at an index past the
// restore's, on every server. It landed at the very index the restore
// had read: answered at that index, then dropped by the restore, whose
// state showed the same index, so a client holding it saw no change.
func TestWriteDuringARestoreLandsAfterIt(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 2)
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	fill(t, c, "after", 1)
	waiting := make(chan struct{}, 1)
	cluster.OnApplyWaiting(c.Nodes[l], func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	type answer struct {
		res any
		err error
	}
	answered := make(chan answer, 1)
	asked := restoreWith(t, c.Nodes[l], meta, saved, func(uint64) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Nodes[l].Apply(ctx, submitDuring())
			answered <- answer{res, err}
		}()
		select {
		case <-waiting: // it waits for the restore
		case a := <-answered: // it was applied before the restore
			answered <- a
		}
	})
	a := <-answered
	if a.err != nil {
		t.Fatalf("the write sent during the restore: %v", a.err)
	}
	at := a.res.(state.Result).Index
	if at <= asked {
		t.Errorf("the write sent during the restore was answered at index %d; the restore's is %d: want it past", at, asked)
	}
	c.WaitApplied(at)
	for i, fsm := range fsms {
		if !holdsDuring(fsm) {
			t.Errorf("node%d: the restored state lacks the write sent during the restore, answered at index %d", i, at)
		}
		if got := fsm.ActModified(); got != at {
			t.Errorf("node%d: the act state's index is %d; want the write's, %d (the restore's %d)", i, got, at, asked)
		}
	}
}

// TestWriteWaitingForARestoreFailsNotApplied: a write whose context ends
// while the restore it waits for goes on fails, saying that a restore was
// under way and that the command was not applied, and wrapping its
// context's error; no server holds it afterwards.
func TestWriteWaitingForARestoreFailsNotApplied(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 1)
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	var err error
	asked := restoreWith(t, c.Nodes[l], meta, saved, func(uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err = c.Nodes[l].Apply(ctx, submitDuring())
	})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "restored") || !strings.Contains(err.Error(), "not applied") {
		t.Errorf("a write whose wait ended during the restore: %v; want context.DeadlineExceeded, saying a restore was under way and the command not applied", err)
	}
	c.WaitApplied(asked)
	for i, fsm := range fsms {
		if holdsDuring(fsm) {
			t.Errorf("node%d holds the write that failed during the restore", i)
		}
	}
	// The next write goes through, on the restored state.
	res := c.Apply(submitDuring()).(state.Result)
	if res.Index <= asked {
		t.Errorf("a write after the restore was applied at index %d; want past the restore's, %d", res.Index, asked)
	}
}

// TestResumeWaitingForARestoreLeavesTheRestoredQueuePaused: a resume of
// the queue sent while a backup is restored, for the pause it read
// before, waits for the restore and is then refused: the restored queue,
// paused by the restore for review, stays paused on every server.
func TestResumeWaitingForARestoreLeavesTheRestoredQueuePaused(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 1)
	paused := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c.Apply(state.Encode(state.SetQueuePaused{Paused: true, At: paused, By: "operator"}))
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	waiting := make(chan struct{}, 1)
	cluster.OnApplyWaiting(c.Nodes[l], func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	restoredAt := paused.Add(time.Hour)
	answered := make(chan error, 1)
	err := c.Nodes[l].RestoreBackupAt(context.Background(), meta, func(index uint64) (io.Reader, int64, error) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Nodes[l].Apply(ctx, state.Encode(state.SetQueuePaused{At: restoredAt, By: "operator", IfPausedAt: paused, IfPausedBy: "operator"}))
			answered <- err
		}()
		select {
		case <-waiting:
		case err := <-answered:
			answered <- err
		}
		var pausedAgain, rewritten bytes.Buffer
		if _, err := state.RewriteQueuePause(&pausedAgain, bytes.NewReader(saved), state.SetQueuePaused{Paused: true, At: restoredAt, By: "snapshot restore"}); err != nil {
			return nil, 0, err
		}
		if err := state.RewriteActModified(&rewritten, bytes.NewReader(pausedAgain.Bytes()), index); err != nil {
			return nil, 0, err
		}
		return bytes.NewReader(rewritten.Bytes()), int64(rewritten.Len()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pa *state.PausedAgainError
	if err := <-answered; !errors.As(err, &pa) || pa.By != "snapshot restore" {
		t.Fatalf("a resume sent during the restore for the pause before it: %v; want it refused, the queue paused again by the restore", err)
	}
	c.WaitApplied(c.Nodes[l].LastIndex())
	for i, fsm := range fsms {
		if v := fsm.Act(); !v.Paused || v.PausedBy != "snapshot restore" {
			t.Errorf("node%d: the restored queue is paused %v by %q; want paused by the restore", i, v.Paused, v.PausedBy)
		}
	}
}
