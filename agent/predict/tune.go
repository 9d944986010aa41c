package predict

import (
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/global"
)

// TuneEvery is how much data time passes between two fine-tunings of the
// global networks on the cluster's own series.
const TuneEvery = 6 * time.Hour

// tuneSteps and tuneBatch size one fine-tuning: a few seconds of one core.
const (
	tuneSteps = 200
	tuneBatch = 64
)

// tuner fine-tunes the shipped global networks on the cluster's own
// series, off the forecast cycle: the cycle hands it the histories it
// reads, every TuneEvery of data time it trains a copy of the network for
// each step in a goroutine of its own, and the tuned copy serves every fit
// after it (forecast.Options.Global). The cycle never waits for it.
type tuner struct {
	mu      sync.Mutex
	tuned   map[time.Duration]*global.Model
	hist    map[time.Duration]map[string]global.Series
	last    time.Time // data time of the last start
	running bool
	wg      sync.WaitGroup
}

func newTuner() *tuner {
	return &tuner{tuned: map[time.Duration]*global.Model{}, hist: map[time.Duration]map[string]global.Series{}}
}

// model returns the network fits at step use: nil means the shipped one.
func (t *tuner) model(step time.Duration) func() *global.Model {
	return func() *global.Model {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.tuned[step]
	}
}

// offer records the latest history of a series (y on the step grid, its
// last point at last) for the next fine-tuning.
func (t *tuner) offer(series string, step time.Duration, y []float64, last time.Time) {
	if _, ok := global.Default(step); !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hist[step] == nil {
		t.hist[step] = map[string]global.Series{}
	}
	t.hist[step][series] = global.Series{Name: series, Values: y, Start: last.Add(-time.Duration(len(y)-1) * step)}
}

// maybeStart starts a fine-tuning when TuneEvery of data time has passed
// since the last one (or since the first offer) and none is running.
func (t *tuner) maybeStart(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last.IsZero() {
		t.last = now
		return
	}
	if t.running || now.Sub(t.last) < TuneEvery {
		return
	}
	t.last = now
	work := map[time.Duration][]global.Series{}
	for step, byName := range t.hist {
		for _, s := range byName {
			work[step] = append(work[step], s)
		}
	}
	if len(work) == 0 {
		return
	}
	t.running = true
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tuned := map[time.Duration]*global.Model{}
		for step, series := range work {
			base, ok := global.Default(step)
			if !ok {
				continue
			}
			m, err := base.FineTune(series, global.TrainOptions{Seed: 1, Steps: tuneSteps, Batch: tuneBatch, Workers: 1})
			if err == nil {
				tuned[step] = m
			}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for step, m := range tuned {
			t.tuned[step] = m
		}
		t.running = false
	}()
}

// wait blocks until no fine-tuning runs (for tests and shutdown).
func (t *tuner) wait() { t.wg.Wait() }
