package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/foreshape/foreshape/proof"
)

// Colours of the plots, one per controller in canonical order, then the
// series of a locality panel.
var (
	controllerColours = map[string]color.Color{
		"none":      color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff},
		"throttle":  color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff},
		"reactive":  color.RGBA{R: 0x75, G: 0x70, B: 0xb3, A: 0xff},
		"foreshape": color.RGBA{R: 0x1b, G: 0x9e, B: 0x77, A: 0xff},
		"oracle":    color.RGBA{R: 0x66, G: 0xa6, B: 0x1e, A: 0xff},
	}
	capacityColour = color.RGBA{R: 0x33, G: 0x33, B: 0x33, A: 0xff}
	demandColour   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	reservedColour = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	bandColour     = color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0x48}
	congestColour  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	inColour       = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	outColour      = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
)

func colourOf(controller string) color.Color {
	if c, ok := controllerColours[controller]; ok {
		return c
	}
	return color.Black
}

// figure is one drawn figure in both formats.
type figure struct {
	Name     string // file name without extension
	Title    string
	PNG, SVG []byte
}

// render draws a grid of plots into PNG and SVG.
func render(name, title string, plots [][]*plot.Plot, w, h vg.Length) (figure, error) {
	f := figure{Name: name, Title: title}
	rows, cols := len(plots), len(plots[0])
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 3,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	drawAll := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		canvases := plot.Align(plots, tiles, dc)
		for j := range rows {
			for i := range cols {
				if plots[j][i] != nil {
					plots[j][i].Draw(canvases[j][i])
				}
			}
		}
	}
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))
	drawAll(img)
	var png bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&png); err != nil {
		return f, fmt.Errorf("%s.png: %w", name, err)
	}
	svg := vgsvg.New(w, h)
	drawAll(svg)
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return f, fmt.Errorf("%s.svg: %w", name, err)
	}
	f.PNG, f.SVG = png.Bytes(), sb.Bytes()
	return f, nil
}

// hoursSince is the x coordinate: hours from the run's start.
func hoursSince(start, t time.Time) float64 { return t.Sub(start).Hours() }

// localityFigure draws one datacenter, one panel per controller: CPU
// demand against ready capacity and the headroom line, the CPU held by
// placeholders (stacked on demand), the controller's forecast band where it
// made one, moves into (▲) and out of (▼) the datacenter at their start,
// and minutes with a congested node (red, along the top).
func localityFigure(res *proof.Result, dc string) (figure, error) {
	var plots [][]*plot.Plot
	ymax := 0.0
	for _, r := range res.Runs {
		if s := series(r, dc); s != nil {
			for i := range s.CPUCapacity {
				ymax = max(ymax, s.CPUCapacity[i], s.CPUDemand[i]+s.Reserved[i])
			}
		}
	}
	ymax = ymax / 1000 * 1.5
	line := res.Params.Line()
	for _, r := range res.Runs {
		s := series(r, dc)
		if s == nil {
			continue
		}
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s", dc, r.Controller)
		p.Title.TextStyle.Color = colourOf(r.Controller)
		p.Y.Label.Text = "CPU, GHz"
		p.X.Label.Text = "hours from start"
		p.Y.Min, p.Y.Max = 0, max(ymax, 1)
		p.X.Min, p.X.Max = 0, hoursSince(res.Start, res.End)
		p.Legend.Top = true
		p.Legend.Left = false
		p.Legend.XOffs = -vg.Millimeter * 2
		p.Legend.TextStyle.Font.Size = vg.Points(7)
		p.Add(plotter.NewGrid())
		n := len(s.Minutes)
		capXY, lineXY, demXY, resXY := make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n)
		for i, t := range s.Minutes {
			x := hoursSince(res.Start, t)
			capXY[i] = plotter.XY{X: x, Y: s.CPUCapacity[i] / 1000}
			lineXY[i] = plotter.XY{X: x, Y: line * s.CPUCapacity[i] / 1000}
			demXY[i] = plotter.XY{X: x, Y: s.CPUDemand[i] / 1000}
			resXY[i] = plotter.XY{X: x, Y: (s.CPUDemand[i] + s.Reserved[i]) / 1000}
		}
		if band := forecastBand(res, r, dc); band != nil {
			p.Add(band)
			p.Legend.Add("forecast p10–p90", band)
		}
		l, err := plotter.NewLine(capXY)
		if err != nil {
			return figure{}, err
		}
		l.Color, l.Width = capacityColour, vg.Points(1.2)
		p.Add(l)
		p.Legend.Add("capacity", l)
		ll, _ := plotter.NewLine(lineXY)
		ll.Color, ll.Dashes, ll.Width = capacityColour, []vg.Length{vg.Points(3), vg.Points(3)}, vg.Points(0.8)
		p.Add(ll)
		p.Legend.Add(fmt.Sprintf("%.0f%% line", 100*line), ll)
		if hasAny(s.Reserved) {
			rl, _ := plotter.NewLine(resXY)
			rl.Color, rl.Width = reservedColour, vg.Points(1)
			p.Add(rl)
			p.Legend.Add("demand + reserved", rl)
		}
		dl, _ := plotter.NewLine(demXY)
		dl.Color, dl.Width = demandColour, vg.Points(1)
		p.Add(dl)
		p.Legend.Add("demand", dl)
		var cong plotter.XYs
		for i, t := range s.Minutes {
			if s.Congested[i] > 0 {
				cong = append(cong, plotter.XY{X: hoursSince(res.Start, t), Y: p.Y.Max * 0.97})
			}
		}
		if len(cong) > 0 {
			sc, _ := plotter.NewScatter(cong)
			sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = congestColour, draw.BoxGlyph{}, vg.Points(1.2)
			p.Add(sc)
			p.Legend.Add("congested node", sc)
		}
		var in, out plotter.XYs
		for _, m := range r.Moves {
			x := hoursSince(res.Start, m.Start)
			if m.TargetLocality == dc && m.SourceLocality != dc {
				in = append(in, plotter.XY{X: x, Y: p.Y.Max * 0.03})
			}
			if m.SourceLocality == dc && m.TargetLocality != dc {
				out = append(out, plotter.XY{X: x, Y: p.Y.Max * 0.06})
			}
		}
		for _, mv := range []struct {
			xy    plotter.XYs
			name  string
			c     color.Color
			shape draw.GlyphDrawer
		}{{in, "move in", inColour, draw.TriangleGlyph{}}, {out, "move out", outColour, draw.PyramidGlyph{}}} {
			if len(mv.xy) == 0 {
				continue
			}
			sc, _ := plotter.NewScatter(mv.xy)
			sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = mv.c, mv.shape, vg.Points(2.2)
			p.Add(sc)
			p.Legend.Add(mv.name, sc)
		}
		plots = append(plots, []*plot.Plot{p})
	}
	if len(plots) == 0 {
		return figure{}, fmt.Errorf("no series for %s", dc)
	}
	return render("locality-"+dc, fmt.Sprintf("%s: CPU demand against capacity", dc), plots, 10*vg.Inch, vg.Length(len(plots))*2.3*vg.Inch)
}

