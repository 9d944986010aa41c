package migrate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// recorded, eligible and unchanged since it registered (its ModifyIndex
// still its CreateIndex: an operator's eligibility change moves it), is
// taken out again, once per registration, with a hold decision saying
// why, instead of being read as an operator's give-back.

// againID is the ID of the intent that takes a node out of scheduling
// again, under the hold whose take-out intent is base, once the node was
// registered again with CreateIndex created.
func againID(base string, created uint64) string {
	return base + "@" + strconv.FormatUint(created, 10)
}

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
	err := c.do(ctx, now, in, func(ctx context.Context) error {
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

// holdAgainAll takes out of scheduling again every node a hold of
// foreshape's still running keeps out (a drain window begun and not
// ended, a whole-node request queued or running, a spread running) that
// the view shows registered again since foreshape took it out, eligible
// and unchanged since (asRegistered): purged, its client came back
// (holdAgain). A node the view shows out of scheduling or changed since
// it registered (an operator's eligibility change), or that Nomad, read
// afresh, no longer shows so, is left.
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
			if c.announced(againID(base, n.CreateIndex)) {
				continue // held again once: eligible since by someone's hand
			}
			if n.ModifyIndex != n.CreateIndex || !c.asRegistered(ctx, node, n.CreateIndex) {
				continue // changed since it registered, out by now, or registered once more
			}
			created := n.CreateIndex
			if err := c.holdAgain(ctx, now, node, base, took, created, r, windowOr(r), ds); err != nil && !errors.Is(err, errAnnounced) {
				c.log.Warn("could not take a node registered again out of scheduling again", "node", n.Name, logKeyRequest, r.ID, logKeyError, err)
			}
		}
	}
}

// asRegistered reads node afresh and reports whether it is as its client
// registered it at CreateIndex created, eligible: not changed since (its
// ModifyIndex is its CreateIndex) and not draining. A read that fails
// reports false (the next pass looks again).
func (c *Coordinator) asRegistered(ctx context.Context, node string, created uint64) bool {
	n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
	if err != nil {
		c.log.Warn("could not read a node registered again after a purge", "node", node, logKeyError, err)
		return false
	}
	return n.CreateIndex == created && n.ModifyIndex == created && n.DrainStrategy == nil &&
		n.SchedulingEligibility == nomadapi.NodeSchedulingEligible
}

// heldNodes are the nodes r holds out of scheduling now: a whole-node
// request's node while it is queued (holdNodes) or running, a drain
// window's (begun, not cancelled, not ended), a running spread's nodes.
func (c *Coordinator) heldNodes(now time.Time, r state.MigrationRequest) []string {
	switch {
	case r.Resource.Kind == state.ResourceNode && r.State.Queued():
		return []string{r.Resource.ID}
	case r.Origin == "schedule":
		if r.Deadline.IsZero() || r.State == state.RequestCancelled || r.State.Queued() {
			return nil
		}
		if end, ok := c.windowEnd(r); !ok || !now.Before(end) {
			return nil
		}
		return windowNodes(r)
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
