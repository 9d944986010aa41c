package anomaly

import (
	"math"
	"slices"
)

// ARTime is an adaptive-resonance anomaly detector after ARTime (Mark
// Hampton, 2021; one of the detectors of the Numenta Anomaly Benchmark),
// written for foreshape from the algorithm as NAB's edition runs it. Its
// clustering is fuzzy adaptive resonance theory (Carpenter and Grossberg)
// with dual vigilance.
//
// The series is downsampled: every Step samples become one value, their
// mean unless the largest (or, when further from the recent level, the
// smallest) sample lies at least 10% away from it, so a spike survives.
// That value is scaled to [0, 1] over the series' range, quantised to
// Levels levels and drawn to the running median level when within Chomp of
// it. The last Window of these values and their Haar wavelet transform
// (scaled to [0, 1]) make a feature vector, and the vectors are clustered
// online: each category is a box (the smallest and largest value seen in
// every feature) and a vector resonates with a category whose box it
// nearly fits in. A vector that matches some category better than the
// lower vigilance but none better than the upper one starts a category of
// its own; one that matches none better than the lower vigilance is a new
// kind of stretch: an anomaly, scored by how far below both vigilances its
// best match lies and how far its latest value lies outside that
// category's range.
//
// The first Probation samples are learnt as a batch: the vigilance starts
// where a clustering of that stretch at the initial vigilance settles, and
// afterwards both vigilances follow the matches seen (the upper one their
// running mean, the lower one the weakest recent match, kept above the
// matches of past anomalies). After an anomaly, and after every new
// category, anomalies are masked for a few steps unless the match is much
// worse than the last anomaly's, so an incident is reported once.
//
// NAB gives ARTime the file's minimum and maximum and its length (which
// sets the probationary period). An online detector cannot know the
// range ahead: it is the one seen so far (at the end of the probation, the
// range of the probation widened by Headroom of its width on each side, as
// a series' whole range is wider than a stretch of it shows) and when a
// sample widens it, everything learnt
// (the categories' boxes, the median's bins, the recent values) is
// rescaled to the new range, so the detector goes on as if it had known
// that range before. The length it may know: a detector started on a
// series' stored history takes its probation from that history as NAB
// takes it from a file (StartingOn); one that knows of none learns
// Probation samples.
//
// The memory is bounded: at most MaxCategories categories of 4·Window
// floats, the probation's Probation/Step values and features, and the
// median's Levels+1 counts. It is not safe for concurrent use.
type ARTime struct {
	opts  ARTimeOptions
	step  int // samples per downsampled value
	trend int // downsampled values in the probation
	mask  int // steps anomalies are masked after one

	lo, hi   float64 // the range seen so far
	seen     bool
	nlo, nhi float64 // the range the state is expressed in

	samples int       // samples seen
	dsWin   []float64 // the current Step samples
	dsi     int       // downsampled values so far
	ma      float64   // moving average of the downsampled means

	pending []float64 // the probation's downsampled values (raw)
	trendF  []float64 // the probation's feature vectors, flat

	medbin               []int
	medlevel, below, abv int
	fwin                 []float64 // the last Window values, oldest first

	art   fuzzyART
	feat  []float64 // scratch: features
	wave  []float64 // scratch: wavelet
	coded []float64 // scratch: complement-coded features

	// detect's state
	lastAnomalyI   int
	lastAnomalySim float64
	lastRhoUpdateI int
	maskAfterCat   bool
	noNewCat       int
	histSum        float64 // the matches of past anomalies
	histLast       float64
	histN          int
	ubSum          float64 // every match, for the upper vigilance
	ubN            int
	simWin         recentRing // recent matches
	simDiff        recentRing // recent shortfalls below the upper vigilance
}

