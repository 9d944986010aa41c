package anomaly

import (
	"math"
	"sort"
)

// sortedWindow keeps the last n values both in arrival order and sorted,
// for rolling medians, MADs, quantiles and ranks. The sorted values are
// held in blocks of at most 2·blockSize, each sorted and in order, so an
// update moves O(blockSize + n/blockSize) values rather than O(n), and a
// rank or an order statistic costs O(n/blockSize + log blockSize).
type sortedWindow struct {
	fifo   []float64
	head   int
	size   int
	blocks [][]float64
	// before[i] counts the values in the blocks before block i; valid
	// while counted is true (an update clears it).
	before  []int
	counted bool
	// refresh > 1 lets Median and MAD be up to refresh-1 updates old: a
	// window's robust scale moves slowly, and recomputing it at every
	// point is most of a detector's cost.
	refresh, updates, cachedAt int
	med, mad                   float64
}

// blockSize is the size sorted blocks are split back to.
const blockSize = 64

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
	s.counted = false
	s.updates++
	if s.size == len(s.fifo) {
		s.remove(s.fifo[s.head])
		s.fifo[s.head] = v
		s.head = (s.head + 1) % len(s.fifo)
	} else {
		s.fifo[(s.head+s.size)%len(s.fifo)] = v
		s.size++
	}
	s.insert(v)
}

// blockFor is the index of the first block whose largest value is at
// least v (len(blocks) when none is).
func (s *sortedWindow) blockFor(v float64) int {
	return sort.Search(len(s.blocks), func(i int) bool {
		b := s.blocks[i]
		return b[len(b)-1] >= v
	})
}

func (s *sortedWindow) insert(v float64) {
	if len(s.blocks) == 0 {
		s.blocks = append(s.blocks, append(make([]float64, 0, 2*blockSize+1), v))
		return
	}
	b := min(s.blockFor(v), len(s.blocks)-1)
	s.blocks[b] = sortedInsert(s.blocks[b], v)
	if blk := s.blocks[b]; len(blk) > 2*blockSize {
		right := make([]float64, blockSize, 2*blockSize+1)
		copy(right, blk[len(blk)-blockSize:])
		s.blocks[b] = blk[:len(blk)-blockSize]
		s.blocks = append(s.blocks, nil)
		copy(s.blocks[b+2:], s.blocks[b+1:])
		s.blocks[b+1] = right
	}
}

func (s *sortedWindow) remove(v float64) {
	b := s.blockFor(v)
	if b == len(s.blocks) {
		return
	}
	s.blocks[b] = sortedRemove(s.blocks[b], v)
	if len(s.blocks[b]) == 0 {
		s.blocks = append(s.blocks[:b], s.blocks[b+1:]...)
	}
}

// At returns the i-th smallest value held (0-based).
func (s *sortedWindow) At(i int) float64 {
	if i < 0 || i >= s.size {
		return math.NaN()
	}
	if !s.counted {
		s.before = s.before[:0]
		n := 0
		for _, b := range s.blocks {
			s.before = append(s.before, n)
			n += len(b)
		}
		s.counted = true
	}
	b := sort.Search(len(s.before), func(k int) bool { return s.before[k] > i }) - 1
	return s.blocks[b][i-s.before[b]]
}

// Less returns how many values held are below x.
func (s *sortedWindow) Less(x float64) int {
	n := 0
	for _, b := range s.blocks {
		if b[len(b)-1] < x {
			n += len(b)
			continue
		}
		return n + sort.SearchFloat64s(b, x)
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

// sortedInsert inserts v into the ascending slice a.
func sortedInsert(a []float64, v float64) []float64 {
	i := sort.SearchFloat64s(a, v)
	a = append(a, 0)
	copy(a[i+1:], a[i:])
	a[i] = v
	return a
}

// sortedRemove removes one copy of v from the ascending slice a.
func sortedRemove(a []float64, v float64) []float64 {
	i := sort.SearchFloat64s(a, v)
	if i < len(a) && a[i] == v {
		a = append(a[:i], a[i+1:]...)
	}
	return a
}
