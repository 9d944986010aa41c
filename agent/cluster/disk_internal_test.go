package cluster

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// leavingStore is raft's file snapshot store, but its Create fails, once
// fail is set, as raft's (v1.7.3) does when the disk is full: after making
// NAME.tmp and writing part of its meta.json, which it leaves there. Its
// sinks' Cancel fails as raft's does when the last flush of the state
// fails: without removing the directory.
type leavingStore struct {
	*raft.FileSnapshotStore
	dir  string
	fail bool
	n    int
}

var errFull = &fs.PathError{Op: "write", Path: "meta.json", Err: syscall.ENOSPC}

func (s *leavingStore) Create(version raft.SnapshotVersion, index, term uint64, c raft.Configuration, ci uint64, tr raft.Transport) (raft.SnapshotSink, error) {
	s.n++
	if s.fail {
		dir := filepath.Join(s.dir, "snapshots", "9-"+string(rune('0'+s.n))+"-1.tmp")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte("{\"Ver"), 0o600); err != nil {
			return nil, err
		}
		return nil, errFull
	}
	sink, err := s.FileSnapshotStore.Create(version, index, term, c, ci, tr)
	return leavingSink{sink, filepath.Join(s.dir, "snapshots", sink.ID()+".tmp")}, err
}

type leavingSink struct {
	raft.SnapshotSink
	dir string
}

// Cancel fails when the sink's directory holds a file named "full".
func (s leavingSink) Cancel() error {
	if _, err := os.Stat(filepath.Join(s.dir, "full")); err == nil {
		return errFull
	}
	return s.SnapshotSink.Cancel()
}

func tmpDirs(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if filepath.Ext(e.Name()) == ".tmp" {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestFailedSnapshotsLeaveNothing: a snapshot whose Create fails on a
// full disk, or whose sink cannot be cancelled cleanly, leaves no
// NAME.tmp directory behind, while a snapshot being written at the same
// time keeps its own. Raft's file store left each, until the server
// restarted: on a full tmpfs, one per raft_snapshot_interval, each
// logged by raft as "found temporary snapshot" at WARN at every later
// snapshot, and a cancelled sink's holds as much of the state as fitted.
func TestFailedSnapshotsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	fss, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	store := &leavingStore{FileSnapshotStore: fss, dir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newDiskHealth(hclog.NewNullLogger(), time.Now, ctx)
	w := watchedSnapshots{store, h, filepath.Join(dir, "snapshots"), newSnapshotTmp(hclog.NewNullLogger())}
	conf := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a"}}}
	_, tr := raft.NewInmemTransport("a")

	// One being written (a follower installing its leader's snapshot)…
	open, err := w.Create(1, 10, 2, conf, 1, tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	// …while two of its own fail to be created.
	store.fail = true
	for range 2 {
		if _, err := w.Create(1, 11, 2, conf, 1, tr); err == nil {
			t.Fatal("create on a full disk succeeded")
		}
	}
	if got, want := tmpDirs(t, dir), []string{open.ID() + ".tmp"}; !slices.Equal(got, want) {
		t.Fatalf("snapshots/ holds %q; want only the one being written, %q", got, want)
	}
	if h.err() == nil {
		t.Fatal("the failed snapshots are not an outage")
	}

	// A sink cancelled after its writes failed, whose cancel fails too.
	store.fail = false
	failed, err := w.Create(1, 12, 2, conf, 1, tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snapshots", failed.ID()+".tmp", "full"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := failed.Cancel(); err == nil {
		t.Fatal("cancel succeeded")
	}
	if got, want := tmpDirs(t, dir), []string{open.ID() + ".tmp"}; !slices.Equal(got, want) {
		t.Fatalf("after a failed cancel snapshots/ holds %q; want only %q", got, want)
	}

	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tmpDirs(t, dir); len(got) != 0 {
		t.Fatalf("snapshots/ holds %q once the snapshot is written", got)
	}
	if h.err() != nil {
		t.Fatalf("a snapshot written, the outage lasts: %v", h.err())
	}
	if list, err := fss.List(); err != nil || len(list) != 1 || list[0].ID != open.ID() {
		t.Fatalf("snapshots: %v, %v; want the one written", list, err)
	}
}

// TestRaftsDiskFailureLinesAreQuiet: raft's file snapshot store logs a
// failed write at ERROR before it returns the error through the store's
// wrapper, which logs the outage itself: a disk's failure (full,
// read-only, I/O errors) in such a line is DEBUG even before the outage
// is known; another failure keeps its level. On a full tmpfs the
// snapshot store's "failed to write metadata" came just before the
// outage's own line.
func TestRaftsDiskFailureLinesAreQuiet(t *testing.T) {
	var out syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
	l := stoppingLogger{Logger: base, stopping: ctx, disk: newDiskHealth(base, time.Now, ctx)}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EIO} {
		l.Error("failed to write metadata", "error", &fs.PathError{Op: "write", Path: "meta.json", Err: errno})
	}
	if out.String() != "" {
		t.Fatalf("the disk's failures were logged:\n%s", out.String())
	}
	l.Error("failed to write metadata", "error", &fs.PathError{Op: "write", Path: "meta.json", Err: syscall.EINVAL})
	if !strings.Contains(out.String(), "[ERROR] failed to write metadata") {
		t.Fatalf("another failure was not logged at ERROR:\n%s", out.String())
	}
}
