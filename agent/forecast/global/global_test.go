package global

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func smallConfig(arch string) Config {
	return Config{Name: "t", Arch: arch, StepSeconds: 300, Daily: 8, Context: 6, Knots: []int{1, 2, 4},
		Quantiles: []float64{0.1, 0.5, 0.9}, Width: 5, Blocks: 2}
}

// TestGradients compares backward with finite differences of a linear
// function of the outputs, for both architectures.
func TestGradients(t *testing.T) {
	for _, arch := range []string{"nbeats", "lstm"} {
		t.Run(arch, func(t *testing.T) {
			c := smallConfig(arch)
			m, err := New(c, 3)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			p := m.net.params()
			for i := range p {
				p[i] += 0.3 * rng.NormFloat64() // away from the flat start
			}
			const b = 3
			x := make([]float64, b*c.inputs())
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			w := make([]float64, b*c.outputs())
			for i := range w {
				w[i] = rng.NormFloat64()
			}
			out := make([]float64, b*c.outputs())
			var ca cache
			loss := func() float64 {
				m.net.forward(x, b, out, &ca)
				s := 0.0
				for i, v := range out {
					s += w[i] * v
				}
				return s
			}
			loss()
			grad := make([]float64, len(p))
			m.net.backward(append([]float64(nil), w...), b, &ca, grad)
			const h = 1e-6
			worst := 0.0
			for i := range p {
				old := p[i]
				p[i] = old + h
				up := loss()
				p[i] = old - h
				down := loss()
				p[i] = old
				num := (up - down) / (2 * h)
				if d := math.Abs(num-grad[i]) / math.Max(1e-3, math.Abs(num)+math.Abs(grad[i])); d > worst {
					worst = d
				}
				if math.Abs(num-grad[i]) > 1e-5*math.Max(1, math.Abs(num)) {
					t.Fatalf("param %d of %d: backward %.8g, finite difference %.8g", i, len(p), grad[i], num)
				}
			}
			t.Logf("%d parameters, worst relative error %.2g", len(p), worst)
		})
	}
}

