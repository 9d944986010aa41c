package anomaly

import (
	"math"
	"testing"
)

func TestAnomalyDetectorSpike(t *testing.T) {
	y := noisy(11, 2000, 20, 1)
	y[1500] = 35
	pts, events := Detect(y, Options{})
	if !pts[1500].Anomalous {
		t.Fatalf("spike at 1500 not flagged: %+v", pts[1500])
	}
	if len(events) != 1 || events[0].Start != 1500 || events[0].Kind != KindSpike {
		t.Fatalf("events = %+v, want one spike starting at 1500", events)
	}
	if events[0].End > 1500+2 {
		t.Errorf("spike event lasts until %d", events[0].End)
	}
	if pts[1500].Onset != pts[1500].Score || pts[1500].Score <= 0.5 {
		t.Errorf("onset %v score %v: want equal and above 0.5", pts[1500].Onset, pts[1500].Score)
	}
}

func TestAnomalyDetectorLevelShift(t *testing.T) {
	y := noisy(12, 3000, 20, 1)
	for i := 2000; i < len(y); i++ {
		y[i] += 12
	}
	pts, events := Detect(y, Options{})
	if len(events) == 0 {
		t.Fatal("no event for a level shift")
	}
	first := events[0]
	if first.Start < 1995 || first.Start > 2005 {
		t.Errorf("first event starts at %d, want about 2000: %+v", first.Start, events)
	}
	var shift bool
	for _, e := range events {
		if e.Kind == KindLevelShift {
			shift = true
		}
		if e.Start < 1990 {
			t.Errorf("event before the shift: %+v", e)
		}
	}
	if !shift {
		t.Errorf("no level_shift event among %+v", events)
	}
	// The detector settles at the new level: nothing anomalous long after.
	for i := 2400; i < len(pts); i++ {
		if pts[i].Anomalous {
			t.Fatalf("point %d still anomalous after the series settled: %+v", i, pts[i])
		}
	}
}

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
			_, events := Detect(tc.y, Options{})
			if len(events) != 0 {
				t.Errorf("events on a normal series: %+v", events)
			}
		})
	}
}

// TestAnomalyDetectorOnline: appending points never changes the verdicts
// already given (no look-ahead).
func TestAnomalyDetectorOnline(t *testing.T) {
	y := noisy(16, 1500, 10, 1)
	y[700] = 30
	for i := 1000; i < len(y); i++ {
		y[i] += 8
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
		if !pts[tc.i].Anomalous {
			t.Errorf("point %d not anomalous: %+v", tc.i, pts[tc.i])
		}
		if got := pts[tc.i].Onset > 0; got != tc.onset {
			t.Errorf("point %d onset %v, want onset %v (%+v)", tc.i, pts[tc.i].Onset, tc.onset, pts[tc.i])
		}
	}
	for i, p := range pts {
		if p.Score < 0 || p.Score > 1 || p.Onset > p.Score || p.P <= 0 || p.P > 1 {
			t.Fatalf("point %d: score %v onset %v p %v out of range", i, p.Score, p.Onset, p.P)
		}
		if want := math.Log(1/p.P) / math.Log(DefaultMemory+1); math.Abs(p.Score-want) > 1e-12 {
			t.Fatalf("point %d: score %v, want log(1/p)/log(memory+1) = %v", i, p.Score, want)
		}
	}
	// The strongest point so far has the smallest p-value its history
	// allows: 1/(n+1) with about 1,060 scored points before it.
	if pts[1100].P > 1.0/1000 {
		t.Errorf("record point has p %v", pts[1100].P)
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
	// Only the spike (and at most a few neighbours) goes; the new level
	// after the shift stays.
	if nans > 5 {
		t.Errorf("%d points removed, events %+v", nans, events)
	}
	for i := 2000; i < 2100; i++ {
		if math.IsNaN(clean[i]) {
			t.Fatalf("point %d at the new level removed", i)
		}
	}
}

// BenchmarkDetectAnomalies runs the detector over two weeks of 5-minute
// data (4,032 points) per iteration.
func BenchmarkDetectAnomalies(b *testing.B) {
	y := noisy(19, 4032, 50, 5)
	for i := range y {
		y[i] += 20 * math.Sin(2*math.Pi*float64(i)/288)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		Detect(y, Options{})
	}
	b.ReportMetric(float64(b.N)*4032/b.Elapsed().Seconds(), "points/s")
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
