package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// t0 is an arbitrary, day-aligned origin for test times.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var (
	cpu  = Key{Locality: "dc1/web", Metric: "cpu"}
	mem  = Key{Locality: "dc1/web", Metric: "mem"}
	iops = Key{Locality: "dc2/db", Metric: "iops"}
)

// smallTiers keep hand computation manageable: 1m×5, 5m×4, 1h×3.
var smallTiers = []Tier{
	{Step: time.Minute, Points: 5},
	{Step: 5 * time.Minute, Points: 4},
	{Step: time.Hour, Points: 3},
}

func newStore(t testing.TB, tiers []Tier, apply ...func(*Config)) *Store {
	t.Helper()
	cfg := Config{Tiers: tiers}
	for _, f := range apply {
		f(&cfg)
	}
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFSM(t testing.TB, tiers []Tier, apply ...func(*Config)) *FSM {
	t.Helper()
	cfg := Config{Tiers: tiers}
	for _, f := range apply {
		f(&cfg)
	}
	f, err := NewFSM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Keys of the scoped series the agent writes besides locality series.
var (
	nodeCPU  = Key{Locality: "node/n1", Metric: "cpu"}
	nodeMem  = Key{Locality: "node/dc1/n2", Metric: "memory_mb"}
	groupCPU = Key{Locality: "group/default/web/frontend", Metric: "cpu_mhz"}
)

// mixedProfiles give node series one short tier, node series under
// "node/dc1/" (the longer prefix wins) two tiers, and group series a tier of
// 30-second steps. Their order is deliberately not the sorted one.
func mixedProfiles() []Profile {
	return []Profile{
		{Prefix: "node/dc1/", Tiers: []Tier{{Step: time.Minute, Points: 2}, {Step: 10 * time.Minute, Points: 2}}},
		{Prefix: "node/", Tiers: []Tier{{Step: time.Minute, Points: 3}}},
		{Prefix: "group/", Tiers: []Tier{{Step: 30 * time.Second, Points: 4}, {Step: 2 * time.Minute, Points: 3}}},
	}
}

func withProfiles(ps []Profile) func(*Config) {
	return func(c *Config) { c.Profiles = ps }
}

// logOf wraps commands as consecutive raft log entries starting at index
// first.
func logOf(first uint64, cmds ...[]byte) []*raft.Log {
	out := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		out[i] = &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: c}
	}
	return out
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameFloat treats two NaNs as equal and otherwise allows float32 rounding.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b))
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameFloat(a[i], b[i]) {
			return false
		}
	}
	return true
}

var nan = math.NaN()

func bufioWriter(w *bytes.Buffer) *bufio.Writer { return bufio.NewWriter(w) }

func appendCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// reversed returns a reversed copy of ps (nil stays nil).
func reversed(ps []Profile) []Profile {
	if ps == nil {
		return nil
	}
	out := slices.Clone(ps)
	slices.Reverse(out)
	return out
}

// persistWhileApplying persists snapshot s while apply changes f from
// another goroutine, and checks the snapshot written is want, the state
// at capture, and that apply did change the state after it.
func persistWhileApplying(t *testing.T, f *FSM, s raft.FSMSnapshot, want []byte, apply func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(apply)
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !sink.closed || !bytes.Equal(sink.Bytes(), want) {
		t.Errorf("persisted snapshot (closed=%v, %d bytes) differs from the state at capture (%d bytes)", sink.closed, sink.Len(), len(want))
	}
	if bytes.Equal(snapshotBytes(t, f), want) {
		t.Error("state did not change after the capture; the test exercises nothing")
	}
}
