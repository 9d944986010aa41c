package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/raft"
)

// randomLog builds a reproducible log of n mixed commands over a handful of
// series, including late, duplicate, too-old and invalid samples, staleness,
// drops and entries that cannot be applied.
func randomLog(seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	keys := []Key{cpu, mem, iops, {"dc1/batch", "cpu"}, {"dc2/db", "mem"}, {"", "bad"}}
	var out [][]byte
	now := at(0)
	for i := 0; i < n; i++ {
		now = now.Add(time.Duration(r.IntN(5)) * 30 * time.Second)
		switch p := r.IntN(20); {
		case p < 15:
			var smp []Sample
			for range 1 + r.IntN(8) {
				k := keys[r.IntN(len(keys))]
				lag := time.Duration(r.IntN(10)) * time.Minute
				if r.IntN(10) == 0 {
					lag = time.Duration(r.IntN(400)) * time.Hour // often too old
				}
				smp = append(smp, Sample{k, now.Add(-lag), r.NormFloat64()*20 + 50})
			}
			out = append(out, Encode(AppendSamples{Step: time.Minute, Samples: smp}))
		case p < 17:
			out = append(out, Encode(MarkStale{Keys: []Key{keys[r.IntN(len(keys))]}, Since: now, Reason: fmt.Sprintf("reason %d", i)}))
		case p < 18:
			out = append(out, Encode(DropSeries{Keys: []Key{keys[r.IntN(len(keys))]}}))
		case p < 19:
			out = append(out, []byte{1, 99, 0}) // unknown command
		default:
			out = append(out, []byte{1, byte(TypeAppendSamples), 0x80}) // truncated
		}
	}
	return out
}

// equalStores compares two FSMs' series deeply, ignoring the copy-on-write
// generation and page ownership, which are bookkeeping rather than state.
func equalStores(t *testing.T, a, b *FSM) {
	t.Helper()
	opts := []cmp.Option{
		cmp.AllowUnexported(series{}, bucket{}, tierHead{}),
		cmpopts.IgnoreFields(series{}, "gen", "owned"),
	}
	if diff := cmp.Diff(a.store.series, b.store.series, opts...); diff != "" {
		t.Errorf("stores differ (-a +b):\n%s", diff)
	}
	if a.AppliedIndex() != b.AppliedIndex() {
		t.Errorf("applied index %d vs %d", a.AppliedIndex(), b.AppliedIndex())
	}
}

func TestApplyDeterministic(t *testing.T) {
	entries := logOf(1, randomLog(7, 600)...)
	a, b := newFSM(t, smallTiers), newFSM(t, smallTiers)
	for _, l := range entries {
		a.Apply(l)
	}
	// b applies the same log in batches of varied sizes, with snapshots
	// (and so copy-on-write) taken along the way.
	for i := 0; i < len(entries); {
		n := min(1+i%13, len(entries)-i)
		b.ApplyBatch(entries[i : i+n])
		if i%5 == 0 {
			s, _ := b.Snapshot()
			s.Release()
		}
		i += n
	}
	equalStores(t, a, b)
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Error("snapshots of equal states differ")
	}
	if a.Len() == 0 {
		t.Error("the random log left no series; the test exercises nothing")
	}
}

