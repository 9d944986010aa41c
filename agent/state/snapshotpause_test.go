package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

// applyAt applies cmd to f as the next log entry.
func applyAt(t *testing.T, f *FSM, cmd Command) {
	t.Helper()
	if err, ok := f.Apply(&raft.Log{Index: f.AppliedIndex() + 1, Type: raft.LogCommand, Data: Encode(cmd)}).(error); ok {
		t.Fatalf("apply %s: %v", cmd.Type(), err)
	}
}

// heldPause is the pause f's state holds.
func heldPause(f *FSM) SetQueuePaused {
	v := f.Act()
	return SetQueuePaused{Paused: v.Paused, At: v.PausedAt, By: v.PausedBy}
}

func samePause(a, b SetQueuePaused) bool {
	return a.Paused == b.Paused && a.At.Equal(b.At) && a.By == b.By
}

// TestRewriteQueuePausePausesAndKeepsTheRest: a snapshot rewritten with
// a pause restores, in a fresh state machine, to the queue paused by it
// (paused_at and paused_by as the pause says) and to everything else as
// the snapshot held it: the state re-snapshots to exactly the bytes of
// the original state with only the pause set, whose Summarize is the
// same (requests, reservations, intents, series, servers...) at the same
// applied index. It says the pause it replaced, and rewriting the result
// with that pause gives back the original snapshot byte for byte. So for
// a state with every field set whose queue a backup had paused already
// (the restore's pause replaces who and when), a running queue, a state
// with series but no act data (its act section is added), and one with
// servers and no act data.
func TestRewriteQueuePausePausesAndKeepsTheRest(t *testing.T) {
	pause := SetQueuePaused{Paused: true, At: at(30 * time.Hour), By: "snapshot restore (the backup of index 7 taken 2026-11-02T00:00:00Z)"}
	for _, tc := range []struct {
		name  string
		state func(t *testing.T) *FSM
	}{
		{"every field, paused by someone", fullState},
		{"a running queue", func(t *testing.T) *FSM {
			f := fullState(t)
			applyAt(t, f, SetQueuePaused{Paused: false, At: at(20 * time.Hour), By: "operator"})
			return f
		}},
		{"series, no act data", func(t *testing.T) *FSM {
			f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			applyAt(t, f, AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {nodeCPU, at(0), 2}}})
			return f
		}},
		{"servers, no act data", func(t *testing.T) *FSM {
			f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			applyAt(t, f, PutServer{Server: ServerMeta{ID: "s1", Name: "fs-1"}})
			return f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.state(t)
			held := heldPause(src)
			snap := snapshotBytes(t, src)
			var out bytes.Buffer
			was, err := RewriteQueuePause(&out, bytes.NewReader(snap), pause)
			if err != nil {
				t.Fatal(err)
			}
			if !samePause(was, held) {
				t.Errorf("the pause it replaced: %+v; the snapshot held %+v", was, held)
			}
			dst := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			if err := dst.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))); err != nil {
				t.Fatal(err)
			}
			if got := heldPause(dst); !samePause(got, pause) {
				t.Errorf("the restored queue's pause: %+v; want %+v", got, pause)
			}
			// The original state with only the pause set, as applying it
			// would set it (but for the act state's modified index: no
			// entry was applied).
			src.act.paused, src.act.pausedAt, src.act.pausedBy = pause.Paused, pause.At, pause.By
			if diff := cmp.Diff(src.act, dst.act, cmp.AllowUnexported(actStore{})); diff != "" {
				t.Errorf("restored act state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(src.members, dst.members, cmp.AllowUnexported(membership{})); diff != "" {
				t.Errorf("restored membership (-want +got):\n%s", diff)
			}
			equalStores(t, src, dst)
			if dst.AppliedIndex() != src.AppliedIndex() {
				t.Errorf("restored at index %d; the snapshot's is %d", dst.AppliedIndex(), src.AppliedIndex())
			}
			if !bytes.Equal(snapshotBytes(t, dst), snapshotBytes(t, src)) {
				t.Error("the restored state snapshots to other bytes than the original with the pause set")
			}
			s1, err1 := Summarize(bytes.NewReader(snap))
			s2, err2 := Summarize(bytes.NewReader(out.Bytes()))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if diff := cmp.Diff(s1, s2); diff != "" {
				t.Errorf("summary (-snapshot +rewritten):\n%s", diff)
			}

			var back bytes.Buffer
			if _, err := RewriteQueuePause(&back, bytes.NewReader(out.Bytes()), was); err != nil {
				t.Fatal(err)
			}
			orig := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
			if err := orig.Restore(io.NopCloser(&back)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snapshotBytes(t, orig), snap) {
				t.Error("rewritten back with the pause it replaced, the state snapshots to other bytes than the original")
			}
		})
	}
}

