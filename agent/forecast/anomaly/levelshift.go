package anomaly

import (
	"math"
	"sort"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// Level-shift detection.
//
// A level shift is a lasting change of a series' level: a deploy that doubles
// a service's CPU, a node pool that loses half its members. It differs from a
// spike (a few points away from the level, which then comes back) and from a
// trend (a slow drift). Both detectors here use the same statistic, the
// difference between the median of the w points after a candidate change
// point and the median of the w points before it. Medians make the statistic
// blind to spikes shorter than w/2 points; normalising it by its own robust
// spread over the series makes it blind to the ordinary hour-to-hour movement
// of a seasonal series, so that only changes that are large compared with
// what the series usually does are reported.

// LevelShiftOptions tune level-shift detection. The zero value means the
// defaults.
type LevelShiftOptions struct {
	// Window is the number of points on each side of a candidate change
	// point (default 12: one hour of 5-minute data).
	Window int
	// Threshold is how many robust standard deviations of the two-window
	// median difference a change must exceed (default 6).
	Threshold float64
}

// Defaults for LevelShiftOptions.
const (
	DefaultLevelShiftWindow    = 12
	DefaultLevelShiftThreshold = 6.0
)

func (o LevelShiftOptions) window() int {
	if o.Window < 2 {
		return DefaultLevelShiftWindow
	}
	return o.Window
}

func (o LevelShiftOptions) threshold() float64 {
	if o.Threshold <= 0 {
		return DefaultLevelShiftThreshold
	}
	return o.Threshold
}

// LevelShifts returns the indices where a level shift starts in y (the first
// point at the new level), in ascending order, using the default options.
// NaN and infinite values are ignored. Shifts are at least one window
// apart; a series shorter than two windows has none.
//
// It looks at the whole series (each candidate sees the points after it), so
// it suits model fitting, where the history is complete: a model should
// fit only the history after the last shift, or weight it down. For online
// detection use LevelShiftDetector.
func LevelShifts(y []float64) []int {
	return LevelShiftsWith(y, LevelShiftOptions{})
}

// LevelShiftsWith is LevelShifts with explicit options.
func LevelShiftsWith(y []float64, opts LevelShiftOptions) []int {
	w, k := opts.window(), opts.threshold()
	n := len(y)
	if n < 2*w {
		return nil
	}
	for i, v := range y {
		if math.IsInf(v, 0) {
			// Infinities are missing values, like NaN.
			y = append([]float64(nil), y...)
			for j := i; j < n; j++ {
				if math.IsInf(y[j], 0) {
					y[j] = math.NaN()
				}
			}
			break
		}
	}
	// d[t] = median(y[t:t+w]) - median(y[t-w:t]), for t in [w, n-w].
	d := make([]float64, n+1)
	for i := range d {
		d[i] = math.NaN()
	}
	buf := make([]float64, 0, 2*w)
	m := rollingMedians(y, w)
	for t := w; t <= n-w; t++ {
		d[t] = m[t] - m[t-w]
	}
	scale := levelShiftScale(y, d[w:n-w+1], w)
	center := medianOf(d[w : n-w+1])
	if math.IsNaN(center) {
		return nil
	}

	var shifts []int
	for t := w; t <= n-w; t++ {
		if math.IsNaN(d[t]) {
			continue
		}
		z := math.Abs(d[t]-center) / scale
		if z <= k {
			continue
		}
		// Keep only the peak of |d - center| within ±w: a step at s makes
		// |d| rise linearly from s-w to s and fall back by s+w.
		peak := true
		for j := max(w, t-w); j <= min(n-w, t+w); j++ {
			if j == t || math.IsNaN(d[j]) {
				continue
			}
			dj := math.Abs(d[j] - center)
			if dj > math.Abs(d[t]-center) || (dj == math.Abs(d[t]-center) && j < t) {
				peak = false
				break
			}
		}
		if !peak {
			continue
		}
		if len(shifts) > 0 && t-shifts[len(shifts)-1] < w {
			continue
		}
		shifts = append(shifts, t-w+levelShiftSplit(y[t-w:min(n, t+w)], buf))
	}
	return shifts
}

// rollingMedians returns m with m[t] = the median of the non-NaN values
// of y[t:t+w] (NaN when fewer than half are present), for t in [0, n−w],
// keeping the window sorted as it slides instead of sorting each one.
func rollingMedians(y []float64, w int) []float64 {
	n := len(y)
	if n < w {
		return nil
	}
	out := make([]float64, n-w+1)
	win := make([]float64, 0, w)
	for i, v := range y {
		if !math.IsNaN(v) {
			win = sortedInsert(win, v)
		}
		if i >= w && !math.IsNaN(y[i-w]) {
			win = sortedRemove(win, y[i-w])
		}
		if i >= w-1 {
			if len(win)*2 < w {
				out[i-w+1] = math.NaN()
			} else {
				out[i-w+1] = sortedMedian(win)
			}
		}
	}
	return out
}

// levelShiftSplit returns the split c (1 <= c < len(x)) that best separates
// x into two constant levels in the L1 sense: the sum of absolute deviations
// of x[:c] from its median plus those of x[c:] from its median is least.
// Ties go to the split nearest the middle. NaN values are ignored.
func levelShiftSplit(x, buf []float64) int {
	best, bestCost := len(x)/2, math.Inf(1)
	mid := float64(len(x)) / 2
	for c := 1; c < len(x); c++ {
		cost := l1Cost(x[:c], buf) + l1Cost(x[c:], buf)
		if cost < bestCost-1e-12 || (math.Abs(cost-bestCost) <= 1e-12 && math.Abs(float64(c)-mid) < math.Abs(float64(best)-mid)) {
			best, bestCost = c, cost
		}
	}
	return best
}

// l1Cost is the sum of absolute deviations of x from its median.
func l1Cost(x, buf []float64) float64 {
	m := windowMedian(x, buf[:0])
	if math.IsNaN(m) {
		return 0
	}
	var s float64
	for _, v := range x {
		if !math.IsNaN(v) {
			s += math.Abs(v - m)
		}
	}
	return s
}

// levelShiftScale is the robust spread of the two-window median differences
// d, floored by what white noise of the series' point-to-point scale would
// give, so that a series which is flat most of the time (MAD of d zero) still
// needs a change larger than its noise.
func levelShiftScale(y, d []float64, w int) float64 {
	spread := 1.4826 * madOf(d)
	diffs := make([]float64, 0, len(y))
	for i := 1; i < len(y); i++ {
		if !math.IsNaN(y[i]) && !math.IsNaN(y[i-1]) {
			diffs = append(diffs, y[i]-y[i-1])
		}
	}
	noise := 1.4826 * madOf(diffs) / math.Sqrt2
	// The median of w normal points has a standard error of about
	// sqrt(pi/2)·sigma/sqrt(w); the difference of two such medians
	// sqrt(pi/w)·sigma.
	floor := math.Sqrt(math.Pi/float64(w)) * noise
	scale := math.Max(spread, floor)
	if math.IsNaN(scale) || scale <= 0 {
		// A series that is exactly piecewise constant: any change counts.
		scale = 1e-9 * math.Max(1, math.Abs(medianOf(y)))
		if math.IsNaN(scale) {
			scale = 1e-9
		}
	}
	return scale
}

// LevelShiftDetector detects level shifts online: each new point is tested
// against the points before it only. A shift that starts at index s is
// reported when the statistic over the last 2w points crosses the
// threshold, which for a clear shift happens after about w/2 and at most w
// points at the new level; Start is then estimated as the best split of
// those 2w points. After a report the detector waits 2w points and for the
// statistic to fall back below the threshold before it reports again.
type LevelShiftDetector struct {
	w, k  float64
	win   int
	hist  *ring // the last 2w points
	diffs *sortedWindow
	noise *sortedWindow
	prev  float64
	n     int
	quiet int  // points left before another shift may be reported
	armed bool // false after a shift until the statistic falls below the threshold
	buf   []float64
	// left and right hold the older and newer w of the last 2w points,
	// sorted.
	left, right []float64
}

// LevelShiftEvent is one shift found by LevelShiftDetector.
type LevelShiftEvent struct {
	// Start is the index of the first point at the new level.
	Start int
	// Z is the size of the change in robust standard deviations.
	Z float64
	// Delta is the change of level (new minus old median).
	Delta float64
}

// levelShiftMemory is how many past two-window differences set the scale
// of the online detector (one week of 5-minute data).
const levelShiftMemory = 2016

// NewLevelShiftDetector returns an online level-shift detector.
func NewLevelShiftDetector(opts LevelShiftOptions) *LevelShiftDetector {
	w := opts.window()
	return &LevelShiftDetector{
		win:   w,
		w:     float64(w),
		k:     opts.threshold(),
		hist:  newRing(2 * w),
		diffs: newScaleWindow(levelShiftMemory),
		noise: newScaleWindow(levelShiftMemory),
		prev:  math.NaN(),
		buf:   make([]float64, 0, 2*w),
		armed: true,
		left:  make([]float64, 0, w),
		right: make([]float64, 0, w+1),
	}
}

// Push adds the next point and returns the current shift statistic z (0 until
// enough history is seen) and, when a shift is confirmed at this point, the
// event. NaN and infinite points are skipped (they do not advance the
// windows) but count as indices.
func (d *LevelShiftDetector) Push(y float64) (z float64, ev *LevelShiftEvent) {
	idx := d.n
	d.n++
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return 0, nil
	}
	if !math.IsNaN(d.prev) {
		d.noise.Add(y - d.prev)
	}
	d.prev = y
	// Slide the two sorted halves: the oldest point leaves the left half,
	// the oldest of the right half moves left, the new point enters right.
	if m := d.hist.Len(); m == 2*d.win {
		d.left = sortedRemove(d.left, d.hist.ValueAt(0))
		mv := d.hist.ValueAt(d.win)
		d.right = sortedRemove(d.right, mv)
		d.left = sortedInsert(d.left, mv)
	} else if m >= d.win {
		mv := d.hist.ValueAt(m - d.win)
		d.right = sortedRemove(d.right, mv)
		d.left = sortedInsert(d.left, mv)
	}
	d.right = sortedInsert(d.right, y)
	d.hist.Push(y, idx)
	if d.quiet > 0 {
		d.quiet--
	}
	if d.hist.Len() < 2*d.win {
		return 0, nil
	}
	left := sortedMedian(d.left)
	right := sortedMedian(d.right)
	diff := right - left
	// Score against the history of differences before this one, so a shift
	// does not inflate its own yardstick.
	z = 0
	if d.diffs.Len() >= 4*d.win {
		spread := 1.4826 * d.diffs.MAD()
		floor := math.Sqrt(math.Pi/d.w) * 1.4826 * d.noise.MAD() / math.Sqrt2
		scale := math.Max(spread, floor)
		if scale <= 0 || math.IsNaN(scale) {
			scale = 1e-9 * math.Max(1, math.Abs(left))
		}
		z = math.Abs(diff-d.diffs.Median()) / scale
	}
	d.diffs.Add(diff)
	if z <= d.k && d.quiet == 0 {
		d.armed = true
	}
	if z > d.k && d.armed && d.quiet == 0 {
		// The statistic crosses the threshold before the right window is
		// all at the new level: place the start at the best split of the
		// 2w points held, and measure the change there.
		vals := d.hist.Values()
		c := levelShiftSplit(vals, d.buf)
		start := d.hist.IndexAt(c)
		delta := windowMedian(vals[c:], d.buf) - windowMedian(vals[:c], d.buf)
		d.quiet = 2 * d.win
		d.armed = false
		return z, &LevelShiftEvent{Start: start, Z: z, Delta: delta}
	}
	return z, nil
}

