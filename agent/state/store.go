package state

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// maxGridPoints bounds the grid Range builds, so a careless request cannot
// allocate without limit.
const maxGridPoints = 1 << 21

// ErrNoSeries is returned by reads of a series the store does not hold.
var ErrNoSeries = errors.New("state: no such series")

// ErrBadRange is returned by Range for a step no tier divides, an inverted
// interval, or a grid of more than 2,097,152 points.
var ErrBadRange = errors.New("state: bad range")

// Sample is one point of one series, already aggregated by the leader for
// its step.
type Sample struct {
	Key   Key
	Time  time.Time
	Value float64
}

// Point is one bucket as reads return it. Count is the number of samples
// folded into it; a point with Count 0 is a gap, and its values are NaN.
type Point struct {
	Time  time.Time
	Mean  float64
	Min   float64
	Max   float64
	Count uint32
}

// Grid is a regular time grid of one series: point i covers
// [Start+i×Step, Start+(i+1)×Step). Gaps are NaN in Mean, Min and Max and 0
// in Count: this is the shape forecast.Forecaster takes.
type Grid struct {
	Key   Key
	Start time.Time
	Step  time.Duration
	// Tier is the index of the tier the grid was read from, among the
	// tiers of the series' profile (Config.TiersFor).
	Tier  int
	Mean  []float64
	Min   []float64
	Max   []float64
	Count []uint32
}

// Len returns the number of points.
func (g Grid) Len() int { return len(g.Mean) }

// Time returns the start of point i.
func (g Grid) Time(i int) time.Time { return g.Start.Add(time.Duration(i) * g.Step) }

// Info describes one series' freshness and staleness.
type Info struct {
	Key Key
	// LastSample is the time of the newest sample; zero when none arrived.
	LastSample time.Time
	// Step is the step of the batch that brought the newest sample.
	Step time.Duration
	// Stale is set by a MarkStale command and cleared by the first sample
	// newer than StaleSince.
	Stale       bool
	StaleSince  time.Time
	StaleReason string
}

// Store is the series store: for each Key, one fixed-size ring per tier of
// the key's profile.
// All its changes are deterministic functions of their arguments. A Store is
// not safe for concurrent use; FSM guards one with a lock, and backtests may
// use one directly.
type Store struct {
	cfg Config
	// layout is the default tiers'; profiles[i] is cfg.Profiles[i]'s.
	layout   *layout
	profiles []*layout
	series   map[Key]*series
	// gen counts captures: a series whose gen is lower may be shared with a
	// captured snapshot and is copied before it is changed.
	gen uint64
}

// NewStore returns an empty store.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, layout: newLayout(cfg.Tiers), series: map[Key]*series{}}
	for _, p := range cfg.Profiles {
		s.profiles = append(s.profiles, newLayout(p.Tiers))
	}
	return s, nil
}

// layoutFor returns the layout of a new series of the given locality: its
// profile's, or the default.
func (s *Store) layoutFor(locality string) *layout {
	if i := matchProfile(s.cfg.Profiles, locality); i >= 0 {
		return s.profiles[i]
	}
	return s.layout
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg.withDefaults() }

// writable returns key's series ready to be changed, copying it first when a
// snapshot may share it, or nil when it does not exist.
func (s *Store) writable(key Key) *series {
	sr := s.series[key]
	if sr != nil && sr.gen != s.gen {
		sr = sr.clone(s.gen)
		s.series[key] = sr
	}
	return sr
}

// Append folds samples into their series, creating series as needed, and
// returns how many it kept and dropped. A sample is dropped when its key is
// invalid, its value is not finite (or overflows float32), it is older than
// every tier's ring, or it would create a series beyond MaxSeries. Samples
// landing in the same bucket merge (count-weighted mean, min, max): the
// leader sends each series and step once, and a resent batch counts twice.
// step must be positive; it is recorded as the series' sampling step.
func (s *Store) Append(step time.Duration, samples []Sample) (kept, dropped int, err error) {
	if step <= 0 {
		return 0, 0, fmt.Errorf("state: append: step %v is not positive", step)
	}
	var last Key
	var sr *series
	for _, smp := range samples {
		if sr == nil || smp.Key != last {
			last = smp.Key
			sr = s.writable(smp.Key)
			if sr == nil {
				if smp.Key.Validate() != nil || (s.cfg.MaxSeries > 0 && len(s.series) >= s.cfg.MaxSeries) {
					dropped++
					sr = nil
					continue
				}
				sr = newSeries(smp.Key, s.layoutFor(smp.Key.Locality), s.gen)
				s.series[smp.Key] = sr
			}
		}
		v := smp.Value
		if math.IsNaN(v) || math.IsInf(float64(float32(v)), 0) {
			dropped++
			continue
		}
		if sr.add(unixNano(smp.Time), v) {
			sr.step = int64(step)
			kept++
		} else {
			dropped++
		}
	}
	return kept, dropped, nil
}

