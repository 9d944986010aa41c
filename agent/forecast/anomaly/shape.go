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
// Memory is bounded by about 2·(2·Window+Reference) + 3·Memory floats.
type Shape struct {
	opts ShapeOptions
	// buf holds the last span points twice over (at i and i+span), so
	// the last span points are always the contiguous buf[pos+1:pos+span+1].
	buf  []float64
	pos  int
	span int // 2·Window + Reference
	seen int // points pushed (NaN points are skipped)
	// d[j] is the squared distance between the current shape and the one
	// that ended Window+j points earlier.
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
	if t >= w {
		a, b := y, x[n-w]              // entering the current shape, leaving it
		xa := x[n-w-ref+1 : n-w+1]     // xa[ref-1-j] is the point Window+j back
		xb := x[n-2*w-ref+1 : n-2*w+1] // xb[ref-1-j] is the point 2·Window+j back
		d := s.d[:valid]
		xa, xb = xa[ref-valid:], xb[ref-valid:] // xa[valid-1-j]: Window+j back
		for j := range d {
			u, v := a-xa[valid-1-j], b-xb[valid-1-j]
			old, in := d[j], u*u
			if d[j] = old + in - v*v; d[j] < 1e-6*(old+in) {
				// Most digits cancelled (the shapes were far apart
				// and are close now): recompute.
				d[j] = s.exact(x, n, j)
			}
		}
		// A shape that has just become complete, and one block in turn,
		// get their distance exactly.
		if j := valid - 1; j >= 0 && t-2*w-j+1 == 0 {
			s.d[j] = s.exact(x, n, j)
		}
		const blocks = 64
		step := (ref + blocks - 1) / blocks
		lo := s.redo * step
		for j := lo; j < min(lo+step, valid); j++ {
			s.d[j] = s.exact(x, n, j)
		}
		s.redo = (s.redo + 1) % blocks
	}
	// The nearest references: every Stride-th past shape, by the parity
	// of its end point, so that each reference keeps its place.
	k := s.opts.Neighbours
	first := ((t-w)%s.opts.Stride + s.opts.Stride) % s.opts.Stride
	near := s.nearest[:0]
	worst := math.Inf(1) // the k-th smallest so far
	for j := first; j < valid; j += s.opts.Stride {
		dj := s.d[j]
		if dj >= worst {
			continue
		}
		if dj < 0 {
			dj = 0 // rounding
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
	s.nearest = near
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
		sum += u * u
	}
	return sum
}
