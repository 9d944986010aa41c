package predict

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// applySchedules applies the policy's scheduled events to the forecast as
// known future changes, each exactly once, and describes them. raw is the
// model's point forecast before any event (fc.Mean as the pipeline made
// it); h is the history the model was given.
//
// A "peak" multiplies every band inside its window by the policy's factor,
// or, without one, by the ratio that past occurrences of the same schedule
// showed in the history (mean inside the window over the mean of the
// equally long stretch before it); with neither it lifts the window to the
// highest value seen. That holds for a window ahead of the origin, which
// the model has not seen. A window already under way is in the history,
// and the model follows it (a run longer than forecast.MaxSpike points is
// the series' new level), so multiplying its forecast again would count the
// event twice: see peakOccurrence.
//
// A "drain" of the policy's own locality, or of one that holds every node
// of it ("dc1" for dc1/*/web), empties it: inside the window its demand is
// forecast as zero, since the allocations leave with the drained capacity
// — unless the drain names some of its nodes (nodes = "glob"):
// their work then moves to the rest of the locality, its forecast stays as
// the model made it, and its hotspots read it on the nodes that stay (see
// drainOfSome). A drain of
// another locality sends that locality's demand here: inside the window it
// is added, as a percent of this locality's capacity, less what the
// forecast already carries of it once the moves have begun (see
// drainOccurrence), and at most the room under its line: the planner
// sends the moves here first while they fit (homeFirst, homeRoom); with
// migrate.targets set, or for one that names some
// of its nodes, nothing is added here: the work goes to the targets
// (none shares a node with this locality) or to the rest of the drained
// locality first (see movesElsewhere); nor where another policy of pols
// drains it at once and queues its moves first (see drainedFirst). nodes
// are the cluster's nodes as the collector last listed them (none: not
// known).
//
// of are the events of the percent forecast whose demand fc forecasts
// (none for a percent forecast): a drain's demand added to a percent
// forecast is capped at the room under its line (homeRoom), and the
// absolute demand behind it, which has no line, is added in the same
// share.
func applySchedules(fc *Forecast, pol *policies.Policy, pols []*policies.Policy, h history, raw []float64, moved movedDemand, nodes []Node, of ...Event) []Event {
	if len(fc.Times) == 0 || len(raw) == 0 {
		return nil
	}
	var events []Event
	hStart, hEnd := fc.Times[0], fc.Times[len(fc.Times)-1].Add(h.step)
	// added is, per step, the drains of other localities whose work was
	// added there: a locality that shares nodes with one of them adds
	// only what its demand exceeds theirs, so that each node's work is
	// added once (takeOnce).
	added := map[int][]drainAdded{}
	for _, s := range pol.Schedules {
		switch s.Action {
		case policies.ActionPeak:
			if !affects(s, pol) {
				continue
			}
			// A window that ended in the last levelPoints steps may still
			// set the level the model forecasts from: the pipeline keeps
			// the first points after it out as spikes.
			windows := s.Windows(h.origin().Add(-levelPoints*h.step), hEnd)
			if len(windows) == 0 {
				continue
			}
			factor, how := peakFactor(s, h.y, h.start, h.step)
			highest := h.highest()
			rng := physicalRange(fc.Metric)
			for _, w := range windows {
				o := peakOccurrence(w, factor, how, h, raw, fc.Times)
				if !w.End.After(hStart) && o.after == 1 {
					continue // over, and the forecast no longer carries it
				}
				inWindow(fc, w, func(i int) {
					lift(fc, i, o.inside, highest)
					if o.observed {
						clampInto(fc, i, rng)
					}
				})
				if o.after != 1 {
					for i, at := range fc.Times {
						if !at.Before(w.End) {
							scale(fc, i, o.after)
						}
					}
				}
				events = append(events, Event{Kind: EventPeak, Schedule: s.Name, Start: w.Start, End: w.End, Factor: o.factor, Known: true, Detail: o.detail})
			}
		case policies.ActionDrain:
			windows := s.Windows(hStart, hEnd)
			for _, l := range s.Localities {
				// A drained locality that holds this one ("dc1" in the
				// policy of dc1/*/web) takes its nodes too: this
				// locality's own drain, not work that moves here (its
				// demand is part of l's).
				own := l == pol.Locality || holds(l, pol.Locality)
				if own && s.Nodes != "" {
					events = append(events, drainOfSome(fc, s, pol.Locality, h, nodes)...)
					continue
				}
				if own {
					detail := "the locality is emptied; its demand leaves with its capacity"
					if l != pol.Locality {
						detail = fmt.Sprintf("%s holds every node of the locality, which is emptied; its demand leaves with its capacity", l)
					}
					for _, w := range windows {
						inWindow(fc, w, func(i int) { scale(fc, i, 0) })
						events = append(events, Event{Kind: EventDrain, Schedule: s.Name, Start: w.Start, End: w.End, Known: true,
							Detail: detail})
					}
					continue
				}
				if s.Nodes != "" {
					for _, w := range windows {
						events = append(events, Event{Kind: EventDrain, Schedule: s.Name, From: l, Start: w.Start, End: w.End, Known: true,
							Nodes: s.Nodes, Detail: movesElsewhere(pol, s, l)})
					}
					continue
				}
				if len(pol.Migrate.Targets) > 0 {
					// Its moves go to migrate.targets, none of which
					// shares a node with this locality: none comes here.
					for _, w := range windows {
						events = append(events, Event{Kind: EventDrain, Schedule: s.Name, From: l, Start: w.Start, End: w.End, Known: true,
							Detail: fmt.Sprintf("its work moves to %s (migrate.targets); nothing is added here", targetNames(pol))})
					}
					continue
				}
				for _, w := range windows {
					e := Event{Kind: EventDrain, Schedule: s.Name, From: l, Start: w.Start, End: w.End}
					if first := drainedFirst(pols, pol, l, w); first != "" {
						e.Known, e.Detail = true, first
						events = append(events, e)
						continue
					}
					add, ok, detail := drainOccurrence(w, pol.Migrate.LeadTime, l, fc.Metric, h, raw[0], moved)
					e.Detail = detail
					if ok {
						home := !l.SharesNodes(pol.Locality)
						var capNote string
						e.share = 1
						if home {
							add, e.share, capNote = homeRoom(fc, pol, s.Name, l, w, add, of)
							if capNote != "" {
								e.Detail = strings.Replace(e.Detail, "moves here", "moves out of "+l.String(), 1) + "; " + capNote
							}
						}
						e.Added, e.Known = takeOnce(fc, w, s.Name, l, add, added), true
						if note := overlapNote(fc, w, l, added); note != "" {
							e.Detail += "; " + note
						}
						if home {
							e.Detail += "; " + homeFirst
						}
					}
					events = append(events, e)
				}
			}
		}
	}
	return events
}

