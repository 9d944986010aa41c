package shape

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

const spreadPolicy = `
shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  headroom {
    cpu    = 20
    memory = 20
  }
  reserve {
    enabled    = true
    lead_time  = "15m"
    max_cpu    = 100000
    max_memory = 100000
  }
  migrate {
    max_parallel = 2
    spread       = %v
  }
  scale "nodes" {
    min      = 4
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "workers"
      group = "w"
    }
  }
}
`

// spreadFixture: dc1 scaled out from two nodes to four, every node 4000
// MHz / 8192 MiB. The two it had run three 1000 MHz / 1024 MiB web
// allocations each; the two added stand empty. dc1's p90 CPU peaks at 60%
// of its 16000 MHz (9600 MHz) from 07:00: under its 80% line as a whole,
// but its web allocations' share puts 4800 MHz, 120%, on each of the first
// two nodes.
func spreadFixture(t *testing.T, spread bool) *fixture {
	f := &fixture{now: at(0)}
	for i := 1; i <= 4; i++ {
		f.nodes = append(f.nodes, Node{ID: fmt.Sprintf("id-dc1-%d", i), Name: fmt.Sprintf("dc1-%d", i), Datacenter: "dc1", NodePool: "default",
			CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
	for i := range 6 {
		node := f.nodes[i/3].ID
		f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("web-%d", i), Name: fmt.Sprintf("web.web[%d]", i), Namespace: "default",
			Job: "web", Group: "web", Node: node, Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
	}
	f.jobs = []Job{{ID: "web", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"web": {Count: 6}}}}
	f.pols = parsePolicies(t, fmt.Sprintf(spreadPolicy, spread))
	f.fcs = []Forecast{flat("dc1", "cpu", 30, 80), flat("dc1", "memory", 20, 80)}
	f.setFrom("dc1", "cpu", time.Hour, 60)
	return f
}

func spreads(p Plan) []state.MigrationRequest {
	var out []state.MigrationRequest
	for _, s := range p.Submit {
		if strings.HasPrefix(s.Request.OriginKey, "spread/") {
			out = append(out, s.Request)
		}
	}
	return out
}

// A spread moves single allocations by rescheduling them, whatever the
// policy's migrate.strategy, which is how its other moves are made: a
// drain would empty the hot node, an affinity steer the whole group.
func TestSpreadReschedulesWhateverTheStrategy(t *testing.T) {
	for _, strategy := range []string{"drain", "affinity"} {
		t.Run(strategy, func(t *testing.T) {
			f := spreadFixture(t, true)
			f.pols = parsePolicies(t, strings.Replace(fmt.Sprintf(spreadPolicy, true), "    spread       = true",
				"    spread       = true\n    strategy     = \""+strategy+"\"", 1))
			if f.pols[0].Migrate.Strategy != policies.Strategy(strategy) {
				t.Fatalf("strategy %q; the test needs %q", f.pols[0].Migrate.Strategy, strategy)
			}
			got := spreads(Run(f.input()))
			if len(got) != 2 {
				t.Fatalf("submitted %d spread requests; want one off each hot node", len(got))
			}
			for _, r := range got {
				if r.Strategy != string(policies.StrategyReschedule) || r.Resource.Kind != state.ResourceAllocation || len(r.Moves) != 1 {
					t.Errorf("request %+v; want one allocation rescheduled", r)
				}
			}
		})
	}
}

// Nodes forecast over the line while their locality has room shed the
// fewest allocations onto the nodes with room, within the locality.
func TestSpreadMovesWorkOffHotNodesOntoEmptyOnes(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		f := spreadFixture(t, false)
		if got := spreads(Run(f.input())); len(got) != 0 {
			t.Fatalf("spread without migrate.spread: %+v", got)
		}
	})
	f := spreadFixture(t, true)
	plan := Run(f.input())
	got := spreads(plan)
	// Each hot node holds half of dc1's web, 4800 MHz of the peak: under
	// 3200 (80%) it must shed one of its three allocations; each lands on
	// an empty node (1600 MHz there, 40%).
	if len(got) != 2 {
		t.Fatalf("submitted %d spread requests; want one off each hot node (decisions %+v)", len(got), plan.Decisions)
	}
	from := map[string]bool{}
	for _, r := range got {
		if r.Source != "dc1" || r.Target != "dc1" || r.Origin != "planner" || r.Strategy != "reschedule" || len(r.Moves) != 1 {
			t.Errorf("request %+v", r)
		}
		from[r.Moves[0].Node] = true
		if len(r.Exclude) != 1 || r.Exclude[0] != r.Moves[0].Node {
			t.Errorf("exclude %v; want the node it leaves, %s", r.Exclude, r.Moves[0].Node)
		}
		if !strings.Contains(r.Reason, "spread: p90 cpu in dc1 peaks at 07:00 at 60% of its capacity") || !strings.Contains(r.Reason, "would be 120%") {
			t.Errorf("reason %q", r.Reason)
		}
	}
	if !from["id-dc1-1"] || !from["id-dc1-2"] {
		t.Errorf("moves from %v; want one from each of dc1-1 and dc1-2", from)
	}
	if !strings.Contains(got[0].Reason, "onto dc1-3 (0% → 40%) brings dc1-1 to 80%") || !strings.Contains(got[1].Reason, "onto dc1-4 (0% → 40%) brings dc1-2 to 80%") {
		t.Errorf("reasons %q, %q", got[0].Reason, got[1].Reason)
	}

	// Queued, they start as moves do, one new transfer a pass through
	// dc1; a spread holds no reservation (it adds no demand to dc1), and
	// no other spread is planned until they have landed.
	for _, s := range plan.Submit {
		f.queued(s.Request)
	}
	plan = Run(f.input())
	if len(spreads(plan)) != 0 {
		t.Errorf("spread again while the first moves are queued: %+v", spreads(plan))
	}
	if len(plan.Reserve) != 0 {
		t.Errorf("reserved for a move within dc1: %+v", plan.Reserve)
	}
	if ids := startIDs(plan); len(ids) != 1 || ids[0] != "mr-1" {
		t.Errorf("started %v; want mr-1 (one new transfer a pass through dc1)", ids)
	}
}

