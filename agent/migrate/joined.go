package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// A drain window's requests each list the window's nodes as the planner
// saw them when it made them (Exclude), and everything that takes the
// window's nodes out of scheduling and gives them back reads those lists.
// A node that joins one of the window's localities later (a new client, a
// node moved into its pool or class) is on none of them: it stayed in
// scheduling through the window, and Nomad could place work on a node the
// window takes down, which the planner then moved off it. holdJoined takes
// such a node out under the window's intent, as holdWindows does the
// listed ones, and joinedNodes adds it to what the window gives back.

// holdJoined takes out of scheduling each node the view lists that a
// drain window under way takes down (its schedule's localities and nodes
// glob) and that none of the window's requests lists: a node that joined
// after the window's requests were made. A window is under way from its
// first request that is not cancelled (queued from its lead time, run or
// done) until its end, and so is one all of whose requests were cancelled
// while it still holds a node it took out (stillHolds: foreshape's own
// cancels, a job stopped); one an operator called off (operatorCancelled),
// one a reload took away (windowGone), one planned dry, and a paused
// queue (paused) take nothing out. A node out of
// scheduling already (an operator's cordon) or draining is left as it is,
// and one the window took out once is not taken again (eligible since: an
// operator's choice). One hold decision a window and pass names the nodes.
// As in holdWindows, the pause is read before each node and right before
// its call (pausedNote): one applied during the pass holds what follows it.
func (c *Coordinator) holdJoined(ctx context.Context, now time.Time, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	view := c.cfg.State.Act()
	dry := c.plannedDryNow()
	type window struct {
		r      state.MigrationRequest
		listed map[string]bool
		// cancelled are its requests foreshape or an operator cancelled
		// (not planned dry): one of them stands for a window all of whose
		// requests were cancelled while it still holds nodes (stillHolds).
		cancelled []state.MigrationRequest
	}
	wins := map[string]*window{}
	var keys []string
	for _, r := range view.Requests {
		if r.Origin != "schedule" || r.Deadline.IsZero() {
			continue
		}
		key := windowKey(r)
		w := wins[key]
		if w == nil {
			w = &window{listed: map[string]bool{}}
			wins[key] = w
			keys = append(keys, key)
		}
		for _, n := range windowNodes(r) {
			w.listed[n] = true
		}
		switch {
		case dry(r):
		case r.State == state.RequestCancelled:
			w.cancelled = append(w.cancelled, r)
		case w.r.ID == "":
			w.r = r
		}
	}
	for _, key := range keys {
		w := wins[key]
		r := w.r
		if r.ID == "" && len(w.cancelled) > 0 {
			r = w.cancelled[0]
		}
		if r.ID == "" || c.windowGone(view, r) {
			continue
		}
		if end, ok := c.windowEnd(r); !ok || !now.Before(end) {
			continue
		}
		if w.r.ID == "" && !c.stillHolds(view, now, w.cancelled) {
			continue
		}
		s := c.scheduleOf(r)
		if s == nil {
			continue
		}
		takes := openWindow{localities: s.Localities, nodes: s.Nodes}
		var joined []string
		for id, n := range c.view.nodes {
			if !w.listed[id] && !n.Drain && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible && takes.takes(n) {
				joined = append(joined, id)
			}
		}
		slices.Sort(joined)
		var took []string
		paused := false
		for _, node := range joined {
			if paused = c.paused(); paused {
				break
			}
			in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, key, 0), Kind: state.IntentNodeEligibility,
				Request: r.ID, Object: node, Detail: "ineligible for " + key + joinedNote}
			if c.announced(in.ID) {
				continue
			}
			out, created, err := c.ineligible(ctx, node)
			if err != nil || out {
				if err != nil {
					c.log.Warn("could not read a node that joined a drain window's locality", logKeyRequest, r.ID, "node", node, logKeyError, err)
				}
				continue
			}
			in.NodeCreated = created
			err = c.doUnless(ctx, now, in, c.pausedNote, func(ctx context.Context) error {
				_, err := c.nomad.Nodes().ToggleEligibility(node, false, c.wq(ctx))
				return err
			})
			switch {
			case errors.Is(err, errAnnounced):
			case errors.Is(err, errWithheld):
				c.log.Info("node that joined a drain window's locality not taken out of scheduling: the queue was paused", logKeyRequest, r.ID, "node", node)
				paused = true
			case err != nil:
				c.log.Warn("could not take a node that joined a drain window's locality out of scheduling", logKeyRequest, r.ID, "node", node, logKeyError, err)
			default:
				took = append(took, c.decisionName(node))
				c.joined = nil
			}
			if paused {
				break
			}
		}
		if len(took) > 0 {
			names := namedFew(took)
			*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
				Reason: fmt.Sprintf("%s %s out of scheduling for drain window %s: %s the window's localities after its requests were made; the window's end gives %s back",
					pick(len(took), "node", "nodes"), names, windowName(r), pick(len(took), "it joined", "they joined"), pick(len(took), "it", "them"))})
		}
		if paused {
			return
		}
	}
}