func TestApplyResults(t *testing.T) {
	f := newFSM(t, smallTiers)
	res := f.ApplyBatch(logOf(1,
		Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {cpu, at(0), nan}}}),
		Encode(MarkStale{Keys: []Key{cpu, mem}, Since: at(time.Minute), Reason: "r"}),
		Encode(DropSeries{Keys: []Key{cpu}}),
		[]byte{1, 99},
		Encode(AppendSamples{Step: 0, Samples: []Sample{{cpu, at(0), 1}}}),
	))
	want := []any{
		Result{Index: 1, Type: TypeAppendSamples, Applied: 1, Rejected: 1},
		Result{Index: 2, Type: TypeMarkStale, Applied: 1, Rejected: 1},
		Result{Index: 3, Type: TypeDropSeries, Applied: 1, Rejected: 0},
	}
	for i, w := range want {
		if res[i] != w {
			t.Errorf("result %d = %#v; want %#v", i, res[i], w)
		}
	}
	if err, ok := res[3].(error); !ok || !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown command: %#v; want ErrUnknownCommand", res[3])
	}
	if _, ok := res[4].(error); !ok {
		t.Errorf("zero step: %#v; want an error", res[4])
	}
	if f.Len() != 0 {
		t.Errorf("%d series after a failed append; want 0", f.Len())
	}
	cfg := &raft.Log{Index: 6, Type: raft.LogConfiguration}
	if r := f.Apply(cfg); r != nil || f.AppliedIndex() != 6 {
		t.Errorf("configuration entry: %v, applied %d; want nil, 6", r, f.AppliedIndex())
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := newFSM(t, smallTiers)
	src.ApplyBatch(logOf(1, randomLog(11, 300)...))
	snap := snapshotBytes(t, src)

	// The destination holds other state, which Restore must wipe.
	dst := newFSM(t, smallTiers)
	dst.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{Key{"gone", "cpu"}, at(0), 1}}})))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	equalStores(t, src, dst)
	if _, ok := dst.Info(Key{"gone", "cpu"}); ok {
		t.Error("restore kept a series the snapshot does not hold")
	}
	if !bytes.Equal(snapshotBytes(t, dst), snap) {
		t.Error("snapshot after restore differs from the restored snapshot")
	}
	// Both continue identically.
	more := logOf(301, randomLog(12, 50)...)
	src.ApplyBatch(more)
	dst.ApplyBatch(more)
	equalStores(t, src, dst)
}

func TestSnapshotIsPointInTime(t *testing.T) {
	f := newFSM(t, nil)
	f.ApplyBatch(logOf(1, randomLog(3, 200)...))
	want := snapshotBytes(t, f)

	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	// Persist runs concurrently with Apply changing and dropping the very
	// series it writes; the race detector checks the sharing.
	later := logOf(201, randomLog(4, 200)...)
	later = append(later, logOf(401, Encode(DropSeries{Keys: []Key{cpu, mem}}))...)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, l := range later {
			f.Apply(l)
		}
	}()
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

func TestPersistFailureCancelsSink(t *testing.T) {
	f := newFSM(t, smallTiers)
	f.ApplyBatch(logOf(1, randomLog(5, 50)...))
	s, _ := f.Snapshot()
	defer s.Release()
	sink := &memSink{fail: errors.New("disk full")}
	if err := s.Persist(sink); err == nil || !sink.cancelled || sink.closed {
		t.Errorf("Persist = %v, cancelled %v, closed %v; want an error and a cancelled sink", err, sink.cancelled, sink.closed)
	}
}

func TestRestoreRejectsCorruption(t *testing.T) {
	src := newFSM(t, smallTiers)
	src.ApplyBatch(logOf(1, randomLog(9, 100)...))
	snap := snapshotBytes(t, src)

	dst := newFSM(t, smallTiers)
	dst.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 42}}})))
	before := snapshotBytes(t, dst)

	check := func(name string, b []byte) {
		t.Helper()
		err := dst.Restore(io.NopCloser(bytes.NewReader(b)))
		if err == nil {
			t.Errorf("%s: Restore succeeded; want an error", name)
		}
		if !bytes.Equal(snapshotBytes(t, dst), before) {
			t.Fatalf("%s: a failed restore changed the state", name)
		}
	}
	for _, n := range []int{0, 3, 8, 9, 12, len(snap) / 2, len(snap) - 5, len(snap) - 1} {
		check(fmt.Sprintf("truncated to %d", n), snap[:n])
	}
	for _, i := range []int{0, 9, 20, len(snap) / 3, len(snap) / 2, len(snap) - 2} {
		b := bytes.Clone(snap)
		b[i] ^= 0x5a
		check(fmt.Sprintf("byte %d flipped", i), b)
	}
	check("trailing data", append(bytes.Clone(snap), 0))

	other := newFSM(t, []Tier{{Step: time.Minute, Points: 5}})
	if err := other.Restore(io.NopCloser(bytes.NewReader(snap))); err == nil {
		t.Error("restoring into different tiers succeeded; want an error")
	}
}