// maxReason bounds a stale reason kept per series.
const maxReason = 256

// MarkStale marks the named series stale since the given time with a reason
// and returns how many it marked. Unknown keys are ignored. A series already
// stale keeps its earlier StaleSince and takes the new reason. Reasons are
// cut to 256 bytes (at a character boundary).
func (s *Store) MarkStale(keys []Key, since time.Time, reason string) int {
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	n := 0
	for _, k := range keys {
		sr := s.writable(k)
		if sr == nil {
			continue
		}
		if !sr.stale {
			sr.stale, sr.staleSince = true, unixNano(since)
		}
		sr.staleReason = reason
		n++
	}
	return n
}

// Drop deletes the named series and returns how many existed.
func (s *Store) Drop(keys []Key) int {
	n := 0
	for _, k := range keys {
		if _, ok := s.series[k]; ok {
			delete(s.series, k)
			n++
		}
	}
	return n
}

// Len returns the number of series.
func (s *Store) Len() int { return len(s.series) }

// Keys returns every series key, ordered by locality then metric.
func (s *Store) Keys() []Key {
	keys := make([]Key, 0, len(s.series))
	for k := range s.series {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

// Info returns key's freshness and staleness.
func (s *Store) Info(key Key) (Info, bool) {
	sr := s.series[key]
	if sr == nil {
		return Info{}, false
	}
	return sr.info(), true
}

// Infos returns every series' Info, ordered by key.
func (s *Store) Infos() []Info {
	out := make([]Info, 0, len(s.series))
	for _, k := range s.Keys() {
		out = append(out, s.series[k].info())
	}
	return out
}

func (sr *series) info() Info {
	in := Info{Key: sr.key, Step: time.Duration(sr.step), Stale: sr.stale, StaleReason: sr.staleReason}
	if sr.hasSample {
		in.LastSample = fromUnixNano(sr.lastSample)
	}
	if sr.stale {
		in.StaleSince = fromUnixNano(sr.staleSince)
	}
	return in
}

// Extent describes how much of a series the store holds: Points is the
// number of non-empty buckets of the finest tier of its profile, First the
// start of its oldest sample as precisely as the tiers still tell it (to
// the minute while the finest tier reaches back to it, to the coarsest
// tier's step once only that tier does).
type Extent struct {
	Points int
	First  time.Time
}

// Extent returns key's extent, and false when the series does not exist.
// It reads every bucket of the finest tier and the oldest buckets of the
// others, so it costs a scan of the series rather than a lookup.
func (s *Store) Extent(key Key) (Extent, bool) {
	sr := s.series[key]
	if sr == nil {
		return Extent{}, false
	}
	var e Extent
	oldest := make([]int64, len(sr.layout.tiers)) // start of each tier's oldest non-empty bucket, ns
	have := make([]bool, len(sr.layout.tiers))
	for i, t := range sr.layout.tiers {
		old, ok := sr.oldest(i)
		if !ok {
			continue
		}
		for b := old; b <= sr.heads[i].head; b++ {
			if sr.get(i, b).count == 0 {
				continue
			}
			if !have[i] {
				oldest[i], have[i] = b*int64(t.Step), true
			}
			if i > 0 {
				break // only the oldest bucket of a coarser tier matters
			}
			e.Points++
		}
	}
	// The coarsest tier holding anything reaches furthest back. A finer
	// tier still holds the series' start when it holds every sample of
	// that tier's oldest bucket (the same count); the finest such tier
	// tells the start most precisely.
	k := -1
	for i := range have {
		if have[i] {
			k = i
		}
	}
	if k < 0 {
		return e, true
	}
	ks := int64(sr.layout.tiers[k].Step)
	want := uint64(sr.get(k, floorDiv(oldest[k], ks)).count)
	e.First = fromUnixNano(oldest[k])
	for j := 0; j < k; j++ {
		if !have[j] {
			continue
		}
		js := int64(sr.layout.tiers[j].Step)
		var n uint64
		for b := floorDiv(oldest[k], js); b < floorDiv(oldest[k]+ks, js); b++ {
			n += uint64(sr.get(j, b).count)
		}
		if n == want {
			e.First = fromUnixNano(oldest[j])
			break
		}
	}
	return e, true
}

// Latest returns the newest bucket of the finest tier of the series' profile
// (its Time is the bucket's start) and false when the series does not exist or holds nothing.
func (s *Store) Latest(key Key) (Point, bool) {
	sr := s.series[key]
	if sr == nil || !sr.heads[0].used {
		return Point{}, false
	}
	h := sr.heads[0].head
	b := sr.get(0, h)
	return toPoint(fromUnixNano(h*int64(sr.layout.tiers[0].Step)), b), true
}

func toPoint(t time.Time, b bucket) Point {
	if b.count == 0 {
		return Point{Time: t, Mean: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return Point{Time: t, Mean: float64(b.mean), Min: float64(b.min), Max: float64(b.max), Count: b.count}
}

// Range returns key's points on a regular grid of the given step covering
// [from, to): the first point is the step bucket holding from, the last the
// bucket that starts before to. Buckets are aligned to the Unix epoch.
//
// The tiers are those of the series' profile (Config.TiersFor). step must be
// a multiple of some tier's step. Among those tiers Range reads
// the finest one whose ring still reaches back to from, or else the one
// reaching furthest back; buckets of a coarser step are combined from the
// tier's (count-weighted mean, min of minima, max of maxima, summed counts).
// Points outside what the tier holds are gaps.
func (s *Store) Range(key Key, step time.Duration, from, to time.Time) (Grid, error) {
	sr := s.series[key]
	if sr == nil {
		return Grid{}, fmt.Errorf("%w %s", ErrNoSeries, key)
	}
	if step <= 0 || to.Before(from) {
		return Grid{}, fmt.Errorf("%w: step %v from %v to %v", ErrBadRange, step, from, to)
	}
	fromNS, toNS := unixNano(from), unixNano(to)
	tier, reach := -1, int64(math.MaxInt64)
	for i, t := range sr.layout.tiers {
		if step%t.Step != 0 {
			continue
		}
		start := int64(math.MaxInt64)
		if old, ok := sr.oldest(i); ok {
			start = old * int64(t.Step)
		}
		if start <= fromNS {
			tier = i
			break
		}
		if tier < 0 || start < reach {
			tier, reach = i, start
		}
	}
	if tier < 0 {
		return Grid{}, fmt.Errorf("%w: step %v is not a multiple of any tier's step", ErrBadRange, step)
	}
	first := floorDiv(fromNS, int64(step))
	end := floorDiv(toNS+int64(step)-1, int64(step)) // first bucket starting at or after to
	if toNS == fromNS {
		end = first
	}
	n := end - first
	if n < 0 {
		n = 0
	}
	if n > maxGridPoints {
		return Grid{}, fmt.Errorf("%w: %d points, at most %d", ErrBadRange, n, maxGridPoints)
	}
	g := Grid{
		Key:   key,
		Start: fromUnixNano(first * int64(step)),
		Step:  step,
		Tier:  tier,
		Mean:  make([]float64, n),
		Min:   make([]float64, n),
		Max:   make([]float64, n),
		Count: make([]uint32, n),
	}
	ratio := int64(step / sr.layout.tiers[tier].Step)
	for i := int64(0); i < n; i++ {
		var sum, lo, hi float64
		var cnt uint64
		base := (first + i) * ratio
		for j := int64(0); j < ratio; j++ {
			b := sr.get(tier, base+j)
			if b.count == 0 {
				continue
			}
			if cnt == 0 || float64(b.min) < lo {
				lo = float64(b.min)
			}
			if cnt == 0 || float64(b.max) > hi {
				hi = float64(b.max)
			}
			sum += float64(float64(b.mean) * float64(b.count))
			cnt += uint64(b.count)
		}
		if cnt == 0 {
			g.Mean[i], g.Min[i], g.Max[i] = math.NaN(), math.NaN(), math.NaN()
			continue
		}
		g.Mean[i], g.Min[i], g.Max[i] = sum/float64(cnt), lo, hi
		g.Count[i] = uint32(min(cnt, math.MaxUint32))
	}
	return g, nil
}
