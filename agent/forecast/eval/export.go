package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/internal/tracefile"
)

// ExportedSeries is one line of an export: a series with its evaluation
// plan, so that another implementation (the classical reference of `make
// eval-reference`) can backtest its own models on exactly the same
// origins, scales and exclusions.
type ExportedSeries struct {
	Name     string  `json:"name"`
	Folder   string  `json:"folder"`
	Path     string  `json:"path"`
	Column   string  `json:"column"`
	StepSecs float64 `json:"step_seconds"`
	Horizon  int     `json:"horizon"`
	// Values has null for a missing point; every digit is kept.
	Values   []Exact `json:"values"`
	Origins  []int   `json:"origins"`
	Scales   []Exact `json:"scales"`
	Lag      int     `json:"lag"`
	Excluded string  `json:"excluded,omitempty"`
	// RangeMin and RangeMax are the physical range (null: unbounded).
	RangeMin Num `json:"range_min"`
	RangeMax Num `json:"range_max"`
}

// Exact is a value written to JSON with every digit (null for NaN).
type Exact float64

// MarshalJSON writes the shortest decimal that reads back as the same
// float64; NaN and infinities as null.
func (x Exact) MarshalJSON() ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// Export writes every series of data with its plan at horizon h as JSON
// lines (see ExportedSeries).
func Export(w io.Writer, data tracefile.Data, h int, step time.Duration, holdout float64, rangeOf func(tracefile.Series, []float64) forecast.Range) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, s := range data.Series {
		p := PlanSeries(s, h, step, holdout, rangeOf)
		e := ExportedSeries{
			Name: s.Name, Folder: s.Folder, Path: s.Path, Column: s.Column, StepSecs: step.Seconds(), Horizon: h,
			Values: make([]Exact, len(s.Values)), Origins: p.Origins, Lag: p.Lag, Excluded: p.Excluded,
			RangeMin: Num(math.Inf(-1)), RangeMax: Num(math.Inf(1)),
		}
		for i, v := range s.Values {
			e.Values[i] = Exact(v)
		}
		for _, v := range p.Scales {
			e.Scales = append(e.Scales, Exact(v))
		}
		if p.Range != (forecast.Range{}) {
			e.RangeMin, e.RangeMax = Num(p.Range.Min), Num(p.Range.Max)
		}
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("eval: export %s: %w", s.Name, err)
		}
	}
	return bw.Flush()
}
