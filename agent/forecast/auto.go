package forecast

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/global"
	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// autoModel is the default forecaster. Per series it takes a small set of
// cheap candidates (naive, a rolling median, seasonal naive, ETS, theta, a
// least-squares ARIMA and, when the history holds two seasons, MSTL-style
// decompositions with ETS, theta or ARIMA on the adjusted series), fits each
// on the history before a set of rolling origins spread over the recent
// part of the series, replays it over the rest and records its forecasts at
// each origin for the requested horizon. It then keeps the single model or
// the equal-weight mean of the best two to five (ranked singly) whose
// backtest MAE is lowest, refits the chosen members on the whole history,
// and calibrates the bands from the backtest residuals of the chosen
// combination (split-conformal per horizon step). Selection therefore costs
// two fits and one replay per candidate. When the backtest origins span
// fewer than minWindows horizons, the few independent errors behind both
// the choice and the bands make the bands too narrow, in the tails most;
// they then get Student-t tails (sparseDegrees). When, in addition, the
// history holds less than two days, the global network (when there is one
// for the step) forecasts on its own, point and quantiles, unless its
// backtest error exceeds the best candidate's by coldGlobalMargin.
//
// The backtest parameters are out of sample for every origin; the choice
// among a dozen combinations is made on the same residuals that calibrate
// the bands, which makes the bands slightly optimistic: selectionWiden
// widens them for it. On five-minute series the bands then take the
// correction pooled across the tuning series (pooledBands).
//
// After a level shift (anomaly.LevelShifts) the history before the last shift stops
// dominating: when the segment after it is long enough the models fit only
// that segment; otherwise the older history is moved to the new level. A
// series with more than maxShifts shifts is switching between regimes: over
// horizons of six hours or more its whole history is kept.
type autoModel struct {
	opts   Options
	ac     *autoCore
	cal    calibration
	widen  float64
	reason string
	fitted bool
	shift  lastShift
	last   time.Time // time of the last point of the next Fit (Timed)
	// cold, on a cold start with a global network, is that network: its
	// quantiles, moved to centre on the combination of its median with
	// the last value and a mean-reverting level, are the forecast.
	cold *globalCore
	// coldMember says the cold network is also one of ac's members, which
	// observe every new point already.
	coldMember bool
	health
}

var (
	_ Forecaster = (*autoModel)(nil)
	_ Refitter   = (*autoModel)(nil)
	_ Timed      = (*autoModel)(nil)
)

// SetLast implements Timed.
func (m *autoModel) SetLast(t time.Time) { m.last = t }

func newAutoModel(o Options) *autoModel { return &autoModel{opts: o} }

func (m *autoModel) Name() string { return "auto" }

// candidate is one model auto may use.
type candidate struct {
	name string
	c    core
}

// autoCore combines member cores with equal weights.
type autoCore struct {
	members []candidate
	buf     []float64
}

func (a *autoCore) fit([]float64) error { return nil }
func (a *autoCore) reset() {
	for _, m := range a.members {
		m.c.reset()
	}
}
func (a *autoCore) observe(v float64) {
	for _, m := range a.members {
		m.c.observe(v)
	}
}
func (a *autoCore) forecast(out []float64) {
	if len(a.members) == 1 {
		a.members[0].c.forecast(out)
		return
	}
	if cap(a.buf) < len(out) {
		a.buf = make([]float64, len(out))
	}
	buf := a.buf[:len(out)]
	for i := range out {
		out[i] = 0
	}
	for _, m := range a.members {
		m.c.forecast(buf)
		for i, v := range buf {
			out[i] += v
		}
	}
	k := float64(len(a.members))
	for i := range out {
		out[i] /= k
	}
}
func (a *autoCore) label() string {
	names := make([]string, len(a.members))
	for i, m := range a.members {
		names[i] = m.name
	}
	return "auto(" + strings.Join(names, "+") + ")"
}
func (a *autoCore) bytes() int {
	b := 64
	for _, m := range a.members {
		b += m.c.bytes()
	}
	return b
}

