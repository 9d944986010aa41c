package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/policies"
)

// Chart geometry, in SVG user units; the SVG scales to its container.
const (
	chartW      = 640.0
	chartH      = 200.0
	plotLeft    = 44.0
	plotRight   = 12.0
	plotTop     = 14.0
	plotBottom  = 26.0
	bandLow     = 0.1
	bandHigh    = 0.9
	percentFull = 100.0
)

// span is a stretch of the time axis: a scheduled event or a reservation.
type span struct {
	Start, End time.Time
	Label      string
	Kind       string // "peak", "drain", "reservation"
}

// mark is a moment on the time axis: a migration starting or finishing.
type mark struct {
	At    time.Time
	Label string
	Kind  string // "move-in", "move-out"
}

// chartInput is everything one locality metric's chart shows.
type chartInput struct {
	Forecast     api.Forecast
	Reservations []span
	Moves        []mark
}

// hline is a horizontal reference line.
type hline struct {
	Y     float64
	Value float64
	Label string
}

type tick struct {
	Pos   float64
	Label string
}

// rect is a span on the chart; its label starts at TextX, anchored at
// Anchor ("start" or "end") so that it stays inside the plot. Text is the
// label written on the chart at TextY: empty where it would cover another
// (the span's tooltip, Label, still says it).
type rect struct {
	X, W   float64
	Label  string
	Kind   string
	TextX  float64
	Anchor string
	Text   string
	TextY  float64
}

// point is a mark on the chart, labelled like rect.
type point struct {
	X, Y   float64
	Label  string
	Kind   string
	TextX  float64
	Anchor string
	Text   string
	TextY  float64
}

// chart is a rendered chart: coordinates and SVG path data, ready for the
// template.
type chart struct {
	ID            string
	W, H          float64
	Left, Top     float64
	Right, Bottom float64 // plot area's right and bottom edges
	XTicks        []tick
	YTicks        []tick
	History       string // path d
	Band          string // polygon points, p10 to p90
	Median        string // path d
	Planning      string // path d
	PlanningLabel string
	Headroom      *hline
	Capacity      *hline
	Now           float64
	Events        []rect
	Reservations  []rect
	Moves         []point
	Hotspot       *point
	Unit          string
	Empty         bool
}

