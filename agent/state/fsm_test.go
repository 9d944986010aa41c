package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
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
	keys := []Key{cpu, mem, iops, {"dc1/batch", "cpu"}, {"dc2/db", "mem"}, {"", "bad"}, nodeCPU, nodeMem, groupCPU}
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
			out = append(out, []byte{1, byte(TypeMarkStale), 0xff}) // malformed (an unknown type would halt: TestUnknownCommandHalts)
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
		cmp.AllowUnexported(series{}, bucket{}, tierHead{}, layout{}),
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
	tests := []struct {
		name     string
		profiles []Profile
	}{
		{"default tiers only", nil},
		{"mixed profiles", mixedProfiles()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := logOf(1, randomLog(7, 600)...)
			a := newFSM(t, smallTiers, withProfiles(tt.profiles))
			// b lists the profiles in another order: Config sorts them, so
			// the order must not matter.
			b := newFSM(t, smallTiers, withProfiles(reversed(tt.profiles)))
			for _, l := range entries {
				a.Apply(l)
			}
			// b applies the same log in batches of varied sizes, with
			// snapshots (and so copy-on-write) taken along the way.
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
			// Every series kept the tiers its key selects, and the log
			// reached series of every profile.
			for _, k := range []Key{cpu, nodeCPU, nodeMem, groupCPU} {
				sr := a.store.series[k]
				if sr == nil {
					t.Fatalf("the random log left no series %s; the test exercises too little", k)
				}
				if want := a.Config().TiersFor(k.Locality); !slices.Equal(sr.layout.tiers, want) {
					t.Errorf("%s keeps tiers %v; want %v", k, sr.layout.tiers, want)
				}
			}
		})
	}
}

func TestApplyResults(t *testing.T) {
	f := newFSM(t, smallTiers)
	res := f.ApplyBatch(logOf(1,
		Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {cpu, at(0), nan}}}),
		Encode(MarkStale{Keys: []Key{cpu, mem}, Since: at(time.Minute), Reason: "r"}),
		Encode(DropSeries{Keys: []Key{cpu}}),
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
	if _, ok := res[3].(error); !ok {
		t.Errorf("zero step: %#v; want an error", res[3])
	}
	if f.Len() != 0 {
		t.Errorf("%d series after a failed append; want 0", f.Len())
	}
	cfg := &raft.Log{Index: 5, Type: raft.LogConfiguration}
	if r := f.Apply(cfg); r != nil || f.AppliedIndex() != 5 {
		t.Errorf("configuration entry: %v, applied %d; want nil, 5", r, f.AppliedIndex())
	}
	if f.Halted() != nil {
		t.Errorf("halted after entries it could apply or refuse alike: %v", f.Halted())
	}
}

// TestUnknownCommandHalts: an entry of a type this build does not know (a
// newer server wrote it) stops the FSM there, loudly: it applies nothing
// after it (every later entry, commands and configuration alike, answers
// the halt), its applied index stays at the last entry it applied, and
// Halted names the index, the type and what to do. Before, the entry was
// answered with an error that raft drops on a follower, and the entries
// after it applied: the state silently differed from the cluster's.
func TestUnknownCommandHalts(t *testing.T) {
	for _, tt := range []struct {
		name  string
		entry []byte
		what  string
	}{
		{"unknown type", []byte{1, 99}, "entry of type command(99)"},
		{"newer envelope", []byte{2, byte(TypeDropSeries), 0}, "entry of envelope version 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFSM(t, smallTiers)
			res := f.ApplyBatch(logOf(1,
				Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}}}),
				tt.entry,
				Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{mem, at(0), 2}}}),
			))
			var h *HaltError
			if err, ok := res[1].(error); !ok || !errors.As(err, &h) || !errors.Is(err, ErrOlderThanLog) {
				t.Fatalf("entry 2: %#v; want a *HaltError wrapping ErrOlderThanLog", res[1])
			}
			if h.Index != 2 || h.Applied != 1 || h.What != tt.what {
				t.Errorf("halt %+v; want index 2, applied 1, %q", h, tt.what)
			}
			if err, ok := res[2].(error); !ok || !errors.Is(err, ErrOlderThanLog) {
				t.Errorf("entry 3 after the halt: %#v; want the halt", res[2])
			}
			if r := f.Apply(&raft.Log{Index: 4, Type: raft.LogConfiguration}); r == nil {
				t.Error("configuration entry after the halt: nil; want the halt")
			}
			if _, ok := f.Latest(mem); ok || f.Len() != 1 || f.AppliedIndex() != 1 {
				t.Errorf("after the halt: %d series, applied %d; want 1 (cpu only), 1", f.Len(), f.AppliedIndex())
			}
			if err := f.Halted(); err != h || !strings.Contains(err.Error(), "index 2") || !strings.Contains(err.Error(), "upgrade it") {
				t.Errorf("Halted() = %v; want the halt, naming index 2 and saying to upgrade", err)
			}
		})
	}
}

