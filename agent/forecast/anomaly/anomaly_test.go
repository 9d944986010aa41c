package anomaly

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/internal/cputime"
)

func TestAnomalyDetectorSpike(t *testing.T) {
	y := noisy(11, 2000, 20, 1)
	y[1500] = 35
	pts, events := Detect(y, Options{})
	p := pts[1500]
	if !p.Anomalous || !p.Alarm || p.P > 1e-6 {
		t.Fatalf("spike at 1500 not flagged as a rare alarm: %+v", p)
	}
	var found bool
	for _, e := range events {
		if e.Start == 1500 {
			found = true
			if e.Kind != KindSpike || e.End > 1500+2 {
				t.Errorf("spike event %+v, want a spike ending by 1502", e)
			}
		}
	}
	if !found {
		t.Fatalf("no event starts at the spike: %+v", events)
	}
	// The points after it share its shapes but do not deviate: not masked.
	for i := 1501; i < 1520; i++ {
		if pts[i].Anomalous {
			t.Errorf("point %d after the spike flagged: %+v", i, pts[i])
		}
	}
}

// TestAnomalyRecurringSpike: a spike the series shows every day is unusual
// the first times and part of the series once the reference week holds a
// few of it; the point statistics alone flag it every day.
func TestAnomalyRecurringSpike(t *testing.T) {
	y := noisy(21, 12*288, 20, 1)
	for d := 1; d < 12; d++ {
		at := d*288 + 100
		y[at], y[at+1] = 40, 35
	}
	pts, _ := Detect(y, Options{})
	residual := NewDetector(Options{})
	var pred recentMedian
	rp := make([]Point, len(y))
	for i, v := range y {
		rp[i] = residual.Observe(v, pred.Next())
		pred.Push(v)
	}
	for d := 8; d < 12; d++ {
		at := d*288 + 100
		if pts[at].Anomalous || pts[at].P < 0.05 {
			t.Errorf("day %d: the daily spike is still anomalous: %+v", d, pts[at])
		}
		if !rp[at].Anomalous {
			t.Errorf("day %d: the point statistics do not flag the spike: %+v", d, rp[at])
		}
	}
}

func TestAnomalyDetectorLevelShift(t *testing.T) {
	y := noisy(12, 3000, 20, 1)
	for i := 2000; i < len(y); i++ {
		y[i] += 12
	}
	pts, events := Detect(y, Options{})
	var shift *Event
	for i, e := range events {
		if e.Kind == KindLevelShift {
			shift = &events[i]
		}
	}
	if shift == nil || shift.Start < 1995 || shift.Start > 2005 {
		t.Fatalf("no level shift event starting at about 2000: %+v", events)
	}
	if !pts[2000].Alarm {
		t.Errorf("the first point at the new level raised no alarm: %+v", pts[2000])
	}
	// The detector settles at the new level: nothing deviates long after.
	for i := 2400; i < len(pts); i++ {
		if pts[i].Anomalous && !pts[i].Alarm {
			t.Fatalf("point %d still anomalous after the series settled: %+v", i, pts[i])
		}
	}
}

// TestAnomalyDetectorQuiet: on series without anomalies nothing deviates,
// and alarms are rare: at most about one per two weeks of data (AlarmP
// 1/4032), here at most one per series.
func TestAnomalyDetectorQuiet(t *testing.T) {
	cases := []struct {
		name string
		y    []float64
	}{
		{"white noise", noisy(13, 6000, 50, 3)},
		{"daily cycle", func() []float64 {
			y := noisy(14, 4032, 50, 1)
			for i := range y {
				y[i] += 20 * math.Sin(2*math.Pi*float64(i)/288)
			}
			return y
		}()},
		{"constant", make([]float64, 1000)},
		{"with gaps", func() []float64 {
			y := noisy(15, 2000, 5, 1)
			for i := 100; i < 2000; i += 37 {
				y[i] = math.NaN()
			}
			return y
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pts, _ := Detect(tc.y, Options{})
			alarms := 0
			for i, p := range pts {
				if p.Anomalous && !p.Alarm {
					t.Errorf("point %d deviates: %+v", i, p)
				}
				if p.Alarm {
					alarms++
				}
			}
			if alarms > 1 {
				t.Errorf("%d alarms in %d points, want at most 1", alarms, len(pts))
			}
		})
	}
}