func TestSpreadLeavesWhatNoNodeCanTake(t *testing.T) {
	t.Run("evenly loaded", func(t *testing.T) {
		// Every node runs its share: the locality as a whole is what
		// crosses, a scale action's business, not a spread's.
		f := spreadFixture(t, true)
		for i := 6; i < 8; i++ {
			f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("web-%d", i), Name: fmt.Sprintf("web.web[%d]", i), Namespace: "default",
				Job: "web", Group: "web", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
		}
		for i := range f.allocs {
			f.allocs[i].Node = f.nodes[i%4].ID
		}
		f.setFrom("dc1", "cpu", 10*time.Minute, 90)
		plan := Run(f.input())
		if got := spreads(plan); len(got) != 0 {
			t.Fatalf("spread on even nodes: %+v", got)
		}
		if len(plan.Scale) != 1 || !strings.Contains(plan.Scale[0].Reason, "hotspot") {
			t.Errorf("scale %+v", plan.Scale)
		}
	})
	t.Run("no node stays under the line", func(t *testing.T) {
		// At 150% of dc1's capacity (24000 MHz), one 1000 MHz web's
		// share is 4000 MHz: 100% of an empty node.
		f := spreadFixture(t, true)
		f.setFrom("dc1", "cpu", time.Hour, 150)
		if got := spreads(Run(f.input())); len(got) != 0 {
			t.Fatalf("spread onto nodes that would cross the line too: %+v", got)
		}
	})
	t.Run("no room to allocate", func(t *testing.T) {
		f := spreadFixture(t, true)
		// Placeholders of another request fill the empty nodes.
		f.jobs = append(f.jobs, Job{ID: state.PlaceholderPrefix + "rs-1", Namespace: "default", Type: "service", Priority: 10})
		for _, n := range f.nodes[2:] {
			f.allocs = append(f.allocs, Alloc{ID: "hold-" + n.Name, Job: state.PlaceholderPrefix + "rs-1", Group: "hold", Node: n.ID,
				Size: state.Resources{CPU: 3500, MemoryMB: 1024}, Live: true, Running: true})
		}
		if got := spreads(Run(f.input())); len(got) != 0 {
			t.Fatalf("spread onto nodes without room: %+v", got)
		}
	})
}