// TestRewriteQueuePauseRefuses: a snapshot the rewrite cannot read is
// refused, saying why, before anything is written: not a snapshot, cut
// short, a byte changed, of a later format version (ErrUnknownSection),
// an act record that is not the act state's JSON.
func TestRewriteQueuePauseRefuses(t *testing.T) {
	snap := snapshotBytes(t, fullState(t))
	flipped := bytes.Clone(snap)
	flipped[len(flipped)/2] ^= 0x01
	later := bytes.Clone(snap)
	later[len(snapshotMagic)] = SnapshotFormat + 1
	pause := SetQueuePaused{Paused: true, At: at(0), By: "test"}
	for _, tc := range []struct {
		name string
		snap []byte
		want error
		says string
	}{
		{"not a snapshot", []byte("PK\x03\x04 a zip file"), ErrCorruptSnapshot, "bad magic"},
		{"empty", nil, ErrCorruptSnapshot, "bad magic"},
		{"cut short", snap[:len(snap)-10], ErrCorruptSnapshot, ""},
		{"a byte changed", flipped, ErrCorruptSnapshot, ""},
		{"a later format", later, ErrUnknownSection, "format version 2"},
		{"an act record not of the act state", handSnapshot(t, `{"paused":"yes"}`), ErrCorruptSnapshot, "act record 0"},
		{"an act record not JSON", handSnapshot(t, `{"paused":`), ErrCorruptSnapshot, "act record 0"},
	} {
		var out bytes.Buffer
		_, err := RewriteQueuePause(&out, bytes.NewReader(tc.snap), pause)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "state: rewrite the queue's pause: ") {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.want, tc.says)
		}
		if out.Len() != 0 {
			t.Errorf("%s: %d bytes written", tc.name, out.Len())
		}
	}
}

// TestRewriteQueuePauseKeepsKeysItDoesNotKnow: the act record's keys
// other than the pause's, one this release does not know (a later one
// may add it) included, come out as they were; a resume (paused false)
// leaves out the keys actMeta leaves out when empty.
func TestRewriteQueuePauseKeepsKeysItDoesNotKnow(t *testing.T) {
	const rec = `{"modified":3,"cluster_id":"c-1","paused":true,"paused_at":"2026-11-02T00:00:00Z","paused_by":"operator","next_request":2,"next_reservation":0,"next_scale":0,"later":{"a":[1,2.5]}}`
	var out bytes.Buffer
	was, err := RewriteQueuePause(&out, bytes.NewReader(handSnapshot(t, rec)), SetQueuePaused{Paused: false, By: ""})
	if err != nil {
		t.Fatal(err)
	}
	if !samePause(was, SetQueuePaused{Paused: true, At: t0, By: "operator"}) {
		t.Errorf("the pause it replaced: %+v", was)
	}
	got := actRecords(t, out.Bytes())
	var keys map[string]json.RawMessage
	if len(got) != 1 || json.Unmarshal([]byte(got[0]), &keys) != nil {
		t.Fatalf("act records %q", got)
	}
	want := map[string]string{"modified": "3", "cluster_id": `"c-1"`, "next_request": "2", "next_reservation": "0", "next_scale": "0", "later": `{"a":[1,2.5]}`}
	if len(keys) != len(want) {
		t.Errorf("the record's keys: %s; want %v", got[0], want)
	}
	for k, v := range want {
		if string(keys[k]) != v {
			t.Errorf("key %q: %s; want %s", k, keys[k], v)
		}
	}
}

// handSnapshot writes a snapshot with an empty series section (the small
// tiers) and an act section of the records given.
func handSnapshot(t *testing.T, act ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	fw := &frameWriter{w: bw}
	bw.WriteString(snapshotMagic)
	fw.uvarint(snapshotVersion)
	fw.frame(func(e *encoder) { e.uvarint(9); e.uvarint(2) })
	fw.frame(func(e *encoder) { e.str(sectionSeries); e.u8(0); e.uvarint(1) })
	fw.frame(func(e *encoder) { encodeLayout(e, Config{Tiers: smallTiers}) })
	fw.frame(func(e *encoder) { e.str(sectionAct); e.u8(0); e.uvarint(uint64(len(act))) })
	for _, r := range act {
		fw.frame(func(e *encoder) { e.str(r) })
	}
	if fw.err != nil || bw.Flush() != nil {
		t.Fatal(fw.err)
	}
	return appendCRC(buf.Bytes())
}