// TestOlderFSMHaltsAndRestores models an older build (NewOlderFSM, which
// does not know TypeSubmitRequest or the "queue" section): it halts at a
// submission, refuses the leader's snapshot holding a queue as an unknown
// section rather than a corrupt snapshot, keeps its state, and a snapshot
// it can read (one without a queue) restores it and lifts the halt.
func TestOlderFSMHaltsAndRestores(t *testing.T) {
	submit := Encode(SubmitRequest{Request: MigrationRequest{Resource: Resource{Kind: ResourceAllocation, ID: "a1"},
		Source: "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: at(0)}})
	newer := newFSM(t, smallTiers)
	newer.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}}}), submit))
	if n := len(newer.Act().Requests); n != 1 {
		t.Fatalf("newer FSM: %d requests; want 1", n)
	}
	old, err := NewOlderFSM(Config{Tiers: smallTiers}, Older{Types: []CommandType{TypeSubmitRequest}, Sections: []string{sectionQueue}})
	if err != nil {
		t.Fatal(err)
	}
	res := old.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}}}), submit))
	if err, ok := res[1].(error); !ok || !errors.Is(err, ErrOlderThanLog) || !strings.Contains(err.Error(), "submit_request") {
		t.Errorf("older FSM on a submission: %#v; want a halt naming submit_request", res[1])
	}

	var snap bytes.Buffer
	if err := newer.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	fresh, _ := NewOlderFSM(Config{Tiers: smallTiers}, Older{Sections: []string{sectionQueue}})
	err = fresh.Restore(io.NopCloser(bytes.NewReader(snap.Bytes())))
	if !errors.Is(err, ErrUnknownSection) || errors.Is(err, ErrCorruptSnapshot) || !errors.Is(err, ErrOlderThanLog) || !strings.Contains(err.Error(), `"queue"`) {
		t.Errorf("older restore of a snapshot with a queue: %v; want ErrUnknownSection naming \"queue\", not corrupt", err)
	}
	var h *HaltError
	if !errors.As(fresh.Halted(), &h) || h.Index != 2 || h.Applied != 0 || fresh.Len() != 0 {
		t.Errorf("after the refused snapshot: halted %v, %d series; want halted at snapshot index 2, state untouched", fresh.Halted(), fresh.Len())
	}
	// A damaged snapshot is damaged, not newer: no halt.
	bad := bytes.Clone(snap.Bytes())
	bad[len(bad)-1] ^= 0xff
	other, _ := NewOlderFSM(Config{Tiers: smallTiers}, Older{Sections: []string{sectionQueue}})
	if err := other.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, ErrCorruptSnapshot) || other.Halted() != nil {
		t.Errorf("damaged snapshot: %v, halted %v; want ErrCorruptSnapshot and no halt", err, other.Halted())
	}
	// A snapshot it can read restores it.
	plain := newFSM(t, smallTiers)
	plain.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}}}), Encode(DropSeries{Keys: []Key{mem}})))
	snap.Reset()
	if err := plain.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if err := old.Restore(io.NopCloser(bytes.NewReader(snap.Bytes()))); err != nil || old.Halted() != nil || old.AppliedIndex() != 2 {
		t.Errorf("readable snapshot: %v, halted %v, applied %d; want restored, no halt, 2", err, old.Halted(), old.AppliedIndex())
	}
}

