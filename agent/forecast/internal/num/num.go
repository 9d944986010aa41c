// Package num holds the small numeric helpers the forecasting packages
// share: finite-value filters, linear-time medians and robust spreads,
// interpolated quantiles, least-squares lines and gap filling.
//
// It is pure arithmetic on slices: no I/O, no clock, no state. Callers own
// their slices; functions that reorder their input say so.
package num

import (
	"math"
	"sort"
)

// Finite reports whether v is neither NaN nor infinite: whether its
// exponent bits are not all ones (one test, where math.IsNaN and
// math.IsInf take three).
func Finite(v float64) bool { return math.Float64bits(v)&expBits != expBits }

// expBits are a float64's exponent bits.
const expBits = 0x7ff << 52

// CountFinite is the number of finite values in y.
func CountFinite(y []float64) int {
	n := 0
	for _, v := range y {
		if Finite(v) {
			n++
		}
	}
	return n
}

// Mean is the plain mean of x (0 when empty); NaN in x makes it NaN.
func Mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// MeanFinite is the mean of the finite values of y (NaN when none).
func MeanFinite(y []float64) float64 {
	s, k := 0.0, 0
	for _, v := range y {
		if Finite(v) {
			s += v
			k++
		}
	}
	if k == 0 {
		return math.NaN()
	}
	return s / float64(k)
}

// MedianMAD returns the median of the finite values of x and their MAD
// scaled to a Gaussian σ, in linear time (selection, not sorting); NaN and
// 0 when x has no finite value.
func MedianMAD(x []float64) (float64, float64) { return MedianMADBuf(x, nil) }

