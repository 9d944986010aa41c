package state

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDownsamplingAcrossTiers(t *testing.T) {
	s := newStore(t, smallTiers)
	kept, dropped, err := s.Append(time.Minute, []Sample{
		{cpu, at(0), 1},
		{cpu, at(time.Minute), 3},
		{cpu, at(2 * time.Minute), 2},
		{cpu, at(7 * time.Minute), 10},
	})
	if err != nil || kept != 4 || dropped != 0 {
		t.Fatalf("Append = %d kept, %d dropped, %v; want 4, 0, nil", kept, dropped, err)
	}
	// The 1-minute ring holds minutes 3–7 only; minutes 0–2 have left it.
	// 5-minute buckets: [0,5) = {1,3,2}, [5,10) = {10}. Hour 0 = all four.
	tests := []struct {
		name  string
		step  time.Duration
		from  time.Duration
		to    time.Duration
		tier  int
		mean  []float64
		min   []float64
		max   []float64
		count []uint32
	}{
		{"1m", time.Minute, 0, 8 * time.Minute, 0,
			[]float64{nan, nan, nan, nan, nan, nan, nan, 10},
			[]float64{nan, nan, nan, nan, nan, nan, nan, 10},
			[]float64{nan, nan, nan, nan, nan, nan, nan, 10},
			[]uint32{0, 0, 0, 0, 0, 0, 0, 1}},
		{"5m", 5 * time.Minute, 0, 10 * time.Minute, 1,
			[]float64{2, 10}, []float64{1, 10}, []float64{3, 10}, []uint32{3, 1}},
		{"15m from 5m buckets", 15 * time.Minute, 0, 15 * time.Minute, 1,
			[]float64{4}, []float64{1}, []float64{10}, []uint32{4}},
		{"1h reads the finest tier that reaches back", time.Hour, 0, time.Hour, 1,
			[]float64{4}, []float64{1}, []float64{10}, []uint32{4}},
		{"1h further back than the 5m ring reads hourly buckets", time.Hour, -2 * time.Hour, time.Hour, 2,
			[]float64{nan, nan, 4}, []float64{nan, nan, 1}, []float64{nan, nan, 10}, []uint32{0, 0, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.Range(cpu, tt.step, at(tt.from), at(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if g.Tier != tt.tier || !g.Start.Equal(at(tt.from)) || g.Step != tt.step {
				t.Errorf("grid tier %d start %v step %v; want tier %d start %v step %v", g.Tier, g.Start, g.Step, tt.tier, at(tt.from), tt.step)
			}
			if !sameFloats(g.Mean, tt.mean) || !sameFloats(g.Min, tt.min) || !sameFloats(g.Max, tt.max) {
				t.Errorf("mean %v min %v max %v; want %v %v %v", g.Mean, g.Min, g.Max, tt.mean, tt.min, tt.max)
			}
			if len(g.Count) != len(tt.count) {
				t.Fatalf("count %v; want %v", g.Count, tt.count)
			}
			for i := range g.Count {
				if g.Count[i] != tt.count[i] {
					t.Errorf("count %v; want %v", g.Count, tt.count)
					break
				}
			}
		})
	}
}

func TestRingWrapAround(t *testing.T) {
	s := newStore(t, []Tier{{Step: time.Minute, Points: 3}})
	for i := range 10 {
		if _, _, err := s.Append(time.Minute, []Sample{{cpu, at(time.Duration(i) * time.Minute), float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := s.Range(cpu, time.Minute, at(0), at(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{nan, nan, nan, nan, nan, nan, nan, 7, 8, 9}
	if !sameFloats(g.Mean, want) {
		t.Errorf("after 10 minutes in a 3-minute ring: %v; want %v", g.Mean, want)
	}
	// A jump further than the ring empties it entirely.
	s.Append(time.Minute, []Sample{{cpu, at(100 * time.Minute), 100}})
	g, _ = s.Range(cpu, time.Minute, at(97*time.Minute), at(101*time.Minute))
	if want := []float64{nan, nan, nan, 100}; !sameFloats(g.Mean, want) {
		t.Errorf("after a jump: %v; want %v", g.Mean, want)
	}
	// A jump shorter than the ring empties only the skipped buckets.
	s.Append(time.Minute, []Sample{{cpu, at(102 * time.Minute), 102}})
	g, _ = s.Range(cpu, time.Minute, at(100*time.Minute), at(103*time.Minute))
	if want := []float64{100, nan, 102}; !sameFloats(g.Mean, want) {
		t.Errorf("after a short jump: %v; want %v", g.Mean, want)
	}
}

func TestOutOfOrderAndDuplicates(t *testing.T) {
	s := newStore(t, smallTiers)
	mustAppend := func(want [2]int, smp ...Sample) {
		t.Helper()
		kept, dropped, err := s.Append(time.Minute, smp)
		if err != nil || kept != want[0] || dropped != want[1] {
			t.Fatalf("Append = %d kept, %d dropped, %v; want %d, %d", kept, dropped, err, want[0], want[1])
		}
	}
	mustAppend([2]int{1, 0}, Sample{cpu, at(5 * time.Minute), 2})
	mustAppend([2]int{1, 0}, Sample{cpu, at(3 * time.Minute), 7})                // late, inside the 1m ring
	mustAppend([2]int{1, 0}, Sample{cpu, at(5 * time.Minute), 4})                // duplicate time: merges
	mustAppend([2]int{1, 0}, Sample{cpu, at(0), 1})                              // too old for 1m, kept by 5m and 1h
	mustAppend([2]int{0, 1}, Sample{cpu, at(-4 * time.Hour), 1})                 // older than every ring
	mustAppend([2]int{1, 0}, Sample{cpu, at(5*time.Minute + 30*time.Second), 6}) // same bucket, mid-step

	g, err := s.Range(cpu, time.Minute, at(3*time.Minute), at(6*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{7, nan, 4}; !sameFloats(g.Mean, want) {
		t.Errorf("1m mean %v; want %v", g.Mean, want)
	}
	if g.Min[2] != 2 || g.Max[2] != 6 || g.Count[2] != 3 {
		t.Errorf("merged bucket min %v max %v count %d; want 2, 6, 3", g.Min[2], g.Max[2], g.Count[2])
	}
	g, _ = s.Range(cpu, 5*time.Minute, at(0), at(10*time.Minute))
	if want := []float64{4, 4}; !sameFloats(g.Mean, want) || g.Count[0] != 2 || g.Count[1] != 3 {
		t.Errorf("5m mean %v count %v; want %v, [2 3]", g.Mean, g.Count, want)
	}
	in, _ := s.Info(cpu)
	if want := at(5*time.Minute + 30*time.Second); !in.LastSample.Equal(want) {
		t.Errorf("last sample %v; want %v (late samples must not move it back)", in.LastSample, want)
	}
}

func TestGapsAreNaN(t *testing.T) {
	s := newStore(t, nil)
	s.Append(time.Minute, []Sample{{mem, at(0), 50}, {mem, at(2 * time.Minute), 70}})
	g, err := s.Range(mem, time.Minute, at(-time.Minute), at(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{nan, 50, nan, 70, nan}; !sameFloats(g.Mean, want) {
		t.Errorf("mean %v; want %v", g.Mean, want)
	}
	if g.Len() != 5 || !g.Time(1).Equal(t0) {
		t.Errorf("grid of %d points, point 1 at %v; want 5, %v", g.Len(), g.Time(1), t0)
	}
}

func TestBeforeEpoch(t *testing.T) {
	s := newStore(t, smallTiers)
	before := time.Unix(-30, 0).UTC() // 1969-12-31 23:59:30
	s.Append(time.Minute, []Sample{{cpu, before, 3}})
	g, err := s.Range(cpu, time.Minute, before, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Start.Equal(time.Unix(-60, 0)) || !sameFloats(g.Mean, []float64{3}) {
		t.Errorf("grid starts %v mean %v; want 1969-12-31 23:59:00 [3]", g.Start, g.Mean)
	}
}

func TestRangeErrorsAndEdges(t *testing.T) {
	s := newStore(t, smallTiers)
	s.Append(time.Minute, []Sample{{cpu, at(0), 1}})
	tests := []struct {
		name     string
		key      Key
		step     time.Duration
		from, to time.Time
		err      error
		n        int
	}{
		{"unknown series", iops, time.Minute, at(0), at(time.Hour), ErrNoSeries, 0},
		{"step no tier divides", cpu, 90 * time.Second, at(0), at(time.Hour), ErrBadRange, 0},
		{"zero step", cpu, 0, at(0), at(time.Hour), ErrBadRange, 0},
		{"inverted", cpu, time.Minute, at(time.Hour), at(0), ErrBadRange, 0},
		{"too many points", cpu, time.Minute, at(0), at(10 * 365 * 24 * time.Hour), ErrBadRange, 0},
		{"empty", cpu, time.Minute, at(30 * time.Second), at(30 * time.Second), nil, 0},
		{"unaligned bounds", cpu, time.Minute, at(30 * time.Second), at(90 * time.Second), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.Range(tt.key, tt.step, tt.from, tt.to)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v; want %v", err, tt.err)
			}
			if err == nil && g.Len() != tt.n {
				t.Errorf("%d points; want %d", g.Len(), tt.n)
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	s := newStore(t, smallTiers, func(c *Config) { c.MaxSeries = 2 })
	kept, dropped, err := s.Append(time.Minute, []Sample{
		{cpu, at(0), 1},
		{Key{"dc1", ""}, at(0), 1},    // invalid key
		{Key{"dc1", "a:b"}, at(0), 1}, // invalid key
		{cpu, at(0), math.NaN()},      // not a number
		{cpu, at(0), math.Inf(1)},     // infinite
		{cpu, at(0), 1e300},           // beyond float32
		{mem, at(0), 2},               // second series
		{iops, at(0), 3},              // third series: over MaxSeries
	})
	if err != nil || kept != 2 || dropped != 6 {
		t.Fatalf("Append = %d kept, %d dropped, %v; want 2, 6, nil", kept, dropped, err)
	}
	if got := s.Keys(); len(got) != 2 || got[0] != cpu || got[1] != mem {
		t.Errorf("keys %v; want [%v %v]", got, cpu, mem)
	}
	if _, _, err := s.Append(0, nil); err == nil {
		t.Error("Append with a zero step: want an error")
	}
}

func TestLatestAndInfo(t *testing.T) {
	s := newStore(t, smallTiers)
	if _, ok := s.Latest(cpu); ok {
		t.Error("Latest of a missing series: want false")
	}
	s.Append(30*time.Second, []Sample{{cpu, at(90 * time.Second), 4}, {cpu, at(60 * time.Second), 2}})
	p, ok := s.Latest(cpu)
	if !ok || !p.Time.Equal(at(time.Minute)) || p.Mean != 3 || p.Min != 2 || p.Max != 4 || p.Count != 2 {
		t.Errorf("Latest = %+v, %v; want the 00:01 bucket mean 3 min 2 max 4 count 2", p, ok)
	}
	in, ok := s.Info(cpu)
	want := Info{Key: cpu, LastSample: at(90 * time.Second), Step: 30 * time.Second}
	if !ok || in != want {
		t.Errorf("Info = %+v; want %+v", in, want)
	}
}

func TestStaleness(t *testing.T) {
	s := newStore(t, smallTiers)
	s.Append(time.Minute, []Sample{{cpu, at(0), 1}, {mem, at(0), 1}})
	if n := s.MarkStale([]Key{cpu, iops}, at(2*time.Minute), "node stats unreachable"); n != 1 {
		t.Fatalf("MarkStale marked %d; want 1 (iops does not exist)", n)
	}
	if n := s.MarkStale([]Key{cpu}, at(3*time.Minute), "still unreachable"); n != 1 {
		t.Fatalf("second MarkStale marked %d; want 1", n)
	}
	in, _ := s.Info(cpu)
	if !in.Stale || !in.StaleSince.Equal(at(2*time.Minute)) || in.StaleReason != "still unreachable" {
		t.Errorf("Info = %+v; want stale since 00:02 (first mark) with the newer reason", in)
	}
	if in, _ := s.Info(mem); in.Stale {
		t.Error("mem marked stale; want only cpu")
	}
	// A late sample from before the mark does not clear it.
	s.Append(time.Minute, []Sample{{cpu, at(time.Minute), 1}})
	if in, _ := s.Info(cpu); !in.Stale {
		t.Error("a sample older than the mark cleared it")
	}
	s.Append(time.Minute, []Sample{{cpu, at(4 * time.Minute), 1}})
	if in, _ := s.Info(cpu); in.Stale || in.StaleReason != "" || !in.StaleSince.IsZero() {
		t.Errorf("after a fresh sample: %+v; want not stale", in)
	}
}

func TestStaleReasonIsBounded(t *testing.T) {
	s := newStore(t, smallTiers)
	s.Append(time.Minute, []Sample{{cpu, at(0), 1}})
	long := strings.Repeat("é", 200) // 400 bytes of 2-byte characters
	s.MarkStale([]Key{cpu}, at(time.Minute), long)
	in, _ := s.Info(cpu)
	if len(in.StaleReason) != 256 || !utf8.ValidString(in.StaleReason) {
		t.Errorf("reason of %d bytes (valid UTF-8: %v); want 256", len(in.StaleReason), utf8.ValidString(in.StaleReason))
	}
	s.MarkStale([]Key{cpu}, at(time.Minute), "x"+long)
	in, _ = s.Info(cpu)
	if len(in.StaleReason) != 255 || !utf8.ValidString(in.StaleReason) {
		t.Errorf("reason of %d bytes (valid UTF-8: %v); want 255, cut before a split character", len(in.StaleReason), utf8.ValidString(in.StaleReason))
	}
}

func TestDrop(t *testing.T) {
	s := newStore(t, smallTiers)
	s.Append(time.Minute, []Sample{{cpu, at(0), 1}, {mem, at(0), 1}})
	if n := s.Drop([]Key{cpu, iops}); n != 1 {
		t.Errorf("Drop = %d; want 1", n)
	}
	if got := s.Keys(); len(got) != 1 || got[0] != mem {
		t.Errorf("keys %v; want [%v]", got, mem)
	}
	if _, err := s.Range(cpu, time.Minute, at(0), at(time.Minute)); !errors.Is(err, ErrNoSeries) {
		t.Errorf("Range of a dropped series: %v; want ErrNoSeries", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Config)
		ok    bool
	}{
		{"defaults", func(*Config) {}, true},
		{"one tier", func(c *Config) { c.Tiers = []Tier{{time.Second, 10}} }, true},
		{"no tiers", func(c *Config) { c.Tiers = []Tier{} }, false},
		{"zero step", func(c *Config) { c.Tiers = []Tier{{0, 10}} }, false},
		{"zero points", func(c *Config) { c.Tiers = []Tier{{time.Minute, 0}} }, false},
		{"huge ring", func(c *Config) { c.Tiers = []Tier{{time.Minute, maxTierPoints + 1}} }, false},
		{"not coarser", func(c *Config) { c.Tiers = []Tier{{time.Minute, 10}, {time.Minute, 10}} }, false},
		{"negative max", func(c *Config) { c.MaxSeries = -1 }, false},
		{"default profiles", func(c *Config) { c.Profiles = DefaultProfiles() }, true},
		{"nested prefixes", func(c *Config) { c.Profiles = mixedProfiles() }, true},
		{"empty profiles", func(c *Config) { c.Profiles = []Profile{} }, true},
		{"empty prefix", func(c *Config) { c.Profiles = []Profile{{Prefix: "", Tiers: smallTiers}} }, false},
		{"prefix longer than any locality", func(c *Config) {
			c.Profiles = []Profile{{Prefix: strings.Repeat("n", maxKeyPart+1), Tiers: smallTiers}}
		}, false},
		{"duplicate prefix", func(c *Config) {
			c.Profiles = []Profile{{"node/", smallTiers}, {"group/", smallTiers}, {"node/", smallTiers[:1]}}
		}, false},
		{"profile without tiers", func(c *Config) { c.Profiles = []Profile{{Prefix: "node/"}} }, false},
		{"profile tier of zero points", func(c *Config) { c.Profiles = []Profile{{"node/", []Tier{{time.Minute, 0}}}} }, false},
		{"profile tier of zero step", func(c *Config) { c.Profiles = []Profile{{"node/", []Tier{{0, 10}}}} }, false},
		{"profile tiers not coarser", func(c *Config) {
			c.Profiles = []Profile{{"node/", []Tier{{time.Hour, 10}, {time.Minute, 10}}}}
		}, false},
		{"profile ring too large", func(c *Config) { c.Profiles = []Profile{{"node/", []Tier{{time.Minute, maxTierPoints + 1}}}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			tt.tweak(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v; want ok=%v", err, tt.ok)
			}
		})
	}
}

// fullHistory returns samples, oldest first, that fill every bucket of the
// default tiers for a series ending at end: hourly for 90 days, every 5
// minutes for the last 14 days, every minute for the last day.
func fullHistory(key Key, end time.Time) []Sample {
	var out []Sample
	for t := end.Add(-90 * 24 * time.Hour); t.Before(end); {
		out = append(out, Sample{key, t, 1})
		switch left := end.Sub(t); {
		case left <= 24*time.Hour:
			t = t.Add(time.Minute)
		case left <= 14*24*time.Hour:
			t = t.Add(5 * time.Minute)
		default:
			t = t.Add(time.Hour)
		}
	}
	return out
}

// heapPerSeries measures how much the heap grows per series when fill
// appends to n new series with default tiers.
func heapPerSeries(t testing.TB, n int, fill func(s *Store, k Key)) float64 {
	return heapPerSeriesOf(t, Config{}, "dc1/node-", n, fill)
}

// heapPerSeriesOf is heapPerSeries for a store configured by cfg and series
// whose localities start with prefix.
func heapPerSeriesOf(t testing.TB, cfg Config, prefix string, n int, fill func(s *Store, k Key)) float64 {
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = Key{Locality: fmt.Sprintf("%s%04d", prefix, i), Metric: "cpu"}
	}
	// Two collections: the first moves sync.Pool contents (left by earlier
	// tests) to the victim caches, the second frees them, so that they are
	// not freed during the measurement.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, k := range keys {
		fill(s, k)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func TestBytesPerSeries(t *testing.T) {
	max := Config{}.BytesPerSeries()
	const pages = 120 * 1024 // 7,632 buckets of 16 bytes in 64-bucket pages
	if max < pages || max > pages+120*8+512 {
		t.Errorf("BytesPerSeries() = %d; want %d of pages plus pointers and a small header", max, pages)
	}
	if err := quick(t); err != nil {
		t.Skip(err)
	}
	end := at(100 * 24 * time.Hour)
	full := heapPerSeries(t, 40, func(s *Store, k Key) {
		smp := fullHistory(k, end)
		if kept, _, _ := s.Append(time.Minute, smp); kept != len(smp) {
			t.Fatalf("kept %d of %d samples", kept, len(smp))
		}
	})
	t.Logf("full series: measured %.0f heap bytes; documented at most %d", full, max)
	if full < pages || full > 1.05*float64(max) {
		t.Errorf("a full series takes %.0f heap bytes; documented at most %d", full, max)
	}
	young := heapPerSeries(t, 200, func(s *Store, k Key) { s.Append(time.Minute, []Sample{{k, end, 1}}) })
	t.Logf("new series: measured %.0f heap bytes", young)
	if young < 3*1024 || young > 6*1024 {
		t.Errorf("a new series takes %.0f heap bytes; documented about 4.3 KiB", young)
	}
}

// quick reports why a heap measurement would be unreliable; nil when it is
// fine to measure.
func quick(t *testing.T) error {
	if testing.Short() {
		return errors.New("heap measurement skipped in -short mode")
	}
	return nil
}

// TestTiersAgree checks, on random samples, that every coarse bucket equals
// the combination of the fine buckets it spans wherever both tiers still hold
// them: counts and extremes exactly, means to float32 precision.
func TestTiersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tiers := []Tier{{Step: time.Minute, Points: 600}, {Step: 5 * time.Minute, Points: 200}, {Step: time.Hour, Points: 30}}
	s := newStore(t, tiers)
	now := at(0)
	for range 3000 {
		now = now.Add(time.Duration(r.IntN(40)) * time.Second)
		lag := time.Duration(r.IntN(15)) * time.Minute // some samples arrive late
		s.Append(time.Minute, []Sample{{cpu, now.Add(-lag), r.Float64() * 100}})
	}
	// The last 540 minutes are in every tier (600 one-minute buckets).
	end := now.Truncate(time.Hour)
	from := end.Add(-8 * time.Hour)
	fine, err := s.Range(cpu, time.Minute, from, end)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{5 * time.Minute, time.Hour} {
		coarse, err := s.Range(cpu, step, from, end)
		if err != nil {
			t.Fatal(err)
		}
		ratio := int(step / time.Minute)
		for i := range coarse.Len() {
			var sum, lo, hi float64
			var n uint32
			for j := i * ratio; j < (i+1)*ratio; j++ {
				if fine.Count[j] == 0 {
					continue
				}
				if n == 0 || fine.Min[j] < lo {
					lo = fine.Min[j]
				}
				if n == 0 || fine.Max[j] > hi {
					hi = fine.Max[j]
				}
				sum += fine.Mean[j] * float64(fine.Count[j])
				n += fine.Count[j]
			}
			if n != coarse.Count[i] {
				t.Fatalf("%v bucket %d: count %d; fine buckets hold %d", step, i, coarse.Count[i], n)
			}
			if n == 0 {
				continue
			}
			if coarse.Min[i] != lo || coarse.Max[i] != hi || !sameFloat(coarse.Mean[i], sum/float64(n)) {
				t.Errorf("%v bucket %d: mean %v min %v max %v; fine buckets give %v %v %v",
					step, i, coarse.Mean[i], coarse.Min[i], coarse.Max[i], sum/float64(n), lo, hi)
			}
		}
	}
	total := 0
	for _, c := range fine.Count {
		total += int(c)
	}
	if fine.Len() != 480 || total < 500 {
		t.Fatalf("fine grid of %d points holding %d samples; want 480 points and hundreds of samples", fine.Len(), total)
	}
}

// TestProfiles follows series of three profiles through the same samples:
// the default tiers (smallTiers), "node/" (1m×3) and, for the longer prefix
// "node/dc1/", 1m×2 and 10m×2.
func TestProfiles(t *testing.T) {
	s := newStore(t, smallTiers, withProfiles(mixedProfiles()))
	short := Key{Locality: "node/n7", Metric: "cpu"}
	nested := Key{Locality: "node/dc1/n8", Metric: "cpu"}
	var smp []Sample
	for m := range 6 {
		for _, k := range []Key{cpu, short, nested} {
			smp = append(smp, Sample{k, at(time.Duration(m) * time.Minute), float64(m)})
		}
	}
	if kept, dropped, err := s.Append(time.Minute, smp); kept != len(smp) || dropped != 0 || err != nil {
		t.Fatalf("Append = %d kept, %d dropped, %v; want %d, 0", kept, dropped, err, len(smp))
	}
	for k, want := range map[Key]int{cpu: 3, short: 1, nested: 2} {
		if got := len(s.series[k].heads); got != want {
			t.Errorf("%s keeps %d tiers; want %d", k, got, want)
		}
	}
	tests := []struct {
		name     string
		key      Key
		step     time.Duration
		from, to time.Duration
		tier     int
		mean     []float64
		count    []uint32
	}{
		{"default 1m", cpu, time.Minute, 0, 6 * time.Minute, 0,
			[]float64{nan, 1, 2, 3, 4, 5}, []uint32{0, 1, 1, 1, 1, 1}},
		{"default 1h reads 5m buckets", cpu, time.Hour, 0, time.Hour, 1,
			[]float64{2.5}, []uint32{6}},
		{"node 1m keeps 3 minutes", short, time.Minute, 0, 6 * time.Minute, 0,
			[]float64{nan, nan, nan, 3, 4, 5}, []uint32{0, 0, 0, 1, 1, 1}},
		{"node 5m from 1m buckets", short, 5 * time.Minute, 0, 10 * time.Minute, 0,
			[]float64{3.5, 5}, []uint32{2, 1}},
		{"node 1h from 1m buckets", short, time.Hour, 0, time.Hour, 0,
			[]float64{4}, []uint32{3}},
		{"longest prefix 1m keeps 2 minutes", nested, time.Minute, 3 * time.Minute, 6 * time.Minute, 0,
			[]float64{nan, 4, 5}, []uint32{0, 1, 1}},
		{"longest prefix 10m reads its coarse tier", nested, 10 * time.Minute, 0, 10 * time.Minute, 1,
			[]float64{2.5}, []uint32{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.Range(tt.key, tt.step, at(tt.from), at(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if g.Tier != tt.tier || !sameFloats(g.Mean, tt.mean) || !slices.Equal(g.Count, tt.count) {
				t.Errorf("tier %d mean %v count %v; want tier %d mean %v count %v", g.Tier, g.Mean, g.Count, tt.tier, tt.mean, tt.count)
			}
		})
	}
	// A step only the default tiers divide is refused for the node series.
	if _, err := s.Range(short, 90*time.Second, at(0), at(time.Hour)); !errors.Is(err, ErrBadRange) {
		t.Errorf("Range(node, 90s) = %v; want ErrBadRange", err)
	}
	// A late sample the default tiers still hold is too old for the node
	// profile's single 3-minute ring.
	for k, want := range map[Key][2]int{cpu: {1, 0}, short: {0, 1}} {
		if kept, dropped, _ := s.Append(time.Minute, []Sample{{k, at(time.Minute), 9}}); kept != want[0] || dropped != want[1] {
			t.Errorf("late sample for %s: %d kept, %d dropped; want %v", k, kept, dropped, want)
		}
	}
	for _, k := range []Key{cpu, short, nested} {
		p, ok := s.Latest(k)
		if !ok || !p.Time.Equal(at(5*time.Minute)) || p.Mean != 5 || p.Count != 1 {
			t.Errorf("Latest(%s) = %+v, %v; want 5 at 00:05", k, p, ok)
		}
		in, _ := s.Info(k)
		if !in.LastSample.Equal(at(5*time.Minute)) || in.Step != time.Minute {
			t.Errorf("Info(%s) = %+v; want last sample 00:05, step 1m", k, in)
		}
	}
	// Staleness works alike for every profile.
	s.MarkStale([]Key{short}, at(6*time.Minute), "node down")
	if in, _ := s.Info(short); !in.Stale || in.StaleReason != "node down" {
		t.Errorf("Info after MarkStale = %+v; want stale", in)
	}
	// A dropped series comes back with the tiers its key selects.
	s.Drop([]Key{short})
	s.Append(time.Minute, []Sample{{short, at(time.Hour), 1}})
	if got := len(s.series[short].heads); got != 1 {
		t.Errorf("recreated node series keeps %d tiers; want 1", got)
	}
}

func TestTiersFor(t *testing.T) {
	cfg := Config{Tiers: smallTiers, Profiles: mixedProfiles()}
	tests := []struct {
		locality string
		want     []Tier
	}{
		{"dc1/web", smallTiers},
		{"node", smallTiers},
		{"node/", mixedProfiles()[1].Tiers},
		{"node/n1", mixedProfiles()[1].Tiers},
		{"node/dc1", mixedProfiles()[1].Tiers},
		{"node/dc1/n2", mixedProfiles()[0].Tiers},
		{"group/default/web/frontend", mixedProfiles()[2].Tiers},
		{"dc1/node/x", smallTiers},
	}
	for _, tt := range tests {
		if got := cfg.TiersFor(tt.locality); !slices.Equal(got, tt.want) {
			t.Errorf("TiersFor(%q) = %v; want %v", tt.locality, got, tt.want)
		}
	}
	// Config returns the profiles sorted by prefix, whatever their order.
	s := newStore(t, smallTiers, withProfiles(mixedProfiles()))
	var prefixes []string
	for _, p := range s.Config().Profiles {
		prefixes = append(prefixes, p.Prefix)
	}
	if want := []string{"group/", "node/", "node/dc1/"}; !slices.Equal(prefixes, want) {
		t.Errorf("Config().Profiles in order %v; want %v", prefixes, want)
	}
	// The store keeps its own copy: changing the caller's slices later
	// changes nothing.
	ps := DefaultProfiles()
	s = newStore(t, nil, withProfiles(ps))
	ps[0].Tiers[0].Points = 1
	if got := s.Config().TiersFor("node/n1"); got[0].Points != 360 {
		t.Errorf("the store's profile changed with the caller's slice: %v", got)
	}
}

// TestProfileBytesPerSeries checks the memory bound of a series of the
// default node profile, and measures a full one and a new one.
func TestProfileBytesPerSeries(t *testing.T) {
	p := DefaultProfiles()[0]
	if p.Prefix != "node/" || !slices.Equal(p.Tiers, []Tier{{Step: time.Minute, Points: 360}}) {
		t.Fatalf("default node profile %+v; want node/ with 360 one-minute points", p)
	}
	max := p.BytesPerSeries()
	const pages = 6 * 1024 // 360 buckets of 16 bytes in 64-bucket pages
	if max < pages || max > pages+6*8+512 {
		t.Errorf("BytesPerSeries() = %d; want %d of pages plus pointers and a small header", max, pages)
	}
	if g := DefaultProfiles()[1]; g.Prefix != "group/" || g.BytesPerSeries() != max {
		t.Errorf("default group profile %+v costs %d; want group/ costing the same as node/ (%d)", g, g.BytesPerSeries(), max)
	}
	// The package doc's figure: 10,000 nodes × 4 series stay far below
	// the agent's memory goal.
	if total := 40000 * max; total > 256<<20 {
		t.Errorf("40,000 node series take up to %d bytes; want at most 256 MiB", total)
	}
	if err := quick(t); err != nil {
		t.Skip(err)
	}
	cfg := Config{Profiles: DefaultProfiles()}
	end := at(100 * 24 * time.Hour)
	full := heapPerSeriesOf(t, cfg, "node/dc1-rack-", 400, func(s *Store, k Key) {
		// Two days of 1-minute samples: the 6-hour ring wraps many times.
		smp := make([]Sample, 0, 2*24*60)
		for m := 2 * 24 * 60; m > 0; m-- {
			smp = append(smp, Sample{k, end.Add(-time.Duration(m) * time.Minute), float64(m % 60)})
		}
		if kept, _, _ := s.Append(time.Minute, smp); kept != len(smp) {
			t.Fatalf("kept %d of %d samples", kept, len(smp))
		}
		if sr := s.series[k]; len(sr.heads) != 1 || len(sr.pages) != 6 {
			t.Fatalf("%s holds %d tiers in %d pages; want 1 tier in 6 pages", k, len(sr.heads), len(sr.pages))
		}
	})
	t.Logf("full node series: measured %.0f heap bytes; documented at most %d", full, max)
	if full < pages || full > 1.05*float64(max) {
		t.Errorf("a full node series takes %.0f heap bytes; documented at most %d", full, max)
	}
	young := heapPerSeriesOf(t, cfg, "node/dc1-rack-", 1000, func(s *Store, k Key) { s.Append(time.Minute, []Sample{{k, end, 1}}) })
	t.Logf("new node series: measured %.0f heap bytes", young)
	if young < 1024 || young > 2*1024 {
		t.Errorf("a new node series takes %.0f heap bytes; documented about 1.3 KiB", young)
	}
	// A locality series in the same store still keeps every default tier.
	s, _ := NewStore(cfg)
	s.Append(time.Minute, fullHistory(cpu, end))
	g, err := s.Range(cpu, time.Hour, end.Add(-89*24*time.Hour), end)
	if err != nil || g.Tier != 2 || g.Count[0] == 0 {
		t.Errorf("locality series 89 days back: tier %d, first count %v, %v; want the hourly tier, filled", g.Tier, g.Count[:1], err)
	}
}

func TestExtent(t *testing.T) {
	s := newStore(t, smallTiers)
	if _, ok := s.Extent(cpu); ok {
		t.Error("an unknown series has an extent")
	}
	// Minutes 0, 1, 2 and 7: the 1-minute ring (5 points) holds minute 7
	// only; the 5-minute ring still reaches back to minute 0.
	for _, m := range []int{0, 1, 2, 7} {
		if _, _, err := s.Append(time.Minute, []Sample{{cpu, at(time.Duration(m) * time.Minute), 1}}); err != nil {
			t.Fatal(err)
		}
	}
	e, ok := s.Extent(cpu)
	if !ok || e.Points != 1 || !e.First.Equal(at(0)) {
		t.Errorf("extent = %+v, %v; want 1 point in the finest tier, first at %v", e, ok, at(0))
	}
	// A series that began at minute 38 of an hour: the hourly bucket starts
	// at minute 0, the finest tier says 38.
	s2 := newStore(t, smallTiers)
	s2.Append(time.Minute, []Sample{{cpu, at(38 * time.Minute), 1}, {cpu, at(39 * time.Minute), 1}})
	if e, _ := s2.Extent(cpu); e.Points != 2 || !e.First.Equal(at(38*time.Minute)) {
		t.Errorf("extent = %+v; want 2 points, first at minute 38", e)
	}
	// Once the finest tier has wrapped, the 5-minute tier tells the start.
	s2.Append(time.Minute, []Sample{{cpu, at(50 * time.Minute), 1}})
	if e, _ := s2.Extent(cpu); !e.First.Equal(at(35 * time.Minute)) {
		t.Errorf("first = %v after the finest ring wrapped; want minute 35 (its 5-minute bucket)", e.First)
	}
	s.Append(time.Minute, []Sample{{cpu, at(8 * time.Minute), 1}, {cpu, at(9 * time.Minute), 1}})
	if e, _ := s.Extent(cpu); e.Points != 3 {
		t.Errorf("points = %d after three recent minutes, want 3", e.Points)
	}
}