// A reservation whose placeholder Nomad has not placed yet holds its room
// from spreading as from the next reservation (holdUnplaced): a spread
// onto it would have Nomad place the spread's replacement in the room the
// placeholder is about to take, and the move the reservation is for would
// find none. What Nomad has placed is in the node's allocations already.
func TestSpreadKeepsOffUnplacedPlaceholdersRoom(t *testing.T) {
	chunk := state.Chunk{Size: state.Resources{CPU: 3500, MemoryMB: 1024}}
	tests := []struct {
		name string
		// count is rs-1's chunks of 3500 MHz, placed its placeholder
		// allocations Nomad placed (on dc1-3, then dc1-4).
		count, placed int
		// wantOnto are the nodes the spreads land on.
		wantOnto []string
	}{
		// Packed first fit, the two chunks hold dc1-3 and dc1-4.
		{name: "held, not placed: no room left", count: 2, wantOnto: nil},
		// The one chunk holds dc1-3: both spreads go to dc1-4.
		{name: "held, not placed: the room left takes the spreads", count: 1, wantOnto: []string{"dc1-4", "dc1-4"}},
		// The placed chunk is on dc1-3 (its allocation); the other one
		// is packed onto dc1-4, not counted twice on dc1-3.
		{name: "partly placed", count: 2, placed: 1, wantOnto: nil},
		{name: "placed in full", count: 1, placed: 1, wantOnto: []string{"dc1-4", "dc1-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := spreadFixture(t, true)
			job := state.PlaceholderPrefix + "rs-1"
			f.jobs = append(f.jobs, Job{ID: job, Namespace: "default", Type: "service", Priority: 10})
			for i := range tt.placed {
				n := f.nodes[2+i]
				f.allocs = append(f.allocs, Alloc{ID: "hold-" + n.Name, Job: job, Group: "hold-0", Namespace: "default", Node: n.ID,
					Size: chunk.Size, Live: true, Running: true})
			}
			// mr-1 moves work from dc2 into dc1; its reservation is held.
			r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc2-1", Name: "dc2-1"},
				Source: "dc2", Target: "dc1", Strategy: "reschedule", Origin: "operator", State: state.RequestReserving}
			for i := range tt.count {
				r.Moves = append(r.Moves, state.Move{Alloc: fmt.Sprintf("api-%d", i), Namespace: "default", Job: "api", Group: "api", Node: "id-dc2-1", Size: chunk.Size})
			}
			f.queued(r)
			c := chunk
			c.Count = tt.count
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc1", Locality: "dc1", Job: job,
				State: state.ReservationHeld, Placed: at(-30 * time.Second), Expires: at(time.Hour), Chunks: []state.Chunk{c}}}
			plan := Run(f.input())
			var onto []string
			for _, r := range spreads(plan) {
				_, after, _ := strings.Cut(r.Reason, " onto ")
				name, _, _ := strings.Cut(after, " ")
				onto = append(onto, name)
			}
			if strings.Join(onto, ",") != strings.Join(tt.wantOnto, ",") {
				t.Fatalf("spreads onto %v; want %v (decisions %+v)", onto, tt.wantOnto, plan.Decisions)
			}
		})
	}
}

// A queued spread does not stand for relief of its locality: a hotspot of
// the locality as a whole still scales.
func TestSpreadDoesNotHoldScaling(t *testing.T) {
	f := spreadFixture(t, true)
	f.setFrom("dc1", "cpu", 10*time.Minute, 85)
	plan := Run(f.input())
	if len(plan.Scale) != 1 || !strings.Contains(plan.Scale[0].Reason, "hotspot: p90 cpu 85% crosses the 80% line in dc1") {
		t.Fatalf("scale %+v (submitted %d)", plan.Scale, len(plan.Submit))
	}
}