// craftSnapshot writes a snapshot with an extra section before "series".
func craftSnapshot(t *testing.T, extra string, flags byte) []byte {
	t.Helper()
	var out bytes.Buffer
	fw := &frameWriter{w: bufioWriter(&out)}
	fw.w.WriteString(snapshotMagic)
	fw.uvarint(snapshotVersion)
	fw.frame(func(e *encoder) { e.uvarint(9); e.uvarint(2) })
	fw.frame(func(e *encoder) { e.str(extra); e.u8(flags); e.uvarint(2) })
	fw.frame(func(e *encoder) { e.str("a queue entry") })
	fw.frame(func(e *encoder) { e.str("another") })
	fw.frame(func(e *encoder) { e.str(sectionSeries); e.u8(0); e.uvarint(1) })
	fw.frame(func(e *encoder) {
		e.uvarint(uint64(len(smallTiers)))
		for _, t := range smallTiers {
			e.uvarint(uint64(t.Step))
			e.uvarint(uint64(t.Points))
		}
	})
	fw.w.Flush()
	return appendCRC(out.Bytes())
}

func TestRestoreSections(t *testing.T) {
	f := newFSM(t, smallTiers)
	if err := f.Restore(io.NopCloser(bytes.NewReader(craftSnapshot(t, "future", flagSkippable)))); err != nil {
		t.Errorf("skippable unknown section: %v; want it skipped", err)
	}
	if f.AppliedIndex() != 9 {
		t.Errorf("applied index %d; want 9", f.AppliedIndex())
	}
	err := f.Restore(io.NopCloser(bytes.NewReader(craftSnapshot(t, "future", 0))))
	if !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("required unknown section: %v; want ErrCorruptSnapshot", err)
	}
}

func FuzzRestore(f *testing.F) {
	src, _ := NewFSM(Config{Tiers: smallTiers})
	src.ApplyBatch(logOf(1, randomLog(1, 40)...))
	var buf bytes.Buffer
	src.WriteSnapshot(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := newFSM(t, smallTiers)
		if err := dst.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			return
		}
		// Whatever restores must snapshot again and read without panicking.
		snapshotBytes(t, dst)
		for _, k := range dst.Keys() {
			dst.Range(k, time.Minute, at(-time.Hour), at(time.Hour))
		}
	})
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	fail      error
	closed    bool
	cancelled bool
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.fail != nil {
		return 0, s.fail
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestCopyOnWriteCopiesTouchedPagesOnly(t *testing.T) {
	f := newFSM(t, nil)
	f.Apply(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {mem, at(0), 1}}}))[0])
	s, _ := f.Snapshot()
	defer s.Release()
	captured := map[Key]*series{}
	for _, sr := range s.(*fsmSnapshot).c.series {
		captured[sr.key] = sr
	}
	capturedPages := slices.Clone(captured[cpu].pages)

	f.Apply(logOf(2, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(time.Minute), 2}}}))[0])
	now := f.store.series[cpu]
	if now == captured[cpu] {
		t.Fatal("the store changed the captured series header in place")
	}
	copied := 0
	for i := range now.pages {
		if now.pages[i] != capturedPages[i] {
			copied++
		}
		if captured[cpu].pages[i] != capturedPages[i] {
			t.Fatal("the captured header's pages changed")
		}
	}
	if copied == 0 || copied > len(DefaultTiers()) {
		t.Errorf("%d pages copied for one sample; want 1 to %d (one per tier at most)", copied, len(DefaultTiers()))
	}
	if f.store.series[mem] != captured[mem] {
		t.Error("an untouched series was copied")
	}
	if got := captured[cpu].at(f.store.layout.pos(0, floorDiv(unixNano(at(time.Minute)), int64(time.Minute)))); got.count != 0 {
		t.Errorf("the capture sees a sample applied after it: %+v", got)
	}
}
