package state

// Generates testdata/release-846d68b.{log,snap} in a checkout of a build
// from before profiles and the act state: the log of series commands it
// encoded and the snapshot it wrote after applying them.

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/hashicorp/raft"
)

func TestWriteReleaseSnapshot(t *testing.T) {
	out := os.Getenv("RELEASE_OUT")
	if out == "" {
		t.Skip("RELEASE_OUT unset")
	}
	f := newFSM(t, smallTiers)
	var log []byte
	var index uint64
	for _, b := range randomLog(23, 200) {
		// A type no build knows: this build skipped it, later ones halt.
		if _, err := Decode(b); errors.Is(err, ErrUnknownCommand) {
			continue
		}
		index++
		log = binary.AppendUvarint(log, uint64(len(b)))
		log = append(log, b...)
		f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b})
	}
	var snap writeBuf
	if err := f.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".log", log, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".snap", snap.b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entries, %d series, snapshot %d bytes", index, f.Len(), len(snap.b))
}

type writeBuf struct{ b []byte }

func (w *writeBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