// ARTimeOptions tune ARTime. The zero value means the defaults, which are
// ARTime's as NAB runs it (the probation aside: see Probation).
type ARTimeOptions struct {
	// Window is how many downsampled values make a feature vector, a
	// power of two (default 8).
	Window int
	// WindowsPerProbation sets the downsampling: Step is
	// Probation/(Window·WindowsPerProbation) samples (default 13).
	WindowsPerProbation int
	// Probation is how many samples are learnt as a batch before anything
	// is reported (default 750: NAB's probationary period on files of
	// 5,000 points or more; NAB gives shorter files 15% of their length).
	Probation int
	// Levels is how many levels values are quantised to (default 80).
	Levels int
	// Chomp draws a value within this much (on the range's [0, 1] scale)
	// of the running median to the median (default 0.075).
	Chomp float64
	// InitialRho is the vigilance the probation is first clustered with
	// (default 0.8).
	InitialRho float64
	// MaxCategories bounds the categories held (default 1024); once it is
	// reached the least recently resonating one makes way for a new one.
	MaxCategories int

	// Headroom is how much wider than the probation's range the series'
	// range is taken to be when the probation ends: that range widened by
	// Headroom times its width on each side (default 0.25; negative: not
	// widened). A sample beyond it still widens it. Chosen on the tuning
	// part of the NAB files (docs/forecasting.md); not used with Range.
	Headroom float64

	// Range, when set, is the range values are scaled over instead of the
	// learnt one: NAB gives its detectors the file's minimum and maximum,
	// which an online detector cannot know (for checking this
	// implementation against NAB's published outputs only).
	Range *[2]float64
}

// Defaults for ARTimeOptions.
const (
	DefaultARTimeWindow        = 8
	DefaultARTimeWindowsPerPb  = 13
	DefaultARTimeProbation     = 750
	DefaultARTimeLevels        = 80
	DefaultARTimeChomp         = 0.075
	DefaultARTimeInitialRho    = 0.8
	DefaultARTimeMaxCategories = 1024
	DefaultARTimeHeadroom      = 0.25
)

func (o ARTimeOptions) withDefaults() ARTimeOptions {
	if o.Window < 2 || o.Window&(o.Window-1) != 0 {
		o.Window = DefaultARTimeWindow
	}
	if o.WindowsPerProbation <= 0 {
		o.WindowsPerProbation = DefaultARTimeWindowsPerPb
	}
	if o.Probation < 2*o.Window {
		o.Probation = DefaultARTimeProbation
	}
	if o.Levels <= 0 {
		o.Levels = DefaultARTimeLevels
	}
	if !(o.Chomp > 0) {
		o.Chomp = DefaultARTimeChomp
	}
	if !(o.InitialRho > 0 && o.InitialRho <= 1) {
		o.InitialRho = DefaultARTimeInitialRho
	}
	if o.MaxCategories < 2 {
		o.MaxCategories = DefaultARTimeMaxCategories
	}
	if o.Headroom == 0 || math.IsNaN(o.Headroom) || math.IsInf(o.Headroom, 0) {
		o.Headroom = DefaultARTimeHeadroom
	}
	return o
}

// StartingOn returns the options for a detector started on a series'
// stored history of history samples (fed to it one at a time, then the new
// ones): its probation is NAB's rule applied to that history, the
// HistoryShare of it, at most Probation, when that is at least
// Window·WindowsPerProbation samples (a downsampling step of one);
// otherwise (a new series, or one with little history) it stays
// Probation. NAB sets it from the length of the file it scores, which for
// the agent is the history it has when the detector starts: no value
// ahead of a verdict is read.
func (o ARTimeOptions) StartingOn(history int) ARTimeOptions {
	d := o.withDefaults()
	p := int(math.Floor(HistoryShare * float64(history)))
	if p >= d.Window*d.WindowsPerProbation && p < d.Probation {
		o.Probation = p
	}
	return o
}

// HistoryShare is the share of the history a detector starts on that
// ARTime learns as its probation (NAB's probationary share).
const HistoryShare = 0.15

// NewARTime returns an ARTime detector.
func NewARTime(opts ARTimeOptions) *ARTime {
	o := opts.withDefaults()
	pb := o.Probation - o.Probation%2
	step := max(1, pb/(o.Window*o.WindowsPerProbation))
	trend := pb / step
	a := &ARTime{
		opts:   o,
		step:   step,
		trend:  trend,
		mask:   o.Window * 3 / 2,
		dsWin:  make([]float64, 0, step),
		medbin: make([]int, o.Levels+1),
		fwin:   make([]float64, o.Window),
		feat:   make([]float64, 2*o.Window),
		wave:   make([]float64, o.Window),
		coded:  make([]float64, 4*o.Window),
	}
	a.art.init(4*o.Window, o.MaxCategories)
	a.simWin = newRecentRing(trend/2+1, 1)
	a.simDiff = newRecentRing(trend+1, 0)
	if o.Range != nil {
		a.lo, a.hi, a.seen = o.Range[0], o.Range[1], true
	}
	return a
}

