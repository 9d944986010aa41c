package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// A node purged from Nomad (`nomad node purge`) whose client still runs
// comes back at the client's next heartbeat (10 to 20 s later): the same
// ID, a new CreateIndex, without a drain, and with the eligibility the
// client heard at its last heartbeat (Nomad's answer carries it). A node
// held out of scheduling for a heartbeat or more comes back ineligible,
// its hold intact; one taken out less than a heartbeat before the purge
// comes back eligible. Nobody gave that one back. A node foreshape holds
// out of scheduling (a drain window, a spread, a whole-node request) that
// Nomad lists with a later CreateIndex than the one its take-out's intent
// recorded, eligible, and whose eligibility nobody changed since it
// registered (its node events, asRegistered), is taken out again, once
// per registration, with a hold decision saying why, instead of being
// read as an operator's give-back.

// againID is the ID of the intent that takes a node out of scheduling
// again, under the hold whose take-out intent is base, once the node was
// registered again with CreateIndex created.
func againID(base string, created uint64) string {
	return base + "@" + strconv.FormatUint(created, 10)
}

// eligibleAgain begins the detail of the intent that gives back a node a
// purge left out of scheduling after its give-back (giveBackAgainAll).
const eligibleAgain = "eligible again"

// windowOr is how a hold decision names what holds a node: a drain
// window by its key, any other request by its ID.
func windowOr(r state.MigrationRequest) string {
	if r.Origin == "schedule" {
		return windowKey(r)
	}
	return r.ID
}

// holdAgain takes node out of scheduling again for r (what names the
// hold) after Nomad registered it anew (its CreateIndex went from took to
// created): an intent under againID(base, created), which records
// created, and a hold decision. errAnnounced when that intent was
// announced already: this registration was held again once, and a node
// eligible since is an operator's choice.
func (c *Coordinator) holdAgain(ctx context.Context, now time.Time, node, base string, took, created uint64, r state.MigrationRequest, what string, ds *[]state.Decision) error {
	in := state.Intent{ID: againID(base, created), Kind: state.IntentNodeEligibility, Request: r.ID, Object: node,
		Detail: fmt.Sprintf("ineligible again for %s: registered again (create index %d)", what, created), NodeCreated: created}
	err := c.doUnless(ctx, now, in, func() string { return c.pausedFor(r.ID) }, func(ctx context.Context) error {
		_, err := c.nomad.Nodes().ToggleEligibility(node, false, c.wq(ctx))
		return err
	})
	if err != nil {
		return err
	}
	name := c.decisionName(node)
	c.log.Info("node registered again after a purge: taken out of scheduling again", "node", name, logKeyRequest, r.ID,
		"create_index", created, "create_index_taken", took)
	*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
		Reason: fmt.Sprintf("node %s was purged from Nomad and its client registered it again, eligible (create index %d, %d when foreshape took it out): nobody gave it back, so it is out of scheduling again for %s",
			name, created, took, what)})
	return nil
}

// pausedFor is why a hold again for request id is withheld right before
// its call (doUnless): the queue is paused and the request, read as of
// the hold's intent, still waits in it, where it holds nothing
// (heldNodes); "" otherwise. A hold that has begun (a running request, a
// window's begun requests) is not the queue's to pause.
func (c *Coordinator) pausedFor(id string) string {
	r, ok := c.cfg.State.Request(id)
	if !ok || !r.State.Queued() || (r.Resource.Kind != state.ResourceNode && r.Origin != "schedule") {
		return ""
	}
	return c.pausedNote()
}

// holdAgainAll takes out of scheduling again every node a hold of
// foreshape's still running keeps out (a drain window begun and not
// ended, a whole-node request queued or running, a spread running) that
// the view shows registered again since foreshape took it out, eligible
// and unchanged since (asRegistered): purged, its client came back
// (holdAgain). A node the view shows out of scheduling or changed since
// it registered (an operator's eligibility change), or that Nomad, read
// afresh, no longer shows so, is left. The pause is read for each request
// (heldNodes) and again right before each call (pausedFor), so one applied
// during the pass holds the holds again of queued requests that follow it.
func (c *Coordinator) holdAgainAll(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	seen := map[string]bool{}
	for _, r := range view.Requests {
		for _, node := range c.heldNodes(now, r) {
			n, ok := c.view.nodes[node]
			if !ok || n.Drain || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
				continue
			}
			base, took := c.takenWith(r, node)
			if took == 0 || n.CreateIndex <= took || seen[againID(base, n.CreateIndex)] {
				continue
			}
			seen[againID(base, n.CreateIndex)] = true
			if c.announced(againID(base, n.CreateIndex)) || c.touchedAgain(now, againID(base, n.CreateIndex)) {
				continue // held again once, or its eligibility changed since it registered: someone's hand
			}
			created := n.CreateIndex
			if !c.untouchedSince(ctx, now, node, n.Name, r.ID, created, nomadapi.NodeSchedulingEligible, againID(base, created)) {
				continue // its eligibility changed since it registered, it registered once more, or not read (the next pass looks again)
			}
			switch err := c.holdAgain(ctx, now, node, base, took, created, r, windowOr(r), ds); {
			case err == nil, errors.Is(err, errAnnounced):
			case errors.Is(err, errWithheld):
				// Paused as it was to be made: the first pass after the
				// resume holds it again (its intent closed not done).
				c.log.Info("node registered again not taken out of scheduling again: the queue was paused", "node", n.Name, logKeyRequest, r.ID)
			default:
				c.log.Warn("could not take a node registered again out of scheduling again", "node", n.Name, logKeyRequest, r.ID, logKeyError, err)
			}
		}
	}
}