// buildChart lays out one forecast's chart. It is pure: the forecast, the
// spans and marks in, coordinates out.
func buildChart(id string, in chartInput) chart {
	f := in.Forecast
	c := chart{ID: id, W: chartW, H: chartH, Left: plotLeft, Top: plotTop,
		Right: chartW - plotRight, Bottom: chartH - plotBottom, Unit: unitOf(f)}
	if !f.Ready() || len(f.Times) == 0 || len(f.Mean) == 0 {
		c.Empty = true
		return c
	}
	t0 := f.Origin
	if len(f.History) > 0 && f.History[0].Time.Before(t0) {
		t0 = f.History[0].Time
	}
	t1 := f.Times[len(f.Times)-1]
	if !t1.After(t0) {
		t1 = t0.Add(time.Minute)
	}
	lo, hi := band(f, bandLow), band(f, bandHigh)
	plan := band(f, f.PlanningQuantile)
	median := band(f, 0.5)
	if median == nil {
		median = f.Mean
	}

	top := 0.0
	for _, p := range f.History {
		top = math.Max(top, p.Value)
	}
	for _, s := range [][]float64{hi, plan, median} {
		for _, v := range s {
			top = math.Max(top, v)
		}
	}
	percent := f.Line != nil
	yStep := niceCeil(top * 1.05 / 4)
	if yStep <= 0 {
		yStep = 0.25
	}
	yMax := math.Max(math.Ceil(top*1.05/yStep)*yStep, yStep)
	if percent && top <= percentFull {
		yStep, yMax = percentFull/4, percentFull // percent charts show the whole capacity
	}

	x := func(t time.Time) float64 {
		return c.Left + (c.Right-c.Left)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	y := func(v float64) float64 {
		v = math.Max(0, math.Min(v, yMax))
		return c.Bottom - (c.Bottom-c.Top)*v/yMax
	}
	inAxis := func(t time.Time) bool { return !t.Before(t0) && !t.After(t1) }

	var h strings.Builder
	for i, p := range f.History {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&h, "%s%.1f %.1f ", cmd, x(p.Time), y(p.Value))
	}
	c.History = strings.TrimSpace(h.String())
	if lo != nil && hi != nil {
		var b strings.Builder
		for i, t := range f.Times {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(t), y(hi[i]))
		}
		for i := len(f.Times) - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(f.Times[i]), y(lo[i]))
		}
		c.Band = strings.TrimSpace(b.String())
	}
	c.Median = linePath(f.Times, median, x, y)
	if plan != nil {
		c.Planning = linePath(f.Times, plan, x, y)
		c.PlanningLabel = policies.QuantileName(f.PlanningQuantile)
	}
	if percent {
		c.Headroom = &hline{Y: y(*f.Line), Value: *f.Line, Label: fmt.Sprintf("headroom line %s%%", trimFloat(*f.Line))}
		c.Capacity = &hline{Y: y(percentFull), Value: percentFull, Label: "capacity 100%"}
	}
	c.Now = x(f.Origin)
	mid := (c.Left + c.Right) / 2
	for _, e := range eventSpans(f.EventWindows) {
		if r, ok := clip(e, t0, t1, x, mid); ok {
			c.Events = append(c.Events, r)
		}
	}
	for _, s := range in.Reservations {
		if r, ok := clip(s, t0, t1, x, mid); ok {
			c.Reservations = append(c.Reservations, r)
		}
	}
	for _, m := range in.Moves {
		if inAxis(m.At) {
			c.Moves = append(c.Moves, point{X: x(m.At), Y: c.Bottom, Label: m.Label, Kind: m.Kind, TextX: x(m.At), Anchor: "start"})
		}
	}
	if hs := f.Hotspot; hs != nil && inAxis(hs.At) {
		p := point{X: x(hs.At), Y: y(hs.Line), Label: "hotspot " + hs.At.UTC().Format("15:04"), Kind: "hotspot",
			TextX: x(hs.At) + 8, Anchor: "start"}
		if p.X > mid {
			p.TextX, p.Anchor = p.X-8, "end"
		}
		c.Hotspot = &p
	}
	c.placeLabels()
	c.XTicks = timeTicks(t0, t1, x)
	for v := 0.0; v <= yMax+float64(yStep/2); v += yStep {
		c.YTicks = append(c.YTicks, tick{Pos: y(v), Label: trimFloat(v)})
	}
	return c
}

// Label sizes, as the stylesheet sets them (.span-label, .line-label,
// .now-label 9px; .hotspot-label 10px bold), and the width of a character
// as a share of the size, generous for the system fonts.
const (
	smallText   = 9.0
	hotspotText = 10.0
	charWidth   = 0.62
	rowStep     = 11.0
)

// box is the room a label takes on the chart.
type box struct{ x0, x1, y0, y1 float64 }

func (b box) overlaps(o box) bool {
	return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1
}

// labelBox is the room text takes written at x, y (its baseline) with
// the anchor and font size.
func labelBox(text string, x, y float64, anchor string, size float64) box {
	w := float64(len([]rune(text))) * size * charWidth
	x0 := x
	if anchor == "end" {
		x0 = x - w
	}
	return box{x0: x0, x1: x0 + w, y0: y - 0.8*size, y1: y + 0.25*size} // capitals to descenders
}