// homeRoom caps the demand add of a drain of all of another locality l,
// declared without migrate.targets, at what the planner may send here:
// it sends the moves here first only while this locality stays under its
// line with them from their queueing (the window's lead time, or now)
// through the window's end, and the rest to the other allowed localities
// (shape's chooseTarget). So at most the room under the line over that
// span comes here: the planning quantile's peak there, less what drains
// added already (the planner reads it so), below the line. The forecast
// shows that much, and no hotspot of work the plan sends elsewhere.
// Fewer moves may come still: moves are whole allocations, the other
// metric's room may bind first, moves queued there before and the jobs'
// constraints count, and with no other locality having more room a
// move may still come over the line. The absolute demand behind a percent
// forecast (no line) takes the share its percent forecast's event took
// (of). It returns what to add, its share of add, and a note for the
// event ("" when all of it fits).
func homeRoom(fc *Forecast, pol *policies.Policy, schedule string, l policies.Locality, w policies.Window, add float64, of []Event) (float64, float64, string) {
	line, ok := headroomLine(pol, fc.Metric)
	if !ok {
		for _, e := range of {
			if e.Kind == EventDrain && e.Schedule == schedule && e.From == l && e.Start.Equal(w.Start) && e.share > 0 {
				return add * e.share, e.share, ""
			}
		}
		return add, 1, ""
	}
	band := fc.Band(pol.Forecast.Quantile)
	if band == nil || add <= 0 || len(fc.Times) == 0 {
		return add, 1, ""
	}
	from := w.Start.Add(-pol.Migrate.LeadTime)
	peak, at := math.Inf(-1), time.Time{}
	for i, t := range fc.Times {
		if t.Before(from) || !t.Before(w.End) {
			continue
		}
		v := band[i]
		if fc.DrainAdded != nil {
			v -= fc.DrainAdded[i]
		}
		if v > peak {
			peak, at = v, t
		}
	}
	if math.IsInf(peak, -1) {
		return add, 1, ""
	}
	room := math.Max(0, line-peak)
	if room >= add {
		return add, 1, ""
	}
	return room, room / add, fmt.Sprintf("at most +%.1f of it comes here, this locality's room under its %.0f%% line through the window's end "+
		"(%s %.1f%% at %s without it), so +%.1f is added", room, line, policies.QuantileName(pol.Forecast.Quantile), peak, at.Format("15:04"), room)
}

