package forecast

import (
	"math"
	"sort"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
	"github.com/foreshape/foreshape/agent/forecast/season"
)

// WorkloadKind is the shape of a series' demand.
type WorkloadKind string

// Workload kinds.
const (
	// Diurnal demand follows a daily (or longer) cycle.
	Diurnal WorkloadKind = "diurnal"
	// Bursty demand sits at a base level with frequent large spikes.
	Bursty WorkloadKind = "bursty"
	// Flat demand has neither a cycle nor frequent spikes.
	Flat WorkloadKind = "flat"
)

// Workload describes one series.
type Workload struct {
	Kind WorkloadKind
	// SeasonalStrength is the strength of the strongest season of at least
	// 12 hours (see Season.Strength); 0 when there is none.
	SeasonalStrength float64
	// Spikiness is the share of points more than spikeSigmas robust
	// standard deviations above the local (one hour) median.
	Spikiness float64
	// Seasons are the detected seasons.
	Seasons []season.Season
}

// Characterisation thresholds.
const (
	diurnalStrength = 0.3
	spikeSigmas     = 5
	burstyShare     = 0.01
)

// Characterise classifies y sampled every step: diurnal when it has a
// season of 12 hours or more with strength at least 0.3; otherwise bursty
// when more than 1% of points are spikes (over 5 robust standard deviations
// above the median of the surrounding hour); otherwise flat.
func Characterise(y []float64, step time.Duration) Workload {
	if step <= 0 {
		step = DefaultStep
	}
	w := Workload{Seasons: season.Detect(y, step)}
	for _, s := range w.Seasons {
		if s.Period >= 12*time.Hour && s.Strength > w.SeasonalStrength {
			w.SeasonalStrength = s.Strength
		}
	}
	w.Spikiness = spikiness(num.FillGaps(y), int(time.Hour/step))
	switch {
	case w.SeasonalStrength >= diurnalStrength:
		w.Kind = Diurnal
	case w.Spikiness > burstyShare:
		w.Kind = Bursty
	default:
		w.Kind = Flat
	}
	return w
}

// spikiness is the share of points above their window's median by more than
// spikeSigmas robust standard deviations of the deviations from it.
func spikiness(x []float64, win int) float64 {
	if win < 3 {
		win = 3
	}
	n := len(x)
	if n < 2*win {
		return 0
	}
	dev := make([]float64, n)
	buf := make([]float64, 0, 2*win+1)
	for i := range x {
		lo, hi := i-win, i+win+1
		if lo < 0 {
			lo = 0
		}
		if hi > n {
			hi = n
		}
		buf = append(buf[:0], x[lo:hi]...)
		sort.Float64s(buf)
		dev[i] = x[i] - num.QuantileSorted(buf, 0.5)
	}
	_, s := num.MedianMAD(dev)
	if s <= 0 {
		// Mostly constant with departures: scale by the mean absolute
		// deviation instead.
		for _, d := range dev {
			s += math.Abs(d)
		}
		s /= float64(n)
		if s <= 0 {
			return 0
		}
	}
	k := 0
	for _, d := range dev {
		if d > spikeSigmas*s {
			k++
		}
	}
	return float64(k) / float64(n)
}

// Bias says which of two resources dominates.
type Bias string

// Biases.
const (
	ReadHeavy   Bias = "read-heavy"
	WriteHeavy  Bias = "write-heavy"
	CPUBound    Bias = "cpu-bound"
	MemoryBound Bias = "memory-bound"
	Balanced    Bias = "balanced"
)

// dominance is how many times larger one side must be to dominate.
const dominance = 1.5

// ClassifyIO says whether a workload is read- or write-heavy from its read
// and write IO series (same unit, same grid): the side whose mean is at
// least 1.5 times the other's dominates; otherwise it is balanced.
func ClassifyIO(read, write []float64) Bias {
	return compare(num.MeanFinite(read), num.MeanFinite(write), ReadHeavy, WriteHeavy)
}

// ClassifyBound says whether a workload is CPU- or memory-bound from its
// CPU and memory utilisation, each a share of the capacity available to it
// (same scale, for example percent): the resource whose 95th percentile is
// at least 1.5 times the other's bounds it; otherwise it is balanced.
func ClassifyBound(cpu, mem []float64) Bias {
	return compare(percentile(cpu, 0.95), percentile(mem, 0.95), CPUBound, MemoryBound)
}

func compare(a, b float64, aWins, bWins Bias) Bias {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return Balanced
	case a > 0 && a >= dominance*b:
		return aWins
	case b > 0 && b >= dominance*a:
		return bWins
	}
	return Balanced
}

func percentile(x []float64, q float64) float64 {
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if num.Finite(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	sort.Float64s(s)
	return num.QuantileSorted(s, q)
}