func series(r proof.Run, dc string) *proof.LocalitySeries {
	for i := range r.Localities {
		if r.Localities[i].Datacenter == dc {
			return &r.Localities[i]
		}
	}
	return nil
}

func hasAny(xs []float64) bool {
	for _, x := range xs {
		if x > 0 {
			return true
		}
	}
	return false
}

// forecastBand is the controller's p10–p90 forecast of the datacenter's
// CPU demand (GHz), as forecast 30 minutes ahead (proof's forecastLead),
// or nil.
func forecastBand(res *proof.Result, r proof.Run, dc string) *plotter.Polygon {
	for _, tr := range r.Notes.Forecasts {
		if tr.Datacenter != dc {
			continue
		}
		var lo, hi plotter.XYs
		for i, t := range tr.Times {
			if math.IsNaN(tr.P10[i]) || math.IsNaN(tr.P90[i]) || t.Before(res.Start) || !t.Before(res.End) {
				continue
			}
			x := hoursSince(res.Start, t)
			lo = append(lo, plotter.XY{X: x, Y: tr.P10[i] / 1000})
			hi = append(hi, plotter.XY{X: x, Y: tr.P90[i] / 1000})
		}
		if len(lo) < 2 {
			return nil
		}
		ring := append(plotter.XYs{}, lo...)
		for i := len(hi) - 1; i >= 0; i-- {
			ring = append(ring, hi[i])
		}
		pg, err := plotter.NewPolygon(ring)
		if err != nil {
			return nil
		}
		pg.Color, pg.LineStyle.Width = bandColour, 0
		return pg
	}
	return nil
}

// metricsFigure draws one bar chart per metric, a bar per controller.
func metricsFigure(res *proof.Result) (figure, error) {
	const cols = 5
	rows := (len(proof.MetricNames) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	names := make([]string, len(res.Runs))
	for i, r := range res.Runs {
		names[i] = r.Controller
	}
	for k, m := range proof.MetricNames {
		p := plot.New()
		p.Title.Text = m
		p.Title.TextStyle.Font.Size = vg.Points(9)
		p.Y.Min = 0
		p.X.Tick.Label.Font.Size = vg.Points(7)
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		w := vg.Points(14)
		for i, r := range res.Runs {
			b, err := plotter.NewBarChart(plotter.Values{r.Metrics.Value(m)}, w)
			if err != nil {
				return figure{}, err
			}
			b.Color, b.LineStyle.Width, b.XMin = colourOf(r.Controller), 0, float64(i)
			p.Add(b)
		}
		p.NominalX(names...)
		plots[k/cols][k%cols] = p
	}
	return render("metrics", "Metrics per controller", plots, 12*vg.Inch, vg.Length(rows)*2.6*vg.Inch)
}