// drainedFirst says, when another policy of pols drains all of a locality
// that holds l in a window that overlaps w and queues its moves before
// pol's window w does, that this drain moves nothing here: the planner
// queues each allocation once, for the first drain whose lead time
// (migrate.lead_time before its window) reaches it, walking the policies
// in order, and none is left for w. That is the drain whose lead time
// begins first, or, beginning at once, of the policy that comes first in
// pols. Its moves go where that policy sends them (its migrate.targets,
// or its own locality first), and a move of them the planner sends here
// is counted as it goes: added here too, the work was forecast in two
// localities at once. "" when no such drain comes first.
func drainedFirst(pols []*policies.Policy, pol *policies.Policy, l policies.Locality, w policies.Window) string {
	lead := w.Start.Add(-pol.Migrate.LeadTime)
	mine := slices.IndexFunc(pols, func(q *policies.Policy) bool { return q.Name == pol.Name })
	for qi, q := range pols {
		if q.Name == pol.Name {
			continue
		}
		for si := range q.Schedules {
			qs := &q.Schedules[si]
			if qs.Action != policies.ActionDrain || qs.Nodes != "" || !slices.ContainsFunc(qs.Localities, func(m policies.Locality) bool { return holds(m, l) }) {
				continue
			}
			for _, qw := range qs.Windows(w.Start, w.End) {
				if !qw.Start.Before(w.End) || !w.Start.Before(qw.End) {
					continue
				}
				qlead := qw.Start.Add(-q.Migrate.LeadTime)
				var why string
				switch {
				case qlead.Before(lead):
					why = fmt.Sprintf("its lead time begins at %s, this window's at %s", qlead.Format("15:04"), lead.Format("15:04"))
				case qlead.Equal(lead) && (mine < 0 || qi < mine):
					why = fmt.Sprintf("its lead time begins at %s too, and policy %q comes first", qlead.Format("15:04"), q.Name)
				default:
					continue
				}
				return fmt.Sprintf("policy %q drains %s at once (schedule %q, %s–%s) and queues its moves first (%s): each allocation moves once, by that drain, "+
					"to where that policy sends it; nothing is added here, and the planner counts each move it sends here",
					q.Name, l, qs.Name, qw.Start.Format("15:04"), qw.End.Format("15:04"), why)
			}
		}
	}
	return ""
}

// homeFirst says where the planner sends the moves of a drain of all of
// another locality that shares no node with the policy's own, declared
// without migrate.targets (shape's chooseTarget): here first, while every
// move may run here and this locality stays under its line with them,
// reading this forecast less what the drain added (DrainAdded) and
// counting each move where it goes; the rest to the other allowed
// localities. The drained demand is added here as far as it fits under
// the line (homeRoom): which moves fit is the planner's to find as it
// queues them.
const homeFirst = "the planner sends its moves here first, while this locality stays under its line with them, and the rest to the other allowed localities"

// holds reports whether every node of b is one of a's: each part of a is
// any, or b's.
func holds(a, b policies.Locality) bool {
	part := func(x, y string) bool { return x == "" || x == "*" || x == y }
	return part(a.Datacenter, b.Datacenter) && part(a.NodePool, b.NodePool) && part(a.NodeClass, b.NodeClass)
}

