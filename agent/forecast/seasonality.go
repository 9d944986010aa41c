package forecast

import (
	"fmt"
	"math"
	"math/cmplx"
	"sort"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

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

// DetectSeasonality finds the seasonal periods of y sampled every step. It
// tests fixed candidates (1h to 7d) and the strongest periodogram peaks,
// only periods with at least three full cycles in y (configured seasons
// need two), scores each by the variance its per-phase profile explains
// after removing a centred moving average of one period (a trend filter
// that cancels that season) and by the autocorrelation at that lag, and
// keeps up to two significant periods: the strongest that is not a harmonic
// of a shorter one, then a multiple of it that still explains variance once
// the first is removed. NaN in y is interpolated.
func DetectSeasonality(y []float64, step time.Duration) []Season {
	if step <= 0 {
		step = DefaultStep
	}
	x := fillGaps(y)
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
	keys := make([]int, 0, len(cands))
	for m := range cands {
		keys = append(keys, m)
	}
	sort.Ints(keys) // deterministic order for the tolerant sort below
	var scored []Season
	for _, m := range keys {
		s := seasonScore(x, m)
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
		rest := subtractProfile(x, first.Steps)
		s2 := seasonScore(rest, s.Steps)
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
func seasonScore(x []float64, m int) Season {
	if b := blockFor(m); b > 1 {
		s := seasonScore(blockMeans(x, b), m/b)
		s.Steps = m
		return s
	}
	r := detrendMA(x, m)
	k := float64(len(r)) / float64(m)
	prof := robustProfile(r, m, 0)
	// Score on the series with its unexplained part clipped the same way,
	// so a few spikes neither make nor break a season.
	med, mad := 0.0, 0.0
	{
		rem := make([]float64, len(r))
		for t, v := range r {
			rem[t] = v - prof[t%m]
		}
		med, mad = medianMAD(rem)
	}
	if mad > 0 {
		for t, v := range r {
			e := v - prof[t%m]
			r[t] = prof[t%m] + math.Min(math.Max(e, med-5*mad), med+5*mad)
		}
	}
	var vr, vR float64
	mr := mean(r)
	for i, v := range r {
		vr += (v - mr) * (v - mr)
		d := v - prof[i%m]
		vR += d * d
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
func detrendMA(x []float64, m int) []float64 {
	n := len(x)
	trend := movingAverage(x, m)
	out := make([]float64, n)
	for i := range x {
		out[i] = x[i] - trend[i]
	}
	return out
}

// movingAverage is the centred moving average of length m (for even m
// the 2×m average: m+1 points, the two end ones at half weight), held at the
// nearest full window near the ends.
func movingAverage(x []float64, m int) []float64 {
	n := len(x)
	out := make([]float64, n)
	half := m / 2
	if m <= 1 || 2*half+1 > n {
		mu := mean(x)
		for i := range out {
			out[i] = mu
		}
		if m <= 1 {
			copy(out, x)
		}
		return out
	}
	cs := make([]float64, n+1)
	for i, v := range x {
		cs[i+1] = cs[i] + v
	}
	for i := half; i < n-half; i++ {
		s := cs[i+half+1] - cs[i-half]
		if m%2 == 0 {
			s -= 0.5 * (x[i-half] + x[i+half])
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
	for i, v := range x {
		if !finite(v) {
			continue
		}
		wt := 1.0
		if decay > 0 && decay < 1 {
			wt = math.Pow(decay, float64((n-1-i)/m))
		}
		sum[i%m] += wt * v
		w[i%m] += wt
	}
	for i := range sum {
		if w[i] > 0 {
			sum[i] /= w[i]
		}
	}
	c := mean(sum)
	for i := range sum {
		sum[i] -= c
	}
	return sum
}

func subtractProfile(x []float64, m int) []float64 {
	prof := phaseMeans(detrendMA(x, m), m, 0)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - prof[i%m]
	}
	return out
}

// medianMAD returns the median and the MAD scaled to a Gaussian σ, in
// linear time (selection, not sorting).
func medianMAD(x []float64) (float64, float64) {
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if finite(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN(), 0
	}
	med := median(s)
	for i, v := range s {
		s[i] = math.Abs(v - med)
	}
	return med, 1.4826 * median(s)
}

// median returns the median of x, reordering x.
func median(x []float64) float64 {
	n := len(x)
	if n%2 == 1 {
		return selectK(x, n/2)
	}
	hi := selectK(x, n/2)
	// After selection the lower half holds the smaller values.
	lo := x[0]
	for _, v := range x[:n/2] {
		if v > lo {
			lo = v
		}
	}
	return (lo + hi) / 2
}

// selectK returns the k-th smallest element of x (0-based), partially
// reordering x so that x[:k] ≤ x[k] ≤ x[k+1:] (Hoare's quickselect with a
// median-of-three pivot).
func selectK(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}

func mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// acfAt is the sample autocorrelation of x at lag k.
func acfAt(x []float64, k int) float64 {
	n := len(x)
	if k >= n {
		return 0
	}
	m := mean(x)
	var num, den float64
	for i, v := range x {
		d := v - m
		den += d * d
		if i+k < n {
			num += d * (x[i+k] - m)
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
	a, b := linearFit(x)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - a - b*float64(i)
	}
	return out
}

// linearFit returns the intercept and slope of the least-squares line
// through the finite points of x against their index.
func linearFit(x []float64) (float64, float64) {
	var st, sy, stt, sty, k float64
	for i, v := range x {
		if !finite(v) {
			continue
		}
		t := float64(i)
		st += t
		sy += v
		stt += t * t
		sty += t * v
		k++
	}
	if k == 0 {
		return 0, 0
	}
	den := k*stt - st*st
	if den == 0 {
		return sy / k, 0
	}
	b := (k*sty - st*sy) / den
	return (sy - b*st) / k, b
}

// fillGaps returns a copy of y with non-finite points linearly interpolated
// (held at the ends). An all-missing series becomes zeros.
func fillGaps(y []float64) []float64 {
	out := make([]float64, len(y))
	copy(out, y)
	prev := -1
	for i, v := range out {
		if !finite(v) {
			continue
		}
		if prev < 0 {
			for j := 0; j < i; j++ {
				out[j] = v
			}
		} else if i-prev > 1 {
			a := out[prev]
			for j := prev + 1; j < i; j++ {
				f := float64(j-prev) / float64(i-prev)
				out[j] = a + f*(v-a)
			}
		}
		prev = i
	}
	if prev < 0 {
		for i := range out {
			out[i] = 0
		}
		return out
	}
	for j := prev + 1; j < len(out); j++ {
		out[j] = out[prev]
	}
	return out
}

// seasonalPeriods returns the seasonal periods, in steps, a model should use
// for y, and a sentence saying why. Periods given in Options are used when
// the history holds two full cycles; otherwise they are detected. With less
// than two days of history, models go non-seasonal (cold start).
func seasonalPeriods(y []float64, o Options) ([]int, string) {
	step := o.step()
	n := len(y)
	if len(o.Seasonality) > 0 {
		var ps []int
		var short []string
		for _, d := range o.Seasonality {
			m := int(d / step)
			if m < 2 {
				continue
			}
			if 2*m > n {
				short = append(short, d.String())
				continue
			}
			ps = append(ps, m)
		}
		sort.Ints(ps)
		if len(ps) == 0 {
			return nil, fmt.Sprintf("cold start: %s of history, fewer than two seasons of %v; non-seasonal", span(n, step), short)
		}
		return ps, fmt.Sprintf("configured seasons %v", durations(ps, step))
	}
	ss := DetectSeasonality(y, step)
	var ps []int
	for _, s := range ss {
		ps = append(ps, s.Steps)
	}
	sort.Ints(ps)
	d := o.daily()
	switch {
	case len(ps) > 0:
		return ps, fmt.Sprintf("detected seasons %v (strength %.2f)", durations(ps, step), ss[0].Strength)
	case 2*d > n:
		return nil, fmt.Sprintf("cold start: %s of history, fewer than two daily seasons; non-seasonal", span(n, step))
	default:
		return nil, "no significant seasonality detected"
	}
}

func span(n int, step time.Duration) string {
	d := time.Duration(n) * step
	if d >= 24*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.String()
}

func durations(ps []int, step time.Duration) []string {
	out := make([]string, len(ps))
	for i, m := range ps {
		d := time.Duration(m) * step
		if d%(24*time.Hour) == 0 {
			out[i] = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
		} else {
			out[i] = d.String()
		}
	}
	return out
}
