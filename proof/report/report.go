// Package report writes a comparison's report: report.md and a
// self-contained report.html (figures inline, nothing fetched), with the
// metrics table, the goal checks and warnings with the figures that explain
// each miss, and plots drawn with gonum/plot in PNG and SVG: per datacenter,
// CPU demand against capacity with the forecast bands, reservations and
// moves on one time axis, one panel per controller; and a bar chart of the
// metrics per controller.
//
// It only reads the result it is given: it never runs a controller.
package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/proof"
)

// Write writes the report of res into dir (created if missing).
func Write(dir string, res *proof.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var figs []figure
	mf, err := metricsFigure(res)
	if err != nil {
		return fmt.Errorf("report: metrics figure: %w", err)
	}
	figs = append(figs, mf)
	for _, dc := range datacenters(res) {
		f, err := localityFigure(res, dc)
		if err != nil {
			return fmt.Errorf("report: %s figure: %w", dc, err)
		}
		figs = append(figs, f)
	}
	for _, f := range figs {
		if err := os.WriteFile(filepath.Join(dir, f.Name+".png"), f.PNG, 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name+".svg"), f.SVG, 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	sections := build(res)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(markdown(res, sections, figs)), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), []byte(htmlPage(res, sections, figs)), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// datacenters returns every datacenter any run recorded, sorted.
func datacenters(res *proof.Result) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range res.Runs {
		for _, s := range r.Localities {
			if !seen[s.Datacenter] {
				seen[s.Datacenter] = true
				out = append(out, s.Datacenter)
			}
		}
	}
	sort.Strings(out)
	return out
}

// sections is the report's text, shared by both formats.
type sections struct {
	Summary string
	Table   [][]string // header row first
	Checks  []proof.Check
	// Why explains each missed goal and warning with figures.
	Why []string
	// Congestion lists each run's congestion by datacenter and when.
	Congestion []string
}