// Which allocations a hot node sheds: the cheapest to move (most of the
// metric per MiB transferred), never one Nomad would put back (its group
// holds as many allocations elsewhere as the node keeps, or its last
// spread off the node landed back on it).
func TestSpreadChoosesWhatNomadPlacesElsewhere(t *testing.T) {
	movedAllocs := func(p Plan) []string {
		var out []string
		for _, r := range spreads(p) {
			out = append(out, r.Moves[0].Alloc)
		}
		return out
	}
	t.Run("cheapest transfer first", func(t *testing.T) {
		// dc1-1's first web becomes a 1000 MHz / 4096 MiB allocation of
		// job fat: as much CPU shed, four times the transfer.
		f := spreadFixture(t, true)
		f.jobs = append(f.jobs, Job{ID: "fat", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"fat": {Count: 1}}})
		f.allocs[0] = Alloc{ID: "fat-0", Name: "fat.fat[0]", Namespace: "default", Job: "fat", Group: "fat", Node: f.nodes[0].ID,
			Size: state.Resources{CPU: 1000, MemoryMB: 4096}, Live: true, Running: true}
		got := movedAllocs(Run(f.input()))
		if len(got) != 2 || got[0] != "web-1" {
			t.Errorf("moved %v; want web-1 off dc1-1 (not fat-0), then one off dc1-2", got)
		}
	})
	t.Run("a group as spread elsewhere stays", func(t *testing.T) {
		// Job solo runs one small allocation on every node: the cheapest
		// per MiB, but its replacement would go back where it left.
		f := spreadFixture(t, true)
		f.jobs = append(f.jobs, Job{ID: "solo", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"solo": {Count: 4}}})
		for i, n := range f.nodes {
			f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("solo-%d", i), Name: fmt.Sprintf("solo.solo[%d]", i), Namespace: "default", Job: "solo", Group: "solo",
				Node: n.ID, Size: state.Resources{CPU: 100, MemoryMB: 64}, Live: true, Running: true})
		}
		got := movedAllocs(Run(f.input()))
		if len(got) != 2 || !strings.HasPrefix(got[0], "web-") || !strings.HasPrefix(got[1], "web-") {
			t.Errorf("moved %v; want a web allocation off each hot node", got)
		}
	})
	t.Run("landed back", func(t *testing.T) {
		// An earlier spread of web off dc1-1 landed back on it.
		f := spreadFixture(t, true)
		f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: "web-9"}, Source: "dc1", Target: "dc1", Policy: "dc1",
			Origin: "planner", OriginKey: "spread/dc1/1/web-9", State: state.RequestDone, Finished: at(-30 * time.Minute),
			Moves: []state.Move{{Alloc: "web-9", Namespace: "default", Job: "web", Group: "web", Node: "id-dc1-1", TargetNode: "id-dc1-1", Done: true,
				Size: state.Resources{CPU: 1000, MemoryMB: 1024}}}})
		got := spreads(Run(f.input()))
		if len(got) != 1 || got[0].Moves[0].Node != "id-dc1-2" {
			t.Errorf("spread %+v; want one move, off dc1-2 only", got)
		}
	})
}

