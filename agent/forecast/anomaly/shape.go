package anomaly

import "math"

// ShapeOptions tune the shape statistic: how unlike its nearest past
// shapes the series' latest stretch is. The zero value means the defaults,
// which were chosen on the tuning part of the NAB files (nab.Tuning).
type ShapeOptions struct {
	// Window is the length of a shape (a shingle: the last Window points)
	// (default 16: 80 minutes of 5-minute data).
	Window int
	// Neighbours is how many nearest past shapes the distance averages
	// (default 3).
	Neighbours int
	// Reference is how far back, in points, past shapes are compared
	// (default 2016: a week of 5-minute data). Shapes that overlap the
	// current one are never compared.
	Reference int
	// Stride keeps every Stride-th past shape as a reference (default 2).
	Stride int
	// Memory is how many past distances calibrate a new one (default 4032:
	// two weeks of 5-minute data).
	Memory int
	// Warmup is how many distances must be held before p-values are
	// given (default 100).
	Warmup int
	// Tail is how many of the largest past distances fit the exponential
	// tail beyond them (default 10).
	Tail int
}

// Defaults for ShapeOptions.
const (
	DefaultShapeWindow     = 16
	DefaultShapeNeighbours = 3
	DefaultShapeReference  = 2016
	DefaultShapeStride     = 2
	DefaultShapeMemory     = 4032
	DefaultShapeWarmup     = 100
	DefaultShapeTail       = 10
)

func (o ShapeOptions) withDefaults() ShapeOptions {
	def := func(v *int, d, least int) {
		if *v < least {
			*v = d
		}
	}
	def(&o.Window, DefaultShapeWindow, 2)
	def(&o.Neighbours, DefaultShapeNeighbours, 1)
	def(&o.Reference, DefaultShapeReference, 1)
	def(&o.Stride, DefaultShapeStride, 1)
	def(&o.Memory, DefaultShapeMemory, 1)
	def(&o.Warmup, DefaultShapeWarmup, 1)
	def(&o.Tail, DefaultShapeTail, 1)
	// At least Neighbours reference shapes.
	o.Reference = max(o.Reference, o.Neighbours*o.Stride)
	return o
}

// Shape is the shape statistic, online: for each new point it takes the
// last Window points (the current shape), finds the Neighbours nearest
// (Euclidean) among the past shapes that end between Window and
// Window+Reference points earlier (every Stride-th of them), and
// averages their distances: the nonconformity of the current shape. That
// distance is calibrated against the past distances as a conformal
// p-value with an exponential tail (see tailRank).
//
// A shape the series has shown before, even rarely (a daily backup spike,
// a weekly batch), finds near neighbours and is not anomalous; a spike, a
// dip, a step, a burst of noise or a flat line where the series moves has
// none while it is in the window. Because the reference shapes never
// overlap the current one, a new level stays anomalous until the series
// has held it for a few windows.
//
// Each point costs O(Reference + Window·Reference/64 + Memory) with no
// allocation: the squared distance to every past shape is updated in O(1)
// from the previous point's (one term enters, one leaves); a distance
// whose digits mostly cancel in that update is recomputed, and a 64th of
// them is recomputed exactly each point, so rounding cannot accumulate.
// Where the processor has AVX the update and the search for the nearest
// take four distances at a time, with the same roundings as one at a time.
// Memory is bounded by about 2·(2·Window+Reference) + Reference +
// 2·Memory floats.
type Shape struct {
	opts ShapeOptions
	// buf holds the last span points twice over (at i and i+span), so
	// the last span points are always the contiguous buf[pos+1:pos+span+1].
	buf  []float64
	pos  int
	span int // 2·Window + Reference
	seen int // points pushed (NaN points are skipped)
	// d[Reference-1-j] is the squared distance between the current shape
	// and the one that ended Window+j points earlier (held in this order so
	// that d and the points it is updated from run the same way).
	d       []float64
	redo    int // next block of d to recompute exactly
	ncm     *tailRank
	nearest []float64
}

// NewShape returns the shape statistic.
func NewShape(opts ShapeOptions) *Shape {
	o := opts.withDefaults()
	span := 2*o.Window + o.Reference
	return &Shape{
		opts:    o,
		buf:     make([]float64, 2*span),
		pos:     -1,
		span:    span,
		d:       make([]float64, o.Reference),
		ncm:     newTailRank(o.Memory, o.Tail),
		nearest: make([]float64, 0, o.Neighbours),
	}
}