// wave is a daily sine with noise at a 5-minute step: what the tiny models
// below learn.
func wave(seed uint64, days int, level, amp float64) Series {
	r := rand.New(rand.NewPCG(seed, 9))
	y := make([]float64, days*288)
	for i := range y {
		y[i] = level + amp*math.Sin(2*math.Pi*float64(i)/288) + 0.05*amp*r.NormFloat64()
	}
	return Series{Name: "wave", Values: y, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// TestTrainLearnsASeason: trained on daily waves of different levels and
// amplitudes, the network forecasts a new one's next hours far better than
// the last value does, and its bands hold the truth.
func TestTrainLearnsASeason(t *testing.T) {
	c := Config{Name: "t", Arch: "nbeats", StepSeconds: 300, Daily: 288, Context: 36, Knots: []int{1, 3, 6, 12, 24, 48},
		Quantiles: []float64{0.1, 0.5, 0.9}, Width: 32, Blocks: 2}
	var train []Series
	for i := 0; i < 8; i++ {
		train = append(train, wave(uint64(i), 3, 50+10*float64(i), 5+3*float64(i)))
	}
	m, err := Train(c, train, TrainOptions{Seed: 1, Steps: 600, Batch: 64, LearningRate: 3e-3, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	test := wave(99, 3, 200, 40)
	var s Scratch
	var f Forecast
	var errModel, errNaive float64
	inside, n := 0, 0
	for o := 2 * 288; o < 3*288-48; o += 7 {
		if !m.Predict(test.Values[:o], test.Start.Add(time.Duration(o-1)*5*time.Minute), 48, &s, &f) {
			t.Fatal("no forecast")
		}
		for h := 0; h < 48; h++ {
			a := test.Values[o+h]
			errModel += math.Abs(f.Values[1][h] - a)
			errNaive += math.Abs(test.Values[o-1] - a)
			if a >= f.Values[0][h] && a <= f.Values[2][h] {
				inside++
			}
			n++
		}
	}
	t.Logf("MAE model %.2f, naive %.2f; 80%% band coverage %.2f; final loss %.3f", errModel/float64(n), errNaive/float64(n), float64(inside)/float64(n), m.Provenance.Loss)
	if errModel > 0.5*errNaive {
		t.Errorf("model MAE %.2f is not well below naive's %.2f", errModel/float64(n), errNaive/float64(n))
	}
	if cov := float64(inside) / float64(n); cov < 0.5 {
		t.Errorf("80%% band covers %.2f", cov)
	}

	// Deterministic: the same seed and workers give the same weights.
	again, err := Train(c, train, TrainOptions{Seed: 1, Steps: 20, Batch: 64, LearningRate: 3e-3, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Train(c, train, TrainOptions{Seed: 1, Steps: 20, Batch: 64, LearningRate: 3e-3, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range again.net.params() {
		if twice.net.params()[i] != v {
			t.Fatalf("parameter %d differs between two trainings with one seed", i)
		}
	}

	// Round trip through the weights format (float32).
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var g Forecast
	back.Predict(test.Values[:600], time.Time{}, 12, &s, &g)
	m.Predict(test.Values[:600], time.Time{}, 12, &s, &f)
	for h := range g.Values[1] {
		if math.Abs(g.Values[1][h]-f.Values[1][h]) > 1e-3*math.Abs(f.Values[1][h])+1e-3 {
			t.Fatalf("decoded model forecasts %v, the original %v", g.Values[1], f.Values[1])
		}
	}
	if back.Provenance.Steps != 600 || back.Provenance.Seed != 1 {
		t.Errorf("provenance %+v", back.Provenance)
	}
}

// TestMedianBatchMatchesForward: the median-only pass gives the median
// column of the full network output, for both architectures.
func TestMedianBatchMatchesForward(t *testing.T) {
	for _, arch := range []string{"nbeats", "lstm"} {
		c := smallConfig(arch)
		m, err := New(c, 4)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		for i, p := range m.net.params() {
			m.net.params()[i] = p + 0.3*rng.NormFloat64()
		}
		var hists [][]float64
		for k := 0; k < 5; k++ {
			h := make([]float64, 3+4*k)
			for i := range h {
				h[i] = 10 + rng.NormFloat64()
			}
			hists = append(hists, h)
		}
		var s Scratch
		med := make([][]float64, len(hists))
		ok := make([]bool, len(hists))
		m.MedianBatch(hists, nil, 4, &s, med, ok)
		x := make([]float64, c.inputs())
		out := make([]float64, c.outputs())
		var ca cache
		for i, h := range hists {
			level, scale, _ := c.features(h, time.Time{}, x)
			m.net.forward(x, 1, out, &ca)
			want := make([]float64, len(c.Knots))
			for k := range want {
				want[k] = level + scale*unsquash(out[k*len(c.Quantiles)+1])
			}
			path := make([]float64, 4)
			interpolate(c.Knots, want, path)
			for j := range path {
				if !ok[i] || math.Abs(med[i][j]-path[j]) > 1e-9 {
					t.Fatalf("%s history %d step %d: median %v, forward %v", arch, i, j+1, med[i][j], path[j])
				}
			}
		}
	}
}

// TestMedianBatchShortHorizon: a median path over h steps, for which
// MedianBatch computes only the knots h needs, is to the bit the first h
// steps of the path over every knot.
func TestMedianBatchShortHorizon(t *testing.T) { eachKernelSetting(t, testMedianBatchShortHorizon) }

func testMedianBatchShortHorizon(t *testing.T) {
	m, ok := ForArch(5*time.Minute, "nbeats")
	if !ok {
		t.Skip("no shipped 5-minute network")
	}
	small, err := New(smallConfig("lstm"), 4)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 9))
	for _, m := range []*Model{m, small} {
		var hists [][]float64
		for k := 0; k < 13; k++ {
			h := make([]float64, 50+40*k)
			for i := range h {
				h[i] = 40 + 10*math.Sin(float64(i)/7) + 3*rng.NormFloat64()
			}
			hists = append(hists, h)
		}
		full := m.Config.Horizon() + 3
		var s Scratch
		want := make([][]float64, len(hists))
		okAll := make([]bool, len(hists))
		m.MedianBatch(hists, nil, full, &s, want, okAll)
		for h := 1; h <= full; h++ {
			got := make([][]float64, len(hists))
			okH := make([]bool, len(hists))
			m.MedianBatch(hists, nil, h, &s, got, okH)
			for i := range hists {
				if !okH[i] || !okAll[i] {
					t.Fatalf("%s h=%d history %d: not ok", m.Config.Name, h, i)
				}
				for j := range h {
					if math.Float64bits(got[i][j]) != math.Float64bits(want[i][j]) {
						t.Fatalf("%s h=%d history %d step %d: %v, over every knot %v", m.Config.Name, h, i, j+1, got[i][j], want[i][j])
					}
				}
			}
		}
	}
}