// When each allocation is a large share of a node, no receiver may stay
// under the locality's mean after a move; a move is still made when it
// lowers the higher of the two nodes' peaks and its receiver stays under
// its capacity, and not when it would only swap which node is hot.
func TestSpreadLowersTheHigherPeak(t *testing.T) {
	// dc1-1 runs four of web's ten 1000 MHz allocations, each other node
	// two; dc1's p90 CPU peaks at 62.5% (10000 MHz): a web's share is
	// 1000 MHz, 25% of a node. dc1-1 reads 100%, the others 50%, the mean
	// 62.5%. Any move lifts its receiver to 75%, over the mean, and brings
	// dc1-1 to 75%: the higher of the two falls from 100% to 75%.
	fixture := func(onNode1 int, peak float64) *fixture {
		f := spreadFixture(t, true)
		f.allocs = nil
		per := []int{onNode1, 2, 2, 2}
		i := 0
		for n, k := range per {
			for range k {
				f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("web-%d", i), Name: fmt.Sprintf("web.web[%d]", i), Namespace: "default",
					Job: "web", Group: "web", Node: f.nodes[n].ID, Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
				i++
			}
		}
		f.jobs[0].Groups["web"] = Group{Count: i}
		f.setFrom("dc1", "cpu", time.Hour, peak)
		return f
	}
	t.Run("lowers the higher peak", func(t *testing.T) {
		plan := Run(fixture(4, 62.5).input())
		got := spreads(plan)
		if len(got) != 1 {
			t.Fatalf("submitted %d spread requests; want one off dc1-1 (decisions %+v)", len(got), plan.Decisions)
		}
		if got[0].Moves[0].Node != "id-dc1-1" || !strings.Contains(got[0].Reason, "dc1-1's share (what its allocations hold) would be 100%, over the 80% line") ||
			!strings.Contains(got[0].Reason, "onto dc1-2 (50% → 75%) brings dc1-1 to 75%") {
			t.Errorf("spread %+v", got[0])
		}
	})
	t.Run("only swaps which node is hot", func(t *testing.T) {
		// Three webs on dc1-1, nine in all, dc1 at 67.5% (10800 MHz): a
		// web's share is 1200 MHz (30%); dc1-1 reads 90%, the others 60%.
		// A move would put its receiver at 90%, no lower than dc1-1 now.
		if got := spreads(Run(fixture(3, 67.5).input())); len(got) != 0 {
			t.Fatalf("spread that only swaps the hot node: %+v", got)
		}
	})
	t.Run("receiver over its capacity", func(t *testing.T) {
		// Five webs on dc1-1, eleven in all, dc1 at 100% (16000 MHz): a
		// web's share is 1455 MHz (36.4%); dc1-1 reads 182%, the others
		// 73%. A move would lower the higher peak (to 145%) but put its
		// receiver at 109%, over its capacity.
		if got := spreads(Run(fixture(5, 100).input())); len(got) != 0 {
			t.Fatalf("spread onto a node it would take over its capacity: %+v", got)
		}
	})
}

// A spread takes none of the bandwidth requested transfers share: it waits
// while one runs through its locality.
func TestSpreadYieldsToRequestedTransfers(t *testing.T) {
	f := spreadFixture(t, true)
	f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: "x"}, Source: "dc9", Target: "dc1", Policy: "dc1",
		Origin: "operator", State: state.RequestRunning, Started: f.now,
		Moves: []state.Move{{Alloc: "x", Job: "web", Group: "web", Size: state.Resources{CPU: 100, MemoryMB: 100}, Stopped: f.now}}})
	for _, s := range Run(f.input()).Submit {
		f.queued(s.Request)
	}
	plan := Run(f.input())
	if len(plan.Start) != 0 {
		t.Fatalf("started %v beside a running transfer into dc1", startIDs(plan))
	}
	rs, _ := rescoreOf(plan, "mr-2")
	if !strings.Contains(rs.Reason, "spread yields to the transfers through dc1 (mr-1)") {
		t.Errorf("reason %q", rs.Reason)
	}
}

// groupForecast is a per-allocation forecast of a task group: v before d,
// then w, on flat's times.
func groupForecast(group, metric string, d time.Duration, v, w float64) Forecast {
	f := Forecast{Group: group, Metric: metric, Quantile: 0.9}
	for i := range 4 * 60 {
		t := at(time.Duration(i) * time.Minute)
		f.Times = append(f.Times, t)
		if t.Before(at(d)) {
			f.Planning = append(f.Planning, v)
		} else {
			f.Planning = append(f.Planning, w)
		}
	}
	return f
}