// actRecords returns the act section's records of snap.
func actRecords(t *testing.T, snap []byte) []string {
	t.Helper()
	fr := snapshotReader(bytes.NewReader(snap))
	if _, err := fr.readPreamble(); err != nil {
		t.Fatal(err)
	}
	d, err := fr.frame()
	if err != nil {
		t.Fatal(err)
	}
	d.uvarint()
	sections := d.uvarint()
	var out []string
	for range sections {
		name, _, records, err := fr.sectionHeader()
		if err != nil {
			t.Fatal(err)
		}
		for range records {
			d, err := fr.frame()
			if err != nil {
				t.Fatal(err)
			}
			if name == sectionAct {
				out = append(out, d.str())
			}
		}
	}
	if err := fr.readTrailer(); err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkRewriteQueuePause rewrites, in memory, the state of
// BenchmarkBackup (agent/cluster): 2,000 series with a day of 1-minute
// samples each, and an act state. It reports the state's size.
func BenchmarkRewriteQueuePause(b *testing.B) {
	f, err := NewFSM(Config{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]Key, 2000)
	for i := range keys {
		keys[i] = Key{Locality: fmt.Sprintf("dc1/node-%03d", i/4), Metric: []string{"cpu", "memory", "iops", "net"}[i%4]}
	}
	smp := make([]Sample, len(keys))
	var index uint64
	apply := func(c Command) {
		index++
		if err, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: Encode(c)}).(error); ok {
			b.Fatal(err)
		}
	}
	for m := range 1440 {
		for j, k := range keys {
			smp[j] = Sample{Key: k, Time: t0.Add(time.Duration(m) * time.Minute), Value: float64((j*7+m)%1000) / 10}
		}
		apply(AppendSamples{Step: time.Minute, Samples: smp})
	}
	apply(InitCluster{ID: "c-1"})
	snap := snapshotBytes(b, f)
	pause := SetQueuePaused{Paused: true, At: t0, By: "snapshot restore (bench)"}
	var out bytes.Buffer
	b.ResetTimer()
	for range b.N {
		out.Reset()
		if _, err := RewriteQueuePause(&out, bytes.NewReader(snap), pause); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(snap)), "state_bytes")
}

// TestRewriteActModified: a snapshot rewritten with an index past its act
// state's restores, in a fresh state machine, to the act state at that
// index and everything else as it was (the pause kept, the applied index
// the snapshot's); an index at or behind the snapshot's leaves the
// snapshot's (it is never taken back); a snapshot without act data gets
// an act section holding the index alone.
func TestRewriteActModified(t *testing.T) {
	restored := func(t *testing.T, snap []byte, cfg Config) *FSM {
		t.Helper()
		g, _ := NewFSM(cfg)
		if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatal(err)
		}
		return g
	}
	f := fullState(t)
	var orig bytes.Buffer
	if err := f.WriteSnapshot(&orig); err != nil {
		t.Fatal(err)
	}
	was := f.ActModified()
	for _, tc := range []struct {
		name  string
		index uint64
		want  uint64
	}{
		{"past the state's", was + 40, was + 40},
		{"the state's", was, was},
		{"behind the state's", was - 1, was},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := RewriteActModified(&out, bytes.NewReader(orig.Bytes()), tc.index); err != nil {
				t.Fatal(err)
			}
			g := restored(t, out.Bytes(), f.Config())
			if g.ActModified() != tc.want || g.AppliedIndex() != f.AppliedIndex() || !samePause(heldPause(g), heldPause(f)) {
				t.Errorf("act index %d, applied %d, pause %+v; want %d, %d, %+v", g.ActModified(), g.AppliedIndex(), heldPause(g), tc.want, f.AppliedIndex(), heldPause(f))
			}
			v, w := g.Act(), f.Act()
			v.Modified, w.Modified = 0, 0
			if diff := cmp.Diff(w, v); diff != "" {
				t.Errorf("the act state besides its index (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("no act data", func(t *testing.T) {
		f := newFSM(t, smallTiers, withProfiles(mixedProfiles()))
		applyAt(t, f, AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {nodeCPU, at(0), 2}}})
		var orig, out bytes.Buffer
		if err := f.WriteSnapshot(&orig); err != nil {
			t.Fatal(err)
		}
		if err := RewriteActModified(&out, bytes.NewReader(orig.Bytes()), 12); err != nil {
			t.Fatal(err)
		}
		if g := restored(t, out.Bytes(), f.Config()); g.ActModified() != 12 || g.QueuePaused() || g.Len() != f.Len() {
			t.Errorf("act index %d, paused %v, %d series; want 12, running, %d", g.ActModified(), g.QueuePaused(), g.Len(), f.Len())
		}
	})
}
