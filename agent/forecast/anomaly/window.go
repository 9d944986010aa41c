package anomaly

import (
	"math"
	"slices"
)

// sortedWindow keeps the last n values both in arrival order and sorted,
// for rolling medians, MADs, quantiles and ranks. The sorted values are
// one ascending array, brought up to date in batches: the values added
// and dropped since are held aside (at most mergeBatch of each) and
// merged in one pass over the array when an order statistic is asked for
// or the batch is full. A rank counts the batch's values as it goes, so
// it never waits for a merge. A window touches its memory in order, a
// batch at a time, rather than searching it at every update: across many
// series, most of what a window holds is out of the cache by the time
// its series' next value comes.
type sortedWindow struct {
	fifo []float64
	head int
	size int
	// sorted holds the values as of the last merge, ascending; adds are
	// the values added since and dels those dropped from sorted since.
	sorted     []float64
	adds, dels []float64
	// refresh > 1 lets Median and MAD be up to refresh-1 updates old: a
	// window's robust scale moves slowly, and recomputing it at every
	// point is most of a detector's cost.
	refresh, updates, cachedAt int
	med, mad                   float64
}

// mergeBatch is how many added (or dropped) values a window holds aside
// before it merges them into its sorted values.
const mergeBatch = 64

func newSortedWindow(n int) *sortedWindow {
	return &sortedWindow{fifo: make([]float64, n), cachedAt: -1}
}

// newScaleWindow is a sortedWindow whose Median and MAD are recomputed
// every n/128 updates (exactly for windows under 256 values): a scale no
// more than 1% of the window old.
func newScaleWindow(n int) *sortedWindow {
	w := newSortedWindow(n)
	w.refresh = n / 128
	return w
}

// Len is the number of values held.
func (s *sortedWindow) Len() int { return s.size }

// Add inserts v, evicting the oldest value when full. NaN is ignored.
func (s *sortedWindow) Add(v float64) {
	if math.IsNaN(v) {
		return
	}
	s.updates++
	if s.size == len(s.fifo) {
		s.drop(s.fifo[s.head])
		s.fifo[s.head] = v
		s.head = (s.head + 1) % len(s.fifo)
	} else {
		s.fifo[(s.head+s.size)%len(s.fifo)] = v
		s.size++
	}
	if s.adds == nil {
		s.adds = make([]float64, 0, mergeBatch)
		s.dels = make([]float64, 0, mergeBatch)
		s.sorted = make([]float64, 0, len(s.fifo))
	}
	s.adds = append(s.adds, v)
	if len(s.adds) == mergeBatch {
		s.merge()
	}
}

// drop takes out v, a value held.
func (s *sortedWindow) drop(v float64) {
	for i, a := range s.adds {
		if a == v {
			last := len(s.adds) - 1
			s.adds[i] = s.adds[last]
			s.adds = s.adds[:last]
			return
		}
	}
	s.dels = append(s.dels, v)
	if len(s.dels) == mergeBatch {
		s.merge()
	}
}

// merge brings the sorted values up to date: the dropped values leave,
// then the added ones come in, each found by a search and the values
// between them moved along in whole runs.
func (s *sortedWindow) merge() {
	if len(s.dels) > 0 {
		slices.Sort(s.dels)
		a := s.sorted
		r, w := 0, 0 // a[:w] is kept; a[r:] is still to look at
		for _, d := range s.dels {
			p := r + lowerBound(a[r:], d)
			if p == len(a) || a[p] != d {
				continue // not held: cannot happen
			}
			if w != r {
				copy(a[w:], a[r:p])
			}
			w += p - r
			r = p + 1
		}
		if w != r {
			copy(a[w:], a[r:])
		}
		s.sorted = a[:w+len(a)-r]
		s.dels = s.dels[:0]
	}
	if len(s.adds) > 0 {
		slices.Sort(s.adds)
		n, m := len(s.sorted), len(s.adds)
		a := s.sorted[:n+m]
		end := n // a[:end] is still to merge
		for j := m - 1; j >= 0; j-- {
			v := s.adds[j]
			// After the values equal to it: the first above it.
			p := upperBound(a[:end], v)
			copy(a[p+j+1:end+j+1], a[p:end])
			a[p+j] = v
			end = p
		}
		s.sorted = a
		s.adds = s.adds[:0]
	}
}

// lowerBound is how many values of the ascending a are below v
// (sort.SearchFloat64s, without its call per probe).
func lowerBound(a []float64, v float64) int {
	lo, hi := 0, len(a)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// upperBound is how many values of the ascending a are at most v.
func upperBound(a []float64, v float64) int {
	lo, hi := 0, len(a)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// At returns the i-th smallest value held (0-based).
func (s *sortedWindow) At(i int) float64 {
	if i < 0 || i >= s.size {
		return math.NaN()
	}
	s.merge()
	return s.sorted[i]
}

// Less returns how many values held are below x.
func (s *sortedWindow) Less(x float64) int {
	n := lowerBound(s.sorted, x)
	for _, v := range s.adds {
		if v < x {
			n++
		}
	}
	for _, v := range s.dels {
		if v < x {
			n--
		}
	}
	return n
}

// Median of the values held (NaN when empty).
func (s *sortedWindow) Median() float64 {
	s.cache()
	return s.med
}

// MAD is the median absolute deviation from the median (NaN when empty).
func (s *sortedWindow) MAD() float64 {
	s.cache()
	return s.mad
}

// cache recomputes the median and the MAD when they are older than
// refresh allows.
func (s *sortedWindow) cache() {
	if s.cachedAt >= 0 && s.updates-s.cachedAt < max(s.refresh, 1) {
		return
	}
	s.med = s.median()
	s.mad = s.computeMAD(s.med)
	s.cachedAt = s.updates
}

func (s *sortedWindow) median() float64 {
	n := s.size
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s.At(n / 2)
	}
	return (s.At(n/2-1) + s.At(n/2)) / 2
}

// computeMAD is the median absolute deviation from the median m. The
// distances from the median below it (walking down) and above it (walking
// up) are two ascending sequences, so the middle distance is a rank
// selection in two sorted sequences.
func (s *sortedWindow) computeMAD(m float64) float64 {
	n := s.size
	if n == 0 {
		return math.NaN()
	}
	hi := s.Less(m) // values from hi on are >= m
	lo := hi - 1    // values up to lo are < m
	below := func(i int) float64 { return m - s.At(lo-i) }
	above := func(j int) float64 { return s.At(hi+j) - m }
	nb, na := lo+1, n-hi
	k := n / 2
	if n%2 == 1 {
		return rankOfUnion(below, nb, above, na, k)
	}
	return (rankOfUnion(below, nb, above, na, k-1) + rankOfUnion(below, nb, above, na, k)) / 2
}

// sortedInsert inserts v into the ascending slice a, before the values
// equal to it. It walks down from the end, moving each larger value up
// one, rather than searching: a block is small, and walking it in order
// is cheaper than searching it when it is not in the cache.
func sortedInsert(a []float64, v float64) []float64 {
	a = append(a, 0)
	i := len(a) - 1
	for ; i > 0 && a[i-1] >= v; i-- {
		a[i] = a[i-1]
	}
	a[i] = v
	return a
}

// sortedRemove removes from the ascending slice a the first value not
// below v, when it equals v.
func sortedRemove(a []float64, v float64) []float64 {
	i := 0
	for i < len(a) && a[i] < v {
		i++
	}
	if i < len(a) && a[i] == v {
		a = append(a[:i], a[i+1:]...)
	}
	return a
}