// untouchedSince reads node afresh and reports whether it is as its
// client registered it at CreateIndex created, with the eligibility
// want (asRegistered). A node found changed since that registration is
// remembered under again (touched): no pass within touchedFor reads it
// for again. A read that fails reports false (the next pass looks again).
func (c *Coordinator) untouchedSince(ctx context.Context, now time.Time, node, name, request string, created uint64, want, again string) bool {
	n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
	if err != nil {
		c.log.Warn("could not read a node registered again after a purge", "node", name, logKeyRequest, request, logKeyError, err)
		return false
	}
	if asRegistered(n, created, want) {
		return true
	}
	if n.CreateIndex == created {
		c.touched[again] = now
	}
	return false
}

// touchedFor is how long a node found touched after a registration
// (untouchedSince) is not read afresh for the same hold again: afterwards
// one read finds it so again, and the memo stays small.
const touchedFor = time.Hour

// touchedAgain reports whether again's node was found touched since its
// registration within touchedFor, forgetting the older ones.
func (c *Coordinator) touchedAgain(now time.Time, again string) bool {
	for k, at := range c.touched {
		if now.Sub(at) > touchedFor {
			delete(c.touched, k)
		}
	}
	_, ok := c.touched[again]
	return ok
}

// asRegistered reports whether n is as its client registered it at
// CreateIndex created, with the scheduling eligibility want and not
// draining, with nobody's hand on its eligibility since: its node events
// (Nomad keeps the last 10) still hold its registration and no
// eligibility or drain change after it.
// Nomad records one for every change of eligibility (the scheduler's own
// for rejected plans too) and for every drain set, updated, done or
// removed; its ModifyIndex is no sign, as a client's fingerprint or
// status update moves it too. Events that no longer reach back to the
// registration say nothing, and the node is left.
func asRegistered(n *nomadapi.Node, created uint64, want string) bool {
	if n == nil || n.CreateIndex != created || n.DrainStrategy != nil || n.SchedulingEligibility != want {
		return false
	}
	registered := false
	for _, e := range n.Events {
		switch {
		case e == nil:
		case e.Subsystem == nodeEventCluster && e.Message == nodeEventRegistered:
			registered = true
		case e.Subsystem == nodeEventDrain, e.Subsystem == nodeEventCluster && strings.HasPrefix(e.Message, nodeEventEligibility):
			return false
		}
	}
	return registered
}

// Nomad's node events that asRegistered reads: their subsystems, the
// registration's message, and how every eligibility change's message
// begins ("Node marked as eligible for scheduling", "… ineligible …", and
// the scheduler's "… ineligible for scheduling due to multiple plan
// rejections …").
const (
	nodeEventCluster     = "Cluster"
	nodeEventDrain       = "Drain"
	nodeEventRegistered  = "Node registered"
	nodeEventEligibility = "Node marked as "
)

// heldNodes are the nodes r holds out of scheduling now: a whole-node
// request's node while it is queued (holdNodes; not planned dry) or
// running, a drain
// window's (queued, holdWindows, unless planned dry; begun and not
// cancelled; not ended), those it lists and those that joined its
// localities late (joinedNodes) and have not left them (leftWindow), a
// running spread's nodes. A queued request holds
// nothing while the queue is paused, which takes nothing out (holdNodes,
// holdWindows): a purged node it held is not taken out again
// (holdAgainAll) and its give-back is not held back (giveBackAgainAll)
// until the resume, as held reads it for every other give-back.
func (c *Coordinator) heldNodes(now time.Time, r state.MigrationRequest) []string {
	switch {
	case r.State.Queued() && (r.Resource.Kind == state.ResourceNode || r.Origin == "schedule") && c.paused():
		return nil
	case r.Resource.Kind == state.ResourceNode && r.State.Queued() && !shape.WindowHold(&r):
		if c.cfg.ForecastOnly || c.plannedDryNow()(r) {
			return nil // planned dry: it never starts, and takes nothing out (holdNodes)
		}
		return []string{r.Resource.ID}
	case r.Origin == "schedule":
		if r.Deadline.IsZero() || r.State == state.RequestCancelled || r.State.Queued() && (c.cfg.ForecastOnly || c.plannedDryNow()(r)) {
			return nil
		}
		if end, ok := c.windowEnd(r); !ok || !now.Before(end) {
			return nil
		}
		nodes := windowNodes(r)
		for _, node := range c.joinedNodes(now, r) {
			if !c.leftWindow(r, node) {
				nodes = append(nodes, node)
			}
		}
		return nodes
	case r.Resource.Kind == state.ResourceNode:
		if r.State.Terminal() {
			return nil
		}
		return []string{r.Resource.ID}
	case shape.Within(&r):
		if r.State != state.RequestRunning {
			return nil
		}
		return backNodes(r)
	}
	return nil
}

