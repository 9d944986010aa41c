package sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityNodeEvents runs eligibility and drain changes, the no-op ones
// included, and checks each adds the event Nomad sets (message, subsystem,
// no details, CreateIndex the node's ModifyIndex right after) or none.
func TestFidelityNodeEvents(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		nodes := c.client.Nodes()
		id := c.node.ID
		c.giveBackAtEnd(t)
		info := func() *api.Node {
			t.Helper()
			n, _, err := nodes.Info(id, nil)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if evs := info().Events; len(evs) == 0 || evs[0].Message == "Node registered" && evs[0].CreateIndex != 0 {
			t.Fatalf("%s: events %+v; want the registration at index 0 first (or dropped)", c.name, evs)
		}
		// expect runs step and checks the events it adds: one with msg and
		// subsystem at the node's new ModifyIndex, or, msg "", none and
		// (moves false) no index change.
		expect := func(what string, step func() error, msg, subsystem string, moves bool) {
			t.Helper()
			before := info()
			if err := step(); err != nil {
				t.Fatalf("%s: %s: %v", c.name, what, err)
			}
			after := info()
			last := func(n *api.Node) *api.NodeEvent { return n.Events[len(n.Events)-1] }
			if msg == "" {
				if last(after).CreateIndex != last(before).CreateIndex || len(after.Events) != len(before.Events) {
					t.Errorf("%s: %s added event %+v; want none", c.name, what, last(after))
				}
				if moved := after.ModifyIndex != before.ModifyIndex; moved != moves {
					t.Errorf("%s: %s: ModifyIndex %d → %d; want moved=%v", c.name, what, before.ModifyIndex, after.ModifyIndex, moves)
				}
				return
			}
			// A drain of a node with nothing to move may complete before
			// the read: then "Node drain complete" follows, at the node's
			// ModifyIndex.
			var added []*api.NodeEvent
			for _, e := range after.Events {
				if e.CreateIndex > before.ModifyIndex {
					added = append(added, e)
				}
			}
			want := after.ModifyIndex
			if len(added) == 2 && added[1].Message == "Node drain complete" && added[1].CreateIndex == want {
				added, want = added[:1], added[0].CreateIndex
			}
			if len(added) != 1 || added[0].Message != msg || added[0].Subsystem != subsystem || len(added[0].Details) != 0 || added[0].CreateIndex != want {
				t.Errorf("%s: %s: added events %s; want %s/%q", c.name, what, describeEvents(added), subsystem, msg)
			}
		}
		elig := func(on bool) func() error {
			return func() error { _, err := nodes.ToggleEligibility(id, on, nil); return err }
		}
		drain := func(spec *api.DrainSpec) func() error {
			return func() error { _, err := nodes.UpdateDrain(id, spec, spec == nil, nil); return err }
		}
		expect("disable", elig(false), "Node marked as ineligible for scheduling", "Cluster", true)
		expect("disable again", elig(false), "", "", false)
		expect("enable", elig(true), "Node marked as eligible for scheduling", "Cluster", true)
		expect("enable again", elig(true), "", "", false)
		expect("drain", drain(&api.DrainSpec{Deadline: time.Hour}), "Node drain strategy set", "Drain", true)
		// The check's node runs nothing, so its drain completes at once
		// (on both): the next drain is set anew and the disable finds none.
		// "updated" and "disabled" need a drain still running (below).
		expect("drain again", drain(&api.DrainSpec{Deadline: 2 * time.Hour}), "Node drain strategy set", "Drain", true)
		expect("drain disable", drain(nil), "", "", true)
		expect("drain disable again", drain(nil), "", "", true)
		expect("drain to complete", drain(&api.DrainSpec{Deadline: time.Second}), "Node drain strategy set", "Drain", true)
		deadline := time.Now().Add(90 * time.Second)
		for info().DrainStrategy != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: drain did not complete", c.name)
			}
			time.Sleep(200 * time.Millisecond)
		}
		n := info()
		if e := n.Events[len(n.Events)-1]; e.Message != "Node drain complete" || e.Subsystem != "Drain" || e.CreateIndex != n.ModifyIndex {
			t.Errorf("%s: finished drain's last event %q/%q at %d; want Drain/Node drain complete at ModifyIndex %d", c.name, e.Subsystem, e.Message, e.CreateIndex, n.ModifyIndex)
		}
		if len(n.Events) > 10 {
			t.Errorf("%s: %d events; Nomad keeps 10", c.name, len(n.Events))
		}
		expect("drain disable after complete", drain(nil), "", "", true)

		// A batch allocation keeps a drain running until its deadline (1h
		// here): a drain set again is updated, a cancel is disabled, with
		// the node left ineligible unless the cancel marks it eligible
		// (no eligibility event then). Measured on Nomad 2.0.6-dev.
		jid := c.jobID("eventsbatch")
		j := sleepJob(jid, 1, 50, 32, 50)
		j.Type, j.Update = new(api.JobTypeBatch), nil
		j.TaskGroups[0].Tasks[0].SetConfig("args", []string{"600"})
		c.register(t, j)
		c.waitAllocs(t, jid, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		cancel := func(markEligible bool) func() error {
			return func() error { _, err := nodes.UpdateDrain(id, nil, markEligible, nil); return err }
		}
		eligibility := func(what, want string) {
			t.Helper()
			n := info()
			if n.SchedulingEligibility != want || n.DrainStrategy != nil {
				t.Errorf("%s: after %s: eligibility %s, drain %+v; want %s, no drain", c.name, what, n.SchedulingEligibility, n.DrainStrategy, want)
			}
		}
		expect("drain a running batch allocation", drain(&api.DrainSpec{Deadline: time.Hour}), "Node drain strategy set", "Drain", true)
		if n := info(); n.DrainStrategy == nil {
			t.Fatalf("%s: drain of a node running a batch allocation ended at once; want it running until its deadline", c.name)
		}
		expect("drain update", drain(&api.DrainSpec{Deadline: 2 * time.Hour}), "Node drain strategy updated", "Drain", true)
		expect("drain update, same deadline", drain(&api.DrainSpec{Deadline: 2 * time.Hour}), "Node drain strategy updated", "Drain", true)
		expect("running drain disable", cancel(false), "Node drain disabled", "Drain", true)
		eligibility("running drain disable", api.NodeSchedulingIneligible)
		expect("drain again", drain(&api.DrainSpec{Deadline: time.Hour}), "Node drain strategy set", "Drain", true)
		expect("running drain disable, marking eligible", cancel(true), "Node drain disabled", "Drain", true)
		eligibility("running drain disable, marking eligible", api.NodeSchedulingEligible)
		if as, _, err := c.client.Jobs().Allocations(jid, true, nil); err != nil || count(as, running) != 1 {
			t.Errorf("%s: batch allocations after the disabled drains: %s (%v); want the one still running", c.name, describe(as), err)
		}
		if n := info(); len(n.Events) > 10 {
			t.Errorf("%s: %d events; Nomad keeps 10", c.name, len(n.Events))
		}
	})
}

func describeEvents(evs []*api.NodeEvent) string {
	out := ""
	for _, e := range evs {
		out += fmt.Sprintf("[%s/%q at %d details %v] ", e.Subsystem, e.Message, e.CreateIndex, e.Details)
	}
	return out
}
