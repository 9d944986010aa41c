package shape

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// addDC3 adds dc3's policy (forecast_only as dry says) and its nodes.
func (f *fixture) addDC3(t *testing.T, dry bool) {
	t.Helper()
	f.pols = append(f.pols, parsePolicies(t, fmt.Sprintf(dc3Policy, dry))...)
	f.addDC3Nodes()
}

// addDC3Nodes adds dc3's two nodes, as large as the fixture's others.
func (f *fixture) addDC3Nodes() {
	for i := 1; i <= 2; i++ {
		f.nodes = append(f.nodes, Node{ID: fmt.Sprintf("id-dc3-%d", i), Name: fmt.Sprintf("dc3-%d", i), Datacenter: "dc3",
			NodePool: "default", NodeClass: "web", CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
}

// apply records a plan as the coordinator would: its submissions queued,
// then its cancels.
func (f *fixture) apply(p Plan) {
	for _, s := range p.Submit {
		f.queued(s.Request)
	}
	for _, c := range p.Cancel {
		for i := range f.st.Requests {
			if f.st.Requests[i].ID == c.Request {
				f.st.Requests[i].State = state.RequestCancelled
				f.st.Requests[i].Finished = f.now
			}
		}
	}
}

// groupRequestTo is an operator's request to move every allocation of
// web's frontend group (web-0 to web-3, one per dc1 node) to target.
func (f *fixture) groupRequestTo(target string) state.MigrationRequest {
	r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceGroup, ID: "web/frontend", Namespace: "default", Job: "web", Group: "frontend"},
		Source: "dc1", Target: target, Strategy: "reschedule", Origin: "operator", Reason: "test: web's frontend to " + target}
	for _, a := range f.allocs {
		if a.Job == "web" {
			r.Moves = append(r.Moves, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: a.Node, Size: a.Size})
		}
	}
	return r
}

// TestWindowDisplacesAnAllocationRequestPlannedDry: an operator queued
// web-0 (on dc1-a-1), or web's whole frontend group, to dc3, whose policy
// is forecast_only: planned dry, the request never starts. dc1's rack-a
// window (08:00, lead time 30m) reached a-1 at 07:30 and found web-0
// queued already (taken): it queued none of web-0's move (under drain,
// a-1's request), and web-0 ran on a-1 through the window. Now the
// window cancels the dry request, saying which window and why, and
// queues a-1's work at the next pass. A request to a dc3 that is not
// forecast_only moves web-0 itself and keeps the window off it.
func TestWindowDisplacesAnAllocationRequestPlannedDry(t *testing.T) {
	for _, kind := range []string{"allocation", "group"} {
		for _, strategy := range []string{"drain", "reschedule"} {
			for _, dry := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/dc3_forecast_only=%t", kind, strategy, dry), func(t *testing.T) {
					f := baseFixture(t, strategy)
					f.addDC3(t, dry)
					f.now = at(85 * time.Minute)
					req, what := f.groupRequestTo("dc3"), "group default/web/frontend"
					if kind == "allocation" {
						req = f.allocRequest("web-0")
						req.Target, req.Policy, req.Origin = "dc3", "", "operator"
						what = "allocation web.frontend[0] (web-0)"
					}
					f.queued(req)
					id := f.st.Requests[0].ID

					f.now = at(90 * time.Minute) // 07:30: the window's lead time begins
					plan := Run(f.input())
					for _, s := range plan.Submit {
						for _, m := range s.Request.Moves {
							if m.Alloc == "web-0" {
								t.Fatalf("07:30: queued %s with web-0 while %s holds it; the state refuses it", s.Request.Resource, id)
							}
						}
					}
					if !dry {
						if len(plan.Cancel) != 0 {
							t.Errorf("07:30: cancels %+v; want none: %s, not dry, moves web-0", plan.Cancel, id)
						}
					} else {
						if len(plan.Cancel) != 1 || plan.Cancel[0].Request != id || plan.Cancel[0].DryRun {
							t.Fatalf("07:30: cancels %+v; want %s's, not dry", plan.Cancel, id)
						}
						ds := decisionsOf(plan, KindCancel)
						if len(ds) != 1 || ds[0].DryRun || ds[0].Request != id ||
							!strings.Contains(ds[0].Reason, `drain "rack-a" of dc1 nodes dc1-a-* from 08:00 takes node dc1-a-1 down: this request of `+what) ||
							!strings.Contains(ds[0].Reason, `planned dry (dc3's policy "dc3" is forecast_only)`) ||
							!strings.Contains(ds[0].Reason, "would never move web.frontend[0] off it") {
							t.Errorf("07:30: cancel decisions %+v; want one for %s saying which window and why", ds, id)
						}
						if _, ok := rescoreOf(plan, id); ok {
							t.Errorf("07:30: %s rescored as it is cancelled", id)
						}
					}
					f.apply(plan)

					f.now = at(91 * time.Minute)
					plan = Run(f.input())
					var web0 []string
					for _, s := range plan.Submit {
						for _, m := range s.Request.Moves {
							if m.Alloc == "web-0" {
								web0 = append(web0, fmt.Sprintf("%s dry=%t", s.Request.Resource, s.DryRun))
							}
						}
					}
					if !dry {
						if len(web0) != 0 || len(plan.Cancel) != 0 {
							t.Errorf("07:31: queued %v with web-0, cancels %+v; want none: %s holds web-0", web0, plan.Cancel, id)
						}
						return
					}
					if len(web0) != 1 || strings.Contains(web0[0], "dry=true") {
						t.Errorf("07:31: queued %v with web-0; want the window's one, not dry", web0)
					}
					if len(plan.Cancel) != 0 {
						t.Errorf("07:31: cancels %+v; want none", plan.Cancel)
					}
				})
			}
		}
	}
}

