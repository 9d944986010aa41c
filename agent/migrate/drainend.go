package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// completeDrains lets Nomad's drain of a node complete where only sysbatch
// allocations that ended on their own hold it back. Nomad's drainer does
// not watch sysbatch jobs: it does not see such an allocation end, and
// leaves the drain on until its deadline (an hour by default) or its next
// change (TestFidelitySysbatchDrain). For each drain-strategy request that
// is done while foreshape's drain of its node goes on with nothing left
// running there but system jobs' allocations, foreshape updates the drain
// once, with the deadline it had: Nomad's drainer checks a changed drain,
// finds the node empty and completes it. Once per request, through an
// intent, so a new leader does not update it again; one that finds the
// intent open and the drain still on updates it (TestDrainCompletionALeaderLeftOpen).
func (c *Coordinator) completeDrains(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	for _, r := range view.Requests {
		if r.State != state.RequestDone || r.Resource.Kind != state.ResourceNode || r.Strategy != string(policies.StrategyDrain) {
			continue
		}
		node := r.Resource.ID
		n := c.view.nodes[node]
		if n == nil || !n.Drain || n.LastDrain == nil || n.LastDrain.Meta["foreshape.request"] != r.ID {
			continue
		}
		running, ended := c.sysbatchLeft(node)
		if len(running) > 0 || len(ended) == 0 {
			continue
		}
		c.completeDrain(ctx, now, r, ended, ds)
	}
}

// completeDrainDetail is the detail of completeDrain's intent: a new
// leader reads it done once Nomad's drain of the node is complete, and
// otherwise updates the drain again (happened).
const completeDrainDetail = "the drain updated, its deadline as it was, for Nomad to complete it"

// completeDrain updates foreshape's drain of r's node for Nomad to see it
// complete (completeDrains); ended names the sysbatch allocations that
// ended while it drained.
func (c *Coordinator) completeDrain(ctx context.Context, now time.Time, r state.MigrationRequest, ended []string, ds *[]state.Decision) {
	node := r.Resource.ID
	in := state.Intent{ID: intentID(state.IntentDrainNode, node, r.ID+"/complete", r.Attempts), Kind: state.IntentDrainNode,
		Request: r.ID, Object: node, Detail: completeDrainDetail}
	var left time.Duration // the drain's deadline from now, as it was
	updated := false
	err := c.do(ctx, now, in, func(ctx context.Context) error {
		n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
		if err != nil {
			return err
		}
		if !ownDrain(n, r.ID) || n.DrainStrategy.Deadline <= 0 {
			// Complete already, someone else's now, or forced.
			return nil
		}
		left = n.DrainStrategy.ForceDeadline.Sub(now).Round(time.Second)
		if n.DrainStrategy.ForceDeadline.IsZero() || left < time.Second {
			// No deadline to keep, or Nomad's drain reaches it now.
			return nil
		}
		_, err = c.nomad.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{
			DrainSpec:    &nomadapi.DrainSpec{Deadline: left, IgnoreSystemJobs: n.DrainStrategy.IgnoreSystemJobs},
			MarkEligible: false,
			Meta:         n.LastDrain.Meta,
		}, c.wq(ctx))
		updated = err == nil
		return err
	})
	switch {
	case err != nil && !errors.Is(err, errAnnounced):
		// Nomad's drain still completes at its deadline.
		c.log.Warn("could not update a drain for Nomad to complete it; Nomad's drain completes at its deadline",
			logKeyRequest, r.ID, "node", node, logKeyError, err)
	case updated:
		c.log.Info("drain updated for Nomad to complete it: only sysbatch allocations that ended held it back",
			logKeyRequest, r.ID, "node", node, "deadline_left", left)
		k := len(ended)
		*ds = append(*ds, state.Decision{Time: now, Kind: "done", Policy: r.Policy, Locality: r.Source, Request: r.ID,
			Reason: fmt.Sprintf("Nomad's drain of node %s can complete: sysbatch %s %s ended while it drained, which Nomad's drain does not watch; "+
				"foreshape updated the drain, its deadline as it was (%s left), for Nomad to see the node empty",
				c.decisionName(node), pick(k, "allocation", "allocations"), strings.Join(ended, ", "), left)})
	}
}
