package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	// Values has null for a missing point.
	Values   []Num     `json:"values"`
	Origins  []int     `json:"origins"`
	Scales   []float64 `json:"scales"`
	Lag      int       `json:"lag"`
	Excluded string    `json:"excluded,omitempty"`
	// RangeMin and RangeMax are the physical range (null: unbounded).
	RangeMin Num `json:"range_min"`
	RangeMax Num `json:"range_max"`
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
			Values: make([]Num, len(s.Values)), Origins: p.Origins, Scales: p.Scales, Lag: p.Lag, Excluded: p.Excluded,
			RangeMin: Num(math.Inf(-1)), RangeMax: Num(math.Inf(1)),
		}
		for i, v := range s.Values {
			e.Values[i] = Num(v)
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