func TestCommandProtocol(t *testing.T) {
	for _, c := range []Command{AppendSamples{Step: time.Minute}, SubmitRequest{}, OpenIntent{}, RemoveServer{ID: "x"}} {
		if p, err := CommandProtocol(Encode(c)); p != 1 || err != nil {
			t.Errorf("%s: protocol %d, %v; want 1", c.Type(), p, err)
		}
	}
	for b, want := range map[string]error{"\x01\x63": ErrUnknownCommand, "\x02\x01": ErrBadEnvelope, "\x01": ErrBadEnvelope} {
		if _, err := CommandProtocol([]byte(b)); !errors.Is(err, want) {
			t.Errorf("%q: %v; want %v", b, err, want)
		}
	}
	if Protocol != 1 {
		t.Errorf("Protocol %d: a new protocol lists its command types in typeProtocol and tests them here", Protocol)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		profiles []Profile
	}{
		{"default tiers only", nil},
		{"mixed profiles", mixedProfiles()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFSM(t, smallTiers, withProfiles(tt.profiles))
			src.ApplyBatch(logOf(1, randomLog(11, 300)...))
			snap := snapshotBytes(t, src)

			// The destination holds other state, which Restore must wipe,
			// and lists its profiles in another order.
			dst := newFSM(t, smallTiers, withProfiles(reversed(tt.profiles)))
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
			// Reads agree on series of every profile.
			for _, k := range src.Keys() {
				for _, step := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour} {
					g1, err1 := src.Range(k, step, at(-time.Hour), at(6*time.Hour))
					g2, err2 := dst.Range(k, step, at(-time.Hour), at(6*time.Hour))
					if (err1 == nil) != (err2 == nil) || g1.Tier != g2.Tier || !sameFloats(g1.Mean, g2.Mean) || !slices.Equal(g1.Count, g2.Count) {
						t.Errorf("Range(%s, %v) differs after restore: %v, %v", k, step, err1, err2)
					}
				}
				p1, ok1 := src.Latest(k)
				p2, ok2 := dst.Latest(k)
				if ok1 != ok2 || !p1.Time.Equal(p2.Time) || !sameFloat(p1.Mean, p2.Mean) || p1.Count != p2.Count {
					t.Errorf("Latest(%s) differs after restore: %+v vs %+v", k, p1, p2)
				}
			}
			// Both continue identically.
			more := logOf(301, randomLog(12, 50)...)
			src.ApplyBatch(more)
			dst.ApplyBatch(more)
			equalStores(t, src, dst)
		})
	}
}

// TestSnapshotFormatWithoutProfiles pins the layout record of a
// configuration without profiles to the format that predates profiles, so
// that snapshots keep restoring across the change in both directions.
func TestSnapshotFormatWithoutProfiles(t *testing.T) {
	var want bytes.Buffer
	fw := &frameWriter{w: bufioWriter(&want)}
	fw.w.WriteString(snapshotMagic)
	fw.uvarint(snapshotVersion)
	fw.frame(func(e *encoder) { e.uvarint(0); e.uvarint(1) })
	fw.frame(func(e *encoder) { e.str(sectionSeries); e.u8(0); e.uvarint(1) })
	fw.frame(func(e *encoder) {
		e.uvarint(uint64(len(smallTiers)))
		for _, t := range smallTiers {
			e.uvarint(uint64(t.Step))
			e.uvarint(uint64(t.Points))
		}
	})
	fw.w.Flush()
	if got := snapshotBytes(t, newFSM(t, smallTiers)); !bytes.Equal(got, appendCRC(want.Bytes())) {
		t.Errorf("empty snapshot without profiles:\n%x\nwant the format before profiles:\n%x", got, appendCRC(want.Bytes()))
	}
}