// joinedNote ends the detail of the intent with which holdJoined takes a
// node out (leftWindow reads it): the window took the node out as a late
// joiner, not as one of the nodes its requests listed at its lead time.
const joinedNote = " (joined its locality after its requests were made)"

// leftWindow reports whether r's drain window took node out of
// scheduling as a late joiner (holdJoined: its intent's detail ends in
// joinedNote) and the view now shows the node outside the window's
// localities or nodes glob: its datacenter, pool or class changed, and
// the window no longer takes it down. Such a node is given back at once
// (owedBack), not at the window's end, and the window holds it no more
// (heldNodes). A node the window took out at its lead time, as one its
// requests listed, stays out until the window's end wherever it goes;
// a node the view does not list (purged) has not left; nor has any
// while the window's schedule is unknown (before the term's first plan,
// or taken away by a reload, which windowGone reads).
func (c *Coordinator) leftWindow(r state.MigrationRequest, node string) bool {
	if r.Origin != "schedule" {
		return false
	}
	n, ok := c.view.nodes[node]
	if !ok {
		return false
	}
	s := c.scheduleOf(r)
	if s == nil || (openWindow{localities: s.Localities, nodes: s.Nodes}).takes(n) {
		return false
	}
	in, ok := c.latestIntent(intentID(state.IntentNodeEligibility, node, windowKey(r), 0))
	return ok && in.Outcome == state.OutcomeDone && strings.HasSuffix(in.Detail, joinedNote)
}

// leftNote goes on with the restore decision of a node given back by
// debt d of r's drain window: why, before the window's end, for a late
// joiner that left the window's localities (d.left); "" otherwise.
func (c *Coordinator) leftNote(d debt, r state.MigrationRequest, node string) string {
	n, ok := c.view.nodes[node]
	if !d.left || !ok {
		return ""
	}
	return fmt.Sprintf(" before drain window %s ends: it joined the window's localities late and has left them (now %s/%s/%s), so the window no longer takes it down",
		windowName(r), n.Datacenter, n.NodePool, n.NodeClass)
}

// stillHolds reports whether a drain window all of whose requests were
// cancelled (rs, not ended nor taken away by a reload) still holds a
// node it took out: not called off by an operator (operatorCancelled,
// which gives its nodes back at once), and one of rs still owes a node it
// lists, or one the window took out as a late joiner (joinedNodes)
// (owedBack), which stays out until the window's end. foreshape's
// own cancels (a job stopped, its work gone) leave such a window under
// way; one that took nothing out holds nothing, and takes no node that
// joins it out either.
func (c *Coordinator) stillHolds(view state.ActView, now time.Time, rs []state.MigrationRequest) bool {
	if len(rs) == 0 || c.calledOff(view, rs[0]) {
		return false
	}
	for _, r := range rs {
		// A node it took out as a late joiner holds the window as well.
		for _, node := range append(windowNodes(r), c.joinedNodes(now, r)...) {
			if c.owesNode(view, now, r, node) != owesNothing {
				return true
			}
		}
	}
	return false
}

