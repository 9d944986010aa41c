package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// fullSnaps is an in-memory snapshot store whose snapshots fail with
// ENOSPC, as on a full disk, once full is set.
type fullSnaps struct {
	*raft.InmemSnapshotStore
	full atomic.Bool
}

func (s *fullSnaps) Create(version raft.SnapshotVersion, index, term uint64, c raft.Configuration, ci uint64, tr raft.Transport) (raft.SnapshotSink, error) {
	if s.full.Load() {
		return nil, &fs.PathError{Op: "write", Path: "/data/snapshots/meta.json", Err: syscall.ENOSPC}
	}
	return s.InmemSnapshotStore.Create(version, index, term, c, ci, tr)
}

// fullDiskLeader is an agent leading a one-server in-memory cluster whose
// Raft snapshots go to a store that fails as a full disk once its full is
// set.
func fullDiskLeader(t *testing.T) (*Agent, *cluster.Node, *fullSnaps) {
	t.Helper()
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	snaps := &fullSnaps{InmemSnapshotStore: raft.NewInmemSnapshotStore()}
	node, err := cluster.New(cluster.Config{NodeID: "full", InMemory: true, Bootstrap: true, SnapshotStore: snaps}, a.fsm, a.log.Named("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	a.node = node
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := node.LeaderContext(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	return a, node, snaps
}

// TestSnapshotRestoreOnAFullDiskIs503: a restore that raft cannot write
// into the data_dir (a full disk) is answered as a write the leader could
// not store is: unavailable (the API's 503), naming the disk and saying
// nothing was restored; the state is as it was. It was a 500 with raft's
// "failed to write snapshot" alone (measured on a 72 KiB tmpfs).
func TestSnapshotRestoreOnAFullDiskIs503(t *testing.T) {
	a, node, snaps := fullDiskLeader(t)
	ctx := context.Background()
	pause := func(by string) {
		t.Helper()
		if _, err := (applier{node}).Apply(ctx, state.SetQueuePaused{Paused: true, At: time.Now().UTC(), By: by}); err != nil {
			t.Fatal(err)
		}
	}
	pause("before the backup")
	var archive bytes.Buffer
	if err := a.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	pause("after the backup")
	snaps.full.Store(true)
	_, err := a.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()), api.RestoreOptions{KeepQueue: true})
	if !errors.Is(err, api.ErrUnavailable) || !errors.Is(err, cluster.ErrDataDir) ||
		!strings.Contains(err.Error(), "the disk is full") || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("a restore on a full disk: %v; want unavailable (503) naming the disk, nothing restored", err)
	}
	if by := a.fsm.Act().PausedBy; by != "after the backup" {
		t.Errorf("the queue after the refused restore is paused by %q; want the state as it was", by)
	}
}

// TestSnapshotRestoreUploadOnAFullDiskIs503: a restore whose upload cannot
// be written into the data_dir, where the leader checks it (a full disk:
// here each file it creates is /dev/full, through a link the restore
// removes), is answered unavailable (503), naming the disk and saying
// nothing was restored, as a write the leader could not store; it was a
// 500 "reading the snapshot, nothing was restored: write …: no space left
// on device" (measured on a 44 KiB tmpfs).
func TestSnapshotRestoreUploadOnAFullDiskIs503(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	a, _, _ := fullDiskLeader(t)
	ctx := context.Background()
	var archive bytes.Buffer
	if err := a.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	made := 0
	createRestoreFile = func(string, string) (*os.File, error) {
		made++
		link := filepath.Join(dir, fmt.Sprintf("restore-%d.state", made))
		if err := os.Symlink("/dev/full", link); err != nil {
			return nil, err
		}
		return os.OpenFile(link, os.O_RDWR, 0)
	}
	t.Cleanup(func() { createRestoreFile = os.CreateTemp })
	for _, keep := range []bool{true, false} {
		_, err := a.RestoreSnapshot(ctx, bytes.NewReader(archive.Bytes()), api.RestoreOptions{KeepQueue: keep})
		if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "the disk is full") || !strings.Contains(err.Error(), "nothing was restored") {
			t.Fatalf("a restore (keep_queue %v) whose upload cannot be written: %v; want unavailable (503) naming the disk, nothing restored", keep, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
		t.Errorf("left after the refused restores: %q", left)
	}
}

// TestSnapshotSaveOnAFullDiskIs503: a backup raft cannot write into the
// data_dir (a full disk) is answered unavailable (503), naming the disk;
// it was a 500 with raft's "failed to create snapshot" alone (measured on
// a full 44 KiB tmpfs).
func TestSnapshotSaveOnAFullDiskIs503(t *testing.T) {
	a, _, snaps := fullDiskLeader(t)
	snaps.full.Store(true)
	var archive bytes.Buffer
	err := a.SaveSnapshot(context.Background(), &archive)
	if !errors.Is(err, api.ErrUnavailable) || !errors.Is(err, cluster.ErrDataDir) || !strings.Contains(err.Error(), "the disk is full") {
		t.Fatalf("a backup on a full disk: %v; want unavailable (503) naming the disk", err)
	}
}