// takenWith finds the intent with which r took node out of scheduling
// (seen made: a cordon a later leader only found in effect is not
// foreshape's) and that recorded the node's CreateIndex: its ID (the base
// of any hold again) and that index, the latest when several did; 0 when
// none.
func (c *Coordinator) takenWith(r state.MigrationRequest, node string) (string, uint64) {
	ids := append(attemptIntents(node, r), perAttempt(state.IntentDrainNode, node, r)...)
	if r.Origin == "schedule" {
		ids = append([]string{intentID(state.IntentNodeEligibility, node, windowKey(r), 0)}, ids...)
	}
	var base string
	var took uint64
	for _, id := range ids {
		in, ok := c.latestIntent(id)
		if !ok || in.Outcome != state.OutcomeDone || reconciled(in) || in.NodeCreated <= took {
			continue
		}
		base, took = id, in.NodeCreated
	}
	return base, took
}

// giveBackAgainWithin is how long after a give-back found its node purged
// a registration of the node by its client is still given back
// (giveBackAgainAll): a client registers a purged node at its next
// heartbeat, within a heartbeat TTL (10 to 20 s on a small cluster,
// longer on a large one).
const giveBackAgainWithin = 10 * time.Minute

// giveBackAgainAll gives back the nodes that a hold of foreshape's ended
// on and that a purge put out of scheduling again: purged while held (the
// give-back had nothing to give back, state.NodeWasPurged), or less than
// a heartbeat after the give-back (a later CreateIndex than the give-back
// recorded), their clients registered them again out of scheduling, as
// they last heard from the hold. A later CreateIndex than foreshape's
// take-out recorded too, no drain, and nobody's hand on their
// eligibility since the registration (their events, untouchedSince).
// Within giveBackAgainWithin of the give-back, once per registration
// (tried once a pass, however many of a window's requests list the node),
// with a restore decision; a node something of foreshape's holds again
// by then is left to that hold (every node before the term's first
// plan: heldByAny), and one a whole-node request moved away
// since the give-back (done) stays out, by design, as owedBack has it. A give-back Nomad refused maxRedos times,
// or refused until giveBackAgainWithin was over, is tried no more:
// givenUpAgain says so while the node stays out.
func (c *Coordinator) giveBackAgainAll(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	seen := map[string]bool{}
	for _, r := range view.Requests {
		key := r.ID
		if r.Origin == "schedule" {
			key = windowKey(r)
		}
		// A drain window gives back the nodes that joined its localities
		// late (joinedNodes) under its key as well.
		for _, node := range append(backNodes(r), c.joinedNodes(now, r)...) {
			gid := intentID(state.IntentNodeEligibility, node, key, -1)
			in, ok := c.latestIntent(gid)
			if !ok || in.Outcome != state.OutcomeDone {
				continue
			}
			late := now.Sub(in.Closed) > giveBackAgainWithin
			n, listed := c.view.nodes[node]
			if !listed || n.Drain || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
				continue
			}
			if in.Before != state.NodeWasPurged && (in.NodeCreated == 0 || n.CreateIndex <= in.NodeCreated) {
				continue // not purged since the give-back: out of scheduling by someone's hand
			}
			again := againID(gid, n.CreateIndex)
			if seen[again] {
				continue
			}
			seen[again] = true
			_, took := c.takenWith(r, node)
			if took == 0 || n.CreateIndex <= took || c.announced(again) || c.touchedAgain(now, again) || c.heldByAny(view, now, node) {
				continue
			}
			if c.movedAway(view, node, in.Closed) {
				continue // a whole-node request emptied it since: out of scheduling by design (owedBack)
			}
			created := n.CreateIndex
			if last, refused := c.latestIntent(again); refused && last.Outcome == state.OutcomeFailed && (late || last.ID == redoID(again, maxRedos)) {
				c.givenUpAgain(ctx, now, r, n, again, last, late, ds)
				continue
			}
			if late {
				continue
			}
			if !c.untouchedSince(ctx, now, node, n.Name, r.ID, created, nomadapi.NodeSchedulingIneligible, again) {
				continue
			}
			back := state.Intent{ID: again, Kind: state.IntentNodeEligibility, Request: in.Request, Object: node,
				Detail: fmt.Sprintf(eligibleAgain+": registered again (create index %d) after a purge undid its give-back", created), NodeCreated: created}
			err := c.do(ctx, now, back, func(ctx context.Context) error {
				_, err := c.nomad.Nodes().ToggleEligibility(node, true, c.wq(ctx))
				return err
			})
			switch {
			case errors.Is(err, errAnnounced):
			case err != nil:
				c.log.Warn("could not give back a node registered again after a purge", "node", n.Name, logKeyRequest, r.ID, logKeyError, err)
			default:
				name := c.decisionName(node)
				c.log.Info("node registered again after a purge: given back", "node", name, logKeyRequest, r.ID, "create_index", created)
				*ds = append(*ds, state.Decision{Time: now, Kind: "restore", Policy: r.Policy, Locality: r.Source, Request: r.ID,
					Reason: fmt.Sprintf("node %s eligible again: it was purged from Nomad %s, and its client registered it again out of scheduling, as it last heard (create index %d); nobody took it out since, so foreshape gives it back",
						name, purgedWhen(in), created)})
			}
		}
	}
}