// ring is a fixed-size FIFO of the last points with their indices.
type ring struct {
	vals []float64
	idxs []int
	head int
	size int
	out  []float64
}

func newRing(n int) *ring {
	return &ring{vals: make([]float64, n), idxs: make([]int, n), out: make([]float64, n)}
}

func (r *ring) Push(v float64, idx int) {
	r.vals[r.head] = v
	r.idxs[r.head] = idx
	r.head = (r.head + 1) % len(r.vals)
	if r.size < len(r.vals) {
		r.size++
	}
}

func (r *ring) Len() int { return r.size }

// Values returns the points oldest first; the slice is reused by the next call.
func (r *ring) Values() []float64 {
	out := r.out[:r.size]
	start := (r.head - r.size + len(r.vals)) % len(r.vals)
	for i := range out {
		out[i] = r.vals[(start+i)%len(r.vals)]
	}
	return out
}

// ValueAt returns the i-th oldest point held.
func (r *ring) ValueAt(i int) float64 {
	start := (r.head - r.size + len(r.vals)) % len(r.vals)
	return r.vals[(start+i)%len(r.vals)]
}

// IndexAt returns the index of the i-th oldest point held.
func (r *ring) IndexAt(i int) int {
	start := (r.head - r.size + len(r.vals)) % len(r.vals)
	return r.idxs[(start+i)%len(r.vals)]
}

