package forecast

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAccuracyHarness is a development harness, skipped unless
// FORESHAPE_EVAL_DATA names a data directory. It runs the rolling-origin
// protocol of `foreshape forecast eval` (last 20%, origins every H steps,
// expanding window; FORESHAPE_EVAL_ORIGINS caps origins per series by
// spreading them evenly) and logs per-model relative MASE and coverage.
//
//	FORESHAPE_EVAL_DATA=/work/shared/data/nab FORESHAPE_EVAL_H=12 go test -run AccuracyHarness -v
func TestAccuracyHarness(t *testing.T) {
	dir := os.Getenv("FORESHAPE_EVAL_DATA")
	if dir == "" {
		t.Skip("FORESHAPE_EVAL_DATA not set")
	}
	H, _ := strconv.Atoi(os.Getenv("FORESHAPE_EVAL_H"))
	if H == 0 {
		H = 12
	}
	maxOrig, _ := strconv.Atoi(os.Getenv("FORESHAPE_EVAL_ORIGINS"))
	models := Models()
	if m := os.Getenv("FORESHAPE_EVAL_MODELS"); m != "" {
		models = strings.Split(m, ",")
	}
	series := loadSeries(t, dir)
	o := Options{Step: 5 * time.Minute, Horizon: H}
	type acc struct {
		logRel, logRelC           float64
		mase, crps                float64
		in80, in95, pts, n, fails int
		fit                       time.Duration
		fits                      int
	}
	res := map[string]*acc{}
	for _, m := range models {
		res[m] = &acc{}
	}
	for _, s := range series {
		y := s.y
		n := len(y)
		d := o.daily()
		lag := d
		if n < 2*d {
			lag = 1
		}
		sc, k := 0.0, 0
		for i := lag; i < int(0.8*float64(n)); i++ {
			if finite(y[i]) && finite(y[i-lag]) {
				sc += math.Abs(y[i] - y[i-lag])
				k++
			}
		}
		if k == 0 || sc == 0 {
			continue
		}
		sc /= float64(k)
		start := int(0.8 * float64(n))
		var origins []int
		for t0 := start; t0+H <= n; t0 += H {
			origins = append(origins, t0)
		}
		if len(origins) == 0 {
			origins = []int{n - H}
		}
		if maxOrig > 0 && len(origins) > maxOrig {
			var sel []int
			for i := 0; i < maxOrig; i++ {
				sel = append(sel, origins[i*(len(origins)-1)/(maxOrig-1)])
			}
			origins = sel
		}
		per := map[string][2]float64{}
		for _, name := range models {
			a := res[name]
			var ae, pl float64
			var cnt int
			for _, t0 := range origins {
				f := mustNew(t, name, o)
				t1 := time.Now()
				err := f.Fit(y[:t0])
				var p Prediction
				if err == nil {
					p, err = f.Forecast(H)
				}
				a.fit += time.Since(t1)
				a.fits++
				if err != nil {
					a.fails++
					t.Logf("%s %s: %v", name, s.name, err)
					continue
				}
				for h := 0; h < H; h++ {
					v := y[t0+h]
					if !finite(v) {
						continue
					}
					ae += math.Abs(v - p.Mean[h])
					for qi, q := range p.Quantiles {
						b := p.Bands[qi][h]
						if v >= b {
							pl += q * (v - b)
						} else {
							pl += (1 - q) * (b - v)
						}
					}
					pl2 := pl
					_ = pl2
					l, u := p.Quantile(0.1), p.Quantile(0.9)
					if v >= l[h] && v <= u[h] {
						a.in80++
					}
					l, u = p.Quantile(0.025), p.Quantile(0.975)
					if v >= l[h] && v <= u[h] {
						a.in95++
					}
					a.pts++
					cnt++
				}
			}
			if cnt == 0 {
				continue
			}
			mase := ae / float64(cnt) / sc
			crps := pl / float64(cnt) / float64(len(o.quantiles())) / sc
			per[name] = [2]float64{mase, crps}
		}
		base, ok := per["seasonal-naive"]
		if !ok {
			continue
		}
		line := s.name
		for _, name := range models {
			v, ok := per[name]
			if !ok {
				continue
			}
			a := res[name]
			a.mase += v[0]
			a.crps += v[1]
			a.logRel += math.Log(math.Max(v[0], 1e-9) / math.Max(base[0], 1e-9))
			a.logRelC += math.Log(math.Max(v[1], 1e-9) / math.Max(base[1], 1e-9))
			a.n++
			line += fmt.Sprintf(" %s=%.3f", name, v[0]/math.Max(base[0], 1e-9))
		}
		if os.Getenv("FORESHAPE_EVAL_VERBOSE") != "" {
			t.Log(line)
		}
	}
	names := append([]string(nil), models...)
	sort.Strings(names)
	t.Logf("H=%d series=%d", H, res[models[0]].n)
	for _, name := range names {
		a := res[name]
		if a.n == 0 {
			continue
		}
		t.Logf("%-16s rel_mase=%.3f rel_crps=%.3f mase=%.3f crps=%.3f cov80=%.3f cov95=%.3f fit_ms=%.1f fails=%d",
			name, math.Exp(a.logRel/float64(a.n)), math.Exp(a.logRelC/float64(a.n)), a.mase/float64(a.n), a.crps/float64(a.n),
			float64(a.in80)/float64(a.pts), float64(a.in95)/float64(a.pts),
			float64(a.fit.Microseconds())/1000/float64(a.fits), a.fails)
	}
}

type namedSeries struct {
	name string
	y    []float64
}

// loadSeries reads every CSV-like file under dir: each numeric column other
// than a timestamp is a series; a header-less single column is one series.
func loadSeries(t *testing.T, dir string) []namedSeries {
	var out []namedSeries
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".md") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var header []string
		var cols [][]float64
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			sep := ","
			if strings.Contains(line, ";") {
				sep = ";"
			}
			fields := strings.Split(line, sep)
			for i := range fields {
				fields[i] = strings.TrimSpace(fields[i])
			}
			if header == nil {
				if _, err := strconv.ParseFloat(fields[len(fields)-1], 64); err != nil {
					header = fields
					cols = make([][]float64, len(fields))
					continue
				}
				header = make([]string, len(fields))
				for i := range header {
					header[i] = strconv.Itoa(i)
				}
				cols = make([][]float64, len(fields))
			}
			for i := range cols {
				v := math.NaN()
				if i < len(fields) {
					if x, err := strconv.ParseFloat(fields[i], 64); err == nil {
						v = x
					}
				}
				cols[i] = append(cols[i], v)
			}
		}
		for i, h := range header {
			lh := strings.ToLower(h)
			if strings.Contains(lh, "timestamp") {
				continue
			}
			if countFinite(cols[i]) < len(cols[i])/2 {
				continue
			}
			out = append(out, namedSeries{name: filepath.Base(path) + ":" + h, y: cols[i]})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
