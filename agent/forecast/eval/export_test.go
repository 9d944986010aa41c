package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/internal/tracefile"
)

func TestExport(t *testing.T) {
	a := linear(1, 200)
	a[10] = math.NaN()
	flat := make([]float64, 200)
	data := tracefile.Data{Series: []tracefile.Series{
		{Name: "a", Folder: "f", Path: "f/a.csv", Column: "v", Values: a},
		{Name: "flat", Folder: "f", Values: flat},
	}}
	var buf bytes.Buffer
	pct := func(tracefile.Series, []float64) forecast.Range { return forecast.Percent }
	if err := Export(&buf, data, 10, time.Hour, 0, pct); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var e struct {
		Name     string     `json:"name"`
		Path     string     `json:"path"`
		Values   []*float64 `json:"values"`
		Origins  []int      `json:"origins"`
		Scales   []float64  `json:"scales"`
		Lag      int        `json:"lag"`
		Excluded string     `json:"excluded"`
		RangeMax *float64   `json:"range_max"`
		StepSecs float64    `json:"step_seconds"`
		Horizon  int        `json:"horizon"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	want := PlanSeries(data.Series[0], 10, time.Hour, 0, pct)
	if e.Name != "a" || e.Path != "f/a.csv" || len(e.Values) != 200 || e.Values[10] != nil || *e.Values[11] != 12 ||
		e.Lag != 24 || e.StepSecs != 3600 || e.Horizon != 10 || e.RangeMax == nil || *e.RangeMax != 100 {
		t.Errorf("exported %+v", e)
	}
	if len(e.Origins) != len(want.Origins) || e.Origins[0] != 160 || e.Scales[0] != want.Scales[0] {
		t.Errorf("origins %v scales %v, want %v %v", e.Origins, e.Scales, want.Origins, want.Scales)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Excluded != "zero scale" {
		t.Errorf("flat series: excluded %q, err %v", e.Excluded, err)
	}
}
