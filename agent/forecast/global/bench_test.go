package global

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/cputime"
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
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				m.Predict(hist, last, h, &s, &f)
			}
			reportCPURate(b, b.N, cpu0)
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
				cpu0 := cputime.Process()
				for i := 0; i < b.N; i++ {
					m.PredictBatch(hists, lasts, h, &s, out, ok)
				}
				reportCPURate(b, b.N*batch, cpu0)
			})
		}
	}
}

// reportCPURate reports n series per second of wall time and per second of
// CPU time since cpu0 (what one core does on a loaded machine).
func reportCPURate(b *testing.B, n int, cpu0 time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "series/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "series/cpu-s")
	}
}

// BenchmarkMemory is what each shipped network costs the agent: the heap
// a decoded copy holds (the shipped one, and the tuned copy fine-tuning
// adds), and what one fine-tuning allocates (B/op), on 16 two-day series.
func BenchmarkMemory(b *testing.B) {
	ms, err := Shipped()
	if err != nil || len(ms) == 0 {
		b.Skip("no shipped network")
	}
	for _, m := range ms {
		b.Run(m.Config.Name+"/resident", func(b *testing.B) {
			var buf bytes.Buffer
			if err := m.Encode(&buf); err != nil {
				b.Fatal(err)
			}
			var keep []*Model
			before := heapInUse()
			for i := 0; i < b.N; i++ {
				d, err := Decode(bytes.NewReader(buf.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				keep = append(keep, d)
			}
			b.StopTimer()
			b.ReportMetric(float64(heapInUse()-before)/float64(len(keep))/(1<<20), "MiB/copy")
			b.ReportMetric(float64(m.Parameters()), "parameters")
			runtime.KeepAlive(keep)
		})
		b.Run(m.Config.Name+"/finetune", func(b *testing.B) {
			var series []Series
			for s := uint64(0); s < 16; s++ {
				w := wave(s, 2, 50, 10)
				w.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
				series = append(series, w)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := m.FineTune(series, TrainOptions{Seed: 1, Steps: 20, Batch: 64, Workers: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return s.HeapInuse
}