// targetNames lists pol's migrate.targets.
func targetNames(pol *policies.Policy) string {
	names := make([]string, 0, len(pol.Migrate.Targets))
	for _, t := range pol.Migrate.Targets {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// drainAdded is what a drain of another locality added at a step.
type drainAdded struct {
	schedule string
	from     policies.Locality
	v        float64
	less     []drainAdded // what it was less of, sharing nodes with it
}

// takeOnce adds the demand add of the drained locality l to fc inside w,
// less, at each step, what drains added there already of localities that
// share nodes with l (two drain schedules of the policy whose windows
// overlap, which the loader warns of when it finds them within a year of
// windows): each node's work is added once. "dc2" after "dc2/*/batch"
// adds its demand less the batch nodes'; "dc2/*/batch" after "dc2" adds
// nothing. Two that overlap without either holding the other add what
// the second exceeds the first, as the demand of the nodes they share is
// not known apart. What it adds at each step is kept in fc.DrainAdded,
// the part of the forecast the planner reads less. It returns the most
// added at a step.
func takeOnce(fc *Forecast, w policies.Window, schedule string, l policies.Locality, add float64, added map[int][]drainAdded) float64 {
	most := 0.0
	inWindow(fc, w, func(i int) {
		d := drainAdded{schedule: schedule, from: l, v: add}
		for _, o := range added[i] {
			if o.from.SharesNodes(l) {
				d.v -= o.v
				d.less = append(d.less, o)
			}
		}
		d.v = math.Max(0, d.v)
		shift(fc, i, d.v)
		if d.v > 0 {
			if fc.DrainAdded == nil {
				fc.DrainAdded = make([]float64, len(fc.Times))
			}
			fc.DrainAdded[i] += d.v
		}
		added[i] = append(added[i], d)
		most = math.Max(most, d.v)
	})
	return most
}

// overlapNote says what takeOnce added of l's demand inside w where a
// drain of a locality that shares nodes with it had added its own, at
// the first such step (from when, if not the window's first step in the
// forecast); "" when there is none.
func overlapNote(fc *Forecast, w policies.Window, l policies.Locality, added map[int][]drainAdded) string {
	note, first := "", true
	inWindow(fc, w, func(i int) {
		defer func() { first = false }()
		if note != "" || len(added[i]) == 0 {
			return
		}
		d := added[i][len(added[i])-1]
		if d.from != l || len(d.less) == 0 {
			return
		}
		var before float64
		for _, o := range d.less {
			before += o.v
		}
		o := d.less[0]
		note = fmt.Sprintf("%s shares nodes with %s, which schedule %q drains at once: +%.1f is added, what its demand exceeds the +%.1f added for them",
			l, o.from, o.schedule, d.v, before)
		if !first {
			note += " from " + fc.Times[i].Format("15:04")
		}
	})
	return note
}

// movesElsewhere says why a drain of some of the nodes of another
// locality l adds nothing to this policy's forecast: the planner sends
// their work to migrate.targets, none of which is this policy's locality,
// or, with none listed, to the rest of l first, while every move may run
// there and it stays under its line. It comes here only when the rest of
// l cannot take it, which depends on the planner's checks at the time
// (the jobs' constraints, l's forecast read on its rest, the moves
// queued); then the planner counts each move it sends here as it queues
// it, and the history shows it once landed. Added as a worst case, it
// would forecast a hotspot here, and scale for it, for a drain whose
// work stays in l.
func movesElsewhere(pol *policies.Policy, s policies.Schedule, l policies.Locality) string {
	if len(pol.Migrate.Targets) > 0 {
		return fmt.Sprintf("nodes %s of it go down; their work moves to %s (migrate.targets); nothing is added here", s.Nodes, targetNames(pol))
	}
	return fmt.Sprintf("nodes %s of it go down; their work moves to the rest of %s first, while it takes it; nothing is added here, "+
		"where it comes only when the rest cannot take it (the planner then counts each move it sends here)", s.Nodes, l)
}

// drainOfSome describes the windows of a drain of some of the nodes of the
// forecast's locality l (s.Nodes) that reach its forecast, and leaves the
// forecast as the model made it. Their work moves to the rest of the
// locality, so its demand stays, and so does what the collector measures
// while they are up: it measures a locality's CPU and memory over its
// ready nodes, whatever their eligibility, so a drained node that stays up
// keeps its capacity in the base and the percent does not rise (one that
// goes down leaves the base, and the history shows the rise once it has).
// The forecast is of that measured series. What it does not show is the
// load of the nodes that stay: the locality's percent ×all ÷ rest over its
// ready nodes now (restOf), which the event gives (Factor) and its
// hotspots read (findHotspot); 1 once the drained nodes are down, when the
// percent is already measured over the rest. A glob that matches every
// ready node of l empties it, as a drain of the whole locality does; a
// drain whose nodes are unknown (no node list, no node of l matching the
// glob) says so.
func drainOfSome(fc *Forecast, s policies.Schedule, l policies.Locality, h history, nodes []Node) []Event {
	if len(fc.Times) == 0 {
		return nil
	}
	hStart, hEnd := fc.Times[0], fc.Times[len(fc.Times)-1].Add(h.step)
	resource := map[string]string{source.CPUPercent: "CPU", source.MemoryPercent: "memory"}[fc.Metric]
	c := restOf(nodes, l, []string{s.Nodes}, fc.Metric)
	factor := 1.0
	var detail string
	switch {
	case resource == "":
		detail = fmt.Sprintf("nodes %s are drained; their work moves to the rest of the locality, whose demand stays", s.Nodes)
	case nodes == nil:
		detail = fmt.Sprintf("nodes %s are drained; their work moves to the rest of the locality, whose demand stays "+
			"(the node list is not known: the rest's share of its capacity is not read)", s.Nodes)
	case c.matched == 0:
		detail = fmt.Sprintf("nodes %s are drained; their work moves to the rest of the locality, whose demand stays "+
			"(none of its %d nodes matches)", s.Nodes, c.nodes)
	case c.readyMatched > 0 && c.rest <= 0:
		var events []Event
		for _, w := range s.Windows(hStart, hEnd) {
			inWindow(fc, w, func(i int) { scale(fc, i, 0) })
			events = append(events, Event{Kind: EventDrain, Schedule: s.Name, Start: w.Start, End: w.End, Known: true, Nodes: s.Nodes,
				Detail: fmt.Sprintf("nodes %s are all %d of the locality's ready nodes: it is emptied; its demand leaves with its capacity", s.Nodes, c.ready)})
		}
		return events
	case c.readyMatched == 0:
		detail = fmt.Sprintf("nodes %s (%d) are drained and down, out of the capacity the locality is measured over: "+
			"its %s percent is the rest's load (×1.00), which its hotspots read", s.Nodes, c.matched, resource)
	default:
		factor = c.factor()
		detail = fmt.Sprintf("nodes %s (%d of %d, %.0f%% of its %s) are drained; the rest's load is ×%.2f the locality's, which its hotspots read",
			s.Nodes, c.readyMatched, c.ready, 100*(1-c.rest/c.all), resource, factor)
		if down := c.matched - c.readyMatched; down > 0 {
			detail += fmt.Sprintf(" (%d more of them down, out of the capacity it is measured over)", down)
		}
	}
	var events []Event
	for _, w := range s.Windows(hStart, hEnd) {
		events = append(events, Event{Kind: EventDrain, Schedule: s.Name, Start: w.Start, End: w.End, Factor: factor, Known: true,
			Nodes: s.Nodes, Detail: detail})
	}
	return events
}

// restShare is the capacity of a locality's CPU or memory that a drain of
// some of its nodes leaves: all is that of its ready nodes, the base the
// collector measures its percent over, rest that of its ready nodes no
// glob matches; ready and readyMatched count its ready nodes and those a
// glob matches, nodes and matched its nodes whatever their status.
type restShare struct {
	all, rest           float64
	ready, readyMatched int
	nodes, matched      int
}

// factor is what the locality's percent is multiplied by for the load of
// the nodes that stay (all ÷ rest): 1 when the drained nodes are not in
// the base (down, or none matches) or none stays.
func (r restShare) factor() float64 {
	if r.rest <= 0 || r.all <= r.rest {
		return 1
	}
	return r.all / r.rest
}

// restOf reads the capacity of the metric's resource (CPU or memory) of
// locality l that a drain of its nodes matching any of globs leaves, from
// the cluster's nodes as the collector last listed them.
func restOf(nodes []Node, l policies.Locality, globs []string, metric string) restShare {
	var r restShare
	for _, n := range nodes {
		if !l.Matches(n.Datacenter, n.NodePool, n.NodeClass) {
			continue
		}
		c := n.CPUMHz
		if metric == source.MemoryPercent {
			c = n.MemoryMB
		}
		matched := false
		for _, g := range globs {
			if ok, _ := path.Match(g, n.Name); ok {
				matched = true
				break
			}
		}
		r.nodes++
		if matched {
			r.matched++
		}
		if !n.Ready {
			continue
		}
		r.ready++
		r.all += c
		if matched {
			r.readyMatched++
		} else {
			r.rest += c
		}
	}
	return r
}

// history is the series a forecast starts from: y[i] is the point at
// start + i·step, and the last one is the forecast's origin.
type history struct {
	y     []float64
	start time.Time
	step  time.Duration
}

func (h history) origin() time.Time { return h.start.Add(time.Duration(len(h.y)-1) * h.step) }

// highest is the history's highest point: the whole history the model was
// given (the policy's forecast.history), not the points a forecast shows
// (Forecast.History, the last few hours), and the demand forecast's own
// for it. -Inf when it holds none.
func (h history) highest() float64 {
	top := math.Inf(-1)
	for _, v := range h.y {
		if !math.IsNaN(v) {
			top = math.Max(top, v)
		}
	}
	return top
}

// mean is the mean of the points in [from, to) and how many there are.
func (h history) mean(from, to time.Time) (float64, int) {
	var sum float64
	n := 0
	for i, v := range h.y {
		if at := h.start.Add(time.Duration(i) * h.step); !at.Before(from) && at.Before(to) && !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

// peakWindow is what one window of a peak schedule does to a forecast.
type peakWindow struct {
	// factor is the peak's lift over the demand without it: declared,
	// learned, or what the history shows of this occurrence (0: lift to
	// the highest value seen).
	factor float64
	// inside multiplies the model's forecast inside the window (0: lift to
	// the highest value seen); after multiplies it from the window's end.
	inside, after float64
	// observed is true when the window's level is the one the history
	// shows: it is a measured level, so it stays within the metric's range.
	observed bool
	detail   string
}

// levelPoints is how many points make the level just before a window and
// the recent level inside it: as many as the pipeline needs to take a new
// level as the series' own (forecast.MaxSpike points are kept out as a
// spike; one more is a level).
const levelPoints = forecast.MaxSpike + 1

// peakOccurrence works out how to apply one window w of a peak whose factor
// is factor (0: lift to the highest value seen; how says where it came
// from), given the history h and raw, the model's point forecast at times.
//
// A window ahead of the origin gets the factor in full: the model has not
// seen it. A window under way is in the history, and the model's level
// already carries some of it: `carried`, its forecast for the step after
// the origin over the level just before the window (the mean of its last
// levelPoints points; never below 1). Only what the model does not carry is
// applied inside the window (factor / carried, never below 1). After the
// window's end the forecast falls back to the level before the window: it
// is divided by what the model still carries there (its forecast for the
// first step after the window over that level), which is nothing for a
// model that knows the window ends.
//
// Once the history holds levelPoints points of the window, the pipeline has
// taken its level as the series' level and the occurrence has shown its
// size: the factor is then the one the history shows (the mean of its
// last levelPoints points inside the window over the level before it), not
// the declared or learned one. A declaration says what demand to expect; a
// measurement that shows less (nodes that saturate at 100 %, a metric the
// event does not touch) is what the metric will show, and a forecast kept
// at the declared level would hold a hotspot, or capacity, the window does
// not need. That level is a measured one, so it stays within the metric's
// range (observed).
func peakOccurrence(w policies.Window, factor float64, how string, h history, raw []float64, times []time.Time) peakWindow {
	ahead := peakWindow{factor: factor, inside: factor, after: 1, detail: how}
	origin := h.origin()
	if origin.Before(w.Start) {
		return ahead
	}
	seenTo := minTime(origin.Add(h.step), w.End)
	_, seen := h.mean(w.Start, seenTo)
	shown := seen >= levelPoints
	before, n := h.mean(w.Start.Add(-levelPoints*h.step), w.Start)
	since := w.Start.Format("15:04")
	if n == 0 || before <= 0 {
		if !shown {
			return ahead
		}
		// The history starts inside the window: its level is all the
		// model knows, and nothing says what it falls back to.
		return peakWindow{factor: 1, inside: 1, after: 1, observed: true,
			detail: fmt.Sprintf("in the history since %s, which holds nothing from before it; the forecast keeps that level (%s)", since, how)}
	}
	carried := math.Max(1, raw[0]/before)
	p := peakWindow{factor: factor, inside: factor, after: 1}
	if shown {
		recent, _ := h.mean(maxTime(w.Start, seenTo.Add(-levelPoints*h.step)), seenTo)
		p.factor, p.observed = math.Max(1, recent/before), true
		p.inside = math.Max(1, p.factor/carried)
		p.detail = fmt.Sprintf("×%.2f, as the history shows since %s (%s)", p.factor, since, how)
	} else if factor > 0 {
		p.inside = math.Max(1, factor/carried)
		p.detail = fmt.Sprintf("%s; the forecast already carries ×%.2f of it since %s, so ×%.2f is applied", how, carried, since, p.inside)
	} else {
		p.detail = how
	}
	for i, at := range times {
		if !at.Before(w.End) {
			if still := math.Max(1, raw[i]/before); still > 1 {
				p.after = 1 / still
				p.detail += fmt.Sprintf("; demand falls back ×%.2f after %s", p.after, w.End.Format("15:04"))
			}
			break
		}
	}
	return p
}

// drainOccurrence works out what one window w of a drain of the locality
// `from` adds to this locality's forecast of metric, as a percent of its
// capacity, given the history h and level, the model's forecast for the
// step after the origin; ok is false when the drained demand is unknown.
//
// The act half starts a drain's moves lead (migrate.lead_time) before the
// window. Until then the drained locality's latest use is added. From then
// on the moved work shows up in this locality's history as it lands, and in
// the drained locality's as it leaves (an allocation being replaced runs in
// both for a while): what is added is the drained locality's use before the
// moves began (its mean over the levelPoints steps before they begin) less
// what this locality's forecast level has gained over its own level then.
// After the window nothing is added: what moved stays where it runs, and
// the forecast carries it from the history.
func drainOccurrence(w policies.Window, lead time.Duration, from policies.Locality, metric string, h history, level float64, moved movedDemand) (float64, bool, string) {
	latest, ok := moved.latest(from, metric)
	begin := w.Start.Add(-lead)
	if h.origin().Before(begin) {
		if !ok {
			return 0, false, "its demand is unknown (no recent samples); not added"
		}
		return latest, true, fmt.Sprintf("its demand (+%.1f) moves here", latest)
	}
	ref := begin.Add(-levelPoints * h.step)
	drained, okBefore := moved.before(from, metric, ref, begin)
	here, n := h.mean(ref, begin)
	if !okBefore || n == 0 {
		if !ok {
			return 0, false, "its demand is unknown (no samples from before its moves began); not added"
		}
		return latest, true, fmt.Sprintf("its demand (+%.1f) moves here", latest)
	}
	arrived := math.Max(0, level-here)
	add := math.Max(0, drained-arrived)
	return add, true, fmt.Sprintf("its demand (+%.1f) moves here; the forecast already carries +%.1f of it since %s, so +%.1f is added",
		drained, arrived, begin.Format("15:04"), add)
}

// movedDemand reads a drained locality's use of a percent metric's
// resource as a percent of the receiving locality's capacity: Latest is
// its latest use, Before its mean use over [a, b). Either answers false
// when the use is unknown (or is nil).
type movedDemand struct {
	Latest func(from policies.Locality, metric string) (float64, bool)
	Before func(from policies.Locality, metric string, a, b time.Time) (float64, bool)
}

func (m movedDemand) latest(from policies.Locality, metric string) (float64, bool) {
	if m.Latest == nil {
		return 0, false
	}
	return m.Latest(from, metric)
}

func (m movedDemand) before(from policies.Locality, metric string, a, b time.Time) (float64, bool) {
	if m.Before == nil {
		return 0, false
	}
	return m.Before(from, metric, a, b)
}

// movedFrom builds the movedDemand of the locality `to` from the store at
// now, reading past use at step: to's capacity is its latest absolute use
// over its latest percent use. A stale series (marked, or without a sample
// for StaleSteps steps) has no latest use: an old value must not pass for
// the demand that moves. Its stored past is what it measured then.
func movedFrom(store Store, to policies.Locality, now time.Time, step time.Duration) movedDemand {
	capacity := func(metric string) (float64, bool) {
		toAbs, ok1 := latestFresh(store, state.Key{Locality: to.String(), Metric: absoluteOf(metric)}, now)
		toPct, ok2 := latestFresh(store, state.Key{Locality: to.String(), Metric: metric}, now)
		if !ok1 || !ok2 || toPct.Mean <= 0 || toAbs.Mean <= 0 {
			return 0, false
		}
		return toAbs.Mean / (toPct.Mean / 100), true
	}
	abs := movedAbsolute(store, now, step)
	return movedDemand{
		Latest: func(from policies.Locality, metric string) (float64, bool) {
			if absoluteOf(metric) == "" {
				return 0, false
			}
			c, ok := capacity(metric)
			use, ok2 := abs.latest(from, absoluteOf(metric))
			if !ok || !ok2 {
				return 0, false
			}
			return 100 * use / c, true
		},
		Before: func(from policies.Locality, metric string, a, b time.Time) (float64, bool) {
			if absoluteOf(metric) == "" {
				return 0, false
			}
			c, ok := capacity(metric)
			if !ok {
				return 0, false
			}
			use, ok := abs.before(from, absoluteOf(metric), a, b)
			if !ok {
				return 0, false
			}
			return 100 * use / c, true
		},
	}
}

// movedAbsolute is the movedDemand of an absolute metric (MHz, MB): a
// drained locality's use as it measured it, which needs no conversion.
func movedAbsolute(store Store, now time.Time, step time.Duration) movedDemand {
	return movedDemand{
		Latest: func(from policies.Locality, metric string) (float64, bool) {
			p, ok := latestFresh(store, state.Key{Locality: from.String(), Metric: metric}, now)
			return p.Mean, ok
		},
		Before: func(from policies.Locality, metric string, a, b time.Time) (float64, bool) {
			g, err := store.Range(state.Key{Locality: from.String(), Metric: metric}, step, a, b)
			if err != nil {
				return 0, false
			}
			m, n := history{y: g.Mean, start: g.Start, step: step}.mean(a, b)
			return m, n > 0
		},
	}
}

// latestFresh is a series' latest point, unless it is stale.
func latestFresh(store Store, key state.Key, now time.Time) (state.Point, bool) {
	info, ok := store.Info(key)
	if !ok || info.LastSample.IsZero() || stale(info, now, time.Minute) != "" {
		return state.Point{}, false
	}
	return store.Latest(key)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clampInto keeps step i of every band and the mean inside r.
func clampInto(fc *Forecast, i int, r forecast.Range) {
	c := func(v float64) float64 { return math.Min(math.Max(v, r.Min), r.Max) }
	fc.Mean[i] = c(fc.Mean[i])
	for q := range fc.Bands {
		fc.Bands[q][i] = c(fc.Bands[q][i])
	}
}

func inWindow(fc *Forecast, w policies.Window, f func(i int)) {
	for i, at := range fc.Times {
		if !at.Before(w.Start) && at.Before(w.End) {
			f(i)
		}
	}
}

// scale multiplies step i of every band and the mean by k, and so what
// drains of other localities added there (DrainAdded).
func scale(fc *Forecast, i int, k float64) {
	fc.Mean[i] *= k
	for q := range fc.Bands {
		fc.Bands[q][i] *= k
	}
	if fc.DrainAdded != nil {
		fc.DrainAdded[i] *= k
	}
}

// shift adds d to step i of every band and the mean.
func shift(fc *Forecast, i int, d float64) {
	fc.Mean[i] += d
	for q := range fc.Bands {
		fc.Bands[q][i] += d
	}
}

func affects(s policies.Schedule, pol *policies.Policy) bool {
	if len(s.Localities) == 0 {
		return true
	}
	for _, l := range s.Localities {
		if l == pol.Locality {
			return true
		}
	}
	return false
}

// peakFactor is the policy's factor for a peak, or else an estimate of how
// much the recurring peak lifted demand in its past occurrences in y;
// factor 0 means "lift to the highest value seen".
func peakFactor(s policies.Schedule, y []float64, start time.Time, step time.Duration) (float64, string) {
	if s.Factor > 0 {
		return s.Factor, fmt.Sprintf("×%.2f, as the policy declares", s.Factor)
	}
	end := start.Add(time.Duration(len(y)) * step)
	var in, before float64
	var nIn, nBefore int
	for _, w := range s.Windows(start, end) {
		if !w.End.Before(end) {
			continue // still running: not a complete past occurrence
		}
		d := w.End.Sub(w.Start)
		for i, v := range y {
			at := start.Add(time.Duration(i) * step)
			if math.IsNaN(v) {
				continue
			}
			switch {
			case !at.Before(w.Start) && at.Before(w.End):
				in += v
				nIn++
			case !at.Before(w.Start.Add(-d)) && at.Before(w.Start):
				before += v
				nBefore++
			}
		}
	}
	if nIn > 0 && nBefore > 0 && before > 0 {
		f := (in / float64(nIn)) / (before / float64(nBefore))
		if f < 1 {
			f = 1
		}
		return f, fmt.Sprintf("lifted ×%.2f, as past occurrences were", f)
	}
	return 0, "no past occurrence in the history; lifted to the highest value seen"
}

// lift raises step i of every band (and the mean) by factor, or, when
// factor is 0, by what lifts the mean to highest, the history's highest
// value (history.highest; none when it is -Inf).
func lift(fc *Forecast, i int, factor, highest float64) {
	if factor != 0 {
		scale(fc, i, factor)
		return
	}
	if !math.IsInf(highest, -1) {
		shift(fc, i, math.Max(0, highest-fc.Mean[i]))
	}
}
