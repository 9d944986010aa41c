package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/foreshape/foreshape/agent/cluster"
)

// TestRestoreOnAFullDiskSaysSo: a restore whose snapshot raft cannot write
// to the data_dir (a full disk) is refused with an error wrapping
// ErrDataDir that names the disk and says nothing was restored, as a
// command the leader could not store is (the agent answers both 503); the
// state is as it was and the leader goes on taking writes. It failed with
// raft's "failed to write snapshot" alone, which the agent answered 500.
func TestRestoreOnAFullDiskSaysSo(t *testing.T) {
	s := diskServers(t, 1)[0]
	if _, err := s.node.Apply(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	var archive, st bytes.Buffer
	if _, err := s.node.SaveBackup(context.Background(), &archive, backupInfo); err != nil {
		t.Fatal(err)
	}
	meta, err := cluster.ReadBackup(bytes.NewReader(archive.Bytes()), &st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.node.Apply(context.Background(), []byte("b")); err != nil {
		t.Fatal(err)
	}
	s.snaps.fail.Store(syscall.ENOSPC)
	err = s.node.RestoreBackup(context.Background(), meta, bytes.NewReader(st.Bytes()))
	if !errors.Is(err, cluster.ErrDataDir) || !strings.Contains(err.Error(), "the disk is full") || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("a restore on a full disk: %v; want it to wrap ErrDataDir, name the disk and say nothing was restored", err)
	}
	if got := s.fsm.Values(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("the state after the refused restore: %q; want it as it was", got)
	}
	applyToLeader(t, []*cluster.Node{s.node}, []byte("c"))
}

// TestSaveOnAFullDiskSaysSo: a backup whose snapshot raft cannot write to
// the data_dir (a full disk) fails with an error wrapping ErrDataDir that
// names the disk, as a restore there does; it failed with raft's "failed
// to create snapshot" alone, which the agent answered 500.
func TestSaveOnAFullDiskSaysSo(t *testing.T) {
	s := diskServers(t, 1)[0]
	if _, err := s.node.Apply(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	s.snaps.fail.Store(syscall.ENOSPC)
	var archive bytes.Buffer
	_, err := s.node.SaveBackup(context.Background(), &archive, backupInfo)
	if !errors.Is(err, cluster.ErrDataDir) || !strings.Contains(err.Error(), "the disk is full") {
		t.Fatalf("a backup on a full disk: %v; want it to wrap ErrDataDir and name the disk", err)
	}
	if archive.Len() > 0 {
		t.Errorf("the refused backup wrote %d bytes", archive.Len())
	}
}