// With forecasts of its task groups' own use, a node's share is what its
// allocations will use, not what they hold: jobs that peak at different
// times, or use more or less than they hold, load their nodes unevenly
// though the nodes hold alike.
func TestSpreadReadsAllocationsOwnUse(t *testing.T) {
	// dc1-1 runs three webs and a cache, dc1-2 four caches, every one
	// holding 500 MHz / 512 MiB: 2000 MHz held on each, half of dc1's.
	// A web uses 400 MHz until 07:00, then 1200; a cache 700, then 300.
	// dc1's p90 demand: 4700 MHz, then 5100 (31.9% of 16000). By what
	// they hold each node would get 2550 MHz (64%): no spread. By their
	// own use dc1-1 peaks at 3900 MHz (97.5%) from 07:00, dc1-2 at 2800
	// (70%) before it.
	fixture := func(groups, byUse bool) *fixture {
		f := spreadFixture(t, true)
		f.pols[0].Migrate.SpreadByUse = byUse
		f.allocs = nil
		add := func(job string, i int, node string) {
			f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("%s-%d", job, i), Name: fmt.Sprintf("%s.%s[%d]", job, job, i), Namespace: "default",
				Job: job, Group: job, Node: node, Size: state.Resources{CPU: 500, MemoryMB: 512}, Live: true, Running: true})
		}
		for i := range 3 {
			add("web", i, "id-dc1-1")
		}
		add("cache", 0, "id-dc1-1")
		for i := 1; i <= 4; i++ {
			add("cache", i, "id-dc1-2")
		}
		f.jobs = []Job{{ID: "web", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"web": {Count: 3}}},
			{ID: "cache", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"}, Groups: map[string]Group{"cache": {Count: 5}}}}
		f.fcs = []Forecast{flat("dc1", "cpu", 100*4700.0/16000, 80), flat("dc1", "memory", 20, 80)}
		f.setFrom("dc1", "cpu", time.Hour, 100*5100.0/16000)
		if groups {
			f.fcs = append(f.fcs, groupForecast(GroupKey("default", "web", "web"), "cpu", time.Hour, 400, 1200),
				groupForecast(GroupKey("default", "cache", "cache"), "cpu", time.Hour, 700, 300))
		}
		return f
	}
	if got := spreads(Run(fixture(false, true).input())); len(got) != 0 {
		t.Fatalf("without group forecasts (shares of what allocations hold, 64%% each): spread %+v", got)
	}
	if got := spreads(Run(fixture(true, false).input())); len(got) != 0 {
		t.Fatalf("without migrate.spread_by_use (shares of what allocations hold, 64%% each): spread %+v", got)
	}
	got := spreads(Run(fixture(true, true).input()))
	// One web (1200 MHz at 07:00) brings dc1-1 to 2700 (67.5%); it lands
	// on the first empty node (30%, under dc1's mean of 31.9%).
	if len(got) != 1 {
		t.Fatalf("submitted %d spread requests; want one web off dc1-1: %+v", len(got), got)
	}
	r := got[0]
	if m := r.Moves[0]; m.Job != "web" || m.Node != "id-dc1-1" {
		t.Errorf("moved %s of %s off %s; want a web off dc1-1 (a cache there sheds 300 MHz at its peak)", m.Alloc, m.Job, m.Node)
	}
	if !strings.Contains(r.Reason, "dc1-1's share (the higher of what its allocations hold and their own forecast use) would be 98%") ||
		!strings.Contains(r.Reason, "onto dc1-3 (0% → 30%) brings dc1-1 to 68%") {
		t.Errorf("reason %q", r.Reason)
	}
}

