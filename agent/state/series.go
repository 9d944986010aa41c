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

// pageBuckets is the number of buckets in a page: 64 buckets are 1 KiB,
// exactly one of Go's allocation size classes.
const pageBuckets = 64

// page is the unit of copy-on-write: after a snapshot captures a series, the
// first change to a page copies that page only.
type page [pageBuckets]bucket

// series is one series' whole state. Once a snapshot has captured a series
// it is immutable: the store copies its header before the next change (see
// gen), and the header copies each page before changing it (see owned).
type series struct {
	key Key
	// layout is the tiers of the series' profile, chosen from its key when
	// it is created; shared, never changed.
	layout *layout
	// gen is the store generation this header belongs to; a header older
	// than the store's generation may be shared with a snapshot and must be
	// cloned before it is changed.
	gen uint64

	lastSample int64 // unix ns of the newest sample; valid when hasSample
	hasSample  bool
	step       int64 // step of the batch that brought the newest sample, ns

	stale       bool
	staleSince  int64 // unix ns
	staleReason string

	heads []tierHead // one per tier
	// pages hold every tier's ring back to back: tier i's bucket j is at
	// position layout.offsets[i]+j.
	pages []*page
	// owned has bit p set when pages[p] belongs to this header alone and
	// may be written in place.
	owned []uint64
}

func newSeries(key Key, l *layout, gen uint64) *series {
	np := (l.total + pageBuckets - 1) / pageBuckets
	s := &series{
		key:    key,
		layout: l,
		gen:    gen,
		heads:  make([]tierHead, len(l.tiers)),
		pages:  make([]*page, np),
		owned:  make([]uint64, (np+63)/64),
	}
	for i := range s.owned {
		s.owned[i] = ^uint64(0)
	}
	return s
}

// clone returns a header for generation gen sharing every page with s.
func (s *series) clone(gen uint64) *series {
	c := *s
	c.gen = gen
	c.heads = append([]tierHead(nil), s.heads...)
	c.pages = append([]*page(nil), s.pages...)
	c.owned = make([]uint64, len(s.owned))
	return &c
}

// at returns the bucket at position pos; a page never written is empty.
func (s *series) at(pos int) bucket {
	pg := s.pages[pos/pageBuckets]
	if pg == nil {
		return bucket{}
	}
	return pg[pos%pageBuckets]
}

// appendRing appends tier i's ring, in ring order, to dst.
func (s *series) appendRing(dst []bucket, i int) []bucket {
	l := s.layout
	var empty page
	for pos, end := l.offsets[i], l.offsets[i]+l.tiers[i].Points; pos < end; {
		pg := s.pages[pos/pageBuckets]
		if pg == nil {
			pg = &empty
		}
		k := pos % pageBuckets
		m := min(pageBuckets-k, end-pos)
		dst = append(dst, pg[k:k+m]...)
		pos += m
	}
	return dst
}

// ptr returns the bucket at position pos for writing, allocating its page on
// first use and copying it first when it may be shared.
func (s *series) ptr(pos int) *bucket {
	p := pos / pageBuckets
	w, bit := p/64, uint64(1)<<(p%64)
	switch {
	case s.pages[p] == nil:
		s.pages[p] = new(page)
		s.owned[w] |= bit
	case s.owned[w]&bit == 0:
		cp := *s.pages[p]
		s.pages[p] = &cp
		s.owned[w] |= bit
	}
	return &s.pages[p][pos%pageBuckets]
}

// pos returns the position of tier i's bucket number b.
func (l *layout) pos(i int, b int64) int {
	return l.offsets[i] + int(mod(b, int64(l.tiers[i].Points)))
}

// add folds the sample (t in unix ns, v) into every tier and reports whether
// at least one tier kept it. A sample older than a tier's ring is dropped by
// that tier only; a sample newer than the head advances the head and empties
// the buckets it skips.
func (s *series) add(t int64, v float64) bool {
	l := s.layout
	kept := false
	for i := range l.tiers {
		step := int64(l.tiers[i].Step)
		n := int64(l.tiers[i].Points)
		b := floorDiv(t, step)
		h := &s.heads[i]
		switch {
		case !h.used:
			h.used, h.head = true, b
		case b > h.head:
			from := h.head + 1
			if b-h.head >= n {
				from = b - n + 1
			}
			for j := from; j <= b; j++ {
				if p := l.pos(i, j); s.at(p).count != 0 {
					*s.ptr(p) = bucket{}
				}
			}
			h.head = b
		case b <= h.head-n:
			continue
		}
		s.ptr(l.pos(i, b)).fold(v)
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
func (s *series) get(i int, b int64) bucket {
	l := s.layout
	h := s.heads[i]
	n := int64(l.tiers[i].Points)
	if !h.used || b > h.head || b <= h.head-n {
		return bucket{}
	}
	return s.at(l.pos(i, b))
}

// oldest returns the first bucket number tier i still holds, and false when
// the tier is empty.
func (s *series) oldest(i int) (int64, bool) {
	l := s.layout
	h := s.heads[i]
	if !h.used {
		return 0, false
	}
	return h.head - int64(l.tiers[i].Points) + 1, true
}

// layout is one validated tier list (the default tiers or a profile's) with
// each ring's offset into the positions of series.pages.
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
