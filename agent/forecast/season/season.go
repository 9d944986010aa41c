// Package season finds and removes the seasonal cycles of utilisation
// series: which periods a series repeats at (Detect), and the profile of
// each period (Decompose), which the forecasting models subtract before
// fitting and add back to their forecasts.
//
// It is pure: data in, periods and profiles out. It never performs I/O,
// reads the clock or logs.
package season

import (
	"math"
	"math/cmplx"
	"sort"
	"sync"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// scratch holds the working series of one Detect or Decompose call, so
// that scoring a dozen periods allocates them once. A buffer's contents
// are garbage until its user writes them; a nil scratch allocates.
type scratch struct{ bufs [bufCount][]float64 }

// The buffers of a scratch, by use. Each function uses its own, so a
// caller's buffer survives the functions it calls.
const (
	bufTrend     = iota // movingAverage's result
	bufCumSum           // movingAverage's cumulative sums
	bufDetrended        // detrendMA's result
	bufRemainder        // what a profile leaves (seasonScore, robustProfile)
	bufClipped          // robustProfile's clipped series
	bufSelect           // selection's working copy (median, MAD)
	bufCount
)

// scratches keeps scratch buffers from one Detect or Decompose call to the
// next (a few series' lengths each), so that a refit does not allocate and
// clear them anew.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// buf returns buffer i with n elements.
func (s *scratch) buf(i, n int) []float64 {
	if s == nil {
		return make([]float64, n)
	}
	if cap(s.bufs[i]) < n {
		s.bufs[i] = make([]float64, n)
	}
	return s.bufs[i][:n]
}

// defaultStep is assumed when Detect is given no step.
const defaultStep = 5 * time.Minute

// Season is a detected seasonal period.
type Season struct {
	// Steps is the period in samples.
	Steps int
	// Period is Steps·Step.
	Period time.Duration
	// Strength in [0, 1] is the share of the detrended variance the
	// seasonal profile explains, corrected for the share a profile of
	// Steps means would explain in pure noise (0: none, 1: all).
	Strength float64
	// ACF is the autocorrelation of the detrended series at lag Steps.
	ACF float64
}

// seasonCandidates are the periods always tested (more than a day and a
// week, so that hourly batch jobs and shift patterns are found); periodogram
// peaks are added to them.
var seasonCandidates = []time.Duration{
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour,
	8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour,
}

// Seasonality thresholds: a period is kept when its corrected strength and
// its autocorrelation both clear these.
const (
	minSeasonStrength = 0.2
	minSeasonACF      = 0.1
	maxSeasons        = 2
	// minCycles is how many full cycles detection needs: with two, a
	// per-phase profile is the mean of two values and any difference
	// between the two halves of the history (a level shift, a busy week)
	// looks like a season.
	minCycles = 3
)

// Detect finds the seasonal periods of y sampled every step. It
// tests fixed candidates (1h to 7d) and the strongest periodogram peaks,
// only periods with at least three full cycles in y (configured seasons
// need two), scores each by the variance its per-phase profile explains
// after removing a centred moving average of one period (a trend filter
// that cancels that season) and by the autocorrelation at that lag, and
// keeps up to two significant periods: the strongest that is not a harmonic
// of a shorter one, then a multiple of it that still explains variance once
// the first is removed. NaN in y is interpolated.
func Detect(y []float64, step time.Duration) []Season {
	if step <= 0 {
		step = defaultStep
	}
	x := num.FillGaps(y)
	n := len(x)
	if n < 8 {
		return nil
	}
	cands := map[int]bool{}
	for _, d := range seasonCandidates {
		if m := int(d / step); m >= 2 && minCycles*m <= n {
			cands[m] = true
		}
	}
	fixed := make([]int, 0, len(cands))
	for m := range cands {
		fixed = append(fixed, m)
	}
	sort.Ints(fixed)
	for _, m := range periodogramPeaks(x, 3) {
		// The periodogram resolves periods only to n/k: a peak within 10%
		// of a fixed candidate is that candidate.
		for _, c := range fixed {
			if math.Abs(float64(m-c)) <= 0.1*float64(c) {
				m = c
				break
			}
		}
		if m >= 4 && minCycles*m <= n {
			cands[m] = true
		}
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	keys := make([]int, 0, len(cands))
	for m := range cands {
		keys = append(keys, m)
	}
	sort.Ints(keys) // deterministic order for the tolerant sort below
	var scored []Season
	for _, m := range keys {
		s := seasonScore(x, m, sc)
		s.Period = time.Duration(m) * step
		scored = append(scored, s)
	}
	sort.SliceStable(scored, func(i, j int) bool {
		a, b := scored[i], scored[j]
		if math.Abs(a.Strength-b.Strength) > 0.02 {
			return a.Strength > b.Strength
		}
		return a.Steps < b.Steps
	})
	var out []Season
	for _, s := range scored {
		if !significant(s) {
			continue
		}
		if len(out) == 0 {
			if harmonicOf(s, scored) {
				continue
			}
			out = append(out, s)
			continue
		}
		first := out[0]
		if s.Steps%first.Steps != 0 {
			continue
		}
		// A multiple of the first period: keep it only when it explains
		// more once the first season is removed.
		rest := subtractProfile(x, first.Steps, sc)
		s2 := seasonScore(rest, s.Steps, sc)
		if significant(s2) {
			s2.Period = s.Period
			out = append(out, s2)
		}
		if len(out) == maxSeasons {
			break
		}
	}
	return out
}

// harmonicOf reports whether s is a multiple of a shorter significant
// period that explains nearly as much (within 0.1 of strength): a cycle of
// one hour also repeats every eight hours, and scoring long periods on
// block means flatters them.
func harmonicOf(s Season, scored []Season) bool {
	for _, d := range scored {
		if d.Steps < s.Steps && s.Steps%d.Steps == 0 && significant(d) && d.Strength >= s.Strength-0.1 {
			return true
		}
	}
	return false
}

// significant says whether a scored period is a season: a strong profile
// with some autocorrelation, or a weaker profile with clear
// autocorrelation.
func significant(s Season) bool {
	return (s.Strength >= minSeasonStrength && s.ACF >= minSeasonACF) ||
		(s.Strength >= minSeasonStrength/2 && s.ACF >= 2.5*minSeasonACF)
}

// seasonScore measures the period-m seasonality of x. Long periods are
// scored on block sums of x (down to about 48 phases per cycle): cheaper,
// and the averaging within blocks makes a slow daily shape stand out of
// sample-to-sample noise.
func seasonScore(x []float64, m int, sc *scratch) Season {
	if b := blockFor(m); b > 1 {
		s := seasonScore(blockMeans(x, b), m/b, sc)
		s.Steps = m
		return s
	}
	r := detrendMA(x, m, sc)
	k := float64(len(r)) / float64(m)
	prof := robustProfile(r, m, 0, sc)
	// Score on the series with its unexplained part clipped the same way,
	// so a few spikes neither make nor break a season.
	med, mad := 0.0, 0.0
	{
		rem := sc.buf(bufRemainder, len(r))
		for c := 0; c < len(r); c += m {
			for p, v := range r[c:min(c+m, len(r))] {
				rem[c+p] = v - prof[p]
			}
		}
		med, mad = num.MedianMADBuf(rem, sc.buf(bufSelect, len(r)))
	}
	if mad > 0 {
		for c := 0; c < len(r); c += m {
			cyc := r[c:min(c+m, len(r))]
			for p, v := range cyc {
				e := v - prof[p]
				cyc[p] = prof[p] + math.Min(math.Max(e, med-float64(5*mad)), med+float64(5*mad))
			}
		}
	}
	var vr, vR float64
	mr := num.Mean(r)
	for c := 0; c < len(r); c += m {
		for p, v := range r[c:min(c+m, len(r))] {
			vr += float64((v - mr) * (v - mr))
			d := v - prof[p]
			vR += float64(d * d)
		}
	}
	s := Season{Steps: m}
	if vr <= 0 {
		return s
	}
	f := 1 - vR/vr
	f = (f - 1/k) / (1 - 1/k)
	s.Strength = math.Max(0, math.Min(1, f))
	s.ACF = acfAt(r, m)
	return s
}

// blockFor is the largest divisor b of m with m/b ≥ 48 phases, or 1.
func blockFor(m int) int {
	for b := m / 48; b > 1; b-- {
		if m%b == 0 {
			return b
		}
	}
	return 1
}

// blockMeans averages x over consecutive blocks of b points (a trailing
// partial block is dropped).
func blockMeans(x []float64, b int) []float64 {
	out := make([]float64, len(x)/b)
	for i := range out {
		s := 0.0
		for _, v := range x[i*b : (i+1)*b] {
			s += v
		}
		out[i] = s / float64(b)
	}
	return out
}

// detrendMA returns x minus its centred moving average of length m (a 2×m
// average when m is even), with the ends held at the nearest full window.
func detrendMA(x []float64, m int, sc *scratch) []float64 {
	n := len(x)
	trend := movingAverage(x, m, sc)
	out := sc.buf(bufDetrended, n)
	for i := range x {
		out[i] = x[i] - trend[i]
	}
	return out
}

// movingAverage is the centred moving average of length m (for even m
// the 2×m average: m+1 points, the two end ones at half weight), held at the
// nearest full window near the ends.
func movingAverage(x []float64, m int, sc *scratch) []float64 {
	n := len(x)
	out := sc.buf(bufTrend, n)
	half := m / 2
	if m <= 1 || 2*half+1 > n {
		mu := num.Mean(x)
		for i := range out {
			out[i] = mu
		}
		if m <= 1 {
			copy(out, x)
		}
		return out
	}
	cs := sc.buf(bufCumSum, n+1)
	cs[0] = 0
	for i, v := range x {
		cs[i+1] = cs[i] + v
	}
	for i := half; i < n-half; i++ {
		s := cs[i+half+1] - cs[i-half]
		if m%2 == 0 {
			s -= float64(0.5 * (x[i-half] + x[i+half]))
		}
		out[i] = s / float64(m)
	}
	for i := 0; i < half; i++ {
		out[i] = out[half]
	}
	for i := n - half; i < n; i++ {
		out[i] = out[n-half-1]
	}
	return out
}

// phaseMeans is the mean of x per phase t mod m, centred to zero mean. With
// decay in (0,1) recent cycles weigh more (weight decay^(cycles ago)).
func phaseMeans(x []float64, m int, decay float64) []float64 {
	sum := make([]float64, m)
	w := make([]float64, m)
	n := len(x)
	// The weight of each cycle back, computed once per cycle.
	var weights []float64
	if decay > 0 && decay < 1 && n > 0 {
		weights = make([]float64, (n-1)/m+1)
		for c := range weights {
			weights[c] = math.Pow(decay, float64(c))
		}
	}
	for c := 0; c < n; c += m {
		// The cycle back of point c+p, (n-1-c-p)/m, is back for the
		// phases up to edge and one less after it.
		back, edge := (n-1-c)/m, (n-1-c)%m
		for p, v := range x[c:min(c+m, n)] {
			if !num.Finite(v) {
				continue
			}
			wt := 1.0
			if weights != nil {
				if p <= edge {
					wt = weights[back]
				} else {
					wt = weights[back-1]
				}
			}
			sum[p] += float64(wt * v)
			w[p] += wt
		}
	}
	for i := range sum {
		if w[i] > 0 {
			sum[i] /= w[i]
		}
	}
	c := num.Mean(sum)
	for i := range sum {
		sum[i] -= c
	}
	return sum
}

func subtractProfile(x []float64, m int, sc *scratch) []float64 {
	prof := phaseMeans(detrendMA(x, m, sc), m, 0)
	out := make([]float64, len(x))
	for c := 0; c < len(x); c += m {
		for p, v := range x[c:min(c+m, len(x))] {
			out[c+p] = v - prof[p]
		}
	}
	return out
}

// acfAt is the sample autocorrelation of x at lag k.
func acfAt(x []float64, k int) float64 {
	n := len(x)
	if k >= n {
		return 0
	}
	m := num.Mean(x)
	var num, den float64
	for i, v := range x {
		d := v - m
		den += float64(d * d)
		if i+k < n {
			num += float64(d * (x[i+k] - m))
		}
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// periodogramPeaks returns the periods (in samples, rounded) of the k
// strongest local maxima of the periodogram of the linearly detrended x.
func periodogramPeaks(x []float64, k int) []int {
	n := len(x)
	if n < 16 {
		return nil
	}
	// Zero-pad the detrended series to a power of two: gonum's FFT is slow
	// for lengths with large prime factors.
	p := 1
	for p < n {
		p <<= 1
	}
	d := make([]float64, p)
	copy(d, detrendLinear(x))
	coef := fourier.NewFFT(p).Coefficients(nil, d)
	pow := make([]float64, len(coef))
	for i, c := range coef {
		pow[i] = cmplx.Abs(c) * cmplx.Abs(c)
	}
	type peak struct {
		f int
		p float64
	}
	var peaks []peak
	for f := 2; f < len(pow)-1; f++ {
		if pow[f] > pow[f-1] && pow[f] >= pow[f+1] {
			peaks = append(peaks, peak{f, pow[f]})
		}
	}
	sort.Slice(peaks, func(i, j int) bool { return peaks[i].p > peaks[j].p })
	var out []int
	for _, pk := range peaks {
		if len(out) == k {
			break
		}
		out = append(out, int(math.Round(float64(p)/float64(pk.f))))
	}
	return out
}

// detrendLinear removes the least-squares line from x.
func detrendLinear(x []float64) []float64 {
	a, b := num.LinearFit(x)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - a - b*float64(i)
	}
	return out
}

// profileDecay weighs each cycle back by this factor in Decompose's profiles.
const profileDecay = 0.9

// Decompose returns the seasonal profile of each period of x (no missing
// values: fill gaps first), prof[i][t mod periods[i]], each centred to zero
// mean, so that x minus the profiles is the seasonally adjusted series.
//
// Extraction, per period m from the first, on x minus the other profiles:
// remove a centred moving average of length m (the trend), average the
// rest per phase with recent cycles weighted more (profileDecay per cycle),
// clip what that profile leaves unexplained at 4 robust standard
// deviations (so spikes and anomalies do not leak into the profile) and
// average again, then smooth the profile with a circular running median and
// centre it. With several periods two passes refine each profile given the
// others.
func Decompose(x []float64, periods []int) [][]float64 {
	n := len(x)
	prof := make([][]float64, len(periods))
	for i, m := range periods {
		prof[i] = make([]float64, m)
	}
	d := make([]float64, n)
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	passes := 2
	if len(periods) == 1 {
		passes = 1
	}
	for pass := 0; pass < passes; pass++ {
		for i, m := range periods {
			copy(d, x)
			for j, p := range prof {
				if j == i {
					continue
				}
				for c := 0; c < n; c += len(p) {
					for ph := range d[c:min(c+len(p), n)] {
						d[c+ph] -= p[ph]
					}
				}
			}
			prof[i] = smoothCircular(robustProfile(detrendMA(d, m, sc), m, profileDecay, sc), m/48)
		}
	}
	return prof
}

// robustProfile is the per-phase mean of r (see phaseMeans) after clipping
// the remainder (r minus the per-phase medians) at 4 robust standard
// deviations, so that spikes do not leak into the profile while sharp seasonal shapes
// (a weekend step) are kept.
func robustProfile(r []float64, m int, decay float64, sc *scratch) []float64 {
	prof := phaseMedians(r, m)
	rem := sc.buf(bufRemainder, len(r))
	for c := 0; c < len(r); c += m {
		for p, v := range r[c:min(c+m, len(r))] {
			rem[c+p] = v - prof[p]
		}
	}
	med, mad := num.MedianMADBuf(rem, sc.buf(bufSelect, len(r)))
	if mad <= 0 {
		return prof
	}
	lo, hi := med-float64(4*mad), med+float64(4*mad)
	clipped := sc.buf(bufClipped, len(r))
	for c := 0; c < len(r); c += m {
		for p, e := range rem[c:min(c+m, len(r))] {
			clipped[c+p] = prof[p] + math.Min(math.Max(e, lo), hi)
		}
	}
	return phaseMeans(clipped, m, decay)
}

// phaseMedians is the median of r per phase t mod m.
func phaseMedians(r []float64, m int) []float64 {
	out := make([]float64, m)
	buf := make([]float64, 0, len(r)/m+1)
	for p := 0; p < m; p++ {
		buf = buf[:0]
		for t := p; t < len(r); t += m {
			if num.Finite(r[t]) {
				buf = append(buf, r[t])
			}
		}
		if len(buf) > 0 {
			out[p] = num.QuantileSelect(buf, 0.5)
		}
	}
	return out
}

// smoothCircular is a circular running median of half-width w, centred to
// zero mean: it removes phase-to-phase noise but keeps sharp seasonal
// edges (the start of a weekend, a nightly batch).
func smoothCircular(p []float64, w int) []float64 {
	if w < 1 {
		return p
	}
	m := len(p)
	out := make([]float64, m)
	buf := make([]float64, 2*w+1)
	for i := range p {
		for j := -w; j <= w; j++ {
			buf[j+w] = p[((i+j)%m+m)%m]
		}
		sort.Float64s(buf)
		out[i] = buf[w]
	}
	c := num.Mean(out)
	for i := range out {
		out[i] -= c
	}
	return out
}
