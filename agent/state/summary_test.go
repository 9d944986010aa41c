package state

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSummarizeCountsWhatTheStateHolds: Summarize reads, without a
// Config, the layout a snapshot was written with (tiers and profiles),
// its applied index and how many series, requests, intents, servers and
// client agents it holds; it refuses a snapshot with a byte changed, and
// one of a later format (ErrUnknownSection).
func TestSummarizeCountsWhatTheStateHolds(t *testing.T) {
	l, err := NewLocal(Config{Tiers: smallTiers, Profiles: mixedProfiles()})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, AppendSamples{Step: time.Minute, Samples: []Sample{
		{Key: Key{Locality: "dc1", Metric: "cpu"}, Time: at(0), Value: 1},
		{Key: nodeCPU, Time: at(0), Value: 2}, {Key: nodeMem, Time: at(0), Value: 3},
	}})
	for _, id := range []string{"a1", "a2"} {
		mustApply(t, l, SubmitRequest{Request: MigrationRequest{Resource: Resource{Kind: ResourceAllocation, ID: id},
			Source: "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: at(0)}})
	}
	mustApply(t, l, OpenIntent{Intent: Intent{ID: "stop/a1#1", Kind: IntentStopAlloc, Object: "a1", Request: "mr-1", Opened: at(0)}})
	mustApply(t, l, PutServer{Server: ServerMeta{ID: "s1", Name: "fs-1"}})
	mustApply(t, l, PutServer{Server: ServerMeta{ID: "s2", Name: "fs-2"}})
	mustApply(t, l, PutClient{Client: ClientAgent{NodeID: "n1", Name: "fs-c1", Since: at(0), LastSeen: at(0)}})
	snap := snapshotBytes(t, l.FSM)
	s, err := Summarize(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.FSM.Config()
	want := Summary{Format: SnapshotFormat, Applied: l.FSM.AppliedIndex(), Tiers: cfg.Tiers, Profiles: cfg.Profiles,
		Series: 3, Requests: 2, Intents: 1, Servers: 2, Clients: 1}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	bad := bytes.Clone(snap)
	bad[len(bad)/2] ^= 0x01
	if _, err := Summarize(bytes.NewReader(bad)); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("a byte changed: %v; want ErrCorruptSnapshot", err)
	}
	later := bytes.Clone(snap)
	later[len(snapshotMagic)] = SnapshotFormat + 1
	if _, err := Summarize(bytes.NewReader(later)); !errors.Is(err, ErrUnknownSection) {
		t.Errorf("a later format: %v; want ErrUnknownSection", err)
	}
}