// Step is how many samples make one downsampled value: ARTime scores
// every Step-th sample.
func (a *ARTime) Step() int { return a.step }

// Categories returns how many categories are held.
func (a *ARTime) Categories() int { return a.art.n }

// Score takes the next sample and returns its anomaly score in [0, 1]: 0
// but at the last sample of a downsampled value that is an anomaly. A
// missing value (NaN or infinite) scores nothing and teaches nothing.
func (a *ARTime) Score(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	if a.opts.Range == nil {
		if !a.seen {
			a.lo, a.hi, a.seen = v, v, true
		}
		a.lo, a.hi = math.Min(a.lo, v), math.Max(a.hi, v)
	}
	a.samples++
	a.dsWin = append(a.dsWin, v)
	if len(a.dsWin) < a.step {
		return 0
	}
	ds := a.downsample()
	a.dsWin = a.dsWin[:0]
	a.dsi++
	if a.dsi <= a.trend {
		a.pending = append(a.pending, ds)
		if a.dsi == a.trend {
			a.learnProbation()
		}
		return 0
	}
	if a.lo != a.nlo || a.hi != a.nhi {
		a.rescale()
	}
	a.features(a.level(ds, a.dsi), a.dsi)
	return a.detect(a.feat, a.dsi)
}

// downsample makes the current Step samples one value.
func (a *ARTime) downsample() float64 {
	var sum float64
	lo, hi := a.dsWin[0], a.dsWin[0]
	for _, x := range a.dsWin {
		sum += x
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	mean := sum / float64(len(a.dsWin))
	if a.dsi == 0 {
		a.ma = mean
	}
	a.ma = (a.ma + mean) / 2
	ds := hi
	// A spike below the level.
	if math.Abs(hi-a.ma) < math.Abs(lo-a.ma) {
		ds = lo
	}
	// A spike must be at least 10% away.
	if math.Abs(ds-mean) < 0.1*mean {
		ds = mean
	}
	return ds
}

// learnProbation learns the probation's values as a batch, over the range
// seen so far widened by the headroom.
func (a *ARTime) learnProbation() {
	if a.opts.Range == nil && a.opts.Headroom > 0 {
		m := a.opts.Headroom * (a.hi - a.lo)
		// Values near the float range's ends keep the range they showed.
		if lo, hi := a.lo-m, a.hi+m; !math.IsInf(hi-lo, 0) {
			a.lo, a.hi = lo, hi
		}
	}
	a.nlo, a.nhi = a.lo, a.hi
	dim := 2 * a.opts.Window
	a.trendF = make([]float64, 0, a.trend*dim)
	for i, ds := range a.pending {
		a.features(a.level(ds, i+1), i+1)
		a.trendF = append(a.trendF, a.feat...)
	}
	a.pending = nil
	w := a.opts.Window
	rho := a.initialRho(a.trendF[(w-1)*dim:])
	a.art.rhoLB, a.art.rhoUB = rho, rho
	for i := 0; i < a.trend; i++ {
		a.detect(a.trendF[i*dim:(i+1)*dim], i+1)
	}
	a.trendF = nil
}

// level scales, quantises and levels the downsampled value ds, the dsi-th.
func (a *ARTime) level(ds float64, dsi int) float64 {
	L := a.opts.Levels
	u := ds - a.nlo
	if a.nhi != a.nlo {
		u /= a.nhi - a.nlo
	}
	lv := min(max(int(math.RoundToEven(u*float64(L))), 0), L)
	u = float64(lv) / float64(L)
	a.medbin[lv]++
	medpos := dsi / 2
	if dsi == 1 {
		a.medlevel = lv
	}
	if a.medlevel > lv {
		a.below++
	} else if a.medlevel < lv {
		a.abv++
	}
	// Not exactly a running median, but close, as in ARTime.
	if medpos < a.abv {
		a.below += a.medbin[a.medlevel]
		a.medlevel++
		for a.medlevel < L && a.medbin[a.medlevel] == 0 {
			a.medlevel++
		}
		a.abv -= a.medbin[a.medlevel]
	} else if medpos < a.below {
		a.abv += a.medbin[a.medlevel]
		a.medlevel--
		for a.medlevel > 0 && a.medbin[a.medlevel] == 0 {
			a.medlevel--
		}
		a.below -= a.medbin[a.medlevel]
	}
	med := float64(a.medlevel) / float64(L)
	if math.Abs(u-med) < a.opts.Chomp {
		u = med
	}
	return u
}

// features pushes the levelled value u, the dsi-th, and sets a.feat: the
// wavelet transform of the last Window values and the values, or zeros
// until Window values are held.
func (a *ARTime) features(u float64, dsi int) {
	w := a.opts.Window
	copy(a.fwin, a.fwin[1:])
	a.fwin[w-1] = u
	if dsi < w {
		clear(a.feat)
		return
	}
	dw := a.wave
	copy(dw, a.fwin)
	scale01(dw)
	haar(dw)
	scale01(dw)
	copy(a.feat, dw)
	copy(a.feat[w:], a.fwin)
}

// scale01 maps x onto [0, 1] by its minimum and maximum (leaving a
// constant x at 0).
func scale01(x []float64) {
	lo := slices.Min(x)
	for i := range x {
		x[i] -= lo
	}
	if hi := slices.Max(x); hi != 0 {
		for i := range x {
			x[i] /= hi
		}
	}
}

// haar replaces x (of a power-of-two length) by its orthonormal Haar
// wavelet transform, coarsest first: the scaling coefficient, then the
// details from the coarsest level to the finest, each the second value of
// its pair less the first (the sign Wavelets.jl gives, which ARTime used).
func haar(x []float64) {
	var tmp [64]float64
	t := tmp[:0]
	if len(x) > len(tmp) {
		t = make([]float64, 0, len(x))
	}
	t = t[:len(x)]
	for n := len(x); n > 1; n /= 2 {
		h := n / 2
		for i := 0; i < h; i++ {
			a, b := x[2*i], x[2*i+1]
			t[i] = (a + b) / math.Sqrt2
			t[h+i] = (b - a) / math.Sqrt2
		}
		copy(x[:n], t[:n])
	}
}

// detect clusters the feature vector f of the i-th downsampled value and
// returns its anomaly score: ARTime's vigilance and masking rules.
func (a *ARTime) detect(f []float64, i int) float64 {
	mask := a.mask
	sinceAnomaly := i - a.lastAnomalyI
	rhoAfterAnomaly := sinceAnomaly == mask
	rhoForTrend := i-a.lastRhoUpdateI >= a.trend/2
	maskAfterAnomaly := sinceAnomaly <= mask
	if i > a.trend+mask && a.maskAfterCat && a.noNewCat >= mask {
		a.maskAfterCat = false
	}
	w := 2 * a.opts.Window
	for k, x := range f {
		a.coded[k], a.coded[w+k] = x, 1-x
	}
	// The values before a whole feature window teach nothing.
	sim, energy, novel := a.art.train(a.coded, i >= a.opts.Window)
	novel = novel || i < a.opts.Window
	if novel {
		a.noNewCat = 0
	} else {
		a.noNewCat++
	}
	a.ubSum += sim
	a.ubN++
	a.simWin.push(sim)
	a.simDiff.push(a.art.rhoUB - sim)
	// The weakest match while an anomaly is masked.
	if sinceAnomaly < mask && a.histN > 0 && sim < a.histLast {
		a.histSum += sim - a.histLast
		a.histLast = sim
	}
	masking := a.maskAfterCat || maskAfterAnomaly
	scale := 0.70
	if maskAfterAnomaly {
		scale = 0.90
	}
	belowLast := sim < a.lastAnomalySim*scale
	score := 0.0
	if i > a.trend && novel && (!masking || belowLast) {
		score = a.confidence(sim, energy)
		a.histSum += sim
		a.histLast = sim
		a.histN++
		a.lastAnomalySim = sim
		a.lastAnomalyI = i
	}
	a.maskAfterCat = novel || a.maskAfterCat
	if i > a.trend && (rhoAfterAnomaly || rhoForTrend) {
		a.updateRho(i)
	}
	return score
}

// updateRho moves the vigilances after the matches seen.
func (a *ARTime) updateRho(i int) {
	minSim := a.simWin.min()
	ub := math.Min(0.97, a.ubSum/float64(a.ubN))
	lb := a.art.rhoLB
	if lb <= minSim {
		lb += float64((minSim - lb) * 0.19)
	} else {
		decr := 0.0
		if i > 2*a.trend {
			var sum float64
			n := 0
			for _, x := range a.simDiff.buf {
				if x > 0.05 {
					sum += math.Min(0.37, x)
					n++
				}
			}
			if n > 0 {
				decr = sum / float64(n)
			}
		}
		lb -= math.Max(0.01, decr) / 2
		if a.histN > 0 {
			lb = math.Max(a.histSum/float64(a.histN), lb)
		}
	}
	a.art.rhoLB, a.art.rhoUB = math.Min(ub, lb), ub
	a.lastRhoUpdateI = i
	a.maskAfterCat = true
}

// confidence scores an anomaly whose best match is sim, with that
// category's energy match: how far below both vigilances the match lies
// and how far the latest value lies outside the category's range.
func (a *ARTime) confidence(sim, energy float64) float64 {
	sim = math.Min(0.999, sim)
	ub := ((1 - sim) - (1 - a.art.rhoUB)) / (1 - sim)
	lb := ((1 - sim) - (1 - a.art.rhoLB)) / (1 - sim)
	s := math.Min(1, float64(ub*0.35)+float64(lb*0.65)+float64((1-energy)*1.5))
	return math.Round(s*1e6) / 1e6
}

// initialRho is the vigilance the probation's feature vectors (f, flat,
// from the first whole window on) settle at: clustered at InitialRho, the
// least typical first, the mean best match of the second half.
func (a *ARTime) initialRho(f []float64) float64 {
	dim := 2 * a.opts.Window
	n := len(f) / dim
	if n < 2 {
		return a.opts.InitialRho
	}
	col := func(i int) []float64 { return f[i*dim : (i+1)*dim] }
	sum := make([]float64, n)
	for i := range n {
		sum[i]++ // itself
		for j := range i {
			s := similarity(col(i), col(j))
			sum[i] += s
			sum[j] += s
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case sum[i] < sum[j]:
			return -1
		case sum[i] > sum[j]:
			return 1
		}
		return 0
	})
	var art fuzzyART
	art.init(2*dim, a.opts.MaxCategories)
	art.rhoLB, art.rhoUB = a.opts.InitialRho, a.opts.InitialRho
	x := make([]float64, 2*dim)
	var total float64
	from := a.trend/2 - 1 // ARTime's index, from 1
	for k, i := range order {
		for d, v := range col(i) {
			x[d], x[dim+d] = v, 1-v
		}
		sim, _, _ := art.train(x, true)
		if k >= from {
			total += sim
		}
	}
	if from < 0 || from >= n {
		return a.opts.InitialRho
	}
	return total / float64(n-from)
}

