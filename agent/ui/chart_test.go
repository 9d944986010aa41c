package ui

import (
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

var t0 = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// testForecast is a percent forecast with 4 history points and 4 steps,
// tweaked by apply.
func testForecast(apply func(*api.Forecast)) api.Forecast {
	line := 75.0
	f := api.Forecast{
		Policy: "dc2-web", Locality: "dc2", Metric: "cpu", Series: "dc2:cpu", Step: "1m",
		Origin: t0.Add(3 * time.Minute), PlanningQuantile: 0.9, Line: &line,
		Quantiles: []float64{0.1, 0.5, 0.9},
		Model:     "auto(ets)", Reason: "lowest backtest MAE",
	}
	for i := range 4 {
		f.History = append(f.History, api.Point{Time: t0.Add(time.Duration(i) * time.Minute), Value: 40})
		f.Times = append(f.Times, f.Origin.Add(time.Duration(i+1)*time.Minute))
	}
	f.Mean = []float64{40, 50, 60, 70}
	f.Bands = [][]float64{{30, 40, 50, 60}, {40, 50, 60, 70}, {50, 60, 70, 80}}
	if apply != nil {
		apply(&f)
	}
	return f
}

func TestBuildChart(t *testing.T) {
	cases := []struct {
		name  string
		in    chartInput
		check func(t *testing.T, c chart)
	}{
		{
			name: "percent metric spans the whole capacity with headroom and capacity lines",
			in:   chartInput{Forecast: testForecast(nil)},
			check: func(t *testing.T, c chart) {
				if c.Headroom == nil || c.Capacity == nil {
					t.Fatalf("headroom %v capacity %v: want both", c.Headroom, c.Capacity)
				}
				if c.Capacity.Y != c.Top {
					t.Errorf("capacity at y=%v, want the plot's top %v (axis 0–100%%)", c.Capacity.Y, c.Top)
				}
				wantHeadroom := c.Bottom - (c.Bottom-c.Top)*0.75
				if d := c.Headroom.Y - wantHeadroom; d > 0.01 || d < -0.01 {
					t.Errorf("headroom at y=%v, want %v", c.Headroom.Y, wantHeadroom)
				}
				if got := strings.Count(c.Band, ","); got != 8 {
					t.Errorf("band has %d points, want 8 (4 up the p90, 4 back along the p10)", got)
				}
				if !strings.HasPrefix(c.History, "M44.0 ") || strings.Count(c.History, "L") != 3 {
					t.Errorf("history path %q: want a move to the left edge and 3 lines", c.History)
				}
				if c.Planning == "" || c.PlanningLabel != "p90" {
					t.Errorf("planning %q label %q, want the p90 line", c.Planning, c.PlanningLabel)
				}
				if c.Now <= c.Left || c.Now >= c.Right {
					t.Errorf("now at x=%v, want inside (%v, %v)", c.Now, c.Left, c.Right)
				}
			},
		},
		{
			name: "a quiet percent metric still shows the whole capacity",
			in: chartInput{Forecast: testForecast(func(f *api.Forecast) {
				f.Bands = [][]float64{{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}}
				f.Mean = f.Bands[1]
				for i := range f.History {
					f.History[i].Value = 2
				}
			})},
			check: func(t *testing.T, c chart) {
				if c.Capacity.Y != c.Top || len(c.YTicks) != 5 || c.YTicks[4].Label != "100" {
					t.Errorf("capacity at %v (top %v), ticks %+v: want the axis 0–100%% in steps of 25", c.Capacity.Y, c.Top, c.YTicks)
				}
			},
		},
		{
			name: "values over capacity widen the axis",
			in: chartInput{Forecast: testForecast(func(f *api.Forecast) {
				f.Bands[2][3] = 140
			})},
			check: func(t *testing.T, c chart) {
				if c.Capacity.Y <= c.Top {
					t.Errorf("capacity at the top (y=%v) although the p90 reaches 140%%", c.Capacity.Y)
				}
				if last := c.YTicks[len(c.YTicks)-1].Label; last != "150" {
					t.Errorf("top tick %q, want 150 (140 × 1.05 in steps of 50)", last)
				}
			},
		},
		{
			name: "a metric without capacity has no lines",
			in: chartInput{Forecast: testForecast(func(f *api.Forecast) {
				f.Line = nil
				f.Metric = "iops"
			})},
			check: func(t *testing.T, c chart) {
				if c.Headroom != nil || c.Capacity != nil || c.Unit != "" {
					t.Errorf("headroom %v capacity %v unit %q: want none", c.Headroom, c.Capacity, c.Unit)
				}
				if last := c.YTicks[len(c.YTicks)-1].Label; last != "100" || len(c.YTicks) != 5 {
					t.Errorf("ticks %+v, want 0–100 in steps of 25 (80 × 1.05 rounded up)", c.YTicks)
				}
			},
		},
		{
			name: "events, reservations, moves and the hotspot land on the axis; outside ones are dropped",
			in: chartInput{
				Forecast: testForecast(func(f *api.Forecast) {
					f.EventWindows = []api.EventWindow{
						{Kind: "peak", Schedule: "surge", Start: t0.Add(5 * time.Minute), End: t0.Add(2 * time.Hour)},
						{Kind: "drain", Schedule: "rack", From: "dc1/web", Start: t0.Add(24 * time.Hour), End: t0.Add(25 * time.Hour)},
					}
					f.Hotspot = &api.Hotspot{At: t0.Add(6 * time.Minute), Line: 75, Probability: 0.8}
				}),
				Reservations: []span{{Start: t0.Add(4 * time.Minute), End: t0.Add(6 * time.Minute), Label: "r1", Kind: "reservation"}},
				Moves:        []mark{{At: t0.Add(5 * time.Minute), Label: "mr-1", Kind: "move-in"}, {At: t0.Add(-time.Hour), Label: "old"}},
			},
			check: func(t *testing.T, c chart) {
				if len(c.Events) != 1 || c.Events[0].Label != "peak surge" || c.Events[0].X+c.Events[0].W > c.Right+0.01 {
					t.Errorf("events %+v: want the surge, clipped to the axis", c.Events)
				}
				if len(c.Reservations) != 1 || c.Reservations[0].W <= 0 {
					t.Errorf("reservations %+v: want one", c.Reservations)
				}
				if len(c.Moves) != 1 || c.Moves[0].Label != "mr-1" {
					t.Errorf("moves %+v: want mr-1 only", c.Moves)
				}
				if c.Hotspot == nil || c.Hotspot.Label != "hotspot 08:06" {
					t.Fatalf("hotspot %+v: want one at 08:06", c.Hotspot)
				}
				if c.Hotspot.Anchor != "end" || c.Hotspot.TextX >= c.Hotspot.X {
					t.Errorf("hotspot label at %v anchored %q: right of the middle it should end left of the ring at %v",
						c.Hotspot.TextX, c.Hotspot.Anchor, c.Hotspot.X)
				}
				if ev := c.Events[0]; ev.Anchor != "end" || ev.TextX > c.Right {
					t.Errorf("surge label at %v anchored %q: want it to end inside the plot (right edge %v)", ev.TextX, ev.Anchor, c.Right)
				}
			},
		},
		{
			name: "a forecast that is not ready draws an empty chart",
			in: chartInput{Forecast: testForecast(func(f *api.Forecast) {
				f.Status = api.ForecastWarmingUp
			})},
			check: func(t *testing.T, c chart) {
				if !c.Empty || c.Band != "" {
					t.Errorf("empty %v band %q: want an empty chart", c.Empty, c.Band)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, buildChart("x", tc.in))
		})
	}
}

func TestEventSpans(t *testing.T) {
	got := eventSpans([]api.EventWindow{
		{Kind: "drain", Schedule: "rack-a-maintenance", Start: t0, End: t0.Add(time.Hour)},
		{Kind: "drain", Schedule: "x", From: "dc1/*/web", Start: t0, End: t0.Add(time.Hour)},
		{Kind: "peak", Schedule: "bad", Start: t0.Add(time.Hour), End: t0},
	})
	if len(got) != 2 {
		t.Fatalf("got %d spans, want 2 (a backwards window dropped): %+v", len(got), got)
	}
	if got[0].Kind != "drain" || got[0].Label != "drain rack-a-maintenance" || got[0].End.Sub(got[0].Start) != time.Hour {
		t.Errorf("first span %+v", got[0])
	}
	if got[1].Label != "drain x of dc1/*/web" {
		t.Errorf("second span label %q", got[1].Label)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 0}, {1, 1}, {84, 100}, {105, 200}, {28.9, 50}, {0.3, 0.5}, {2600, 5000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestChartLabelsDoNotCover: the labels a chart writes cover none of the
// others. A drain's ten reservations, a few minutes apart, wrote their
// labels over each other (a black bar on the dev scenario's dc1 chart),
// and a hotspot at the horizon's end, where the dev scenario's dc2 surge
// is first seen, wrote its time over the headroom line's label. The
// labels are read from the rendered SVG, each taking the room of its
// characters at the stylesheet's size; and each reservation's pattern
// covered the labels of those before it.
func TestChartLabelsDoNotCover(t *testing.T) {
	f := testForecast(func(f *api.Forecast) {
		f.Hotspot = &api.Hotspot{At: f.Times[len(f.Times)-1], Line: 75, Quantile: 0.9, Probability: 0.9}
		f.EventWindows = []api.EventWindow{{Kind: "peak", Schedule: "surge", Start: f.Times[2], End: f.Times[3]}}
	})
	var res []span
	for i := range 10 {
		start := t0.Add(time.Duration(i*40) * time.Second)
		res = append(res, span{Start: start, End: t0.Add(8 * time.Minute), Kind: "reservation",
			Label: fmt.Sprintf("reserved 1000 MHz / 1024 MiB for mr-%d", i+1)})
	}
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var svg strings.Builder
	mv := metricView{ID: "x", Title: "dc2 cpu", Chart: buildChart("x", chartInput{Forecast: f, Reservations: res})}
	if err := h.pages["localities"].ExecuteTemplate(&svg, "chart", mv); err != nil {
		t.Fatal(err)
	}
	// Written after every span, so that no span's pattern covers them.
	if last, first := strings.LastIndex(svg.String(), "<rect class="), strings.Index(svg.String(), `<text class="span-label"`); first < last {
		t.Errorf("a span label comes before a span's rect (at %d, the last rect at %d): the span covers it", first, last)
	}
	type label struct {
		text           string
		x0, x1, y0, y1 float64
	}
	var labels []label
	texts := regexp.MustCompile(`<text class="([a-z-]+)" x="([0-9.-]+)" y="([0-9.-]+)"(?: text-anchor="([a-z]+)")?>([^<]*)</text>`)
	for _, m := range texts.FindAllStringSubmatch(svg.String(), -1) {
		class, text := m[1], html.UnescapeString(m[5])
		if class == "ylabel" || text == "" {
			continue
		}
		x, _ := strconv.ParseFloat(m[2], 64)
		y, _ := strconv.ParseFloat(m[3], 64)
		size := 9.0
		if class == "hotspot-label" {
			size = 10
		}
		w := float64(len([]rune(text))) * size * 0.55
		x0 := x
		if m[4] == "end" || class == "line-label" {
			x0 = x - w
		}
		labels = append(labels, label{text, x0, x0 + w, y - 0.7*size, y + 0.2*size})
	}
	var hotspot, event, reservations int
	for _, l := range labels {
		switch {
		case strings.HasPrefix(l.text, "hotspot "):
			hotspot++
		case l.text == "peak surge":
			event++
		case strings.HasPrefix(l.text, "reserved "):
			reservations++
		}
	}
	if hotspot != 1 || event != 1 || reservations < 1 {
		t.Errorf("labels written: hotspot %d, event %d, reservations %d; want the hotspot's, the event's and at least one reservation's", hotspot, event, reservations)
	}
	for i, a := range labels {
		for _, b := range labels[i+1:] {
			if a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 {
				t.Errorf("label %q (%.0f–%.0f, %.0f–%.0f) covers %q (%.0f–%.0f, %.0f–%.0f)", b.text, b.x0, b.x1, b.y0, b.y1, a.text, a.x0, a.x1, a.y0, a.y1)
			}
		}
	}
}

// TestMovesDrawnAsTheLegendSays: a move into the locality is a filled
// triangle pointing up, one out of it a hollow one pointing down, as the
// legend draws them. The chart's class was "move move-move-out", which no
// style matched, and every move pointed up: a move out looked like a move
// in.
func TestMovesDrawnAsTheLegendSays(t *testing.T) {
	f := testForecast(nil)
	h, err := New(&fakeBackend{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := buildChart("x", chartInput{Forecast: f, Moves: []mark{
		{At: f.Times[1], Label: "move in: a", Kind: "move-in"}, {At: f.Times[2], Label: "move out: b", Kind: "move-out"}}})
	var svg strings.Builder
	if err := h.pages["localities"].ExecuteTemplate(&svg, "chart", metricView{ID: "x", Title: "dc2 cpu", Chart: c}); err != nil {
		t.Fatal(err)
	}
	moves := regexp.MustCompile(`<path class="move ([a-z-]+)" d="M[0-9.]+ [0-9.]+ l-6 (-?10) h12 z"><title>([^<]*)</title>`).FindAllStringSubmatch(svg.String(), -1)
	if len(moves) != 2 {
		t.Fatalf("moves drawn %q in:\n%s", moves, svg.String())
	}
	for _, m := range moves {
		want := map[string]string{"move-in": "10", "move-out": "-10"}[m[1]]
		if want == "" || m[2] != want {
			t.Errorf("%s drawn with class %q pointing %s; want move-in pointing up (10), move-out down (-10)", m[3], m[1], m[2])
		}
	}
	css, err := assets.ReadFile("assets/static/ui.css")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(css), ".move-out {") {
		t.Errorf("ui.css has no .move-out style for the class the chart writes")
	}
}
