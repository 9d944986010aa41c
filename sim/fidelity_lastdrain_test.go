package sim_test

import (
	"maps"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// A give-back tells an operator's drain from foreshape's by the node's
// LastDrain (agent/migrate nodeDrainedSince): its meta names a foreshape
// request only for foreshape's drain, and its start is when the drain
// began. That holds across drains: a new drain (after one was cancelled
// or completed) starts a new LastDrain, its own start and only the meta it
// brings, none for an operator's `nomad node drain -enable` without -m,
// so foreshape's meta does not outlive its drain into the next one; a
// completed drain keeps its start and meta ("complete"); and an
// eligibility change, either way, leaves LastDrain as it was.
func TestFidelityLastDrainAcrossDrains(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		c.drainableJob(t, "lastdrain", 2)
		node := func() *api.Node {
			t.Helper()
			n, _, err := c.client.Nodes().Info(c.node.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		same := func(a, b *api.DrainMetadata) bool {
			if a == nil || b == nil {
				return a == b
			}
			return a.StartedAt.Equal(b.StartedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.Status == b.Status && maps.Equal(a.Meta, b.Meta)
		}
		drain := func(deadline time.Duration, meta map[string]string) {
			t.Helper()
			if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: &api.DrainSpec{Deadline: deadline}, Meta: meta}, nil); err != nil {
				t.Fatal(err)
			}
		}
		cancel := func(markEligible bool) {
			t.Helper()
			if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: nil, MarkEligible: markEligible}, nil); err != nil {
				t.Fatal(err)
			}
		}
		eligible := func(on bool) {
			t.Helper()
			if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, on, nil); err != nil {
				t.Fatal(err)
			}
		}
		// Nomad's LastDrain times are whole seconds: let one pass between
		// the drains, so that each starts in a second of its own.
		second := func() { time.Sleep(1100 * time.Millisecond) }

		// An eligibility change, out and back, leaves LastDrain as it was
		// (the node's last drain may be any earlier check's, or none).
		before := node().LastDrain
		eligible(false)
		if n := node(); n.SchedulingEligibility != api.NodeSchedulingIneligible || !same(n.LastDrain, before) {
			t.Errorf("%s: made ineligible: eligibility %s, last drain %+v; want ineligible, last drain %+v", c.name, n.SchedulingEligibility, n.LastDrain, before)
		}
		eligible(true)
		if n := node(); n.SchedulingEligibility != api.NodeSchedulingEligible || !same(n.LastDrain, before) {
			t.Errorf("%s: made eligible: eligibility %s, last drain %+v; want eligible, last drain %+v", c.name, n.SchedulingEligibility, n.LastDrain, before)
		}

		// foreshape's drain, cancelled keeping the node out: its meta stays.
		second()
		drain(time.Hour, map[string]string{"foreshape.request": "r-1", "message": "foreshape: test"})
		first := node().LastDrain
		if first == nil || first.Status != api.DrainStatusDraining || first.Meta["foreshape.request"] != "r-1" || before != nil && !first.StartedAt.After(before.StartedAt) {
			t.Fatalf("%s: foreshape's drain: last drain %+v (before %+v)", c.name, first, before)
		}
		second()
		cancel(false)
		if n := node(); n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusCanceled || !n.LastDrain.StartedAt.Equal(first.StartedAt) ||
			!maps.Equal(n.LastDrain.Meta, first.Meta) || n.SchedulingEligibility != api.NodeSchedulingIneligible {
			t.Errorf("%s: foreshape's drain cancelled: eligibility %s, last drain %+v; want ineligible, canceled, started %s, meta %v",
				c.name, n.SchedulingEligibility, n.LastDrain, first.StartedAt, first.Meta)
		}

		// An operator's drain of the node, without meta: a new LastDrain,
		// its own start and no meta, foreshape's gone.
		second()
		drain(time.Hour, nil)
		op := node().LastDrain
		if op == nil || op.Status != api.DrainStatusDraining || !op.StartedAt.After(first.StartedAt) || len(op.Meta) != 0 {
			t.Errorf("%s: an operator's drain after foreshape's: last drain %+v; want draining, started after %s, no meta", c.name, op, first.StartedAt)
		}
		// Cancelled, the node made eligible: the same LastDrain, canceled.
		second()
		cancel(true)
		if n := node(); n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusCanceled || op != nil && !n.LastDrain.StartedAt.Equal(op.StartedAt) ||
			len(n.LastDrain.Meta) != 0 || n.SchedulingEligibility != api.NodeSchedulingEligible {
			t.Errorf("%s: the operator's drain cancelled: eligibility %s, last drain %+v; want eligible, canceled, no meta", c.name, n.SchedulingEligibility, n.LastDrain)
		}

		// foreshape's drain again, to its end (forced: the allocations'
		// replacements have nowhere to go): complete, its start and meta
		// kept, the node out of scheduling.
		second()
		drain(-time.Second, map[string]string{"foreshape.request": "r-3"})
		third := node().LastDrain
		if third == nil || op != nil && !third.StartedAt.After(op.StartedAt) || third.Meta["foreshape.request"] != "r-3" {
			t.Errorf("%s: foreshape's second drain: last drain %+v; want started after %v, meta r-3", c.name, third, op)
		}
		n := c.waitNode(t, "finished draining", func(n *api.Node) bool { return n.DrainStrategy == nil })
		if n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusComplete || third != nil && !n.LastDrain.StartedAt.Equal(third.StartedAt) ||
			n.LastDrain.Meta["foreshape.request"] != "r-3" || n.SchedulingEligibility != api.NodeSchedulingIneligible {
			t.Errorf("%s: foreshape's drain complete: eligibility %s, last drain %+v; want ineligible, complete, started as it was, meta r-3",
				c.name, n.SchedulingEligibility, n.LastDrain)
		}
		done := n.LastDrain
		// Made eligible after it: LastDrain as the drain left it.
		second()
		eligible(true)
		if n := node(); n.SchedulingEligibility != api.NodeSchedulingEligible || !same(n.LastDrain, done) {
			t.Errorf("%s: made eligible after the drain: eligibility %s, last drain %+v; want eligible, last drain %+v", c.name, n.SchedulingEligibility, n.LastDrain, done)
		}
		t.Logf("%s: foreshape's drain %+v; the operator's %+v; foreshape's, complete, %+v", c.name, first, op, done)
	})
}