// A spread queued in a locality takes the room its move's replacement
// lands in, though it records no destination: a reservation packed into
// the same locality, in the pass that plans the spread or in a later one
// while the spread has not moved its allocation yet, keeps off that room.
// Packed onto it, the placeholder would take the room the spread was
// planned for (its replacement then landing on a hot node, or nowhere), or
// the spread's replacement the room the placeholder is about to take.
func TestReservationsKeepOffQueuedSpreadsRoom(t *testing.T) {
	tests := []struct {
		name string
		// spread is migrate.spread; state the spreads of a first pass are
		// queued in before the pass checked ("" for the pass that plans
		// them).
		spread bool
		state  state.RequestState
		// landed moves the spreads' allocations onto their receivers, as
		// Nomad does once they have started.
		landed bool
		// chunkMiB is each of mr-1's two placeholder chunks' memory.
		chunkMiB int64
		wantFit  bool
	}{
		// dc1-3 and dc1-4 hold 8192 MiB free each; dc1-1 and dc1-2
		// 5120: the two 7500 MiB chunks pack onto the empty nodes.
		{name: "no spread", chunkMiB: 7500, wantFit: true},
		// The spreads move a web (1000 MHz / 1024 MiB) onto each empty
		// node: 7168 MiB left on each, too little for a chunk.
		{name: "spread planned in the same pass", spread: true, chunkMiB: 7500},
		{name: "spread queued", spread: true, state: state.RequestPending, chunkMiB: 7500},
		{name: "spread waiting", spread: true, state: state.RequestWaiting, chunkMiB: 7500},
		{name: "spread running, its allocation not stopped yet", spread: true, state: state.RequestRunning, chunkMiB: 7500},
		// Their replacements run on the receivers: their room is in the
		// nodes' allocations, counted once.
		{name: "spread landed", spread: true, state: state.RequestRunning, landed: true, chunkMiB: 7000, wantFit: true},
		{name: "spread landed, no room left", spread: true, state: state.RequestRunning, landed: true, chunkMiB: 7500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// dc1's p90 CPU at 45% from 07:00 (7200 MHz): 3600 MHz, 90%,
			// on each of dc1-1 and dc1-2; a web's share is 1200 MHz.
			f := spreadFixture(t, tt.spread)
			f.setFrom("dc1", "cpu", time.Hour, 45)
			if tt.state != "" {
				for _, s := range spreads(Run(f.input())) {
					s.State = tt.state
					if tt.state == state.RequestRunning {
						s.Started = f.now
					}
					f.queued(s)
				}
				if len(f.st.Requests) != 2 {
					t.Fatalf("queued %d spreads; want 2", len(f.st.Requests))
				}
			}
			if tt.landed {
				for _, r := range f.st.Requests {
					m := r.Moves[0]
					_, after, _ := strings.Cut(r.Reason, " onto ")
					name, _, _ := strings.Cut(after, " ")
					for i := range f.allocs {
						if f.allocs[i].ID == m.Alloc {
							f.allocs[i].Live, f.allocs[i].Running = false, false
						}
					}
					f.allocs = append(f.allocs, Alloc{ID: m.Alloc + "-new", Name: m.Name, Namespace: m.Namespace, Job: m.Job, Group: m.Group,
						Node: "id-" + name, Size: m.Size, Live: true})
				}
			}
			// mr-n moves two api allocations from dc2 into dc1, which
			// reserves for them.
			size := state.Resources{CPU: 500, MemoryMB: tt.chunkMiB}
			f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc2-1", Name: "dc2-1"},
				Source: "dc2", Target: "dc1", Strategy: "reschedule", Origin: "operator",
				Moves: []state.Move{{Alloc: "api-0", Namespace: "default", Job: "api", Group: "api", Node: "id-dc2-1", Size: size},
					{Alloc: "api-1", Namespace: "default", Job: "api", Group: "api", Node: "id-dc2-1", Size: size}}})
			id := f.st.Requests[len(f.st.Requests)-1].ID
			plan := Run(f.input())
			if tt.spread && tt.state == "" && len(spreads(plan)) != 2 {
				t.Fatalf("planned %d spreads; want 2 (decisions %+v)", len(spreads(plan)), plan.Decisions)
			}
			rs, _ := rescoreOf(plan, id)
			fit := len(plan.Reserve) == 1 && plan.Reserve[0].Request == id
			if fit != tt.wantFit {
				t.Fatalf("reserved %+v (%s: %q); want a reservation for %s: %v", plan.Reserve, id, rs.Reason, id, tt.wantFit)
			}
			if !fit && !strings.Contains(rs.Reason, "reservation does not fit") {
				t.Errorf("%s: %q; want it waiting for room", id, rs.Reason)
			}
			// The reason says what the spreads hold, where they do.
			if held := tt.spread && !tt.landed; !fit && strings.Contains(rs.Reason, "2048 MiB held for the spreads not finished there") != held {
				t.Errorf("%s: %q; want it to say the spreads hold 2000 MHz / 2048 MiB: %v", id, rs.Reason, held)
			}
		})
	}
}

