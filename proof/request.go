package proof

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/foreshape/foreshape/sim"
)

// Request is one move every controller is asked to make: empty a whole
// node (a drain), or move one allocation of a job's group (a migration
// wave), from datacenter From to datacenter To (empty: anywhere the job
// may run). Its ID is the same for every controller.
type Request struct {
	ID string
	// Origin is the scenario event or migration block it comes from.
	Origin string
	// Arrive is when the request is made; Deadline is when the move
	// should have started at the latest (a drain's deadline).
	Arrive   time.Time
	Deadline time.Time
	// Node is the name of the node to empty (drains); NodeID its ID, set
	// when the request arrives.
	Node   string
	NodeID string
	// Job and Group name the group one allocation of which moves (waves);
	// AllocID is the allocation the harness picked when the request
	// arrived, by the same rule for every controller.
	Job, Group string
	AllocID    string
	From, To   string
	// sel selects a wave's source nodes; all asks for every matching
	// allocation (a wave without a count).
	sel sim.EventSpec
	all bool
}

// IsNode reports whether the request empties a whole node.
func (r Request) IsNode() bool { return r.Node != "" }

// Workload is what a scenario asks the controllers to do: its drain
// events and migration waves turned into requests, sorted by arrival.
type Workload struct {
	Requests []Request
	// Drains are the drain events, which the harness takes out of the
	// scenario the simulator runs: the controllers perform them.
	Drains []sim.EventSpec
}

// PlanWorkload turns a scenario's drain events (one request per node they
// select) and migration waves (one request per allocation, Count of them,
// Every apart) into requests, in arrival order. Node names come from the
// scenario's node groups.
func PlanWorkload(sc *sim.Scenario) Workload {
	var w Workload
	for _, e := range sc.Events {
		if e.Kind != sim.EventDrain {
			continue
		}
		w.Drains = append(w.Drains, e)
		at := sc.Start.Add(e.At)
		for _, g := range sc.NodeGroups {
			for i := 1; i <= g.Count; i++ {
				name := fmt.Sprintf("%s-%d", g.Name, i)
				if !matchStatic(e, g, name) {
					continue
				}
				w.Requests = append(w.Requests, Request{
					ID: e.Name + "/" + name, Origin: e.Name, Arrive: at, Deadline: at.Add(e.Deadline),
					Node: name, From: g.Datacenter, To: e.Target,
				})
			}
		}
	}
	for _, m := range sc.Migrations {
		n := m.Count
		if n == 0 {
			n = 1 // resolved to every matching allocation on arrival
		}
		for k := range n {
			at := sc.Start.Add(m.At + time.Duration(k)*m.Every)
			w.Requests = append(w.Requests, Request{
				ID: m.Name + "/" + strconv.Itoa(k+1), Origin: m.Name, Arrive: at, Deadline: at.Add(m.Deadline),
				Job: m.Job, Group: m.Group, From: m.From, To: m.To,
				sel: sim.EventSpec{Datacenter: m.From, NodePool: m.NodePool, NodeClass: m.NodeClass, Node: m.Node},
				all: m.Count == 0,
			})
		}
	}
	sort.SliceStable(w.Requests, func(i, k int) bool { return w.Requests[i].Arrive.Before(w.Requests[k].Arrive) })
	return w
}

// matchStatic applies an event's node selectors to a node declared by the
// scenario.
func matchStatic(e sim.EventSpec, g sim.NodeGroupSpec, name string) bool {
	if e.Datacenter != "" && g.Datacenter != e.Datacenter {
		return false
	}
	if e.NodePool != "" && g.NodePool != e.NodePool {
		return false
	}
	if e.NodeClass != "" && g.NodeClass != e.NodeClass {
		return false
	}
	if e.Node != "" {
		if ok, _ := path.Match(e.Node, name); !ok {
			return false
		}
	}
	return true
}

// withoutDrains returns a copy of the scenario whose drain events are left
// to the controllers.
func withoutDrains(sc *sim.Scenario) *sim.Scenario {
	out := *sc
	out.Events = nil
	for _, e := range sc.Events {
		if e.Kind != sim.EventDrain {
			out.Events = append(out.Events, e)
		}
	}
	return &out
}