// sortedMedian is the median of an ascending slice.
func sortedMedian(a []float64) float64 {
	n := len(a)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return a[n/2]
	}
	return (a[n/2-1] + a[n/2]) / 2
}

// sortedMAD is the median absolute deviation of an ascending slice.
// The distances from the median below it (walking down) and above it
// (walking up) are two ascending sequences, so the middle distance is a
// rank selection in two sorted sequences: O(log n), without allocating.
func sortedMAD(a []float64) float64 {
	n := len(a)
	if n == 0 {
		return math.NaN()
	}
	m := sortedMedian(a)
	hi := sort.SearchFloat64s(a, m) // a[hi:] are >= m
	lo := hi - 1                    // a[:lo+1] are < m
	below := func(i int) float64 { return m - a[lo-i] }
	above := func(j int) float64 { return a[hi+j] - m }
	nb, na := lo+1, n-hi
	k := n / 2
	if n%2 == 1 {
		return rankOfUnion(below, nb, above, na, k)
	}
	return (rankOfUnion(below, nb, above, na, k-1) + rankOfUnion(below, nb, above, na, k)) / 2
}

// rankOfUnion returns the element of rank k (0-based) of the union of two
// ascending sequences x (length nx) and y (length ny).
func rankOfUnion(x func(int) float64, nx int, y func(int) float64, ny int, k int) float64 {
	// Take i elements from x and j = k+1-i from y so that they are the
	// k+1 smallest; the answer is the largest of them.
	lo, hi := max(0, k+1-ny), min(k+1, nx)
	for lo <= hi {
		i := (lo + hi) / 2
		j := k + 1 - i
		switch {
		case i > 0 && j < ny && x(i-1) > y(j):
			hi = i - 1
		case j > 0 && i < nx && y(j-1) > x(i):
			lo = i + 1
		default:
			switch {
			case i == 0:
				return y(j - 1)
			case j == 0:
				return x(i - 1)
			}
			return math.Max(x(i-1), y(j-1))
		}
	}
	return math.NaN() // unreachable for 0 <= k < nx+ny
}