// givenUpAgain says, once per ten minutes while it lasts, that the give-back
// of node n, registered again after a purge, is tried no more: Nomad
// refused it maxRedos times (last is the last announcement, again's
// maxRedos-th redo), or until giveBackAgainWithin was over (late). Said in
// a hold decision and at WARN, naming the node, the request, Nomad's last
// refusal and the command that gives the node back, as a give-back Nomad
// keeps refusing is (setEligibleFor). The node is read afresh first: one
// someone's hand changed since it registered (untouchedSince) is theirs,
// and nothing is said.
func (c *Coordinator) givenUpAgain(ctx context.Context, now time.Time, r state.MigrationRequest, n *nomadapi.NodeListStub, again string, last state.Intent, late bool, ds *[]state.Decision) {
	key := "notbackagain/" + again
	if c.noted(now, key) {
		return // said within ten minutes: no read
	}
	if !c.untouchedSince(ctx, now, n.ID, n.Name, r.ID, n.CreateIndex, nomadapi.NodeSchedulingIneligible, again) {
		return
	}
	refusals := redoNumber(again, last.ID)
	limit := fmt.Sprintf("%d refusals are its limit", maxRedos)
	if late {
		limit = fmt.Sprintf("it gives back a registration only within %s of its give-back", giveBackAgainWithin)
	}
	name := c.decisionName(n.ID)
	cmd := "nomad node eligibility -enable " + n.ID
	times := "once"
	if refusals > 1 {
		times = fmt.Sprintf("%d times", refusals)
	}
	before := len(*ds)
	c.note(ds, now, key, state.Decision{Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
		Reason: fmt.Sprintf("cannot give back node %s, registered again out of scheduling after a purge (create index %d): Nomad refused making it eligible %s, the last: %s; foreshape tries no more (%s); it stays out of scheduling until it is made eligible in Nomad (%s)",
			name, n.CreateIndex, times, last.Error, limit, cmd)})
	if len(*ds) > before {
		c.log.Warn("gave up giving back a node registered again after a purge: it stays out of scheduling", "node", name, logKeyRequest, r.ID,
			"refusals", refusals, logKeyError, last.Error, "run", cmd)
	}
}

// redoNumber is which announcement of the effect base names id is: 1 for
// base itself, n for its n-th (redoID).
func redoNumber(base, id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, base+"~"))
	if id == base || err != nil {
		return 1
	}
	return n
}

// purgedWhen says when a node given back (in) was purged: while
// foreshape held it (the give-back found it gone), or after the give-back
// and before its client heard of it.
func purgedWhen(in state.Intent) string {
	if in.Before == state.NodeWasPurged {
		return "while foreshape held it"
	}
	return "just after foreshape gave it back, before its client heard"
}

// heldByAny reports whether a hold of foreshape's running now holds node
// (heldNodes of any request). Before the term's first pass (c.planned)
// every node is held, as held reads it: without the term's policies a
// drain window under way reads as ended at its start (windowEnd), and a
// new leader's follower runs before its first plan.
func (c *Coordinator) heldByAny(view state.ActView, now time.Time, node string) bool {
	if !c.planned {
		return true
	}
	for _, r := range view.Requests {
		if slices.Contains(c.heldNodes(now, r), node) {
			return true
		}
	}
	return false
}
