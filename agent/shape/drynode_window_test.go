package shape

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// dc3Policy shapes dc3, which an operator's whole-node request targets.
const dc3Policy = `
shaping "dc3" {
  forecast_only = %t
  locality {
    datacenter = "dc3"
  }
}
`

// nodeRequestTo is an operator's request to move all of dc1-a-1 (web-0
// and cache-0) to target.
func (f *fixture) nodeRequestTo(target string) state.MigrationRequest {
	r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-a-1", Name: "dc1-a-1"},
		Source: "dc1", Target: target, Strategy: "reschedule", Origin: "operator", Reason: "test: all of dc1-a-1 to " + target}
	for _, a := range f.allocs {
		if a.Node == "id-dc1-a-1" {
			r.Moves = append(r.Moves, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: a.Node, Size: a.Size})
		}
	}
	return r
}

// movesA1 lists the plan's submissions that move dc1-a-1 or its work.
func movesA1(p Plan) []string {
	var out []string
	for _, s := range p.Submit {
		r := s.Request
		if r.Resource.ID == "id-dc1-a-1" || len(r.Moves) > 0 && r.Moves[0].Node == "id-dc1-a-1" {
			out = append(out, fmt.Sprintf("%s dry=%t", r.Resource, s.DryRun))
		}
	}
	return out
}

// TestWindowDisplacesAWholeNodeRequestPlannedDry: an operator queued all
// of dc1-a-1 to dc3, whose policy is forecast_only: planned dry, the
// request never starts and takes nothing out. dc1's rack-a window (08:00,
// lead time 30m) reached a-1 at 07:30 and found its node and allocations
// queued already (taken): it neither queued a-1's moves nor a request to
// hold it, and a-1 ran its work through the window. Now the window cancels
// the dry request (not dry: the window's policy is not forecast_only), and
// queues a-1's work at the next pass, once the cancel is applied. A
// request to a dc3 that is not forecast_only moves a-1's work itself and
// keeps the window off a-1, as before.
func TestWindowDisplacesAWholeNodeRequestPlannedDry(t *testing.T) {
	for _, strategy := range []string{"drain", "reschedule"} {
		for _, dry := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dc3_forecast_only=%t", strategy, dry), func(t *testing.T) {
				f := baseFixture(t, strategy)
				f.pols = append(f.pols, parsePolicies(t, fmt.Sprintf(dc3Policy, dry))...)
				for i := 1; i <= 2; i++ {
					f.nodes = append(f.nodes, Node{ID: fmt.Sprintf("id-dc3-%d", i), Name: fmt.Sprintf("dc3-%d", i), Datacenter: "dc3",
						NodePool: "default", NodeClass: "web", CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
				}
				f.now = at(85 * time.Minute)
				f.queued(f.nodeRequestTo("dc3"))
				id := f.st.Requests[0].ID

				f.now = at(90 * time.Minute) // 07:30: the window's lead time begins
				plan := Run(f.input())
				if got := movesA1(plan); len(got) != 0 {
					t.Fatalf("07:30: queued %v of a-1 while %s holds it; the state refuses them", got, id)
				}
				if !dry {
					if len(plan.Cancel) != 0 {
						t.Errorf("07:30: cancels %+v; want none: %s, not dry, moves a-1's work", plan.Cancel, id)
					}
				} else {
					if len(plan.Cancel) != 1 || plan.Cancel[0].Request != id || plan.Cancel[0].DryRun {
						t.Fatalf("07:30: cancels %+v; want %s's, not dry", plan.Cancel, id)
					}
					ds := decisionsOf(plan, KindCancel)
					if len(ds) != 1 || ds[0].DryRun || ds[0].Request != id ||
						!strings.Contains(ds[0].Reason, `drain "rack-a" of dc1 nodes dc1-a-* from 08:00 takes node dc1-a-1`) ||
						!strings.Contains(ds[0].Reason, `planned dry (dc3's policy "dc3" is forecast_only)`) {
						t.Errorf("07:30: cancel decisions %+v; want one for %s saying which window and why", ds, id)
					}
					if _, ok := rescoreOf(plan, id); ok {
						t.Errorf("07:30: %s rescored as it is cancelled", id)
					}
				}
				for _, s := range plan.Submit {
					f.queued(s.Request)
				}
				for _, c := range plan.Cancel {
					for i := range f.st.Requests {
						if f.st.Requests[i].ID == c.Request {
							f.st.Requests[i].State = state.RequestCancelled
						}
					}
				}

				f.now = at(91 * time.Minute)
				plan = Run(f.input())
				got := movesA1(plan)
				if !dry {
					if len(got) != 0 || len(plan.Cancel) != 0 {
						t.Errorf("07:31: queued %v of a-1, cancels %+v; want none: %s holds a-1", got, plan.Cancel, id)
					}
					return
				}
				// Under reschedule, web-0 only: cache runs in dc1 only,
				// so no target may take cache-0.
				want := 1
				if len(got) != want || strings.Contains(strings.Join(got, " "), "dry=true") {
					t.Errorf("07:31: queued %v of a-1; want the window's %d, not dry", got, want)
				}
				if len(plan.Cancel) != 0 {
					t.Errorf("07:31: cancels %+v; want none", plan.Cancel)
				}
			})
		}
	}
}

// TestWindowPlannedDryDisplacesNothing: a forecast_only window of dc1
// leaves an operator's dry request of a-1 queued: its own request would be
// dry too, and its cancel a change it may not make.
func TestWindowPlannedDryDisplacesNothing(t *testing.T) {
	f := baseFixture(t, "drain")
	f.pols = append(f.pols, parsePolicies(t, fmt.Sprintf(dc3Policy, true))...)
	f.pols[0].ForecastOnly = true
	f.queued(f.nodeRequestTo("dc3"))
	f.now = at(90 * time.Minute)
	plan := Run(f.input())
	if len(plan.Cancel) != 0 || len(movesA1(plan)) != 0 {
		t.Errorf("cancels %+v, a-1 queued %v; want neither", plan.Cancel, movesA1(plan))
	}
}