// similarity is close to the cosine similarity of t1 and t2.
func similarity(t1, t2 []float64) float64 {
	var n1, n2, dot float64
	for i := range t1 {
		n1 += float64(t1[i] * t1[i])
		n2 += float64(t2[i] * t2[i])
		dot += float64(t1[i] * t2[i])
	}
	n1, n2 = math.Sqrt(n1), math.Sqrt(n2)
	switch {
	case n1 == 0:
		return 1 - n2
	case n2 == 0:
		return 1 - n1
	}
	return dot / (n1 * n2)
}

// rescale expresses everything learnt over the range seen so far.
func (a *ARTime) rescale() {
	L := float64(a.opts.Levels)
	ow, nw := a.nhi-a.nlo, a.hi-a.lo
	to := func(u float64) float64 {
		if nw == 0 {
			return 0
		}
		return (a.nlo + u*ow - a.lo) / nw
	}
	grid := func(u float64) int { return min(max(int(math.RoundToEven(to(u)*L)), 0), a.opts.Levels) }
	for i, u := range a.fwin {
		a.fwin[i] = float64(grid(u)) / L
	}
	bins := make([]int, len(a.medbin))
	for l, c := range a.medbin {
		bins[grid(float64(l)/L)] += c
	}
	a.medbin = bins
	a.medlevel = grid(float64(a.medlevel) / L)
	a.below, a.abv = 0, 0
	for l, c := range bins {
		if l < a.medlevel {
			a.below += c
		} else if l > a.medlevel {
			a.abv += c
		}
	}
	a.art.rescale(a.opts.Window, to)
	a.nlo, a.nhi = a.lo, a.hi
}

// recentRing is a fixed-size window of the latest values.
type recentRing struct {
	buf []float64
	pos int
}

func newRecentRing(n int, fill float64) recentRing {
	r := recentRing{buf: make([]float64, n)}
	for i := range r.buf {
		r.buf[i] = fill
	}
	return r
}

func (r *recentRing) push(x float64) {
	r.buf[r.pos] = x
	r.pos = (r.pos + 1) % len(r.buf)
}

func (r *recentRing) min() float64 { return slices.Min(r.buf) }
