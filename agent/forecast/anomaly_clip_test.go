package forecast

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
)

// anomRecorder is a fake model that records what it is fitted and updated
// with.
type anomRecorder struct {
	fitted  []float64
	updated []float64
}

func (r *anomRecorder) Name() string { return "recorder" }
func (r *anomRecorder) Fit(y []float64) error {
	r.fitted = append([]float64(nil), y...)
	return nil
}
func (r *anomRecorder) Update(y ...float64) { r.updated = append(r.updated, y...) }
func (r *anomRecorder) Forecast(h int) (Prediction, error) {
	return Prediction{Model: "recorder", Mean: make([]float64, h)}, nil
}

func TestWithAnomalyClipping(t *testing.T) {
	y := noisySeries(21, 3000, 20, 1)
	y[1000] = 70 // a spike in the history
	y[2500] = 80 // a spike arriving through Update
	rec := &anomRecorder{}
	f := WithAnomalyClipping(rec, anomaly.Options{})
	if f.Name() != "recorder" {
		t.Errorf("Name = %q", f.Name())
	}
	if err := f.Fit(y[:2000]); err != nil {
		t.Fatal(err)
	}
	if len(rec.fitted) != 2000 || !math.IsNaN(rec.fitted[1000]) {
		t.Fatalf("fitted %d points, spike %v: want 2000 and NaN", len(rec.fitted), rec.fitted[1000])
	}
	for i := 0; i < 2000; i += 100 {
		if i != 1000 && rec.fitted[i] != y[i] {
			t.Fatalf("point %d changed: %v -> %v", i, y[i], rec.fitted[i])
		}
	}
	for i := 2000; i < 3000; i += 50 {
		f.Update(y[i : i+50]...)
	}
	if len(rec.updated) != 1000 || !math.IsNaN(rec.updated[500]) {
		t.Fatalf("updated %d points, spike %v: want 1000 and NaN", len(rec.updated), rec.updated[500])
	}
	var nans int
	for _, v := range rec.updated {
		if math.IsNaN(v) {
			nans++
		}
	}
	if nans > 3 {
		t.Errorf("%d updated points removed", nans)
	}
	if p, err := f.Forecast(4); err != nil || len(p.Mean) != 4 {
		t.Errorf("Forecast: %v %v", p, err)
	}
	events := f.(interface{ AnomalyEvents() []anomaly.Event }).AnomalyEvents()
	if len(events) != 2 || events[0].Start != 1000 || events[1].Start != 2500 {
		t.Errorf("events %+v, want spikes at 1000 and 2500", events)
	}
}

// TestWithAnomalyClippingKeepsNewLevel: after a level shift arrives through
// Update, the model soon sees the new level again.
func TestWithAnomalyClippingKeepsNewLevel(t *testing.T) {
	y := noisySeries(22, 3000, 20, 1)
	for i := 2200; i < len(y); i++ {
		y[i] += 15
	}
	rec := &anomRecorder{}
	f := WithAnomalyClipping(rec, anomaly.Options{})
	if err := f.Fit(y[:2000]); err != nil {
		t.Fatal(err)
	}
	f.Update(y[2000:]...)
	for i := 300; i < len(rec.updated); i++ { // from 2300 on
		if math.IsNaN(rec.updated[i]) {
			t.Fatalf("point %d at the new level withheld", 2000+i)
		}
	}
}

// noisySeries is n Gaussian points around level with standard deviation sd.
func noisySeries(seed uint64, n int, level, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	y := make([]float64, n)
	for i := range y {
		y[i] = level + sd*r.NormFloat64()
	}
	return y
}