// candidates builds the unfitted candidate cores for a history of n points
// with seasonal periods ps: the classical ones, and the global network when
// there is one for the step.
func candidates(ps []int, o Options, n, H int) []candidate {
	daily := o.daily()
	w := 2 * H
	if w < 12 {
		w = 12
	}
	if w > 288 {
		w = 288
	}
	short := 4*H < daily
	cs := []candidate{
		{"naive", &naiveCore{}},
		{"median", newMedianCore(w)},
		{"ets", &etsSelect{specs: []etsSpec{{}, {trend: true, damped: true}}}},
		{"theta", &thetaCore{}},
		{"arima", &arCore{mixed: short}},
	}
	if n >= daily && daily > 1 {
		cs = append(cs, candidate{"seasonal-naive", newSnaive(daily)})
	}
	if len(ps) > 0 {
		cache := &decompCache{}
		for _, c := range []candidate{
			{"mstl-ets", newETS(etsSpec{})},
			{"mstl-theta", &thetaCore{}},
			{"mstl-arima", &arCore{mixed: short}},
		} {
			m := newMSTL(ps, c.c)
			m.cache = cache
			cs = append(cs, candidate{c.name, m})
		}
	}
	if g, err := globalModel(o, "nbeats"); err == nil {
		cs = append(cs, candidate{"global", newGlobalCore(g)})
	}
	return cs
}