// The mean a receiver must stay under is the level of the locality's work
// spread evenly over the nodes that can take it: a node that takes no new
// work (ineligible, or draining) takes none of it, so its capacity does
// not lower the mean (its own work stays on it; a draining node's is
// being placed on the others). Read over every ready node, an empty
// cordoned node pulled the mean under what any spread could reach, and
// the cheapest move was refused for a dearer one.
func TestSpreadMeanIsOnNodesThatTakeNewWork(t *testing.T) {
	// dc1-1 runs fat (1600 MHz / 512 MiB) and two smalls (800 MHz / 1024
	// MiB each), dc1-2 two webs (1000 MHz / 1024 MiB), dc1-3 and dc1-4
	// nothing. dc1's p90 CPU peaks at 40.625% (6500 MHz) from 07:00,
	// 1.25 times what allocations hold: dc1-1 reads 100%, dc1-2 62.5%;
	// fat's share is 2000 MHz (50% of a node, the most per MiB moved), a
	// small's 1000 (25%).
	tests := []struct {
		name string
		node func(*Node, *fixture)
		// want is the allocation moved and the reason's move.
		want, reason string
	}{
		// The mean over the four nodes is 40.625%: fat would put dc1-3
		// at 50%, over it; a small brings dc1-1 under the line.
		{name: "every node takes new work", want: "small-0", reason: "onto dc1-3 (0% → 25%) brings dc1-1 to 75%"},
		// Over the three that take new work, 54.2%: fat, the cheapest
		// move, is made.
		{name: "an ineligible empty node", node: emptied, want: "fat-0", reason: "onto dc1-3 (0% → 50%) brings dc1-1 to 50%"},
		{name: "a draining empty node", node: draining, want: "fat-0", reason: "onto dc1-3 (0% → 50%) brings dc1-1 to 50%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := spreadFixture(t, true)
			f.allocs = nil
			add := func(job string, i int, node string, size state.Resources) {
				f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("%s-%d", job, i), Name: fmt.Sprintf("%s.%s[%d]", job, job, i), Namespace: "default",
					Job: job, Group: job, Node: node, Size: size, Live: true, Running: true})
			}
			add("fat", 0, "id-dc1-1", state.Resources{CPU: 1600, MemoryMB: 512})
			add("small", 0, "id-dc1-1", state.Resources{CPU: 800, MemoryMB: 1024})
			add("small", 1, "id-dc1-1", state.Resources{CPU: 800, MemoryMB: 1024})
			add("web", 0, "id-dc1-2", state.Resources{CPU: 1000, MemoryMB: 1024})
			add("web", 1, "id-dc1-2", state.Resources{CPU: 1000, MemoryMB: 1024})
			for _, job := range []string{"fat", "small"} {
				f.jobs = append(f.jobs, Job{ID: job, Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1"},
					Groups: map[string]Group{job: {Count: 2}}})
			}
			f.setFrom("dc1", "cpu", time.Hour, 40.625)
			if tt.node != nil {
				tt.node(&f.nodes[3], f)
			}
			plan := Run(f.input())
			got := spreads(plan)
			if len(got) != 1 {
				t.Fatalf("submitted %d spread requests; want one off dc1-1 (decisions %+v)", len(got), plan.Decisions)
			}
			if m := got[0].Moves[0]; m.Alloc != tt.want || !strings.Contains(got[0].Reason, tt.reason) {
				t.Errorf("moved %s: %q; want %s, %q", m.Alloc, got[0].Reason, tt.want, tt.reason)
			}
		})
	}
}
