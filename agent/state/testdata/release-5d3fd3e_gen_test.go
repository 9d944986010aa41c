package state

// Generates testdata/release-5d3fd3e.{log,snap} in a checkout of an older
// release: the log of commands that release encoded and the snapshot it
// wrote after applying them.

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestWriteReleaseSnapshot(t *testing.T) {
	out := os.Getenv("RELEASE_OUT")
	if out == "" {
		t.Skip("RELEASE_OUT unset")
	}
	f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
	var log []byte
	var index uint64
	raw := func(b []byte) any {
		index++
		log = binary.AppendUvarint(log, uint64(len(b)))
		log = append(log, b...)
		return f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b})
	}
	apply := func(c Command) Result {
		t.Helper()
		r := raw(Encode(c))
		if err, ok := r.(error); ok {
			t.Fatalf("apply %s: %v", c.Type(), err)
		}
		return r.(Result)
	}
	for _, b := range actLog() {
		if err, ok := raw(b).(error); ok {
			t.Fatal(err)
		}
	}
	for _, b := range randomLog(21, 120) {
		// A type no build knows: this release skipped it, this one halts.
		if _, err := Decode(b); !errors.Is(err, ErrUnknownCommand) {
			raw(b)
		}
	}
	grp := request("", func(r *MigrationRequest) {
		r.Resource = Resource{Kind: ResourceGroup, Namespace: "default", Job: "api", Group: "http"}
		r.Moves = []Move{{Alloc: "g1", Name: "api.http[0]", Namespace: "default", Job: "api", Group: "http", Node: "n2", Size: Resources{CPU: 100, MemoryMB: 64, IOPS: 5}}}
		r.OriginKey, r.Origin, r.Policy, r.Priority = "schedule/p/w/1", "schedule", "p", 70
		r.NotBefore, r.Deadline, r.Exclude = at(5*time.Hour), at(6*time.Hour), []string{"n2"}
	})
	g := apply(SubmitRequest{Request: grp, Limit: 10}).ID
	// mr-1 (running) finishes and is forgotten: its ID must never return.
	r1, _ := f.Act().Request("mr-1")
	r1.State, r1.Finished = RequestDone, at(3*time.Hour)
	r1.Moves[0].Replacement, r1.Moves[0].TargetNode, r1.Moves[0].Landed = "a1b", "n9", "dc2"
	r1.Moves[0].Stopped, r1.Moves[0].Running, r1.Moves[0].Done = at(2*time.Hour), at(2*time.Hour+time.Minute), true
	apply(UpdateRequest{Request: r1, IfVersion: r1.Version})
	apply(PruneRequests{IDs: []string{"mr-1"}})
	rg, _ := f.Act().Request(g)
	rg.State, rg.Started, rg.OutWait, rg.Attempts, rg.Estimated = RequestRunning, at(5*time.Hour), at(5*time.Hour), 1, 90*time.Second
	apply(UpdateRequest{Request: rg, IfVersion: rg.Version})
	rs, _ := f.Act().ReservationFor("mr-2")
	rs.State, rs.Placed, rs.Exclude, rs.Reason = ReservationReleased, at(90*time.Minute), []string{"n7"}, "cancelled"
	apply(PutReservation{Reservation: rs, IfVersion: rs.Version})
	apply(PutReservation{Reservation: Reservation{Request: g, Policy: "p", Locality: "dc2", State: ReservationPlanned,
		Chunks: []Chunk{{Size: Resources{CPU: 100, MemoryMB: 64, IOPS: 5}, Count: 2}}, From: at(5 * time.Hour), Until: at(6 * time.Hour), Expires: at(7 * time.Hour)}})
	apply(RecordScaleAction{Action: ScaleAction{ID: "sa-1", Policy: "p", Scale: "s", Plugin: "nomad-job", Locality: "dc2", At: at(time.Minute), Direction: "up", Amount: 1, Count: 4,
		Reason: "r", Request: "mr-2", NeededBy: at(time.Hour), Finished: at(3 * time.Minute), Outcome: OutcomeFailed, Error: "refused"}})
	apply(OpenIntent{Intent: Intent{ID: "i4", Kind: IntentNodeEligibility, Request: g, Reservation: "rs-2", Object: "n2", Detail: "ineligible",
		Before: NodeWasEligible, Leader: "s1", Term: 3, Opened: at(5 * time.Hour)}})
	apply(SetQueuePaused{Paused: false, At: at(4 * time.Hour), By: "operator"})
	apply(PutServer{Server: ServerMeta{ID: "s1", Name: "fs-1", RaftAddress: "10.0.0.1:7576", HTTPAddress: "10.0.0.1:7575", Version: "0.1"}})
	apply(PutServer{Server: ServerMeta{ID: "s2", Name: "fs-2", RaftAddress: "10.0.0.2:7576", HTTPAddress: "10.0.0.2:7575", Version: "0.1"}})
	apply(PutClient{Client: ClientAgent{NodeID: "n1", NodeName: "node-1", Name: "fs-c1", Address: "10.0.1.1:7575", Version: "0.1", Since: at(0), LastSeen: at(time.Hour)}})
	apply(PutClient{Client: ClientAgent{NodeID: "n2", NodeName: "node-2"}})
	apply(RemoveClient{NodeID: "n2", At: at(time.Hour), Reason: "silent"})

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
	t.Logf("%d entries, applied %d, snapshot %d bytes", index, f.AppliedIndex(), len(snap.b))
}

type writeBuf struct{ b []byte }

func (w *writeBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