// ShapePoint is the shape statistic's verdict on one point.
type ShapePoint struct {
	// Distance is the mean distance from the current shape to its nearest
	// past shapes (NaN until enough shapes are held).
	Distance float64
	// P is the distance's conformal p-value among the past distances (1
	// until Warmup of them are held, and for missing points).
	P float64
}

// Observe adds the next point. NaN and infinite points are missing: they
// get P = 1 and do not enter the shapes. Magnitudes beyond 1e100 are
// clipped to it.
func (s *Shape) Observe(y float64) ShapePoint {
	out := ShapePoint{Distance: math.NaN(), P: 1}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return out
	}
	// No metric comes near this; beyond it squares would overflow.
	y = math.Max(-maxMagnitude, math.Min(maxMagnitude, y))
	w, ref := s.opts.Window, s.opts.Reference
	s.pos++
	if s.pos == s.span {
		s.pos = 0
	}
	s.buf[s.pos], s.buf[s.pos+s.span] = y, y
	t := s.seen // index of y among the points pushed
	s.seen++
	x := s.buf[s.pos+1 : s.pos+s.span+1] // oldest first; x[n] is y
	n := s.span - 1

	// valid is how many entries of d compare two complete shapes: the one
	// Window+j back starts at t-2·Window-j+1 >= 0.
	valid := min(max(t-2*w+2, 0), ref)
	d := s.d[ref-valid:] // d[valid-1-j]: the shape that ended Window+j back
	if t >= w {
		a, b := y, x[n-w]              // entering the current shape, leaving it
		xa := x[n-w-ref+1 : n-w+1]     // xa[ref-1-j] is the point Window+j back
		xb := x[n-2*w-ref+1 : n-2*w+1] // xb[ref-1-j] is the point 2·Window+j back
		xa, xb = xa[ref-valid:], xb[ref-valid:]
		// A shape that has just become complete (the oldest held) gets
		// its distance exactly; the others are updated.
		from := 0
		if j := valid - 1; j >= 0 && t-2*w-j+1 == 0 {
			d[0] = s.exact(x, n, j)
			from = 1
		}
		if updateDistances(d[from:], xa[from:], xb[from:], a, b) {
			// Most digits cancelled somewhere (the shapes were far
			// apart and are close now): recompute those exactly.
			for i := from; i < len(d); i++ {
				if v := d[i]; v != v {
					d[i] = s.exact(x, n, valid-1-i)
				}
			}
		}
		// One block in turn gets its distance exactly.
		const blocks = 64
		step := (ref + blocks - 1) / blocks
		lo := s.redo * step
		s.exactRange(x, n, lo, min(lo+step, valid))
		s.redo = (s.redo + 1) % blocks
	}
	// The nearest references: every Stride-th past shape, by the parity
	// of its end point, so that each reference keeps its place.
	first := ((t-w)%s.opts.Stride + s.opts.Stride) % s.opts.Stride
	near := s.nearest[:0]
	if valid > first {
		// j = first, first+Stride, ... is d[valid-1-first], and every
		// Stride-th entry before it.
		near = nearestOf(near, s.opts.Neighbours, d[:valid-first], s.opts.Stride)
	}
	s.nearest = near
	k := s.opts.Neighbours
	if len(near) < k {
		return out
	}
	var sum float64
	for _, v := range near {
		sum += math.Sqrt(v)
	}
	out.Distance = sum / float64(k)
	if s.ncm.Len() >= s.opts.Warmup {
		out.P = s.ncm.P(out.Distance)
	}
	s.ncm.Add(out.Distance)
	return out
}

// maxMagnitude bounds the values the shape statistic compares, so that
// sums of squared differences stay finite.
const maxMagnitude = 1e100

// exact is the squared distance between the current shape (ending at x[n])
// and the one ending Window+j points earlier.
func (s *Shape) exact(x []float64, n, j int) float64 {
	w := s.opts.Window
	var sum float64
	for i := 0; i < w; i++ {
		u := x[n-i] - x[n-w-j-i]
		sum += float64(u * u)
	}
	return sum
}

