package global

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPredict is one series' forecast (the whole horizon) per
// operation with each shipped network, one at a time and in batches of 256
// series, as the agent's cycle and auto's backtest run it.
func BenchmarkPredict(b *testing.B) {
	ms, err := Shipped()
	if err != nil || len(ms) == 0 {
		b.Skip("no shipped network")
	}
	for _, m := range ms {
		hist := wave(1, 2, 50, 10).Values
		if m.Config.Daily > 288 {
			hist = make([]float64, 0, 2*m.Config.Daily)
			for i := 0; i < 2*m.Config.Daily; i++ {
				hist = append(hist, 50+float64(i%300)/10)
			}
		}
		last := time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)
		h := m.Config.Horizon()
		b.Run(m.Config.Name+"/single", func(b *testing.B) {
			var s Scratch
			var f Forecast
			for i := 0; i < b.N; i++ {
				m.Predict(hist, last, h, &s, &f)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
		})
		for _, batch := range []int{256} {
			b.Run(fmt.Sprintf("%s/batch%d", m.Config.Name, batch), func(b *testing.B) {
				var s Scratch
				hists := make([][]float64, batch)
				lasts := make([]time.Time, batch)
				for i := range hists {
					hists[i], lasts[i] = hist, last
				}
				out := make([]Forecast, batch)
				ok := make([]bool, batch)
				for i := 0; i < b.N; i++ {
					m.PredictBatch(hists, lasts, h, &s, out, ok)
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "series/s")
			})
		}
	}
}