// medianOf is the median of the non-NaN values of x (NaN when none); x is
// not modified.
//
// Both find their order statistics by selection: the same values to the
// bit as sorting (sortedMedian, sortedMAD), which they fall back on when
// x holds a -0 (num.HasNegativeZero).
func medianOf(x []float64) float64 {
	a := finiteValues(x)
	if len(a) == 0 || num.HasNegativeZero(a) {
		sort.Float64s(a)
		return sortedMedian(a)
	}
	return num.Median(a)
}

// madOf is the median absolute deviation of the non-NaN values of x. The
// distances to the median are |v − m|, which for v below m is m − v to
// the bit, as sortedMAD computes them.
func madOf(x []float64) float64 {
	a := finiteValues(x)
	if len(a) == 0 || num.HasNegativeZero(a) {
		sort.Float64s(a)
		return sortedMAD(a)
	}
	m := num.Median(a)
	for i, v := range a {
		a[i] = math.Abs(v - m)
	}
	return num.Median(a)
}

func finiteValues(x []float64) []float64 {
	a := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			a = append(a, v)
		}
	}
	return a
}

// windowMedian is the median of the non-NaN values of x using buf as
// scratch space; NaN when fewer than half the values are present.
func windowMedian(x, buf []float64) float64 {
	buf = buf[:0]
	for _, v := range x {
		if !math.IsNaN(v) {
			buf = append(buf, v)
		}
	}
	if len(buf)*2 < len(x) {
		return math.NaN()
	}
	sort.Float64s(buf)
	return sortedMedian(buf)
}