func build(res *proof.Result) sections {
	var s sections
	s.Summary = fmt.Sprintf("Scenario **%s**, seed %d: %s of virtual time from %s, %d move requests; every controller ran its own copy of the cluster with the same requests at the same virtual times, control cycle %s, headroom line %.0f%%, at most %d moves at once through a locality.",
		res.Scenario, res.Seed, res.End.Sub(res.Start), res.Start.Format(time.RFC3339), len(res.Workload.Requests),
		res.Params.Interval, 100*res.Params.Line(), res.Params.MaxParallel)
	head := []string{"metric"}
	for _, r := range res.Runs {
		head = append(head, r.Controller)
	}
	s.Table = append(s.Table, head)
	for _, m := range proof.MetricNames {
		row := []string{m}
		for _, r := range res.Runs {
			row = append(row, num(r.Metrics.Value(m)))
		}
		s.Table = append(s.Table, row)
	}
	s.Checks = proof.Checks(res)
	for _, r := range res.Runs {
		s.Congestion = append(s.Congestion, fmt.Sprintf("%s: %s", r.Controller, congestionWhere(res, r)))
	}
	for _, c := range s.Checks {
		if c.Holds {
			continue
		}
		s.Why = append(s.Why, explain(res, c))
	}
	return s
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// congestionWhere says where and when a run's congestion happened.
func congestionWhere(res *proof.Result, r proof.Run) string {
	type span struct {
		dc          string
		total, peak float64
		// demand and capacity sum the datacenter's CPU over the
		// congested minutes.
		demand, capacity float64
		first, last      time.Time
		peakAt           time.Time
	}
	var spans []span
	for _, ls := range r.Localities {
		sp := span{dc: ls.Datacenter}
		for i, c := range ls.Congested {
			if c <= 0 {
				continue
			}
			sp.demand += ls.CPUDemand[i]
			sp.capacity += ls.CPUCapacity[i]
			if sp.total == 0 {
				sp.first = ls.Minutes[i]
			}
			sp.last = ls.Minutes[i]
			sp.total += c
			if c > sp.peak {
				sp.peak, sp.peakAt = c, ls.Minutes[i]
			}
		}
		if sp.total > 0 {
			spans = append(spans, sp)
		}
	}
	if len(spans) == 0 {
		return "no congestion"
	}
	sort.Slice(spans, func(i, k int) bool { return spans[i].total > spans[k].total })
	var parts []string
	for _, sp := range spans {
		p := fmt.Sprintf("%.1f node-minutes in %s between +%s and +%s (at most %.1f nodes at once, at +%s)",
			sp.total, sp.dc, offset(res, sp.first), offset(res, sp.last.Add(time.Minute)), sp.peak, offset(res, sp.peakAt))
		if sp.capacity > 0 {
			p += fmt.Sprintf(" with the datacenter's CPU demand at %.0f%% of its ready capacity", 100*sp.demand/sp.capacity)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func offset(res *proof.Result, t time.Time) string {
	d := t.Sub(res.Start).Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// explain backs a missed goal or a warning with the figures behind it: where
// and when each side congested, how foreshape's forecast compared with the
// demand at those minutes, its moves and scale actions.
func explain(res *proof.Result, c proof.Check) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s.", c.Name, c.Detail)
	fs, ok := run(res, "foreshape")
	if !ok {
		return b.String()
	}
	fmt.Fprintf(&b, " foreshape: %s.", congestionWhere(res, fs))
	for _, other := range []string{"throttle", "reactive", "oracle", "none"} {
		if strings.Contains(c.Name, other) {
			if r, ok := run(res, other); ok {
				fmt.Fprintf(&b, " %s: %s.", other, congestionWhere(res, r))
			}
		}
	}
	if e := forecastError(fs); e != "" {
		fmt.Fprintf(&b, " %s", e)
	}
	if strings.HasPrefix(c.Name, "congestion ≤ 50% of ") {
		other := strings.TrimPrefix(c.Name, "congestion ≤ 50% of ")
		or, ok1 := run(res, "oracle")
		ot, ok2 := run(res, other)
		if ok1 && ok2 && or.Metrics.CongestionNodeMinutes > 0.5*ot.Metrics.CongestionNodeMinutes {
			fmt.Fprintf(&b, " oracle, planning with the true future, misses it too (%.1f node-minutes, %.0f%% of %s's): what bounds it is not the forecast.",
				or.Metrics.CongestionNodeMinutes, 100*or.Metrics.CongestionNodeMinutes/ot.Metrics.CongestionNodeMinutes, other)
		}
	}
	if e := cloudLimit(fs, res.Params.MaxScaleOut); e != "" {
		fmt.Fprintf(&b, " %s", e)
	}
	if strings.HasPrefix(c.Name, "oracle ") {
		if or, ok := run(res, "oracle"); ok {
			if e := nodeDifference(fs, or); e != "" {
				fmt.Fprintf(&b, " %s", e)
			}
		}
	}
	late := 0
	for _, rq := range res.Workload.Requests {
		if t, ok := fs.Starts[rq.ID]; ok && !t.Before(rq.Deadline) {
			late++
		}
	}
	fmt.Fprintf(&b, " foreshape started %d of %d requests, %d at or after their deadline, and made %d scale actions.",
		len(fs.Starts), len(res.Workload.Requests), late, fs.Metrics.ScaleActions)
	return b.String()
}

// forecastError compares the run's forecasts with the demand it then met,
// over the minutes its datacenters were congested.
func forecastError(r proof.Run) string {
	var parts []string
	for _, tr := range r.Notes.Forecasts {
		ls := (*proof.LocalitySeries)(nil)
		for i := range r.Localities {
			if r.Localities[i].Datacenter == tr.Datacenter {
				ls = &r.Localities[i]
			}
		}
		if ls == nil {
			continue
		}
		at := map[time.Time]int{}
		for i, t := range ls.Minutes {
			at[t] = i
		}
		var under, n float64
		for k, t := range tr.Times {
			i, ok := at[t]
			if !ok || ls.Congested[i] <= 0 || math.IsNaN(tr.P90[k]) || ls.CPUDemand[i] <= 0 {
				continue
			}
			under += (ls.CPUDemand[i] - tr.P90[k]) / ls.CPUDemand[i]
			n++
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("over %s's congested minutes its p90 CPU forecast made %s ahead was %.0f%% %s demand",
				tr.Datacenter, tr.Lead, 100*math.Abs(under/n), map[bool]string{true: "below", false: "above"}[under > 0]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + "."
}

// refusedAt matches the cloud's answer when a datacenter is at its limit.
var refusedAt = regexp.MustCompile(`datacenter "([^"]+)" has no capacity left to add`)

// cloudLimit says where the cloud refused a run's scale-outs for want of
// nodes to add, from the decisions it recorded.
func cloudLimit(r proof.Run, maxScaleOut float64) string {
	n := map[string]int{}
	for _, d := range r.Notes.Decisions {
		if m := refusedAt.FindStringSubmatch(d); m != nil {
			n[m[1]]++
		}
	}
	if len(n) == 0 {
		return ""
	}
	var parts []string
	for _, dc := range sortedKeys(mapKeys(n)) {
		parts = append(parts, fmt.Sprintf("%s (%d decisions)", dc, n[dc]))
	}
	return fmt.Sprintf("%s reached the cloud's limit (%.0f%% more nodes than the scenario declares) in %s: capacity it wanted was not there to add.",
		r.Controller, 100*maxScaleOut, strings.Join(parts, ", "))
}

func mapKeys(m map[string]int) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// nodeDifference compares two runs node by node, in the datacenters where
// either congested: the nodes each added, how many transfers into the
// datacenter landed beside the work already there (on its nodes from the
// start), and the nodes whose congestion differs most.
func nodeDifference(a, b proof.Run) string {
	type side struct {
		added, onOriginal, moves int
		cong                     map[string]float64
	}
	count := func(r proof.Run, dc string) side {
		s := side{cong: map[string]float64{}}
		added := map[string]bool{}
		for _, n := range r.Nodes {
			if n.Datacenter != dc {
				continue
			}
			added[n.Node] = n.Added
			if n.Added {
				s.added++
			}
			s.cong[n.Node] = n.CongestedMinutes
		}
		for _, m := range r.Moves {
			if m.TargetLocality != dc || m.TargetNode == "" {
				continue
			}
			s.moves++
			if !added[m.TargetNode] {
				s.onOriginal++
			}
		}
		return s
	}
	dcs := map[string]bool{}
	for _, r := range []proof.Run{a, b} {
		for _, n := range r.Nodes {
			if n.CongestedMinutes > 0 {
				dcs[n.Datacenter] = true
			}
		}
	}
	var parts []string
	same := len(dcs) > 0
	for _, dc := range sortedKeys(dcs) {
		sa, sb := count(a, dc), count(b, dc)
		p := fmt.Sprintf("in %s, %s added %d nodes and %s %d; of the transfers into %s, %s landed %d of %d on its nodes from the start, %s %d of %d",
			dc, a.Controller, sa.added, b.Controller, sb.added, dc, a.Controller, sa.onOriginal, sa.moves, b.Controller, sb.onOriginal, sb.moves)
		same = same && sa.added == sb.added && sa.onOriginal == sb.onOriginal && sa.moves == sb.moves
		type diff struct {
			node   string
			ca, cb float64
		}
		var ds []diff
		for n := range sa.cong {
			if d := (diff{n, sa.cong[n], sb.cong[n]}); d.ca != d.cb {
				ds = append(ds, d)
			}
		}
		for n := range sb.cong {
			if _, ok := sa.cong[n]; !ok && sb.cong[n] > 0 {
				ds = append(ds, diff{n, 0, sb.cong[n]})
			}
		}
		sort.Slice(ds, func(i, k int) bool {
			di, dk := math.Abs(ds[i].ca-ds[i].cb), math.Abs(ds[k].ca-ds[k].cb)
			if di != dk {
				return di > dk
			}
			return ds[i].node < ds[k].node
		})
		var nodes []string
		for i, d := range ds {
			if i == 3 {
				break
			}
			nodes = append(nodes, fmt.Sprintf("%s (%.1f, %.1f)", d.node, d.ca, d.cb))
		}
		if len(nodes) > 0 {
			p += fmt.Sprintf("; congested node-minutes (%s, %s) differ most on %s", a.Controller, b.Controller, strings.Join(nodes, ", "))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	out := "Per node: " + strings.Join(parts, ". ") + "."
	if same {
		out += fmt.Sprint(" Both added as many nodes there and put as many moved allocations beside the work already" +
			" running: the difference is which allocations the scheduler placed together on which nodes, which neither" +
			" controller plans (both plan a datacenter's demand as a whole).")
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func run(res *proof.Result, name string) (proof.Run, bool) {
	for _, r := range res.Runs {
		if r.Controller == name {
			return r, true
		}
	}
	return proof.Run{}, false
}

func markdown(res *proof.Result, s sections, figs []figure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# foreshape against reactive controllers: %s\n\n%s\n\n", res.Scenario, s.Summary)
	b.WriteString("## Metrics\n\n")
	for i, row := range s.Table {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat("---|", len(row)) + "\n")
		}
	}
	b.WriteString("\nDefinitions: docs/proof.md. Lower is better for every metric but migrations_completed.\n\n")
	if len(s.Checks) > 0 {
		b.WriteString("## Goals and warnings\n\n")
		for _, c := range s.Checks {
			fmt.Fprintf(&b, "- %s %s: %s\n", mark(c), c.Name, c.Detail)
		}
		b.WriteString("\n")
	}
	if len(s.Why) > 0 {
		b.WriteString("## Why goals were missed\n\n")
		for _, w := range s.Why {
			fmt.Fprintf(&b, "- %s\n", w)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Where congestion happened\n\n")
	for _, c := range s.Congestion {
		fmt.Fprintf(&b, "- %s\n", c)
	}
	b.WriteString("\n## Figures\n\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "### %s\n\n![%s](%s.png)\n\n([SVG](%s.svg))\n\n", f.Title, f.Title, f.Name, f.Name)
	}
	b.WriteString(legend)
	return b.String()
}

const legend = `In the datacenter figures: capacity counts ready nodes only; the dashed
line is the headroom line; "demand + reserved" adds the CPU placeholders
hold; the shaded band is the controller's p10–p90 forecast of the demand,
made 30 minutes ahead (oracle's, the truth, is a line); triangles mark
moves into (▲) and out of (▼) the
datacenter when their transfer started; red squares along the top mark
minutes with a node over capacity.
`

func mark(c proof.Check) string {
	switch {
	case c.Holds:
		return "✅"
	case c.Warning:
		return "⚠️"
	}
	return "❌"
}

func htmlPage(res *proof.Result, s sections, figs []figure) string {
	var b bytes.Buffer
	esc := html.EscapeString
	fmt.Fprintf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>foreshape: %s</title>\n", esc(res.Scenario))
	b.WriteString(`<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}td:first-child,th:first-child{text-align:left}
.ok{color:#1b7e3c}.miss{color:#b00020}.warn{color:#a05a00}img{max-width:100%}</style></head><body>
`)
	fmt.Fprintf(&b, "<h1>foreshape against reactive controllers: %s</h1>\n<p>%s</p>\n", esc(res.Scenario), mdBold(esc(s.Summary)))
	b.WriteString("<h2>Metrics</h2>\n<table>\n")
	for i, row := range s.Table {
		tag := "td"
		if i == 0 {
			tag = "th"
		}
		b.WriteString("<tr>")
		for _, c := range row {
			fmt.Fprintf(&b, "<%s>%s</%s>", tag, esc(c), tag)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n<p>Lower is better for every metric but migrations_completed.</p>\n")
	if len(s.Checks) > 0 {
		b.WriteString("<h2>Goals and warnings</h2>\n<ul>\n")
		for _, c := range s.Checks {
			cls := "ok"
			if !c.Holds {
				cls = map[bool]string{true: "warn", false: "miss"}[c.Warning]
			}
			fmt.Fprintf(&b, "<li class=\"%s\">%s %s: %s</li>\n", cls, mark(c), esc(c.Name), esc(c.Detail))
		}
		b.WriteString("</ul>\n")
	}
	if len(s.Why) > 0 {
		b.WriteString("<h2>Why goals were missed</h2>\n<ul>\n")
		for _, w := range s.Why {
			fmt.Fprintf(&b, "<li>%s</li>\n", mdBold(esc(w)))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("<h2>Where congestion happened</h2>\n<ul>\n")
	for _, c := range s.Congestion {
		fmt.Fprintf(&b, "<li>%s</li>\n", esc(c))
	}
	b.WriteString("</ul>\n<h2>Figures</h2>\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "<h3>%s</h3>\n<img alt=\"%s\" src=\"data:image/svg+xml;base64,%s\">\n", esc(f.Title), esc(f.Title), base64.StdEncoding.EncodeToString(f.SVG))
	}
	fmt.Fprintf(&b, "<p>%s</p>\n</body></html>\n", esc(legend))
	return b.String()
}

// mdBold turns **x** into <b>x</b> in already escaped text.
func mdBold(s string) string {
	for {
		i := strings.Index(s, "**")
		if i < 0 {
			return s
		}
		k := strings.Index(s[i+2:], "**")
		if k < 0 {
			return s
		}
		s = s[:i] + "<b>" + s[i+2:i+2+k] + "</b>" + s[i+2+k+2:]
	}
}