// dryDrainPolicy is a forecast_only policy of dc3 that drains dc1's rack
// a at 08:00 as dc1's rack-a does, with a lead time of an hour.
const dryDrainPolicy = `
shaping "dc3" {
  forecast_only = true
  locality {
    datacenter = "dc3"
  }
  migrate {
    strategy  = "%s"
    lead_time = "1h"
  }
  schedule "dc1-rack-a" {
    cron       = "0 8 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
    nodes      = "dc1-a-*"
  }
}
`

// TestWindowDisplacesADryWindowsRequests: policy dc3 is forecast_only and
// drains dc1's rack a at 08:00 with a lead time of an hour, so at 07:00
// it queued its requests dry (under migrate.strategy "drain", one per
// node); dc1's own rack-a window (lead time 30m) reached a-1 and a-2 at
// 07:30 and found them and their work queued already: it queued nothing,
// and rack a ran its work through dc1's window, though a forecast_only
// window's nodes are to stay free for another policy's drain. Now dc1's
// window cancels dc3's dry requests, not dry, saying which window and
// why, and queues rack a's work itself at the next pass; dc3's window
// queues nothing again.
func TestWindowDisplacesADryWindowsRequests(t *testing.T) {
	for _, dryStrategy := range []string{"drain", "reschedule"} {
		for _, strategy := range []string{"drain", "reschedule"} {
			t.Run(fmt.Sprintf("dc3_%s/dc1_%s", dryStrategy, strategy), func(t *testing.T) {
				f := baseFixture(t, strategy)
				f.pols = append(f.pols, parsePolicies(t, fmt.Sprintf(dryDrainPolicy, dryStrategy))...)
				f.addDC3Nodes()
				f.now = at(60 * time.Minute) // 07:00: dc3's window's lead time begins
				plan := Run(f.input())
				var dryIDs []string
				for _, s := range plan.Submit {
					if !s.DryRun || s.Request.Policy != "dc3" {
						t.Fatalf("07:00: queued %s of %s dry=%t; want dc3's, dry", s.Request.Resource, s.Request.Policy, s.DryRun)
					}
				}
				if len(plan.Submit) == 0 {
					t.Fatalf("07:00: dc3's window queued nothing; the test needs its dry requests")
				}
				f.apply(plan)
				for _, r := range f.st.Requests {
					dryIDs = append(dryIDs, r.ID)
				}
				// What dc3's dry requests hold: web-0 and cache-0 on a-1,
				// web-1 on a-2 (under reschedule, those with a target).
				held := map[string]bool{}
				for _, r := range f.st.Requests {
					for _, m := range r.Moves {
						held[m.Alloc] = true
					}
				}

				f.now = at(90 * time.Minute) // 07:30: dc1's window's lead time begins
				plan = Run(f.input())
				for _, s := range plan.Submit {
					if s.Request.Policy == "dc1" && s.Request.Origin == "schedule" && !WindowHold(&s.Request) {
						for _, m := range s.Request.Moves {
							if held[m.Alloc] {
								t.Fatalf("07:30: queued %s with %s while dc3's dry request holds it; the state refuses it", s.Request.Resource, m.Alloc)
							}
						}
					}
				}
				cancelled := map[string]bool{}
				for _, c := range plan.Cancel {
					if c.DryRun {
						t.Errorf("07:30: cancel %+v is dry; dc1's window is not", c)
					}
					cancelled[c.Request] = true
				}
				for _, id := range dryIDs {
					if !cancelled[id] {
						t.Errorf("07:30: dc3's dry request %s not cancelled (cancels %+v)", id, plan.Cancel)
					}
				}
				for _, d := range decisionsOf(plan, KindCancel) {
					if d.DryRun || d.Policy != "dc1" || !strings.Contains(d.Reason, `drain "rack-a" of dc1 nodes dc1-a-* from 08:00 takes node dc1-a-`) ||
						!strings.Contains(d.Reason, `planned dry (policy "dc3" is forecast_only)`) {
						t.Errorf("07:30: cancel decision %+v; want dc1's, saying which window and why", d)
					}
				}
				if n := len(decisionsOf(plan, KindCancel)); n != len(dryIDs) {
					t.Errorf("07:30: %d cancel decisions; want %d", n, len(dryIDs))
				}
				f.apply(plan)

				f.now = at(91 * time.Minute)
				plan = Run(f.input())
				moved := map[string]bool{}
				for _, s := range plan.Submit {
					if s.DryRun || s.Request.Policy != "dc1" {
						t.Errorf("07:31: queued %s of %s dry=%t; want dc1's only, not dry", s.Request.Resource, s.Request.Policy, s.DryRun)
					}
					for _, m := range s.Request.Moves {
						moved[m.Alloc] = true
					}
				}
				for _, a := range []string{"web-0", "web-1"} {
					if !moved[a] {
						t.Errorf("07:31: dc1's window did not queue %s's move", a)
					}
				}
				if len(plan.Cancel) != 0 {
					t.Errorf("07:31: cancels %+v; want none", plan.Cancel)
				}
			})
		}
	}
}