// exactRange sets the squared distances to the shapes that ended Window+j
// points before the current one, for j in [lo, hi): four at a time, each
// summed in the order exact sums it, so that the four sums overlap.
func (s *Shape) exactRange(x []float64, n, lo, hi int) {
	w, ref := s.opts.Window, s.opts.Reference
	cur := x[n-w+1 : n+1] // cur[w-1-i] is x[n-i]
	j := lo
	for ; j+4 <= hi; j += 4 {
		// p[m][w-1-i] is x[n-w-(j+m)-i].
		p0 := x[n-2*w-j+1 : n-w-j+1]
		p1 := x[n-2*w-j : n-w-j]
		p2 := x[n-2*w-j-1 : n-w-j-1]
		p3 := x[n-2*w-j-2 : n-w-j-2]
		var s0, s1, s2, s3 float64
		for i := w - 1; i >= 0; i-- {
			c := cur[i]
			u0, u1, u2, u3 := c-p0[i], c-p1[i], c-p2[i], c-p3[i]
			s0 += float64(u0 * u0)
			s1 += float64(u1 * u1)
			s2 += float64(u2 * u2)
			s3 += float64(u3 * u3)
		}
		s.d[ref-1-j], s.d[ref-2-j], s.d[ref-3-j], s.d[ref-4-j] = s0, s1, s2, s3
	}
	for ; j < hi; j++ {
		s.d[ref-1-j] = s.exact(x, n, j)
	}
}

// updateDistances moves every squared distance d[i] from the previous
// point's shapes to the current ones: the current shape gains a, the point
// it is compared with xa[i], and loses b, compared with xb[i]. An entry
// whose update cancelled most of its digits (d < 1e-6·(d+gained)) is set
// to NaN, and the result says whether any was; the caller recomputes those
// exactly. Every entry gets the same roundings, in the same order, on
// every path.
func updateDistances(d, xa, xb []float64, a, b float64) bool {
	xa, xb = xa[:len(d)], xb[:len(d)]
	cancelled := false
	i := 0
	if haveAVX && len(d) >= 4 {
		i = len(d) &^ 3
		cancelled = updateDistancesAVX(&d[0], &xa[0], &xb[0], i, a, b, cancelTol)
	}
	for ; i < len(d); i++ {
		u, v := a-xa[i], b-xb[i]
		old, in := d[i], u*u
		if d[i] = old + in - v*v; d[i] < cancelTol*(old+in) {
			d[i] = math.NaN()
			cancelled = true
		}
	}
	return cancelled
}

// cancelTol is how small a distance may become relative to its sum
// before the update before it is recomputed exactly.
const cancelTol = 1e-6

// nearestOf returns in near (reused) the k smallest of d[len(d)-1],
// d[len(d)-1-stride], ..., ascending, negative ones (rounding) as 0.
func nearestOf(near []float64, k int, d []float64, stride int) []float64 {
	if len(d) == 0 {
		return near
	}
	worst := math.Inf(1) // the k-th smallest so far
	take := func(dj float64) {
		if dj < 0 {
			dj = 0
		}
		i := len(near)
		if i < k {
			near = append(near, dj)
		} else {
			i = k - 1
		}
		for ; i > 0 && near[i-1] > dj; i-- {
			near[i] = near[i-1]
		}
		near[i] = dj
		if len(near) == k {
			worst = near[k-1]
		}
	}
	// The entries taken are those at len(d)-1 less a multiple of stride:
	// start where they line up.
	from := (len(d) - 1) % stride
	i := from
	if haveAVX && stride <= 2 {
		// Four entries at a time, those of the lanes taken: stride 1
		// takes every lane, stride 2 lanes 0 and 2.
		lanes := 0b1111
		if stride == 2 {
			lanes = 0b0101
		}
		end := from + (len(d)-from)&^3
		for i < end {
			i += firstBelowAVX(&d[i], end-i, worst, lanes)
			if i >= end {
				break
			}
			for g := i; g < i+4; g += stride {
				if d[g] < worst {
					take(d[g])
				}
			}
			i += 4
		}
	}
	for ; i < len(d); i += stride {
		if d[i] < worst {
			take(d[i])
		}
	}
	return near
}