// MedianMADBuf is MedianMAD working in buf (overwritten) when it holds
// len(x) values, so that repeated calls need not allocate.
func MedianMADBuf(x, buf []float64) (float64, float64) {
	s := buf[:0]
	if cap(s) < len(x) {
		s = make([]float64, 0, len(x))
	}
	for _, v := range x {
		if Finite(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN(), 0
	}
	med := Median(s)
	for i, v := range s {
		s[i] = math.Abs(v - med)
	}
	return med, 1.4826 * Median(s)
}

// Median returns the median of x, reordering x. x must not be empty.
func Median(x []float64) float64 {
	n := len(x)
	if n%2 == 1 {
		return SelectK(x, n/2)
	}
	hi := SelectK(x, n/2)
	// After selection the lower half holds the smaller values.
	lo := x[0]
	for _, v := range x[:n/2] {
		if v > lo {
			lo = v
		}
	}
	return (lo + hi) / 2
}

// SelectK returns the k-th smallest element of x (0-based), partially
// reordering x so that x[:k] ≤ x[k] ≤ x[k+1:]. When x holds neither NaN
// nor -0 (its equal values are then the same bits) it partitions without
// data-dependent branches (selectLomuto), several times quicker on
// unordered data than Hoare's quickselect, which it keeps otherwise so
// that the sign of a zero result stays what it was.
func SelectK(x []float64, k int) float64 {
	if plain(x) {
		return selectLomuto(x, k)
	}
	return selectHoare(x, k)
}

// plain says whether x holds neither NaN nor -0.
func plain(x []float64) bool {
	for _, v := range x {
		if v != v || math.Float64bits(v) == 1<<63 {
			return false
		}
	}
	return true
}

// selectHoare is SelectK by Hoare's quickselect with a median-of-three
// pivot.
func selectHoare(x []float64, k int) float64 {
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

// selectLomuto is SelectK for x without NaN: Lomuto partitions whose
// every step swaps and advances by the comparison's result (no branch to
// mispredict), around a median of three (a ninther on long ranges),
// narrowing to the side that holds k; the last few elements are sorted.
func selectLomuto(x []float64, k int) float64 {
	w := x // the window that holds the k-th smallest
	for len(w) > 24 {
		n := len(w)
		var p float64
		if n > 400 {
			s := n / 8
			p = median3(median3(w[0], w[s], w[2*s]), median3(w[3*s], w[4*s], w[5*s]), median3(w[6*s], w[7*s], w[n-1]))
		} else {
			p = median3(w[0], w[n/2], w[n-1])
		}
		j := partitionLess(w, p)
		switch {
		case k < j:
			w = w[:j]
		case j > 0:
			w, k = w[j:], k-j
		default:
			// p is the smallest value: take its copies off the front.
			e := partitionLessEq(w, p)
			if k < e {
				return w[k]
			}
			w, k = w[e:], k-e
		}
	}
	for i := 1; i < len(w); i++ {
		v, j := w[i], i
		for j > 0 && v < w[j-1] {
			w[j] = w[j-1]
			j--
		}
		w[j] = v
	}
	return w[k]
}

// partitionLess moves the elements of x below p to its front, keeping
// the rest behind them, and returns how many there are.
func partitionLess(x []float64, p float64) int {
	j := 0
	for i, v := range x {
		x[i] = x[j]
		x[j] = v
		j += b2i(v < p)
	}
	return j
}

// partitionLessEq is partitionLess for the elements at most p.
func partitionLessEq(x []float64, p float64) int {
	j := 0
	for i, v := range x {
		x[i] = x[j]
		x[j] = v
		j += b2i(!(p < v))
	}
	return j
}

// b2i is 1 for true; the compiler makes it a flag, not a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// median3 is the middle of three values.
func median3(a, b, c float64) float64 {
	if b < a {
		a, b = b, a
	}
	if c < b {
		b = c
		if b < a {
			b = a
		}
	}
	return b
}

// SortFloats sorts x ascending: sort.Float64s's result to the bit. When x
// holds neither NaN nor -0 (its equal values are then the same bits, so
// the sorted order is unique) and is long, by a radix sort on the values'
// bits (least significant byte first, a byte every key shares skipped),
// several times quicker than comparison sorting; otherwise by
// sort.Float64s.
func SortFloats(x []float64) {
	n := len(x)
	if n < 256 || !plain(x) {
		sort.Float64s(x)
		return
	}
	// Keys that order as the values: positives with the top bit set,
	// negatives complemented.
	a, b := make([]uint64, n), make([]uint64, n)
	for i, v := range x {
		u := math.Float64bits(v)
		if u>>63 != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		a[i] = u
	}
	var count [256]int
	for shift := uint(0); shift < 64; shift += 8 {
		clear(count[:])
		for _, u := range a {
			count[(u>>shift)&0xff]++
		}
		if count[(a[0]>>shift)&0xff] == n {
			continue
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, u := range a {
			d := (u >> shift) & 0xff
			b[count[d]] = u
			count[d]++
		}
		a, b = b, a
	}
	for i, u := range a {
		if u>>63 != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		x[i] = math.Float64frombits(u)
	}
}

// HasNegativeZero says whether x holds a -0. Selection and sorting agree
// on every order statistic to the bit except, among equal zeros, on their
// sign: the selections below that promise a sort's result fall back to
// sorting when x holds a -0.
func HasNegativeZero(x []float64) bool {
	for _, v := range x {
		if math.Float64bits(v) == 1<<63 {
			return true
		}
	}
	return false
}

// QuantileSelect is QuantileSorted of x sorted, to the bit, in linear time
// (selection) when x holds no -0; it reorders x, which must hold no NaN.
func QuantileSelect(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	if HasNegativeZero(x) {
		sort.Float64s(x)
		return QuantileSorted(x, q)
	}
	pos := q * float64(len(x)-1)
	i := int(math.Floor(pos))
	if i >= len(x)-1 {
		return SelectK(x, len(x)-1)
	}
	if i < 0 {
		return SelectK(x, 0)
	}
	f := pos - float64(i)
	lo := SelectK(x, i)
	hi := x[i+1]
	for _, v := range x[i+2:] {
		if v < hi {
			hi = v
		}
	}
	return float64(lo*(1-f)) + float64(hi*f)
}

// QuantileSorted is the linearly interpolated quantile q of sorted x (NaN
// when x is empty).
func QuantileSorted(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(x)-1)
	i := int(math.Floor(pos))
	if i >= len(x)-1 {
		return x[len(x)-1]
	}
	if i < 0 {
		return x[0]
	}
	f := pos - float64(i)
	return float64(x[i]*(1-f)) + float64(x[i+1]*f)
}

// LinearFit returns the intercept and slope of the least-squares line
// through the finite points of x against their index.
func LinearFit(x []float64) (float64, float64) {
	var st, sy, stt, sty, k float64
	for i, v := range x {
		if !Finite(v) {
			continue
		}
		t := float64(i)
		st += t
		sy += v
		stt += float64(t * t)
		sty += float64(t * v)
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

// FillGaps returns a copy of y with non-finite points linearly
// interpolated (held at the ends). An all-missing series becomes zeros.
func FillGaps(y []float64) []float64 {
	out := make([]float64, len(y))
	copy(out, y)
	prev := -1
	for i, v := range out {
		if !Finite(v) {
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
				out[j] = a + float64(f*(v-a))
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