// cancelledHolds reports whether x's drain window, every request of which
// (but those planned dry) was cancelled, still holds a node it took out
// (stillHolds) and so takes out a node that joins it (holdJoined); false
// for a window with a request left that is not cancelled, which holds by
// that request, and for one a reload took away (windowGone).
func (c *Coordinator) cancelledHolds(view state.ActView, now time.Time, x state.MigrationRequest) bool {
	key := windowKey(x)
	dry := c.plannedDryNow()
	var cancelled []state.MigrationRequest
	for _, r := range view.Requests {
		if r.Origin != "schedule" || r.Deadline.IsZero() || windowKey(r) != key || dry(r) {
			continue
		}
		if r.State != state.RequestCancelled {
			return false
		}
		cancelled = append(cancelled, r)
	}
	return len(cancelled) > 0 && !c.windowGone(view, cancelled[0]) && c.stillHolds(view, now, cancelled)
}

// joinsWindow reports whether x's drain window takes node down as the
// view shows it now (in one of its schedule's localities, its name
// matching the schedule's nodes glob), whether or not x lists it: a node
// that joined the window's localities after its requests were made, which
// holdJoined takes out while the window is under way. A give-back of such
// a node waits for the window as one of a node its requests list does
// (heldByRequest, holdRequestHold): given back in the window's lead time,
// it went out again for the window at the next pass. A node the view does
// not list (purged), or a window whose schedule a reload took away, takes
// none.
func (c *Coordinator) joinsWindow(x state.MigrationRequest, node string) bool {
	n, ok := c.view.nodes[node]
	if !ok || x.Origin != "schedule" {
		return false
	}
	s := c.scheduleOf(x)
	return s != nil && openWindow{localities: s.Localities, nodes: s.Nodes}.takes(n)
}

// scheduleOf is the schedule of the current policies that queued the
// drain window request r; nil when a reload took it away.
func (c *Coordinator) scheduleOf(r state.MigrationRequest) *policies.Schedule {
	name, _, ok := windowStart(r)
	if !ok {
		return nil
	}
	for _, p := range c.pols {
		if p == nil || p.Name != r.Policy {
			continue
		}
		for i := range p.Schedules {
			if p.Schedules[i].Name == name && p.Schedules[i].Action == policies.ActionDrain {
				return &p.Schedules[i]
			}
		}
	}
	return nil
}

// joinedNodes are the nodes the view lists that r's drain window took out
// of scheduling (holdJoined: its intent announced) though r does not list
// them: what the window gives back besides windowNodes(r).
// A node another request of the window lists may be among them: what the
// window owes it is the same whichever of its requests asks (owedBack).
func (c *Coordinator) joinedNodes(now time.Time, r state.MigrationRequest) []string {
	if r.Origin != "schedule" {
		return nil
	}
	if c.joined == nil || !c.joinedAt.Equal(now) {
		c.joined, c.joinedAt = map[string][]string{}, now
	}
	key := windowKey(r)
	if nodes, ok := c.joined[key]; ok {
		return nodes
	}
	var out []string
	for id := range c.view.nodes {
		if _, ok := c.cfg.State.Intent(intentID(state.IntentNodeEligibility, id, key, 0)); ok && !slices.Contains(windowNodes(r), id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	c.joined[key] = out
	return out
}

// namedFew lists names for a decision, the first maxNamed of them and how
// many more: a rack's nodes would crowd the decision log.
func namedFew(names []string) string {
	if len(names) > maxNamed {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
	}
	return strings.Join(names, ", ")
}