// TestAnomalyDetectorOnline: appending points never changes the verdicts
// already given (no look-ahead).
func TestAnomalyDetectorOnline(t *testing.T) {
	t.Parallel()
	y := noisy(16, 1500, 10, 1)
	y[700] = 30
	for i := 1000; i < len(y); i++ {
		y[i] += 8
	}
	// A small context memory keeps the contextual detectors quick on
	// noise (and has them forget and learn afresh on the way).
	opts := Options{Context: ContextOptions{MaxContexts: 300}, RCF: testForest}
	for _, name := range Detectors() {
		// Each detector alone, beside the others: rcf's take most of
		// the time (some 1 ms a point under -race with testForest).
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := NewOnline(name, opts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewOnline(name, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range y {
				a := d.Observe(v)
				if i >= 1100 {
					continue
				}
				if b := p.Observe(v); a != b {
					t.Fatalf("%s: point %d: %+v and %+v from the same points", name, i, a, b)
				}
			}
		})
	}
	full, _ := Detect(y, Options{})
	prefix, _ := Detect(y[:1100], Options{})
	for i := range prefix {
		if prefix[i] != full[i] {
			t.Fatalf("point %d: %+v on the prefix, %+v on the whole series", i, prefix[i], full[i])
		}
	}
}

// TestAnomalyOnsetRefractory: within the refractory period only a stronger
// anomaly is a new onset; after it, any anomaly is.
func TestAnomalyOnsetRefractory(t *testing.T) {
	y := noisy(17, 3000, 20, 1)
	y[1000] = 40 // strong
	y[1050] = 30 // weaker, within the refractory period: no onset
	y[1100] = 60 // stronger: an onset
	y[2000] = 30 // long after: an onset
	pts, _ := Detect(y, Options{})
	for _, tc := range []struct {
		i     int
		onset bool
	}{{1000, true}, {1050, false}, {1100, true}, {2000, true}} {
		if got := pts[tc.i].Onset > 0; got != tc.onset {
			t.Errorf("point %d onset %v, want onset %v (%+v)", tc.i, pts[tc.i].Onset, tc.onset, pts[tc.i])
		}
		if pts[tc.i].Z <= DefaultThreshold {
			t.Errorf("point %d does not deviate: %+v", tc.i, pts[tc.i])
		}
	}
	for i, p := range pts {
		if p.Score < 0 || p.Score >= 1 || p.Onset > p.Score || p.P <= 0 || p.P > 1 {
			t.Fatalf("point %d: score %v onset %v p %v out of range", i, p.Score, p.Onset, p.P)
		}
		if l := math.Log10(1 / p.P); math.Abs(p.Score-l/(1+l)) > 1e-12 {
			t.Fatalf("point %d: score %v, want L/(1+L) with L = log10(1/p) = %v", i, p.Score, l)
		}
		if p.Alarm != (p.Onset > 0 && p.Onset >= AlarmScore(DefaultAlarmP)) {
			t.Fatalf("point %d: alarm %v with onset %v", i, p.Alarm, p.Onset)
		}
	}
	if pts[1100].P > 1e-6 {
		t.Errorf("the strongest spike has p %v", pts[1100].P)
	}
}

func TestCleanAnomalies(t *testing.T) {
	y := noisy(18, 3000, 20, 1)
	y[1200] = 60
	for i := 2000; i < len(y); i++ {
		y[i] += 15
	}
	clean, events := Clean(y, Options{})
	if !math.IsNaN(clean[1200]) {
		t.Errorf("spike kept: %v", clean[1200])
	}
	if math.IsNaN(y[1200]) {
		t.Error("input modified")
	}
	var nans int
	for i, v := range clean {
		if math.IsNaN(v) {
			nans++
			continue
		}
		if v != y[i] {
			t.Fatalf("point %d changed: %v -> %v", i, y[i], v)
		}
	}
	// Only the spike (and at most a few alarms) goes; the new level after
	// the shift stays.
	if nans > 5 {
		t.Errorf("%d points removed, events %+v", nans, events)
	}
	for i := 2000; i < 2100; i++ {
		if math.IsNaN(clean[i]) {
			t.Fatalf("point %d at the new level removed", i)
		}
	}
}

func TestNewOnline(t *testing.T) {
	t.Parallel()
	for _, name := range append(Detectors(), "") {
		d, err := NewOnline(name, Options{})
		if err != nil || d == nil {
			t.Fatalf("%q: %v", name, err)
		}
	}
	if _, err := NewOnline("hmm", Options{}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("unknown detector: err %v, want one naming the detectors", err)
	}
	// Every detector finds a big spike in noise, and only the agent's
	// (shape) lets a daily one become normal.
	y := noisy(22, 3000, 20, 1)
	y[2500] = 60
	for _, name := range Detectors() {
		if name == DetectorContext || name == DetectorShapeContext {
			// Slow on noise, where they learn a context at most steps:
			// TestContextStreamVerdicts gives them their spike.
			continue
		}
		if strings.HasSuffix(name, "+likelihood") {
			// A spike moves a short average little: the likelihood
			// rises at a burst (TestLikelihoodStreamVerdicts).
			continue
		}
		// Each detector alone, beside the others (rcf takes most of the
		// time).
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, _ := NewOnline(name, Options{RCF: testForest})
			// ARTime scores a downsampled value once its last sample is
			// in: the value holding 2500 ends at 2505.
			at := 2500
			if name == DetectorARTime {
				at = 2505
			}
			// Online: the points after the spike cannot change its score,
			// so they are not observed.
			var pt Point
			for i, v := range y[:at+1] {
				if p := d.Observe(v); i == at {
					pt = p
				}
			}
			if pt.P > 0.001 || pt.Onset == 0 {
				t.Errorf("%s: the spike scores %+v", name, pt)
			}
		})
	}
}

