package state

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMembershipApplyAndSnapshot(t *testing.T) {
	f := newFSM(t, smallTiers)
	empty := snapshotBytes(t, f)
	s1 := ServerMeta{ID: "a1", Name: "fs-1", RaftAddress: "10.0.0.1:7576", HTTPAddress: "10.0.0.1:7575", Version: "0.1"}
	c1 := ClientAgent{NodeID: "n1", NodeName: "node-1", Name: "fs-c1", Address: "10.0.1.1:7575", Since: at(0), LastSeen: at(0)}
	cmds := [][]byte{
		Encode(PutServer{Server: s1}),
		Encode(PutServer{Server: ServerMeta{ID: "b2", Name: "fs-2"}}),
		Encode(PutClient{Client: c1}),
		Encode(PutServer{Server: s1}), // unchanged
		Encode(RemoveServer{ID: "b2"}),
		Encode(RemoveClient{NodeID: "gone"}),
	}
	wantApplied := []int{1, 1, 1, 0, 1, 0}
	for i, l := range logOf(1, cmds...) {
		res, ok := f.Apply(l).(Result)
		if !ok || res.Applied != wantApplied[i] {
			t.Errorf("command %d (%s): %#v; want Applied %d", i, res.Type, f.Apply(l), wantApplied[i])
		}
	}
	if diff := cmp.Diff([]ServerMeta{s1}, f.Servers()); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ClientAgent{c1}, f.Clients()); diff != "" {
		t.Errorf("clients (-want +got):\n%s", diff)
	}
	if res, _ := f.Apply(logOf(10, Encode(PutServer{}))[0]).(error); !errors.Is(res, ErrMalformedPayload) {
		t.Errorf("a server without an id: %v; want ErrMalformedPayload", res)
	}

	snap := snapshotBytes(t, f)
	g := newFSM(t, smallTiers)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(g.Servers(), f.Servers()) || !cmp.Equal(g.Clients(), f.Clients()) {
		t.Errorf("restored membership: %v %v", g.Servers(), g.Clients())
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Error("the restored state snapshots to other bytes")
	}

	// Forgetting everyone leaves a snapshot without the section, byte for
	// byte what it was before any membership existed (applied index aside).
	h := newFSM(t, smallTiers)
	for _, l := range logOf(1, Encode(PutClient{Client: c1}), Encode(RemoveClient{NodeID: "n1"})) {
		h.Apply(l)
	}
	if got := snapshotBytes(t, h); len(got) != len(empty) {
		t.Errorf("an emptied membership snapshots to %d bytes; want %d like an empty state", len(got), len(empty))
	}
}

// TestMembershipSectionSkippable: a reader that does not know the section
// (an older server) skips it, because it is marked skippable.
func TestMembershipSectionSkippable(t *testing.T) {
	f := newFSM(t, smallTiers)
	f.Apply(logOf(1, Encode(PutServer{Server: ServerMeta{ID: "a"}}))[0])
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(sectionMembership)) {
		t.Fatal("no membership section written")
	}
	i := bytes.Index(buf.Bytes(), []byte(sectionMembership))
	if flags := buf.Bytes()[i+len(sectionMembership)]; flags&flagSkippable == 0 {
		t.Errorf("membership section flags %08b; want skippable", flags)
	}
}