// Fit implements Forecaster.
func (m *autoModel) Fit(y []float64) error {
	if num.CountFinite(y) < minHistory {
		return fmt.Errorf("auto: %d usable points: %w", num.CountFinite(y), ErrTooShort)
	}
	H := m.opts.horizon()
	y, shiftNote, shiftAge := afterShift(y, H, m.opts.daily())
	ps, why := autoPeriods(y, m.opts)
	cs := candidates(ps, m.opts, len(y), H)
	for _, c := range cs {
		setBase(c.c, y, m.last, m.opts.step())
	}

	// Backtest every candidate from the same origins, with parameters
	// fitted before the first origin. The candidates are independent:
	// spare cores backtest some of them (inParallel), taken from the end
	// of the list, where the costly ones are (the network, the
	// decompositions), so that none of them starts last.
	var origins []int
	fc := make([][][]float64, len(cs)) // [candidate][origin][h]
	visited := make([][]int, len(cs))
	inParallel(len(cs), func(k int) {
		i := len(cs) - 1 - k
		// One slab holds every origin's forecast.
		first, stride := calibrationWindow(len(y), H)
		slab := make([]float64, 0, max(0, (len(y)-first+stride-1)/stride)*H)
		visited[i] = backtest(cs[i].c, y, H, func(t int, f []float64) {
			slab = append(slab, f...)
		})
		rows := make([][]float64, len(visited[i]))
		for o := range rows {
			rows[o] = slab[o*H : (o+1)*H : (o+1)*H]
		}
		fc[i] = rows
	})
	var ok []int
	for i, o := range visited {
		if len(o) == 0 {
			fc[i] = nil
			continue
		}
		origins = o
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return fmt.Errorf("auto: no candidate could be fitted: %w", ErrTooShort)
	}
	score := func(members []int) float64 {
		s, k := 0.0, 0
		for o, t := range origins {
			for h := 0; h < H && t+h < len(y); h++ {
				a := y[t+h]
				if !num.Finite(a) {
					continue
				}
				s += math.Abs(a - combined(fc, members, o, h))
				k++
			}
		}
		if k == 0 {
			return math.Inf(1)
		}
		return s / float64(k)
	}
	single := make([]float64, len(cs))
	for _, i := range ok {
		single[i] = score([]int{i})
	}
	sort.SliceStable(ok, func(a, b int) bool { return single[ok[a]] < single[ok[b]] })
	best, bestScore := ok[:1], single[ok[0]]
	for k := 2; k <= 5 && k <= len(ok); k++ {
		if s := score(ok[:k]); s < bestScore {
			best, bestScore = ok[:k], s
		}
	}
	cold := 2*m.opts.daily() > len(y)
	span := len(y) - origins[0]
	if cold && sparseDegrees(span, H) == 0 && fc[0] != nil && !slices.Contains(best, 0) {
		// Under two days the backtest's origins span a few horizons of one
		// stretch of the series: its choice is fitted to that stretch.
		// The last value joins it with an equal share.
		best = append(best[:len(best):len(best)], 0)
		bestScore = score(best)
	}
	members := make([]candidate, 0, len(best))
	refitErrs := make([]error, len(best))
	inParallel(len(best), func(k int) { refitErrs[k] = refit(cs[best[k]].c, y) })
	for k, i := range best {
		if err := refitErrs[k]; err != nil {
			return fmt.Errorf("auto: %s: %w", cs[i].name, err)
		}
		if d, ok := cs[i].c.(*mstlCore); ok {
			d.cache = nil // the shared decompositions are only needed while fitting
		}
		members = append(members, cs[i])
	}
	// Residuals of the chosen combination at each step calibrate the bands.
	res := make([][]float64, H)
	for o, t := range origins {
		for h := 0; h < H && t+h < len(y); h++ {
			a := y[t+h]
			if !num.Finite(a) {
				continue
			}
			res[h] = append(res[h], a-combined(fc, best, o, h))
		}
	}
	m.ac = &autoCore{members: members}
	m.cal = calibrationFrom(res, y)
	m.widen = 1
	if cold || m.cal.fallback {
		m.widen = coldWiden
	}
	m.cal.nu = sparseDegrees(span, H)
	// With enough windows the bands are the backtest's, which chose the
	// model: widen them for that choice (sparse and cold bands are widened
	// more already).
	m.cal.selected = m.cal.nu == 0 && m.widen == 1
	m.cal.pooled = pooledFor(m.opts.step(), H)
	m.cold, m.coldMember = nil, false
	if m.cal.nu > 0 && cold {
		// Too little history for the backtest to choose a model or size
		// the bands, and for the daily season to be judged at all: unless
		// the backtest says it clearly does worse, the global network,
		// trained on many series, says both. With two days or more the
		// network is one candidate among the others, however short the
		// backtest: there the backtest's choice, with the network in it,
		// did better on the tuning series than the network alone.
		for _, i := range ok {
			if g, isGlobal := cs[i].c.(*globalCore); isGlobal && single[i] <= coldGlobalMargin*single[ok[0]] {
				if err := refit(g, y); err == nil {
					m.cold = g
					m.coldMember = slices.ContainsFunc(members, func(c candidate) bool { return c.c == core(g) })
				}
			}
		}
	}
	var names []string
	for _, i := range ok {
		names = append(names, fmt.Sprintf("%s %.3g", cs[i].name, single[i]))
	}
	m.reason = fmt.Sprintf("lowest backtest MAE over %d origins at horizon %d (%s; combination %.3g); %s", len(origins), H, strings.Join(names, ", "), bestScore, why)
	if shiftNote != "" {
		m.reason += "; " + shiftNote
	}
	switch {
	case m.cold != nil:
		m.reason = fmt.Sprintf("cold start: the backtest spans %.1f horizons, fewer than %d; the global network %s forecasts, its median averaged with the last value and a mean-reverting level; %s", float64(span)/float64(H), minWindows, m.cold.m.Config.Name, m.reason)
	case m.cal.nu > 0:
		m.reason += fmt.Sprintf("; bands widened (Student-t tails, %.2g degrees of freedom, at most %.2g×): the backtest spans %.1f horizons, fewer than %d", m.cal.nu, maxSparseWiden, float64(span)/float64(H), minWindows)
	}
	if cold && m.cold == nil {
		m.reason = "cold start, wider bands; " + m.reason
	}
	m.fitted = true
	m.shift = lastShift{fit: shiftAge}
	m.health = newHealth(m.cal, m.opts)
	return nil
}

// autoPeriods returns the seasonal periods auto's decomposition candidates
// use: the detected ones, or the daily period when none is detected but the
// history holds two days (the backtest then decides whether it helps).
func autoPeriods(y []float64, o Options) ([]int, string) {
	ps, why := seasonalPeriods(y, o)
	if len(ps) > 0 || len(o.Seasonality) > 0 {
		return ps, why
	}
	if d := o.daily(); d > 1 && 2*d <= len(y) {
		return []int{d}, why + "; daily season tried"
	}
	return nil, why
}

// Update implements Forecaster.
func (m *autoModel) Update(y ...float64) {
	if !m.fitted {
		return
	}
	m.shift.observed(len(y))
	for _, v := range y {
		m.health.observe(m.ac, v)
		m.ac.observe(v)
		if m.cold != nil && !m.coldMember {
			m.cold.observe(v)
		}
	}
}

// Forecast implements Forecaster.
func (m *autoModel) Forecast(h int) (Prediction, error) {
	if !m.fitted {
		return Prediction{}, fmt.Errorf("auto: forecast before fit: %w", ErrTooShort)
	}
	if h < 1 {
		return Prediction{}, fmt.Errorf("auto: horizon %d: must be at least 1", h)
	}
	if m.cold != nil {
		if f, ok := m.cold.quantiles(h); ok {
			p := fromQuantiles("auto("+m.cold.label()+")", m.reason+m.shift.note(m.opts.step()), f, m.opts.quantiles())
			// The level is fitted to the history as it is now, not as it
			// was at the fit: a fit a few points after a level shift,
			// too soon to see it, must not keep pulling towards the old
			// level until the next one.
			H := m.opts.horizon()
			hist, _, _ := afterShift(m.cold.hist, H, m.opts.daily())
			if r := newRevertLevel(hist, H); r != nil {
				coldCombine(p, r)
			}
			return p, nil
		}
	}
	mean := make([]float64, h)
	m.ac.forecast(mean)
	return m.cal.predict(m.ac.label(), m.reason+m.shift.note(m.opts.step()), mean, m.opts.quantiles(), m.widen), nil
}

// fromQuantiles turns a network's quantile paths into a Prediction at the
// levels qs, interpolating linearly between the network's levels (and
// holding its outermost ones beyond them); the median is the mean.
func fromQuantiles(label, reason string, f global.Forecast, qs []float64) Prediction {
	levels := append([]float64(nil), qs...)
	sort.Float64s(levels)
	h := len(f.Values[0])
	p := Prediction{Model: label, Reason: reason, Quantiles: levels, Bands: make([][]float64, len(levels)), Mean: make([]float64, h)}
	at := func(q float64, t int) float64 {
		L := f.Quantiles
		switch {
		case q <= L[0]:
			return f.Values[0][t]
		case q >= L[len(L)-1]:
			return f.Values[len(L)-1][t]
		}
		i := sort.SearchFloat64s(L, q)
		if L[i] == q {
			return f.Values[i][t]
		}
		w := (q - L[i-1]) / (L[i] - L[i-1])
		return float64(f.Values[i-1][t]*(1-w)) + float64(f.Values[i][t]*w)
	}
	for i, q := range levels {
		p.Bands[i] = make([]float64, h)
		for t := 0; t < h; t++ {
			p.Bands[i][t] = at(q, t)
		}
	}
	for t := 0; t < h; t++ {
		p.Mean[t] = at(0.5, t)
	}
	return p
}

// coldCombine moves a cold start's network forecast p, bands and all, to
// centre on the equal-weight mean of its median, the last value and r's
// mean-reverting level. On short one-minute histories the network alone
// loses to the last value where demand holds a level or swings around one;
// the combination of the three did better than any of them, and than the
// network, from two hours to nine hours of history on the simulated
// scenario's seeds the agent's own checks do not use.
func coldCombine(p Prediction, r *revertLevel) {
	if !num.Finite(r.last) {
		return
	}
	for t, med := range p.Mean {
		d := (med+r.last+r.at(t+1))/3 - med
		p.Mean[t] += d
		for _, b := range p.Bands {
			b[t] += d
		}
	}
}

// coldGlobalMargin: on a cold start the global network forecasts unless
// its backtest error exceeds the best candidate's by more than this factor.
const coldGlobalMargin = 2.0

// maxShifts is the most level shifts a history may have for auto to treat
// the last one as a regime change.
const maxShifts = 3

// afterShift returns the history models should fit after level shifts:
// the segment after the last shift when it holds two days (or 4·H points,
// whichever is more), else y with everything before each shift moved by the
// shift's size so the old level stops pulling forecasts. It also returns how
// the history was treated (for the forecast's reason) and how many points of
// y are at or after the last shift (0: no shift).
func afterShift(y []float64, H, daily int) ([]float64, string, int) {
	shifts := anomaly.LevelShifts(y)
	if len(shifts) == 0 {
		return y, "", 0
	}
	age := len(y) - shifts[len(shifts)-1]
	if len(shifts) > maxShifts && 4*H >= daily {
		// A series that changes level this often switches between regimes.
		// Over a horizon of six hours or more it will switch again, and its
		// whole history describes the regimes better than the last segment;
		// over shorter horizons the current regime persists and the shift
		// handling below applies.
		return y, fmt.Sprintf("%d level shifts: regime switching, history kept for a %d-step horizon", len(shifts), H), age
	}
	last := shifts[len(shifts)-1]
	need := 2 * daily
	if 4*H > need {
		need = 4 * H
	}
	if len(y)-last >= need {
		return y[last:], fmt.Sprintf("fitted on the %d points after the last level shift", len(y)-last), age
	}
	out := append([]float64(nil), y...)
	for i := len(shifts) - 1; i >= 0; i-- {
		s := shifts[i]
		lo := s - 2*anomaly.DefaultLevelShiftWindow
		if lo < 0 {
			lo = 0
		}
		hi := s + 2*anomaly.DefaultLevelShiftWindow
		if hi > len(out) {
			hi = len(out)
		}
		before, _ := num.MedianMAD(out[lo:s])
		after, _ := num.MedianMAD(out[s:hi])
		if math.IsNaN(before) || math.IsNaN(after) {
			continue
		}
		d := after - before
		for t := 0; t < s; t++ {
			out[t] += d
		}
	}
	return out, fmt.Sprintf("history before %d level shift(s) moved to the current level", len(shifts)), age
}

// lastShift is how long before a forecast's origin the fitted history's
// last level shift was: at the fit, plus every point observed since.
type lastShift struct {
	fit   int // points at or after the shift in the fitted history; 0: none
	since int // points observed since the fit
}

// observed counts n points observed after the fit.
func (s *lastShift) observed(n int) {
	if s.fit > 0 {
		s.since += n
	}
}

// note is the reason's clause saying how long before the origin the last
// level shift was, in points and time ("" without a shift): the shift's
// first point at the new level is that many points before the first
// forecast point.
func (s lastShift) note(step time.Duration) string {
	if s.fit <= 0 {
		return ""
	}
	n := s.fit + s.since
	return fmt.Sprintf("; the last level shift %d points (%s) before the origin", n, span(n, step))
}

// combined is the equal-weight mean of the members' backtest forecasts at
// origin o and step h.
func combined(fc [][][]float64, members []int, o, h int) float64 {
	f := 0.0
	for _, i := range members {
		f += fc[i][o][h]
	}
	return f / float64(len(members))
}