// TestWindowLeavesADryRequestHoldingAReservation: an operator's request
// of web-0 to dc3, queued and reserved for before dc3's policy became
// forecast_only, holds a placeholder there: its cancel would leave the
// placeholder to a release planned dry, so the window leaves it.
func TestWindowLeavesADryRequestHoldingAReservation(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.addDC3(t, true)
	f.now = at(85 * time.Minute)
	req := f.allocRequest("web-0")
	req.Target, req.Policy = "dc3", ""
	f.queued(req)
	id := f.st.Requests[0].ID
	f.st.Requests[0].State = state.RequestReserving
	f.st.Reservations = append(f.st.Reservations, state.Reservation{ID: "rs-1", Request: id, Policy: "dc3", Locality: "dc3", State: state.ReservationHeld,
		Size: state.Resources{CPU: 1000, MemoryMB: 1024}, From: f.now, Until: at(120 * time.Minute), Expires: at(205 * time.Minute)})
	f.now = at(90 * time.Minute)
	plan := Run(f.input())
	if len(plan.Cancel) != 0 || len(decisionsOf(plan, KindCancel)) != 0 {
		t.Errorf("cancels %+v; want none: %s holds rs-1", plan.Cancel, id)
	}
}

// TestCalledOffWindowDisplacesNothing: an operator called dc1's rack-a
// window off (cancelled every request of it before any started), then,
// with Nomad placing web-9 on dc1-a-1 once a-1 was given back, queued
// web-9 to dc3, forecast_only. The window cancelled that dry request as
// it took a-1 down, and the request it was to queue in its place the
// coordinator refused (the window called off): the operator's request
// was lost for nothing, and the cancel said the window queued its own.
// Now a called-off window cancels nothing; one whose requests foreshape
// cancelled is not called off, and displaces the dry request.
func TestCalledOffWindowDisplacesNothing(t *testing.T) {
	for _, byOperator := range []bool{true, false} {
		t.Run(fmt.Sprintf("by_operator=%t", byOperator), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.addDC3(t, true)
			f.now = at(90 * time.Minute)
			plan := Run(f.input())
			if len(plan.Submit) == 0 {
				t.Fatal("07:30: the window queued nothing; the test needs its requests")
			}
			f.apply(plan)
			f.now = at(92 * time.Minute)
			reason := "cancelled by an operator"
			if !byOperator {
				reason = "job stopped: nothing to move"
			}
			for i := range f.st.Requests {
				f.st.Requests[i].State, f.st.Requests[i].Finished, f.st.Requests[i].Reason = state.RequestCancelled, f.now, reason
			}
			f.allocs = append(f.allocs, Alloc{ID: "web-9", Name: "web.frontend[9]", Namespace: "default", Job: "web", Group: "frontend",
				Node: "id-dc1-a-1", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
			f.now = at(100 * time.Minute)
			req := f.allocRequest("web-9")
			req.Target, req.Policy = "dc3", ""
			f.queued(req)
			id := f.st.Requests[len(f.st.Requests)-1].ID

			f.now = at(101 * time.Minute)
			plan = Run(f.input())
			cancelled := len(plan.Cancel) == 1 && plan.Cancel[0].Request == id
			if byOperator && len(plan.Cancel) != 0 {
				t.Errorf("07:41: cancels %+v; want none: the window is called off", plan.Cancel)
			}
			if !byOperator && !cancelled {
				t.Errorf("07:41: cancels %+v; want %s's: foreshape's cancels call no window off", plan.Cancel, id)
			}
		})
	}
}