func TestRestoreRefusesOtherProfiles(t *testing.T) {
	src := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
	src.ApplyBatch(logOf(1, randomLog(13, 100)...))
	withProfilesSnap := snapshotBytes(t, src)
	plain := newFSM(t, smallTiers)
	plain.ApplyBatch(logOf(1, randomLog(13, 100)...))
	withoutProfilesSnap := snapshotBytes(t, plain)
	oldFormat := craftSnapshot(t, "future", flagSkippable)

	tweak := func(f func(ps []Profile) []Profile) []Profile { return f(mixedProfiles()) }
	tests := []struct {
		name     string
		snap     []byte
		profiles []Profile
	}{
		{"profiles into none", withProfilesSnap, nil},
		{"none into profiles", withoutProfilesSnap, mixedProfiles()},
		{"old format into profiles", oldFormat, DefaultProfiles()},
		{"a profile fewer", withProfilesSnap, mixedProfiles()[1:]},
		{"a profile more", withProfilesSnap, append(mixedProfiles(), Profile{Prefix: "alloc/", Tiers: smallTiers})},
		{"another prefix", withProfilesSnap, tweak(func(ps []Profile) []Profile { ps[1].Prefix = "nodes/"; return ps })},
		{"other points", withProfilesSnap, tweak(func(ps []Profile) []Profile { ps[1].Tiers[0].Points++; return ps })},
		{"other step", withProfilesSnap, tweak(func(ps []Profile) []Profile { ps[2].Tiers[0].Step = time.Minute; return ps })},
		{"a tier fewer", withProfilesSnap, tweak(func(ps []Profile) []Profile { ps[0].Tiers = ps[0].Tiers[:1]; return ps })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newFSM(t, smallTiers, withProfiles(tt.profiles))
			dst.ApplyBatch(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{nodeCPU, at(0), 42}}})))
			before := snapshotBytes(t, dst)
			err := dst.Restore(io.NopCloser(bytes.NewReader(tt.snap)))
			if !errors.Is(err, ErrLayoutMismatch) {
				t.Errorf("Restore = %v; want ErrLayoutMismatch", err)
			}
			if !bytes.Equal(snapshotBytes(t, dst), before) || dst.AppliedIndex() != 1 {
				t.Error("a refused restore changed the state")
			}
		})
	}
	// The same snapshots restore where the configuration matches.
	for _, ok := range []struct {
		snap     []byte
		profiles []Profile
	}{{withProfilesSnap, mixedProfiles()}, {withoutProfilesSnap, nil}, {oldFormat, nil}} {
		if err := newFSM(t, smallTiers, withProfiles(ok.profiles)).Restore(io.NopCloser(bytes.NewReader(ok.snap))); err != nil {
			t.Errorf("restore with matching profiles %v: %v", ok.profiles, err)
		}
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	tests := []struct {
		name     string
		profiles []Profile
	}{
		{"default tiers only", nil},
		{"default profiles", DefaultProfiles()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFSM(t, nil, withProfiles(tt.profiles))
			f.ApplyBatch(logOf(1, randomLog(3, 200)...))
			want := snapshotBytes(t, f)

			s, err := f.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			// Persist runs concurrently with Apply changing and dropping the
			// very series it writes; the race detector checks the sharing.
			later := logOf(201, randomLog(4, 200)...)
			later = append(later, logOf(401, Encode(DropSeries{Keys: []Key{cpu, mem, nodeMem}}))...)
			persistWhileApplying(t, f, s, want, func() {
				for _, l := range later {
					f.Apply(l)
				}
			})
		})
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
	if err := other.Restore(io.NopCloser(bytes.NewReader(snap))); !errors.Is(err, ErrLayoutMismatch) {
		t.Errorf("restoring into different tiers: %v; want ErrLayoutMismatch", err)
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
	if !errors.Is(err, ErrUnknownSection) || !errors.Is(err, ErrOlderThanLog) || f.Halted() == nil || f.AppliedIndex() != 9 {
		t.Errorf("required unknown section: %v, halted %v, applied %d; want ErrUnknownSection, halted, the state kept (9)", err, f.Halted(), f.AppliedIndex())
	}
}

func FuzzRestore(f *testing.F) {
	configs := [][]Profile{nil, mixedProfiles()}
	for _, ps := range configs {
		src, _ := NewFSM(Config{Tiers: smallTiers, Profiles: ps})
		src.ApplyBatch(logOf(1, randomLog(1, 40)...))
		var buf bytes.Buffer
		src.WriteSnapshot(&buf)
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ps := range configs {
			dst := newFSM(t, smallTiers, withProfiles(ps))
			if err := dst.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
				continue
			}
			// Whatever restores must snapshot again and read without
			// panicking.
			snapshotBytes(t, dst)
			for _, k := range dst.Keys() {
				dst.Range(k, time.Minute, at(-time.Hour), at(time.Hour))
				dst.Latest(k)
			}
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
	// cpu keeps the default tiers, nodeCPU the default node profile's one.
	f := newFSM(t, nil, withProfiles(DefaultProfiles()))
	f.Apply(logOf(1, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {mem, at(0), 1}, {nodeCPU, at(0), 1}}}))[0])
	s, _ := f.Snapshot()
	defer s.Release()
	captured := map[Key]*series{}
	for _, sr := range s.(*fsmSnapshot).c.series {
		captured[sr.key] = sr
	}
	for _, k := range []Key{cpu, nodeCPU} {
		capturedPages := slices.Clone(captured[k].pages)
		f.Apply(logOf(2, Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{k, at(time.Minute), 2}}}))[0])
		now := f.store.series[k]
		if now == captured[k] {
			t.Fatalf("%s: the store changed the captured series header in place", k)
		}
		if now.layout != captured[k].layout {
			t.Errorf("%s: the copy has another layout", k)
		}
		copied := 0
		for i := range now.pages {
			if now.pages[i] != capturedPages[i] {
				copied++
			}
			if captured[k].pages[i] != capturedPages[i] {
				t.Fatalf("%s: the captured header's pages changed", k)
			}
		}
		tiers := len(now.layout.tiers)
		if copied == 0 || copied > tiers {
			t.Errorf("%s: %d pages copied for one sample; want 1 to %d (one per tier at most)", k, copied, tiers)
		}
		if got := captured[k].at(now.layout.pos(0, floorDiv(unixNano(at(time.Minute)), int64(time.Minute)))); got.count != 0 {
			t.Errorf("%s: the capture sees a sample applied after it: %+v", k, got)
		}
		if p, ok := f.Latest(k); !ok || !p.Time.Equal(at(time.Minute)) || p.Mean != 2 {
			t.Errorf("%s: Latest = %+v, %v; want 2 at 00:01", k, p, ok)
		}
	}
	if len(captured[nodeCPU].heads) != 1 || len(captured[cpu].heads) != len(DefaultTiers()) {
		t.Errorf("node series with %d tiers, locality series with %d; want 1 and %d", len(captured[nodeCPU].heads), len(captured[cpu].heads), len(DefaultTiers()))
	}
	if f.store.series[mem] != captured[mem] {
		t.Error("an untouched series was copied")
	}
}

// TestEarlierEnvelopeIsRefused: an entry whose envelope version is below
// this build's was not written by a newer server (no build ever wrote
// one), so it is refused as unusable, changing nothing, and the entries
// after it apply; halting there would stop every server of the cluster at
// the same entry for good, each told to upgrade.
func TestEarlierEnvelopeIsRefused(t *testing.T) {
	f := newFSM(t, smallTiers)
	res := f.ApplyBatch(logOf(1,
		Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}}}),
		[]byte{0, byte(TypeDropSeries), 0},
		Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{mem, at(0), 2}}}),
	))
	err, _ := res[1].(error)
	if !errors.Is(err, ErrBadEnvelope) || errors.Is(err, ErrOlderThanLog) || !strings.Contains(err.Error(), "version 0") {
		t.Errorf("entry of envelope version 0: %v; want ErrBadEnvelope naming version 0, not a halt", err)
	}
	if f.Halted() != nil {
		t.Errorf("halted: %v", f.Halted())
	}
	if _, ok := res[2].(Result); !ok || f.Len() != 2 || f.AppliedIndex() != 3 {
		t.Errorf("after the refused entry: %#v, %d series, applied %d; want applied, 2, 3", res[2], f.Len(), f.AppliedIndex())
	}
}
