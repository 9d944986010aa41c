package state

import (
	"math"
	"time"
)

// bucket is one aggregated point of a tier: the mean, minimum and maximum of
// the samples that fell into it and how many there were. float32 keeps a
// bucket at 16 bytes; its 24-bit mantissa is far finer than anything a
// forecast of CPU, memory or IOPS can use. count == 0 means empty.
type bucket struct {
	mean  float32
	min   float32
	max   float32
	count uint32
}

// fold adds one sample to the bucket. The running mean is updated in float64
// and rounded once; the explicit conversions stop the compiler from fusing
// operations, which could round differently on another architecture.
func (b *bucket) fold(v float64) {
	f := float32(v)
	if b.count == 0 {
		*b = bucket{mean: f, min: f, max: f, count: 1}
		return
	}
	n := b.count
	if n < math.MaxUint32 {
		n++
	}
	m := float64(b.mean)
	d := float64(v-m) / float64(n)
	b.mean = float32(m + d)
	b.count = n
	if f < b.min {
		b.min = f
	}
	if f > b.max {
		b.max = f
	}
}

// tierHead says which bucket of a tier's ring is the newest. Bucket numbers
// are floor(unix nanoseconds / step); the ring holds buckets
// head-points+1 … head, bucket b at index b mod points.
type tierHead struct {
	head int64
	used bool
}

// series is one series' whole state. Once a snapshot has captured a series
// it is immutable: the store copies it before the next change (see gen).
type series struct {
	key Key
	// gen is the store generation this copy belongs to; a copy older than
	// the store's generation may be shared with a snapshot and must be
	// cloned before it is changed.
	gen uint64

	lastSample int64 // unix ns of the newest sample; valid when hasSample
	hasSample  bool
	step       int64 // step of the batch that brought the newest sample, ns

	stale       bool
	staleSince  int64 // unix ns
	staleReason string

	heads   []tierHead // one per tier
	buckets []bucket   // every tier's ring, back to back
}

func newSeries(key Key, l *layout, gen uint64) *series {
	return &series{
		key:     key,
		gen:     gen,
		heads:   make([]tierHead, len(l.tiers)),
		buckets: make([]bucket, l.total),
	}
}

func (s *series) clone(gen uint64) *series {
	c := *s
	c.gen = gen
	c.heads = append([]tierHead(nil), s.heads...)
	c.buckets = append([]bucket(nil), s.buckets...)
	return &c
}

// ring returns tier i's buckets.
func (s *series) ring(l *layout, i int) []bucket {
	return s.buckets[l.offsets[i] : l.offsets[i]+l.tiers[i].Points]
}

// add folds the sample (t in unix ns, v) into every tier and reports whether
// at least one tier kept it. A sample older than a tier's ring is dropped by
// that tier only; a sample newer than the head advances the head and empties
// the buckets it skips.
func (s *series) add(l *layout, t int64, v float64) bool {
	kept := false
	for i := range l.tiers {
		step := int64(l.tiers[i].Step)
		n := int64(l.tiers[i].Points)
		ring := s.ring(l, i)
		b := floorDiv(t, step)
		h := &s.heads[i]
		switch {
		case !h.used:
			h.used, h.head = true, b
		case b > h.head:
			if b-h.head >= n {
				clear(ring)
			} else {
				for j := h.head + 1; j <= b; j++ {
					ring[mod(j, n)] = bucket{}
				}
			}
			h.head = b
		case b <= h.head-n:
			continue
		}
		ring[mod(b, n)].fold(v)
		kept = true
	}
	if kept {
		if !s.hasSample || t > s.lastSample {
			s.lastSample, s.hasSample = t, true
		}
		if s.stale && t > s.staleSince {
			s.stale, s.staleSince, s.staleReason = false, 0, ""
		}
	}
	return kept
}

// get returns tier i's bucket number b, or an empty bucket when b is not in
// the ring.
func (s *series) get(l *layout, i int, b int64) bucket {
	h := s.heads[i]
	n := int64(l.tiers[i].Points)
	if !h.used || b > h.head || b <= h.head-n {
		return bucket{}
	}
	return s.ring(l, i)[mod(b, n)]
}

// oldest returns the first bucket number tier i still holds, and false when
// the tier is empty.
func (s *series) oldest(l *layout, i int) (int64, bool) {
	h := s.heads[i]
	if !h.used {
		return 0, false
	}
	return h.head - int64(l.tiers[i].Points) + 1, true
}

// layout is a validated Config's tiers with each ring's offset into
// series.buckets.
type layout struct {
	tiers   []Tier
	offsets []int
	total   int
}

func newLayout(tiers []Tier) *layout {
	l := &layout{tiers: append([]Tier(nil), tiers...), offsets: make([]int, len(tiers))}
	for i, t := range tiers {
		l.offsets[i] = l.total
		l.total += t.Points
	}
	return l
}

func (l *layout) equal(tiers []Tier) bool {
	if len(tiers) != len(l.tiers) {
		return false
	}
	for i := range tiers {
		if tiers[i] != l.tiers[i] {
			return false
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// unixNano converts t for commands; the zero time maps to 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano converts back, in UTC so every node renders times alike.
func fromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }
