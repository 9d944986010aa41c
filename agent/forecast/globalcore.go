package forecast

import (
	"fmt"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/global"
)

// Timed is implemented by forecasters whose models use calendar features
// (the global network): the caller says when the last point of the next
// Fit or Update is. Without it the calendar is unknown.
type Timed interface {
	SetLast(t time.Time)
}

// timedCore is a core that can use the time of its first observation.
type timedCore interface {
	core
	setBase(t time.Time)
}

// globalCore forecasts with a pretrained global network (package global):
// it keeps the network's window of recent observations and runs the
// network at each forecast, its median as the point forecast.
type globalCore struct {
	m    *global.Model
	step time.Duration
	base time.Time // time of the first observation since reset; zero: unknown
	hist []float64
	n    int
	s    global.Scratch
	f    global.Forecast
	// one forecast's batch of one
	one     [1][]float64
	lastOne [1]time.Time
	med     [1][]float64
	ok      [1]bool
}

var _ timedCore = (*globalCore)(nil)

func newGlobalCore(m *global.Model) *globalCore {
	return &globalCore{m: m, step: m.Config.Step()}
}

func (c *globalCore) fit([]float64) error { return nil }
func (c *globalCore) reset()              { c.hist, c.n = c.hist[:0], 0 }
func (c *globalCore) setBase(t time.Time) { c.base = t }

func (c *globalCore) observe(v float64) {
	c.hist = append(c.hist, v)
	c.n++
	if keep := c.m.History(); len(c.hist) > 2*keep {
		c.hist = append(c.hist[:0], c.hist[len(c.hist)-keep:]...)
	}
}

// last is the time of the last observation (zero when unknown).
func (c *globalCore) last() time.Time {
	if c.base.IsZero() || c.n == 0 {
		return time.Time{}
	}
	return c.base.Add(time.Duration(c.n-1) * c.step)
}

// quantiles runs the network for h steps; false before any observation.
func (c *globalCore) quantiles(h int) (global.Forecast, bool) {
	ok := c.m.Predict(c.hist, c.last(), h, &c.s, &c.f)
	return c.f, ok
}

// forecast is the network's median output: its point forecast (the
// median column, as the batched backtest computes it).
func (c *globalCore) forecast(out []float64) {
	c.one[0] = c.hist
	c.lastOne[0] = c.last()
	c.m.MedianBatch(c.one[:], c.lastOne[:], len(out), &c.s, c.med[:], c.ok[:])
	if !c.ok[0] {
		clear(out)
		return
	}
	copy(out, c.med[0])
}

func (c *globalCore) label() string { return "global(" + c.m.Config.Name + ")" }
func (c *globalCore) bytes() int    { return 8*cap(c.hist) + 96 }

// globalModel is the network of an architecture the options ask for: the
// one they name, else the shipped one for the step.
func globalModel(o Options, arch string) (*global.Model, error) {
	if o.Global != nil {
		if m := o.Global(); m != nil && m.Config.Arch == arch && m.Config.Step() == o.step() {
			return m, nil
		}
	}
	if m, ok := global.ForArch(o.step(), arch); ok {
		return m, nil
	}
	return nil, fmt.Errorf("no %s network trained for %v steps", arch, o.step())
}

func newGlobalModel(o Options, arch string) *model {
	return &model{name: "global", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		m, err := globalModel(o, arch)
		if err != nil {
			return nil, "", err
		}
		return newGlobalCore(m), fmt.Sprintf("the learned global network %s", m.Config.Name), nil
	}}
}

// backtest is backtest for the global network: the network has no
// parameters to fit on the history, so its forecasts at every origin are
// computed in one batched pass.
func (c *globalCore) backtest(y []float64, H int, visit func(t int, f []float64)) []int {
	first, stride := calibrationWindow(len(y), H)
	keep := c.m.History()
	var origins []int
	var hists [][]float64
	var lasts []time.Time
	for t := first; t < len(y); t += stride {
		origins = append(origins, t)
		hists = append(hists, y[max(0, t-keep):t])
		var last time.Time
		if !c.base.IsZero() && t > 0 {
			last = c.base.Add(time.Duration(t-1) * c.step)
		}
		lasts = append(lasts, last)
	}
	out := make([][]float64, len(hists))
	ok := make([]bool, len(hists))
	s := backtestScratch.Get().(*global.Scratch)
	for lo := 0; lo < len(hists); lo += backtestBatch {
		hi := min(len(hists), lo+backtestBatch)
		c.m.MedianBatch(hists[lo:hi], lasts[lo:hi], H, s, out[lo:hi], ok[lo:hi])
	}
	backtestScratch.Put(s)
	buf := make([]float64, H)
	for i, t := range origins {
		if !ok[i] {
			clear(buf)
		} else {
			copy(buf, out[i])
		}
		visit(t, buf)
	}
	return origins
}

// backtestBatch bounds a batched pass's rows.
const backtestBatch = 256

// backtestScratch keeps the network's buffers for a batch of backtestBatch
// rows (about 1.5 MB) from one backtest to the next.
var backtestScratch = sync.Pool{New: func() any { return new(global.Scratch) }}
