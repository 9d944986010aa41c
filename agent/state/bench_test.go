package state

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// nodeKeys returns n distinct node-level series keys.
func nodeKeys(n int, metric string) []Key {
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = Key{Locality: fmt.Sprintf("dc%d/node-%05d", i%3+1, i), Metric: metric}
	}
	return keys
}

// BenchmarkApplyBatch10k applies one AppendSamples of 10,000 samples (one per
// series, as a leader sends for a 10,000-node cluster each minute), decoding
// included, with the default tiers.
func BenchmarkApplyBatch10k(b *testing.B) {
	keys := nodeKeys(10000, "cpu")
	f := newFSM(b, nil)
	batch := func(i int) []byte {
		smp := make([]Sample, len(keys))
		for j, k := range keys {
			smp[j] = Sample{k, at(time.Duration(i) * time.Minute), float64(j%100) + 0.5}
		}
		return Encode(AppendSamples{Step: time.Minute, Samples: smp})
	}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: batch(0)}) // create the series
	entries := make([][]byte, 16)
	for i := range entries {
		entries[i] = batch(i + 1)
	}
	b.SetBytes(int64(len(entries[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := f.Apply(&raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: entries[i%len(entries)]})
		if res, ok := r.(Result); !ok || res.Applied != len(keys) {
			b.Fatalf("apply: %v", r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/sample")
}

// BenchmarkApplyBatchNodes40k applies one AppendSamples of the per-node
// series of a 10,000-node cluster (four metrics a node) under
// DefaultProfiles, decoding included.
func BenchmarkApplyBatchNodes40k(b *testing.B) {
	var keys []Key
	for _, m := range []string{"cpu", "memory", "cpu_mhz", "memory_mb"} {
		for i := range 10000 {
			keys = append(keys, Key{Locality: fmt.Sprintf("node/dc%d-%05d", i%3+1, i), Metric: m})
		}
	}
	f := newFSM(b, nil, withProfiles(DefaultProfiles()))
	batch := func(i int) []byte {
		smp := make([]Sample, len(keys))
		for j, k := range keys {
			smp[j] = Sample{k, at(time.Duration(i) * time.Minute), float64(j%100) + 0.5}
		}
		return Encode(AppendSamples{Step: time.Minute, Samples: smp})
	}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: batch(0)})
	entries := make([][]byte, 16)
	for i := range entries {
		entries[i] = batch(i + 1)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := f.Apply(&raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: entries[i%len(entries)]})
		if res, ok := r.(Result); !ok || res.Applied != len(keys) {
			b.Fatalf("apply: %v", r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/sample")
}

// BenchmarkEncodeBatch10k encodes the same batch on the leader side.
func BenchmarkEncodeBatch10k(b *testing.B) {
	keys := nodeKeys(10000, "cpu")
	smp := make([]Sample, len(keys))
	for j, k := range keys {
		smp[j] = Sample{k, at(0), float64(j)}
	}
	c := AppendSamples{Step: time.Minute, Samples: smp}
	b.ReportAllocs()
	var n int
	for i := 0; i < b.N; i++ {
		n = len(Encode(c))
	}
	b.ReportMetric(float64(n)/float64(len(keys)), "bytes/sample")
}

// BenchmarkRange2Weeks5m reads a full 14-day grid of 5-minute points
// (4,032 points), what a forecaster refit reads per series.
func BenchmarkRange2Weeks5m(b *testing.B) {
	s := newStore(b, nil)
	var smp []Sample
	for m := 0; m < 14*24*60; m += 5 {
		smp = append(smp, Sample{cpu, at(time.Duration(m) * time.Minute), float64(m % 97)})
	}
	s.Append(5*time.Minute, smp)
	end := at(14 * 24 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g, err := s.Range(cpu, 5*time.Minute, end.Add(-14*24*time.Hour), end)
		if err != nil || g.Len() != 4032 || g.Tier != 1 {
			b.Fatalf("range: %d points from tier %d, %v", g.Len(), g.Tier, err)
		}
	}
}

// BenchmarkMemoryPerSeries measures the heap a default-tier series takes
// when new and when every ring is full, next to Config.BytesPerSeries, and
// the same for a series of the default node profile.
func BenchmarkMemoryPerSeries(b *testing.B) {
	end := at(100 * 24 * time.Hour)
	nodes := Config{Profiles: DefaultProfiles()}
	var young, full, nodeYoung, nodeFull float64
	for i := 0; i < b.N; i++ {
		young = heapPerSeries(b, 1000, func(s *Store, k Key) { s.Append(time.Minute, []Sample{{k, end, 1}}) })
		full = heapPerSeries(b, 20, func(s *Store, k Key) { s.Append(time.Minute, fullHistory(k, end)) })
		nodeYoung = heapPerSeriesOf(b, nodes, "node/n-", 1000, func(s *Store, k Key) { s.Append(time.Minute, []Sample{{k, end, 1}}) })
		nodeFull = heapPerSeriesOf(b, nodes, "node/n-", 200, func(s *Store, k Key) { s.Append(time.Minute, fullHistory(k, end)) })
	}
	b.ReportMetric(young, "new-heap-bytes/series")
	b.ReportMetric(full, "full-heap-bytes/series")
	b.ReportMetric(float64(Config{}.BytesPerSeries()), "max-bytes/series")
	b.ReportMetric(nodeYoung, "new-heap-bytes/node-series")
	b.ReportMetric(nodeFull, "full-heap-bytes/node-series")
	b.ReportMetric(float64(DefaultProfiles()[0].BytesPerSeries()), "max-bytes/node-series")
}

// BenchmarkSnapshotPersist10k writes a snapshot of 10,000 series, each with a
// day of 1-minute samples.
func BenchmarkSnapshotPersist10k(b *testing.B) {
	f := newFSM(b, nil)
	keys := nodeKeys(10000, "cpu")
	for m := 0; m < 24*60; m += 10 {
		smp := make([]Sample, len(keys))
		for j, k := range keys {
			smp[j] = Sample{k, at(time.Duration(m) * time.Minute), float64(j + m)}
		}
		f.store.Append(time.Minute, smp)
	}
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		s, _ := f.Snapshot()
		cw := &countWriter{}
		if err := s.(*fsmSnapshot).c.persist(cw); err != nil {
			b.Fatal(err)
		}
		s.Release()
		n = cw.n
	}
	b.ReportMetric(float64(n), "snapshot-bytes")
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// BenchmarkApplyAfterSnapshot10k is BenchmarkApplyBatch10k with a snapshot
// captured before every batch: the worst case of copy-on-write, where each
// series copies its header and the pages the batch touches.
func BenchmarkApplyAfterSnapshot10k(b *testing.B) {
	keys := nodeKeys(10000, "cpu")
	f := newFSM(b, nil)
	batch := func(i int) []byte {
		smp := make([]Sample, len(keys))
		for j, k := range keys {
			smp[j] = Sample{k, at(time.Duration(i) * time.Minute), float64(j%100) + 0.5}
		}
		return Encode(AppendSamples{Step: time.Minute, Samples: smp})
	}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: batch(0)})
	entries := make([][]byte, 16)
	for i := range entries {
		entries[i] = batch(i + 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, _ := f.Snapshot()
		f.Apply(&raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: entries[i%len(entries)]})
		s.Release()
	}
}

// BenchmarkActView reads the act state (FSM.Act, which the coordinator
// calls several times a cycle) with 2,000 kept requests, the closed
// intents kept up to their bound and a few open ones.
func BenchmarkActView(b *testing.B) {
	l, ids := actBenchState(b)
	for b.Loop() {
		if v := l.FSM.Act(); len(v.Requests) != len(ids) || len(v.OpenIntents) != 5 {
			b.Fatalf("%d requests, %d open intents", len(v.Requests), len(v.OpenIntents))
		}
	}
}

// BenchmarkActRequestRead reads one request of the same state as
// BenchmarkActView's, as the coordinator does between its views
// (FSM.Request rather than Act().Request).
func BenchmarkActRequestRead(b *testing.B) {
	l, ids := actBenchState(b)
	for b.Loop() {
		if _, ok := l.FSM.Request(ids[len(ids)/2]); !ok {
			b.Fatal("no request")
		}
	}
}

// actBenchState holds 2,000 requests, the closed intents kept up to their
// bound and five open ones.
func actBenchState(b *testing.B) (*Local, []string) {
	l := local(b)
	var ids []string
	for i := range 2000 {
		ids = append(ids, mustApply(b, l, SubmitRequest{Request: request(fmt.Sprintf("a%d", i))}).ID)
	}
	for i := range MaxClosedIntents + 5 {
		in := Intent{ID: fmt.Sprintf("stop/a%d", i), Kind: IntentStopAlloc, Object: fmt.Sprintf("a%d", i), Request: ids[i%len(ids)]}
		mustApply(b, l, OpenIntent{Intent: in})
		if i >= 5 {
			mustApply(b, l, CloseIntent{ID: in.ID, Outcome: OutcomeDone, At: at(time.Duration(i) * time.Second)})
		}
	}
	return l, ids
}