// BenchmarkDetectAnomalies runs the detector over two weeks of 5-minute
// data (4,032 points) per iteration.
func BenchmarkDetectAnomalies(b *testing.B) {
	y := dailyTwoWeeks()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		Detect(y, Options{})
	}
	b.ReportMetric(float64(b.N)*4032/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(b.N)*4032/(cputime.Process()-cpu).Seconds(), "points/cpu-s")
}

// BenchmarkLevelShifts runs the offline level-shift search over two weeks
// of 5-minute data.
func BenchmarkLevelShifts(b *testing.B) {
	y := noisy(20, 4032, 50, 5)
	for i := 3000; i < len(y); i++ {
		y[i] += 30
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		LevelShifts(y)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
}

func TestAnomMaxQueue(t *testing.T) {
	vals := []float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9}
	var q maxQueue
	const span = 4
	for i, v := range vals {
		got, ok := q.Max(i - span)
		want, wantOK := 0.0, false
		for j := max(0, i-span); j < i; j++ {
			if !wantOK || vals[j] > want {
				want, wantOK = vals[j], true
			}
		}
		if got != want || ok != wantOK {
			t.Fatalf("step %d: max of the previous %d = %v %v, want %v %v", i, span, got, ok, want, wantOK)
		}
		q.Push(i, v)
	}
}

// FuzzDetectAnomalies: any sequence of floats (NaN, infinities and huge
// values included) gives well-formed verdicts, and LevelShifts stays in
// range.
func FuzzDetectAnomalies(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 240, 63}, uint8(200))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 240, 127, 0, 0, 0, 0, 0, 0, 248, 127}, uint8(100))
	f.Fuzz(func(t *testing.T, raw []byte, repeat uint8) {
		var base []float64
		for i := 0; i+8 <= len(raw); i += 8 {
			var bits uint64
			for j := 0; j < 8; j++ {
				bits |= uint64(raw[i+j]) << (8 * j)
			}
			base = append(base, math.Float64frombits(bits))
		}
		if len(base) == 0 {
			return
		}
		// Repeat the pattern with a little drift so warmup is passed.
		var y []float64
		for r := 0; r < int(repeat)+1 && len(y) < 3000; r++ {
			for _, v := range base {
				y = append(y, v+float64(r%7))
			}
		}
		pts, events := Detect(y, Options{})
		for i, p := range pts {
			if p.Index != i || math.IsNaN(p.Z) || p.Score < 0 || p.Score > 1 || math.IsNaN(p.Score) || p.P <= 0 || p.P > 1 || p.Onset > p.Score {
				t.Fatalf("point %d: %+v", i, p)
			}
		}
		for _, e := range events {
			if e.Start < 0 || e.End < e.Start || e.End >= len(y) {
				t.Fatalf("event %+v out of range for %d points", e, len(y))
			}
		}
		prev := -1
		for _, s := range LevelShifts(y) {
			if s <= prev || s < 0 || s >= len(y) {
				t.Fatalf("shifts out of order or range: %v", LevelShifts(y))
			}
			prev = s
		}
	})
}

// BenchmarkStreamAcrossSeries feeds 200 series, each its own Stream, one
// sample at a time in turn, as the agent's pipeline does: two weeks of
// 5-minute data per series per iteration. It reports samples per second
// (wall and CPU) and the heap a Stream holds once warm.
func BenchmarkStreamAcrossSeries(b *testing.B) {
	benchmarkAcrossSeries(b, 200, func() Online { return NewStream(Options{}) })
}

// benchmarkAcrossSeries feeds series detectors from open two weeks of
// 5-minute data each, one sample of every series in turn, and reports
// samples per second (wall and CPU) and the heap a detector holds.
func benchmarkAcrossSeries(b *testing.B, series int, open func() Online) {
	const points = 4032
	data := make([][]float64, series)
	for s := range data {
		data[s] = noisy(uint64(100+s), points, 50, 5)
		for i := range data[s] {
			data[s][i] += 20 * math.Sin(2*math.Pi*float64(i+7*s)/288)
		}
		data[s][1000+s*7] += 60
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	var heap uint64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		streams := make([]Online, series)
		for s := range streams {
			streams[s] = open()
		}
		for i := 0; i < points; i++ {
			for s, st := range streams {
				st.Observe(data[s][i])
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(streams)
	}
	n := float64(b.N) * float64(series) * points
	b.ReportMetric(n/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(n/(cputime.Process()-cpu).Seconds(), "samples/cpu-s")
	b.ReportMetric(float64(heap)/float64(series), "heap-B/series")
}