// placeLabels writes each span's and the hotspot's label where it covers
// no other label: the lines' and "now" first, where the template puts
// them; the hotspot's above its ring, or below it; then the scheduled
// events from the plot's top, the reservations below them, each a row
// lower while it would cover one placed before (six rows at most). A
// span label with no room is left off the chart (its tooltip stays): ten
// reservations of one drain, which start a few minutes apart, wrote their
// labels over each other into a black bar, and a hotspot at the
// horizon's end wrote its time over the headroom line's label.
func (c *chart) placeLabels() {
	var placed []box
	free := func(b box) bool {
		for _, o := range placed {
			if b.overlaps(o) {
				return false
			}
		}
		return true
	}
	if c.Capacity != nil {
		placed = append(placed, labelBox(c.Capacity.Label, c.Right-2, c.Capacity.Y+11, "end", smallText))
	}
	if c.Headroom != nil {
		placed = append(placed, labelBox(c.Headroom.Label, c.Right-2, c.Headroom.Y-4, "end", smallText))
	}
	placed = append(placed, labelBox("now", c.Now+3, c.Bottom-4, "start", smallText))
	spans := func(rs []rect, y0 float64) {
		for i := range rs {
			r := &rs[i]
			for row := range 6 {
				y := y0 + float64(row)*rowStep
				if b := labelBox(r.Label, r.TextX, y, r.Anchor, smallText); y < c.Bottom && free(b) {
					r.Text, r.TextY = r.Label, y
					placed = append(placed, b)
					break
				}
			}
		}
	}
	if h := c.Hotspot; h != nil {
		// Always written: above its ring, or below it where that covers
		// nothing.
		h.Text, h.TextY = h.Label, h.Y-8
		if b := labelBox(h.Label, h.TextX, h.Y+18, h.Anchor, hotspotText); !free(labelBox(h.Label, h.TextX, h.TextY, h.Anchor, hotspotText)) && free(b) {
			h.TextY = h.Y + 18
		}
		placed = append(placed, labelBox(h.Label, h.TextX, h.TextY, h.Anchor, hotspotText))
	}
	spans(c.Events, c.Top+10)
	spans(c.Reservations, c.Top+10+2*rowStep)
}

func linePath(times []time.Time, vs []float64, x func(time.Time) float64, y func(float64) float64) string {
	if vs == nil {
		return ""
	}
	var b strings.Builder
	for i, t := range times {
		if i >= len(vs) {
			break
		}
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f ", cmd, x(t), y(vs[i]))
	}
	return strings.TrimSpace(b.String())
}

// clip fits a span to the axis [t0, t1]; ok is false when it lies outside.
// A span that starts right of mid has its label end at its right edge.
func clip(s span, t0, t1 time.Time, x func(time.Time) float64, mid float64) (rect, bool) {
	if !s.End.After(t0) || !s.Start.Before(t1) {
		return rect{}, false
	}
	a, b := s.Start, s.End
	if a.Before(t0) {
		a = t0
	}
	if b.After(t1) {
		b = t1
	}
	r := rect{X: x(a), W: math.Max(1, x(b)-x(a)), Label: s.Label, Kind: s.Kind, TextX: x(a) + 3, Anchor: "start"}
	if r.X > mid {
		r.TextX, r.Anchor = r.X+r.W-3, "end"
	}
	return r, true
}

// tickSteps are the candidate spacings of the time axis' ticks.
var tickSteps = []time.Duration{
	5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeTicks returns at most about six ticks on round times within [t0, t1].
func timeTicks(t0, t1 time.Time, x func(time.Time) float64) []tick {
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if t1.Sub(t0)/s <= 6 {
			step = s
			break
		}
	}
	layout := "15:04"
	if step >= 24*time.Hour {
		layout = "Jan 2"
	}
	var ts []tick
	for t := t0.Truncate(step); !t.After(t1); t = t.Add(step) {
		if t.Before(t0) {
			continue
		}
		ts = append(ts, tick{Pos: x(t), Label: t.UTC().Format(layout)})
	}
	return ts
}

// eventSpans turns the scheduled events applied to a forecast into spans.
func eventSpans(ws []api.EventWindow) []span {
	var out []span
	for _, w := range ws {
		if !w.End.After(w.Start) {
			continue
		}
		label := w.Kind + " " + w.Schedule
		if w.From != "" {
			label += " of " + w.From
		}
		out = append(out, span{Start: w.Start, End: w.End, Label: label, Kind: w.Kind})
	}
	return out
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v-1e-9 {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if math.Abs(v) >= 100 || v == math.Trunc(v) {
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func unitOf(f api.Forecast) string {
	if f.Line != nil {
		return "%"
	}
	return ""
}

// band returns the forecast's band for quantile q when it has one for
// every step, or nil.
func band(f api.Forecast, q float64) []float64 {
	for i, l := range f.Quantiles {
		if math.Abs(l-q) < 1e-9 && i < len(f.Bands) && len(f.Bands[i]) == len(f.Times) {
			return f.Bands[i]
		}
	}
	return nil
}
