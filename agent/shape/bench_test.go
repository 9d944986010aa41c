package shape

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// benchInput is a large cluster: localities datacenters of nodesPer nodes
// each (8000 MHz / 16384 MiB), four allocations a node, one policy per
// datacenter (reservations on, a scale block), forecasts of an hour on a
// 1-minute grid, and requests queued allocation moves between random
// datacenters, a tenth of them holding a reservation.
func benchInput(tb testing.TB, localities, nodesPer, requests int) Input {
	rng := rand.New(rand.NewPCG(1, 2))
	var nodes []Node
	var allocs []Alloc
	jobs := []Job{{ID: "web", Namespace: "default", Type: "service", Priority: 60, Groups: map[string]Group{"g": {}}}}
	var pol strings.Builder
	var fcs []Forecast
	for l := range localities {
		dc := fmt.Sprintf("dc%03d", l)
		for k := range nodesPer {
			id := fmt.Sprintf("%s-n%03d", dc, k)
			nodes = append(nodes, Node{ID: id, Name: id, Datacenter: dc, NodePool: "default", NodeClass: "web",
				CPU: 8000, MemoryMB: 16384, Ready: true, Eligible: true})
			for a := range 4 {
				allocs = append(allocs, Alloc{ID: fmt.Sprintf("%s-a%d", id, a), Namespace: "default", Job: "web", Group: "g", Node: id,
					Size: state.Resources{CPU: int64(250 * (1 + rng.IntN(4))), MemoryMB: int64(512 * (1 + rng.IntN(4)))}, Live: true, Running: true})
			}
		}
		fmt.Fprintf(&pol, `
shaping %q {
  locality {
    datacenter = %q
  }
  reserve {
    enabled    = true
    lead_time  = "15m"
    max_cpu    = 1000000
    max_memory = 1000000
  }
  migrate {
    max_parallel = 3
  }
  scale "s" {
    min = 1
    max = 100
    target "nomad-job" {
      job   = "web"
      group = "g"
    }
  }
}
`, dc, dc)
		for _, m := range []string{"cpu", "memory"} {
			f := Forecast{Policy: dc, Locality: dc, Metric: m, Quantile: 0.9, Line: 80, HasLine: true}
			base := 30 + 50*rng.Float64()
			for i := range 60 {
				f.Times = append(f.Times, at(time.Duration(i)*time.Minute))
				f.Planning = append(f.Planning, base+5*rng.Float64())
			}
			fcs = append(fcs, f)
		}
	}
	pols := parsePolicies(tb, pol.String())
	var st state.ActView
	for i := range requests {
		a := allocs[rng.IntN(len(allocs))]
		src := a.Node[:5]
		dst := fmt.Sprintf("dc%03d", rng.IntN(localities))
		if dst == src {
			dst = fmt.Sprintf("dc%03d", (rng.IntN(localities-1)+1+int(src[4]-'0'))%localities)
		}
		id := fmt.Sprintf("mr-%d", i+1)
		r := state.MigrationRequest{ID: id, Resource: state.Resource{Kind: state.ResourceAllocation, ID: a.ID + fmt.Sprint(i)},
			Source: src, Target: dst, Policy: src, Strategy: "reschedule", Origin: "operator", State: state.RequestPending,
			Moves: []state.Move{{Alloc: a.ID, Job: "web", Group: "g", Namespace: "default", Node: a.Node, Size: a.Size}},
			Moved: a.Size, Created: at(-time.Duration(rng.IntN(3600)) * time.Second), Priority: rng.IntN(100)}
		if i%10 == 0 {
			r.State = state.RequestReserving
			st.Reservations = append(st.Reservations, state.Reservation{ID: fmt.Sprintf("rs-%d", i), Request: id, Policy: dst, Locality: dst,
				Job: state.PlaceholderPrefix + fmt.Sprintf("rs-%d", i), State: state.ReservationHeld, Placed: at(-time.Minute), Expires: at(time.Hour),
				Chunks: []state.Chunk{{Size: a.Size, Count: 1}}})
			// Its placeholder runs: the request may start.
			allocs = append(allocs, Alloc{ID: fmt.Sprintf("ph-%d", i), Namespace: "default", Job: state.PlaceholderPrefix + fmt.Sprintf("rs-%d", i),
				Group: "hold", Node: dst + "-n000", Size: a.Size, Live: true, Running: true})
		}
		if i%25 == 0 {
			r.State, r.Started = state.RequestRunning, at(-time.Minute)
		}
		st.Requests = append(st.Requests, r)
	}
	return Input{Now: at(0), Policies: pols, Forecasts: fcs, Cluster: NewCluster(nodes, allocs, jobs), State: st}
}

// BenchmarkPlan plans 1,000 queued requests over 200 localities and 10,000
// nodes (the target: under 200 ms a pass).
func BenchmarkPlan(b *testing.B) {
	in := benchInput(b, 200, 50, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	var plan Plan
	for b.Loop() {
		plan = Run(in)
	}
	b.ReportMetric(float64(len(plan.Start)), "starts")
	b.ReportMetric(float64(len(plan.Reserve)), "reserves")
	b.ReportMetric(float64(len(plan.Rescore)), "rescores")
}
