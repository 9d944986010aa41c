package shape

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	_ "github.com/foreshape/foreshape/plugins/target/builtin"
	"github.com/foreshape/foreshape/policies"
)

// t0 is 06:00 on a Monday; drain windows in the tests open at 08:00.
var t0 = time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// parsePolicies parses policy HCL or fails the test.
func parsePolicies(t testing.TB, src string) []*policies.Policy {
	t.Helper()
	pols, diags := policies.Parse("test.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("policies: %s", diags.Error())
	}
	return pols
}

// source and target are the two policies most tests use: dc1 drains its
// rack a at 08:00 for an hour into dc2, which reserves with a 15m lead.
const sourcePolicy = `
shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  headroom {
    cpu    = 20
    memory = 20
  }
  migrate {
    max_parallel = 2
    strategy     = "%s"
    lead_time    = "30m"
    targets      = ["dc2"]
  }
  schedule "rack-a" {
    cron     = "0 8 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-a-*"
  }
}
`

const targetPolicy = `
shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  headroom {
    cpu    = 20
    memory = 20
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "2h"
    max_cpu    = 100000
    max_memory = 100000
  }
  migrate {
    max_parallel = 2
  }
  scale "workers" {
    min      = 1
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "workers"
      group = "w"
    }
  }
}
`

// fixture is one planner input under construction.
type fixture struct {
	nodes        []Node
	allocs       []Alloc
	jobs         []Job
	pols         []*policies.Policy
	fcs          []Forecast
	st           state.ActView
	now          time.Time
	limits       Limits
	forecastOnly bool
	// unplaceable is Input.Unplaceable.
	unplaceable map[string]string
}

// baseFixture: dc1 has racks a and b (two nodes each), dc2 four nodes;
// every node 4000 MHz / 8192 MiB. Job web (priority 60, dc1 and dc2) runs
// one 1000 MHz / 1024 MiB frontend per dc1 node; job cache (priority 50,
// dc1 only) one 500 MHz / 2048 MiB allocation on dc1-a-1. dc1 and dc2 are
// forecast flat at 40% CPU and 30% memory.
func baseFixture(t testing.TB, strategy string) *fixture {
	f := &fixture{now: at(0)}
	for _, dc := range []string{"dc1", "dc2"} {
		for i := 1; i <= 4; i++ {
			name := fmt.Sprintf("%s-%d", dc, i)
			if dc == "dc1" {
				name = fmt.Sprintf("dc1-%c-%d", "aabb"[i-1], (i-1)%2+1)
			}
			f.nodes = append(f.nodes, Node{ID: "id-" + name, Name: name, Datacenter: dc, NodePool: "default", NodeClass: "web",
				CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
		}
	}
	for i, n := range f.nodes[:4] {
		f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("web-%d", i), Name: fmt.Sprintf("web.frontend[%d]", i), Namespace: "default",
			Job: "web", Group: "frontend", Node: n.ID, Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
	}
	f.allocs = append(f.allocs, Alloc{ID: "cache-0", Name: "cache.cache[0]", Namespace: "default", Job: "cache", Group: "cache",
		Node: "id-dc1-a-1", Size: state.Resources{CPU: 500, MemoryMB: 2048}, Live: true, Running: true})
	f.jobs = []Job{
		{ID: "web", Namespace: "default", Type: "service", Priority: 60, Datacenters: []string{"dc1", "dc2"}, Groups: map[string]Group{"frontend": {Count: 4}}},
		{ID: "cache", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"cache": {Count: 1}}},
	}
	f.pols = parsePolicies(t, fmt.Sprintf(sourcePolicy, strategy)+targetPolicy)
	f.fcs = []Forecast{flat("dc1", "cpu", 40, 80), flat("dc1", "memory", 30, 80), flat("dc2", "cpu", 40, 80), flat("dc2", "memory", 30, 80)}
	return f
}

// flat is an hour's forecast at one value from t0, on a 1-minute grid.
func flat(loc, metric string, v, line float64) Forecast {
	f := Forecast{Policy: strings.SplitN(loc, "/", 2)[0], Locality: loc, Metric: metric, Quantile: 0.9, Line: line, HasLine: true}
	for i := range 4 * 60 {
		f.Times = append(f.Times, at(time.Duration(i)*time.Minute))
		f.Planning = append(f.Planning, v)
	}
	return f
}

// setFrom sets a forecast's planning value from d on.
func (f *fixture) setFrom(loc, metric string, d time.Duration, v float64) {
	for i := range f.fcs {
		if f.fcs[i].Locality == loc && f.fcs[i].Metric == metric {
			for k, tt := range f.fcs[i].Times {
				if !tt.Before(at(d)) {
					f.fcs[i].Planning[k] = v
				}
			}
		}
	}
}

func (f *fixture) input() Input {
	return Input{Now: f.now, Policies: f.pols, Forecasts: f.fcs, Cluster: NewCluster(f.nodes, f.allocs, f.jobs),
		State: f.st, Limits: f.limits, ForecastOnly: f.forecastOnly, Unplaceable: f.unplaceable}
}

// queued adds a request to the state as the state machine would hold it.
func (f *fixture) queued(r state.MigrationRequest) {
	if r.ID == "" {
		r.ID = fmt.Sprintf("mr-%d", len(f.st.Requests)+1)
	}
	if r.State == "" {
		r.State = state.RequestPending
	}
	if r.Created.IsZero() {
		r.Created = f.now
	}
	for _, m := range r.Moves {
		r.Moved = r.Moved.Add(m.Size)
	}
	f.st.Requests = append(f.st.Requests, r)
}

// allocRequest is an operator's request to move one of the fixture's
// allocations from dc1 to dc2.
func (f *fixture) allocRequest(alloc string) state.MigrationRequest {
	for _, a := range f.allocs {
		if a.ID == alloc {
			return state.MigrationRequest{
				Resource: state.Resource{Kind: state.ResourceAllocation, ID: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group},
				Source:   "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Origin: "operator",
				Moves: []state.Move{{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: a.Node, Size: a.Size}},
			}
		}
	}
	panic("no allocation " + alloc)
}

// decisionsOf returns the plan's decisions of a kind.
func decisionsOf(p Plan, kind string) []state.Decision {
	var out []state.Decision
	for _, d := range p.Decisions {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

func rescoreOf(p Plan, id string) (state.Rescore, bool) {
	for _, r := range p.Rescore {
		if r.ID == id {
			return r, true
		}
	}
	return state.Rescore{}, false
}

func startIDs(p Plan) []string {
	var out []string
	for _, s := range p.Start {
		out = append(out, s.Request)
	}
	return out
}
