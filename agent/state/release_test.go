package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

// Snapshots written by earlier builds, each with the log of commands that
// build encoded before writing it (testdata/release-<commit>.log: per
// entry a uvarint length and the entry). docs/clustering.md ("Upgrading")
// promises that servers of this build read the snapshots of the releases
// named there, the oldest 5d3fd3e; doc.go, that snapshots from before
// profiles restore unchanged. To add one: copy a generator
// (testdata/release-<commit>_gen_test.go) into agent/state of `git archive
// <commit> | tar -x -C /tmp/old`, adapt it to that build's API, run
// `RELEASE_OUT=$PWD/testdata/release-<commit> go -C /tmp/old test -run
// TestWriteReleaseSnapshot ./agent/state/` from this directory, keep the
// generator beside its files and list the commit here.
var releaseSnapshots = []struct {
	commit   string
	profiles []Profile
	// act is whether the build had the act state and membership.
	act bool
}{
	{"846d68b", nil, false}, // before profiles and the act state
	{"5d3fd3e", mixedProfiles(), true},
}

func readReleaseLog(t *testing.T, name string) []*raft.Log {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []*raft.Log
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			t.Fatalf("%s: bad entry %d", name, len(out)+1)
		}
		out = append(out, &raft.Log{Index: uint64(len(out) + 1), Term: 1, Type: raft.LogCommand, Data: b[k : k+int(n)]})
		b = b[k+int(n):]
	}
	return out
}

// TestRestoreReleaseSnapshot: a snapshot an earlier release wrote restores
// to exactly the state this build reaches by applying that release's log,
// and both continue alike.
func TestRestoreReleaseSnapshot(t *testing.T) {
	for _, rel := range releaseSnapshots {
		t.Run(rel.commit, func(t *testing.T) {
			entries := readReleaseLog(t, "testdata/release-"+rel.commit+".log")
			snap, err := os.ReadFile("testdata/release-" + rel.commit + ".snap")
			if err != nil {
				t.Fatal(err)
			}
			applied := newFSM(t, smallTiers, withProfiles(rel.profiles))
			for _, l := range entries {
				if err, ok := applied.Apply(l).(error); ok && !errors.Is(err, ErrMalformedPayload) {
					t.Fatalf("apply index %d: %v", l.Index, err)
				}
			}
			restored := newFSM(t, smallTiers, withProfiles(rel.profiles))
			if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
				t.Fatal(err)
			}
			if restored.AppliedIndex() != uint64(len(entries)) {
				t.Errorf("restored index %d; want %d", restored.AppliedIndex(), len(entries))
			}
			if diff := cmp.Diff(applied.act, restored.act, cmp.AllowUnexported(actStore{})); diff != "" {
				t.Errorf("restored act state differs from the applied log's (-applied +restored):\n%s", diff)
			}
			if diff := cmp.Diff(applied.members, restored.members, cmp.AllowUnexported(membership{})); diff != "" {
				t.Errorf("restored membership differs from the applied log's (-applied +restored):\n%s", diff)
			}
			equalStores(t, applied, restored)
			if !bytes.Equal(snapshotBytes(t, restored), snapshotBytes(t, applied)) {
				t.Error("the restored state snapshots to other bytes than the applied log's")
			}
			// The snapshot holds what the test means it to: requests
			// forgotten, intents open and closed, a server and a client.
			act := restored.Act()
			if restored.Len() == 0 {
				t.Error("the release's snapshot holds no series")
			}
			if rel.act && (len(act.Requests) == 0 || len(act.Reservations) == 0 || len(act.OpenIntents) == 0 || len(act.ScaleActions) == 0 ||
				len(act.Estimates) == 0 || len(act.Cooldowns) == 0 || len(restored.Decisions()) == 0 ||
				len(restored.Servers()) == 0 || len(restored.Clients()) == 0) {
				t.Errorf("the release's snapshot lacks a part of the state: %+v", act)
			}
			// Both continue alike, and a new request takes an ID no
			// request of the release's ever had.
			next := logOf(uint64(len(entries)+1),
				Encode(SubmitRequest{Request: request("z1")}),
				Encode(OpenIntent{Intent: Intent{ID: "after", Kind: IntentStopAlloc, Object: "z1"}}))
			for _, f := range []*FSM{applied, restored} {
				for _, l := range next {
					if err, ok := f.Apply(l).(error); ok {
						t.Fatalf("apply index %d after the release's state: %v", l.Index, err)
					}
				}
			}
			if !bytes.Equal(snapshotBytes(t, restored), snapshotBytes(t, applied)) {
				t.Error("after more entries, the restored state and the applied log's differ")
			}
			if r := restored.Act().Requests; rel.act && r[len(r)-1].ID != "mr-4" {
				t.Errorf("the request submitted after restore is %s; want mr-4 (mr-1 to mr-3 were the release's)", r[len(r)-1].ID)
			}
		})
	}
}

// TestRestoreRefusesANewerFormat: a snapshot of a later format version is
// refused as a newer server's, saying which version, and the state is
// kept; one of an unknown older version is refused as damaged.
func TestRestoreRefusesANewerFormat(t *testing.T) {
	rel := releaseSnapshots[len(releaseSnapshots)-1]
	snap, err := os.ReadFile("testdata/release-" + rel.commit + ".snap")
	if err != nil {
		t.Fatal(err)
	}
	if snap[len(snapshotMagic)] != snapshotVersion {
		t.Fatalf("version byte %d; want %d", snap[len(snapshotMagic)], snapshotVersion)
	}
	withVersion := func(v byte) []byte {
		b := bytes.Clone(snap[:len(snap)-4])
		b[len(snapshotMagic)] = v
		return appendCRC(b)
	}
	f := newFSM(t, smallTiers, withProfiles(rel.profiles))
	f.Apply(logOf(1, Encode(InitCluster{ID: "kept"}))[0])
	err = f.Restore(io.NopCloser(bytes.NewReader(withVersion(2))))
	if !errors.Is(err, ErrUnknownSection) || !errors.Is(err, ErrOlderThanLog) || errors.Is(err, ErrCorruptSnapshot) ||
		!strings.Contains(err.Error(), "format version 2") {
		t.Errorf("format version 2: %v; want ErrUnknownSection naming format version 2, not corrupt", err)
	}
	if f.Halted() == nil || f.ClusterID() != "kept" || f.AppliedIndex() != 1 {
		t.Errorf("after a newer format: halted %v, cluster %q, applied %d; want halted with the state kept", f.Halted(), f.ClusterID(), f.AppliedIndex())
	}
	g := newFSM(t, smallTiers, withProfiles(rel.profiles))
	if err := g.Restore(io.NopCloser(bytes.NewReader(withVersion(0)))); !errors.Is(err, ErrCorruptSnapshot) || g.Halted() != nil {
		t.Errorf("format version 0: %v, halted %v; want ErrCorruptSnapshot, not halted", err, g.Halted())
	}
	// The release's snapshot restores after either, and the halt ends.
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil || f.Halted() != nil {
		t.Errorf("restore after the refusal: %v, halted %v", err, f.Halted())
	}
}
