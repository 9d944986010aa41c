package global

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Series is one training series on the model's step.
type Series struct {
	Name   string
	Values []float64
	// Start is the time of Values[0]; zero when unknown (no calendar
	// inputs).
	Start time.Time
}

// TrainOptions tune Train.
type TrainOptions struct {
	// Seed makes the training deterministic (initial weights, batches).
	Seed uint64
	// Steps of Adam, each on Batch windows.
	Steps, Batch int
	// LearningRate at the start; it decays by a cosine to a tenth.
	LearningRate float64
	// Workers share each batch's gradient (their sums are combined in a
	// fixed order, so the result depends on the seed and the number of
	// workers, not on scheduling).
	Workers int
	// MinContext is the least history a training window has (cold starts
	// are trained on windows cut to between MinContext and Context
	// points); 0 means 12.
	MinContext int
	// ColdShare is the share of windows cut short; 0 means 0.25.
	ColdShare float64
	// Provenance is recorded in the model (its Seed, Steps, Batch,
	// LearningRate, Series, Windows and Loss are filled in).
	Provenance Provenance
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Steps <= 0 {
		o.Steps = 2000
	}
	if o.Batch <= 0 {
		o.Batch = 128
	}
	if o.LearningRate <= 0 {
		o.LearningRate = 1e-3
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MinContext <= 0 {
		o.MinContext = 12
	}
	if o.ColdShare <= 0 {
		o.ColdShare = 0.25
	}
	return o
}

// origin is one training window: a series and the index of its last point.
type origin struct{ s, t int }

// Train trains a new model of shape c on the series.
func Train(c Config, series []Series, o TrainOptions) (*Model, error) {
	m, err := New(c, o.Seed)
	if err != nil {
		return nil, err
	}
	if err := m.train(series, o, false); err != nil {
		return nil, err
	}
	return m, nil
}

// FineTune returns a copy of m trained further on the series (a cluster's
// own localities), with a tenth of the learning rate and o.Steps steps;
// m itself is not changed.
func (m *Model) FineTune(series []Series, o TrainOptions) (*Model, error) {
	c := m.Clone()
	if o.LearningRate <= 0 {
		o.LearningRate = m.Provenance.LearningRate / 10
	}
	if err := c.train(series, o, true); err != nil {
		return nil, err
	}
	return c, nil
}

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	p := append([]float64(nil), m.net.params()...)
	n, _ := newNetwork(m.Config, p)
	return &Model{Config: m.Config, Provenance: m.Provenance, net: n}
}

// ErrNoWindows is returned when no series is long enough to train on.
var ErrNoWindows = errors.New("global: no training window")

func (m *Model) train(series []Series, o TrainOptions, tune bool) error {
	o = o.withDefaults()
	c := m.Config
	var origins []origin
	for si, s := range series {
		for t := o.MinContext - 1; t < len(s.Values)-1; t++ {
			if finite(s.Values[t]) {
				origins = append(origins, origin{si, t})
			}
		}
	}
	if len(origins) == 0 {
		return ErrNoWindows
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	p := m.net.params()
	mom, vel := make([]float64, len(p)), make([]float64, len(p))
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	type work struct {
		grad  []float64
		x, y  []float64 // inputs, normalised targets (NaN: none)
		out   []float64
		cache cache
		net   network
		loss  float64
		count int
	}
	workers := make([]*work, o.Workers)
	for i := range workers {
		// Each worker reads the shared parameters through its own
		// network value (the views only, no copy).
		n, err := newNetwork(c, p)
		if err != nil {
			return err
		}
		workers[i] = &work{grad: make([]float64, len(p)), net: n}
	}
	in, outs := c.inputs(), c.outputs()
	K, Q := len(c.Knots), len(c.Quantiles)
	var tail float64
	var tailN int
	batch := make([]origin, o.Batch)
	cuts := make([]int, o.Batch)
	for step := 0; step < o.Steps; step++ {
		for i := range batch {
			batch[i] = origins[rng.IntN(len(origins))]
			cuts[i] = 0
			if rng.Float64() < o.ColdShare {
				cuts[i] = o.MinContext + rng.IntN(max(1, c.Context-o.MinContext+1))
			}
		}
		var wg sync.WaitGroup
		per := (o.Batch + o.Workers - 1) / o.Workers
		for wi, w := range workers {
			lo, hi := wi*per, min(o.Batch, (wi+1)*per)
			wg.Add(1)
			go func() {
				defer wg.Done()
				clear(w.grad)
				w.loss, w.count = 0, 0
				b := hi - lo
				if b <= 0 {
					return
				}
				if cap(w.x) < b*in {
					w.x, w.y, w.out = make([]float64, b*in), make([]float64, b*K), make([]float64, b*outs)
				}
				x, y, out := w.x[:b*in], w.y[:b*K], w.out[:b*outs]
				for r := 0; r < b; r++ {
					og := batch[lo+r]
					s := series[og.s]
					from := max(0, og.t+1-m.History())
					if cut := cuts[lo+r]; cut > 0 {
						from = max(from, og.t+1-cut)
					}
					hist := s.Values[from : og.t+1]
					var last time.Time
					if !s.Start.IsZero() {
						last = s.Start.Add(time.Duration(og.t) * c.Step())
					}
					level, scale, _ := c.features(hist, last, x[r*in:(r+1)*in])
					for k, kn := range c.Knots {
						v := math.NaN()
						if i := og.t + kn; i < len(s.Values) && finite(s.Values[i]) {
							v = squash((s.Values[i] - level) / scale)
						}
						y[r*K+k] = v
					}
				}
				w.net.forward(x, b, out, &w.cache)
				// Pinball loss and its gradient, in place of out.
				for r := 0; r < b; r++ {
					for k := 0; k < K; k++ {
						t := y[r*K+k]
						for q, lv := range c.Quantiles {
							j := r*outs + k*Q + q
							if math.IsNaN(t) {
								out[j] = 0
								continue
							}
							d := t - out[j]
							if d >= 0 {
								w.loss += float64(lv * d)
								out[j] = -lv
							} else {
								w.loss -= float64((1 - lv) * d)
								out[j] = 1 - lv
							}
							w.count++
						}
					}
				}
				w.net.backward(out, b, &w.cache, w.grad)
			}()
		}
		wg.Wait()
		// Combine in worker order; normalise by the scored outputs.
		var loss float64
		count := 0
		for _, w := range workers {
			loss += w.loss
			count += w.count
		}
		if count == 0 {
			continue
		}
		g := workers[0].grad
		for _, w := range workers[1:] {
			for i, v := range w.grad {
				g[i] += v
			}
		}
		inv := 1 / float64(count)
		var norm float64
		for i := range g {
			g[i] *= inv
			norm += float64(g[i] * g[i])
		}
		if norm = math.Sqrt(norm); norm > maxGradNorm {
			f := maxGradNorm / norm
			for i := range g {
				g[i] *= f
			}
		}
		lr := o.LearningRate * (0.1 + float64(0.9*0.5*(1+cos(math.Pi*float64(step)/float64(o.Steps)))))
		b1t := 1 - math.Pow(beta1, float64(step+1))
		b2t := 1 - math.Pow(beta2, float64(step+1))
		for i, gi := range g {
			mom[i] = float64(beta1*mom[i]) + float64((1-beta1)*gi)
			vel[i] = float64(beta2*vel[i]) + float64((1-beta2)*gi*gi)
			p[i] -= lr * (mom[i] / b1t) / (math.Sqrt(vel[i]/b2t) + eps)
		}
		if step >= o.Steps-max(1, o.Steps/10) {
			tail += float64(loss * inv)
			tailN++
		}
	}
	pv := o.Provenance
	if tune {
		pv = m.Provenance
		pv.Note = fmt.Sprintf("%s; fine-tuned %d steps on %d series", pv.Note, o.Steps, len(series))
	} else {
		pv.Seed, pv.Steps, pv.Batch, pv.LearningRate = o.Seed, o.Steps, o.Batch, o.LearningRate
		pv.Series, pv.Windows = len(series), len(origins)
	}
	pv.Loss = tail / float64(max(1, tailN))
	m.Provenance = pv
	return nil
}

// maxGradNorm bounds the gradient's norm per step.
const maxGradNorm = 5

// initParams draws the initial weights: Glorot-uniform matrices, zero
// biases, small output layers (so a new network starts near the window's
// level), and an LSTM's forget gates open.
func initParams(c Config, n network, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x1417))
	fill := func(w []float64, fanIn, fanOut int, gain float64) {
		a := gain * math.Sqrt(6/float64(fanIn+fanOut))
		for i := range w {
			w[i] = a * (2*rng.Float64() - 1)
		}
	}
	switch n := n.(type) {
	case *nbeats:
		for _, b := range n.blocks {
			fill(b.w1, n.in, n.width, 1)
			fill(b.w2, n.width, n.width, 1)
			fill(b.wb, n.width, n.in, 0.1)
			fill(b.wf, n.width, n.out, 0.1)
		}
	case *lstm:
		fill(n.wx, 1, 4*n.width, 1)
		fill(n.wh, n.width, 4*n.width, 1)
		for j := n.width; j < 2*n.width; j++ {
			n.bg[j] = 1
		}
		fill(n.w1, n.width+n.static, n.width, 1)
		fill(n.w2, n.width, n.out, 0.1)
	}
}
