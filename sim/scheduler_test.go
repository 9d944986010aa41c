package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// do runs fn under the cluster lock.
func do(c *Cluster, fn func()) {
	c.mu.Lock()
	defer c.unlock()
	fn()
}

func mustRegister(t *testing.T, c *Cluster, j *api.Job) *eval {
	t.Helper()
	var ev *eval
	var err error
	do(c, func() { ev, err = c.register(j, nil, triggerRegister) })
	if err != nil {
		t.Fatalf("register %s: %v", *j.ID, err)
	}
	return ev
}

// nodesOf returns the names of the nodes holding the job's live allocations.
func nodesOf(c *Cluster, jobID string) []string {
	var out []string
	do(c, func() {
		for _, a := range c.jobs[jobID].allocs {
			if !a.terminal() {
				out = append(out, a.node.name)
			}
		}
	})
	sort.Strings(out)
	return out
}

func onNode(j *api.Job, name string) *api.Job {
	j.Constrain(api.NewConstraint("${node.unique.name}", "=", name))
	return j
}

func TestBinPacking(t *testing.T) {
	for _, tc := range []struct {
		algorithm api.SchedulerAlgorithm
		same      bool
	}{
		{api.SchedulerAlgorithmBinpack, true},
		{api.SchedulerAlgorithmSpread, false},
	} {
		t.Run(string(tc.algorithm), func(t *testing.T) {
			c := newTestCluster(t, "")
			do(c, func() { c.schedCfg.SchedulerAlgorithm = tc.algorithm })
			// Both jobs may run in every datacenter (five ready nodes: Nomad
			// scores ceil(log2 5) = 3 fitting nodes per placement) but are
			// held to dc1's three nodes, so every dc1 node is scored.
			first := inDC1(noUpdate(serviceJob("first", 1, 1000, 1024, 50)))
			second := inDC1(noUpdate(serviceJob("second", 1, 1000, 1024, 50)))
			mustRegister(t, c, first)
			mustRegister(t, c, second)
			a, b := nodesOf(c, "first"), nodesOf(c, "second")
			if (a[0] == b[0]) != tc.same {
				t.Errorf("%s: first on %v, second on %v; same node = %v, want %v", tc.algorithm, a, b, a[0] == b[0], tc.same)
			}
		})
	}
}

// inDC1 holds a job that may run in every datacenter to dc1 by constraint.
func inDC1(j *api.Job) *api.Job {
	j.Constrain(api.NewConstraint("${node.datacenter}", "=", "dc1"))
	return j
}

func TestBinPackingFillsBusiestNode(t *testing.T) {
	c := newTestCluster(t, "")
	// Three dc1 nodes; a-2 is already half full. The jobs may run in both
	// datacenters (five nodes: three scored) but are held to dc1.
	mustRegister(t, c, onNode(noUpdate(serviceJob("filler", 1, 2000, 4096, 50)), "a-2"))
	for i := range 3 {
		j := inDC1(noUpdate(serviceJob("j"+string(rune('a'+i)), 1, 500, 512, 50)))
		mustRegister(t, c, j)
		if got := nodesOf(c, *j.ID); got[0] != "a-2" {
			t.Errorf("job %s placed on %v, want the busiest node a-2", *j.ID, got)
		}
	}
}

func TestConstraints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		con    *api.Constraint
		count  int
		want   string // prefix every placed node name must have
		placed int
	}{
		{"node class", api.NewConstraint("${node.class}", "=", "db"), 2, "b-", 2},
		{"meta", api.NewConstraint("${meta.rack}", "=", "r1"), 3, "a-", 3},
		{"datacenter not", api.NewConstraint("${node.datacenter}", "!=", "dc1"), 2, "b-", 2},
		{"unique name", api.NewConstraint("${node.unique.name}", "=", "a-2"), 2, "a-2", 2},
		{"regexp", api.NewConstraint("${node.unique.name}", "regexp", "^b-[12]$"), 2, "b-", 2},
		{"set contains any", api.NewConstraint("${meta.rack}", "set_contains_any", "r9,r2"), 1, "b-", 1},
		{"no such meta", api.NewConstraint("${meta.zone}", "=", "z1"), 1, "", 0},
		{"distinct hosts", &api.Constraint{Operand: api.ConstraintDistinctHosts}, 7, "", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			j := noUpdate(serviceJob("j", tc.count, 100, 100, 50))
			j.Constrain(tc.con)
			ev := mustRegister(t, c, j)
			got := nodesOf(c, "j")
			if len(got) != tc.placed {
				t.Fatalf("placed on %v, want %d placements", got, tc.placed)
			}
			seen := map[string]bool{}
			for _, n := range got {
				if !strings.HasPrefix(n, tc.want) {
					t.Errorf("placed on %s, want %s*", n, tc.want)
				}
				if tc.con.Operand == api.ConstraintDistinctHosts && seen[n] {
					t.Errorf("distinct_hosts: two allocations on %s", n)
				}
				seen[n] = true
			}
			if missing := tc.count - tc.placed; missing > 0 {
				if ev.blockedEval == "" || ev.queued["g"] != missing || ev.failed["g"] == nil {
					t.Errorf("eval: blocked %q queued %v failed %v, want %d queued", ev.blockedEval, ev.queued, ev.failed, missing)
				}
			}
		})
	}
}

// What the simulator cannot place as Nomad would is refused, not ignored.
func TestUnsupportedPlacementRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*api.Job)
		want string
	}{
		{"constraint operand", func(j *api.Job) {
			j.Constrain(api.NewConstraint("${attr.nomad.version}", "semver", ">= 1.0"))
		}, `constraint operand "semver" is not supported`},
		{"affinity operand", func(j *api.Job) {
			j.AddAffinity(api.NewAffinity("${attr.nomad.version}", "semver", ">= 1.0", 50))
		}, `affinity operand "semver" is not supported`},
		{"spread attribute", func(j *api.Job) {
			j.AddSpread(api.NewSpread("${attr.platform.aws.placement.availability-zone}", 50, nil))
		}, `spread attribute "${attr.platform.aws.placement.availability-zone}" is not supported`},
		{"sysbatch disconnect", func(j *api.Job) {
			j.Type = new(api.JobTypeSysbatch)
			j.TaskGroups[0].Disconnect = &api.DisconnectStrategy{LostAfter: new(time.Minute)}
		}, `a disconnect block in a sysbatch job is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			j := serviceJob("j", 1, 100, 100, 50)
			tc.edit(j)
			var err error
			do(c, func() { _, err = c.register(j, nil, triggerRegister) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPreemptionGap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		typ       string
		prio      int
		enable    func(*api.PreemptionConfig)
		preempted bool
	}{
		{"service gap 10 enabled", api.JobTypeService, 60, func(p *api.PreemptionConfig) { p.ServiceSchedulerEnabled = true }, true},
		{"service gap 9 enabled", api.JobTypeService, 59, func(p *api.PreemptionConfig) { p.ServiceSchedulerEnabled = true }, false},
		{"service gap 30 disabled (default)", api.JobTypeService, 80, func(p *api.PreemptionConfig) {}, false},
		{"batch gap 30 with only service enabled", api.JobTypeBatch, 80, func(p *api.PreemptionConfig) { p.ServiceSchedulerEnabled = true }, false},
		{"batch gap 30 enabled", api.JobTypeBatch, 80, func(p *api.PreemptionConfig) { p.BatchSchedulerEnabled = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			do(c, func() { tc.enable(&c.schedCfg.PreemptionConfig) })
			mustRegister(t, c, onNode(noUpdate(serviceJob("low", 4, 1000, 1024, 50)), "a-1"))
			high := noUpdate(serviceJob("high", 1, 1500, 1024, tc.prio))
			high.Type = new(tc.typ)
			ev := mustRegister(t, c, onNode(high, "a-1"))
			var evicted []*alloc
			var placed *alloc
			do(c, func() {
				for _, a := range c.jobs["low"].allocs {
					if a.desired == desiredEvict {
						evicted = append(evicted, a)
					}
				}
				for _, a := range c.jobs["high"].allocs {
					placed = a
				}
			})
			if !tc.preempted {
				if placed != nil || len(evicted) > 0 || ev.blockedEval == "" {
					t.Fatalf("placed %v, evicted %d, blocked %q: want blocked, nothing evicted", placed != nil, len(evicted), ev.blockedEval)
				}
				return
			}
			if placed == nil || len(evicted) != 2 {
				t.Fatalf("placed %v, evicted %d: want placed by evicting 2", placed != nil, len(evicted))
			}
			for _, v := range evicted {
				if v.preemptedBy != placed.id || !strings.HasPrefix(v.desiredDesc, "Preempted by alloc ID") {
					t.Errorf("victim %s: preempted by %q desc %q", v.name, v.preemptedBy, v.desiredDesc)
				}
			}
			if len(placed.preempted) != 2 {
				t.Errorf("preemptor lists %v", placed.preempted)
			}
			// The low job cannot go anywhere else: its lost capacity is a blocked eval.
			if err := c.Step(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			do(c, func() {
				if len(c.blocked) != 1 || c.blocked[0].jobID != "low" || c.blocked[0].queued["g"] != 2 {
					t.Errorf("blocked evals = %+v", c.blocked)
				}
			})
		})
	}
}

// holds is one group of a job filling a node in the preemption tests:
// count allocations of cpu MHz and mem MB.
type holds struct {
	group           string
	count, cpu, mem int
}

// holdJob is a service job of the given groups, pinned to a node.
func holdJob(id string, prio int, node string, groups ...holds) *api.Job {
	j := api.NewServiceJob(id, id, "global", prio)
	j.Datacenters = []string{"*"}
	for _, h := range groups {
		tg := api.NewTaskGroup(h.group, h.count)
		tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(h.cpu), MemoryMB: new(h.mem)}))
		j.AddTaskGroup(tg)
	}
	return onNode(noUpdate(j), node)
}

// Nomad's preemptor (scheduler/feasible/preemption.go) takes the lowest
// priority first and, within it, again and again the allocation closest
// in size to what is still needed; a last pass keeps only as many,
// farthest first, as the placement needs. Node a-1: 4000 MHz, 8192 MB.
func TestEvictionSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		jobs []*api.Job
		ask  [2]int // MHz, MB of the priority-50 group
		want string // evicted job/group, sorted; "" for none possible
	}{
		{"closest in size, not the largest", []*api.Job{
			holdJob("p10", 10, "a-1", holds{"small", 2, 100, 2000}, holds{"big", 1, 200, 4000}),
			holdJob("p41", 41, "a-1", holds{"fill", 1, 50, 92}),
		}, [2]int{100, 2000}, "[p10/small]"},
		{"the lowest priority first, even if larger", []*api.Job{
			holdJob("p10", 10, "a-1", holds{"big", 1, 200, 4000}),
			holdJob("p20", 20, "a-1", holds{"small", 2, 100, 2000}),
			holdJob("p41", 41, "a-1", holds{"fill", 1, 50, 92}),
		}, [2]int{100, 2000}, "[p10/big]"},
		{"the next priority when the lowest is not enough, then only what is needed", []*api.Job{
			holdJob("p10", 10, "a-1", holds{"s", 1, 100, 1000}),
			holdJob("p20", 20, "a-1", holds{"b", 1, 100, 6000}),
			holdJob("p41", 41, "a-1", holds{"fill", 1, 50, 1192}),
		}, [2]int{100, 3000}, "[p20/b]"},
		{"a job 9 priorities lower is not a candidate", []*api.Job{
			holdJob("p10", 10, "a-1", holds{"s", 1, 100, 1000}),
			holdJob("p41", 41, "a-1", holds{"fill", 1, 50, 7192}),
		}, [2]int{100, 3000}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			for _, j := range tc.jobs {
				mustRegister(t, c, j)
			}
			high := onNode(noUpdate(serviceJob("high", 1, tc.ask[0], tc.ask[1], 50)), "a-1")
			mustRegister(t, c, high) // preemption is off: it waits
			var got []string
			var set []*alloc
			do(c, func() {
				j := c.jobs["high"]
				var a1 *node
				for _, n := range c.nodes {
					if n.name == "a-1" {
						a1 = n
					}
				}
				placed := 0
				for _, j := range tc.jobs {
					for _, g := range j.TaskGroups {
						placed += *g.Count
					}
				}
				if len(a1.allocs) != placed {
					t.Fatalf("a-1 holds %d allocations, want %d", len(a1.allocs), placed)
				}
				set, _ = c.newPlacer(j, j.groups[0], nil).evictionSet(a1)
				for _, a := range set {
					got = append(got, a.job.id+"/"+a.grp.name)
				}
			})
			sort.Strings(got)
			if want := tc.want; want == "" && set != nil || want != "" && fmt.Sprint(got) != want {
				t.Errorf("evicted %v, want %q", got, want)
			}
		})
	}
}

// Nomad places a preempting allocation where the walk's score is best,
// not where it evicts the fewest: the fit counts the allocations still
// there (a node they overfill scores the top fit), and the preemption
// score, near 1 for any low priorities, hardly tells nodes apart. a-2,
// busier in CPU, wins although it evicts two allocations and a-1 one.
func TestPreemptionChoosesTheBestScore(t *testing.T) {
	c := newTestCluster(t, "")
	do(c, func() { c.schedCfg.PreemptionConfig.ServiceSchedulerEnabled = true })
	mustRegister(t, c, holdJob("low-1", 10, "a-1", holds{"g", 1, 100, 4000}))
	mustRegister(t, c, holdJob("fill-1", 41, "a-1", holds{"g", 1, 100, 4092}))
	mustRegister(t, c, holdJob("low-2", 10, "a-2", holds{"g", 2, 1800, 2000}))
	mustRegister(t, c, holdJob("fill-2", 41, "a-2", holds{"g", 1, 100, 4092}))
	work := noUpdate(serviceJob("work", 1, 100, 3000, 50))
	work.Constrain(api.NewConstraint("${node.unique.name}", api.ConstraintRegex, "^a-[12]$"))
	mustRegister(t, c, work)
	if got := nodesOf(c, "work"); fmt.Sprint(got) != "[a-2]" {
		t.Fatalf("work placed on %v, want [a-2]", got)
	}
	do(c, func() {
		for _, id := range []string{"low-1", "low-2"} {
			evicted := 0
			for _, a := range c.jobs[id].allocs {
				if a.desired == desiredEvict {
					evicted++
				}
			}
			if want := map[string]int{"low-1": 0, "low-2": 2}[id]; evicted != want {
				t.Errorf("%s: %d evicted, want %d", id, evicted, want)
			}
		}
	})
}

func TestBlockedEvalUnblocks(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	mustRegister(t, c, onNode(noUpdate(serviceJob("low", 4, 1000, 1024, 50)), "a-1"))
	ev := mustRegister(t, c, onNode(noUpdate(serviceJob("late", 1, 1000, 1024, 50)), "a-1"))
	if ev.blockedEval == "" {
		t.Fatal("no blocked eval although a-1 is full")
	}
	blocked, _, err := client.Evaluations().Info(ev.blockedEval, nil)
	// Blocked, it shows no queued allocations (Nomad's); the job's summary
	// counts them.
	if err != nil || blocked.Status != api.EvalStatusBlocked || len(blocked.QueuedAllocations) != 0 || blocked.FailedTGAllocs["g"] == nil {
		t.Fatalf("blocked eval: err %v %+v", err, blocked)
	}
	if blocked.FailedTGAllocs["g"].DimensionExhausted["cpu"] == 0 {
		t.Errorf("failed metric = %+v, want cpu exhausted", blocked.FailedTGAllocs["g"])
	}
	sum, _, _ := client.Jobs().Summary("late", nil)
	if sum.Summary["g"].Queued != 1 {
		t.Errorf("summary queued = %d", sum.Summary["g"].Queued)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "late"); len(got) != 0 {
		t.Fatalf("placed on %v with no capacity freed", got)
	}
	// Scaling the low job down frees capacity: the blocked eval runs again.
	if _, _, err := client.Jobs().Scale("low", "g", new(3), "make room", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "late"); len(got) != 1 || got[0] != "a-1" {
		t.Fatalf("late job on %v after capacity freed, want a-1", got)
	}
	blocked, _, _ = client.Evaluations().Info(ev.blockedEval, nil)
	if blocked.Status != api.EvalStatusComplete {
		t.Errorf("blocked eval status = %s, want complete", blocked.Status)
	}
}

// drainSetup puts count allocations of job "m" (memory memMB each) on node
// a-1 and returns the cluster, with a-2 and a-3 eligible again.
func drainSetup(t *testing.T, count, maxParallel, memMB int, replacement string) *Cluster {
	t.Helper()
	c := newTestCluster(t, "")
	do(c, func() {
		for _, n := range []string{"a-2", "a-3", "b-1", "b-2"} {
			if _, err := c.setEligibility(c.nodeByName[n].id, api.NodeSchedulingIneligible); err != nil {
				t.Fatal(err)
			}
		}
	})
	j := noUpdate(serviceJob("m", count, 100, memMB, 50))
	j.Datacenters = []string{"dc1"}
	j.TaskGroups[0].Migrate = &api.MigrateStrategy{MaxParallel: new(maxParallel), MinHealthyTime: new(10 * time.Second)}
	j.TaskGroups[0].Meta = map[string]string{"sim.replacement": replacement}
	mustRegister(t, c, j)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		for _, n := range []string{"a-2", "a-3"} {
			if _, err := c.setEligibility(c.nodeByName[n].id, api.NodeSchedulingEligible); err != nil {
				t.Fatal(err)
			}
		}
	})
	if got := nodesOf(c, "m"); len(got) != count || got[0] != "a-1" || got[count-1] != "a-1" {
		t.Fatalf("setup: allocations on %v, want all on a-1", got)
	}
	return c
}

func drain(t *testing.T, c *Cluster, node string, deadline time.Duration) {
	t.Helper()
	var err error
	do(c, func() { _, err = c.setDrain(c.nodeByName[node].id, &api.DrainSpec{Deadline: deadline}, false, nil) })
	if err != nil {
		t.Fatal(err)
	}
}

// maxOverlap is the largest number of migration transfers running at once.
func maxOverlap(ms []MigrationRecord) int {
	best := 0
	for _, m := range ms {
		k := 0
		for _, o := range ms {
			if !o.Start.After(m.Start) && o.End.After(m.Start) {
				k++
			}
		}
		best = max(best, k)
	}
	return best
}

func TestDrainHonoursMigrateMaxParallel(t *testing.T) {
	for _, mp := range []int{1, 2, 3} {
		t.Run("max_parallel="+string(rune('0'+mp)), func(t *testing.T) {
			c := drainSetup(t, 6, mp, 1000, BreakBeforeMake)
			drain(t, c, "a-1", time.Hour)
			peak := 0
			for range 60 {
				do(c, func() { peak = max(peak, c.inflight(c.jobs["m"], c.jobs["m"].groups[0])) })
				if err := c.Step(10 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if peak != mp {
				t.Errorf("peak in-flight migrations = %d, want %d", peak, mp)
			}
			tr := c.Truth()
			if len(tr.Migrations) != 6 {
				t.Fatalf("%d migrations, want 6", len(tr.Migrations))
			}
			if got := maxOverlap(tr.Migrations); got > mp {
				t.Errorf("%d transfers overlapped, max_parallel is %d", got, mp)
			}
			for _, n := range nodesOf(c, "m") {
				if n == "a-1" {
					t.Errorf("an allocation is still on the drained node")
				}
			}
			n := c.findNode("a-1")
			if n.drain != nil || n.lastDrain.Status != api.DrainStatusComplete || n.eligible {
				t.Errorf("node after drain: drain %v last %+v eligible %v", n.drain, n.lastDrain, n.eligible)
			}
		})
	}
}

func TestDrainDeadlineForcesRemaining(t *testing.T) {
	c := drainSetup(t, 6, 1, 1000, BreakBeforeMake)
	drain(t, c, "a-1", 15*time.Second)
	if err := c.Step(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		for _, a := range c.jobs["m"].allocs {
			if a.node.name == "a-1" && a.desired == desiredRun {
				t.Errorf("allocation %s still desired to run on a-1 after the deadline", a.name)
			}
		}
	})
}

func TestMigrationTimeGrowsWithConcurrency(t *testing.T) {
	// dc1 has 100 MB/s; each allocation holds 1000 MB.
	for _, n := range []int{1, 2, 4} {
		c := drainSetup(t, n, n, 1000, BreakBeforeMake)
		drain(t, c, "a-1", time.Hour)
		if err := c.Step(2 * time.Minute); err != nil {
			t.Fatal(err)
		}
		tr := c.Truth()
		if len(tr.Migrations) != n {
			t.Fatalf("n=%d: %d migrations", n, len(tr.Migrations))
		}
		want := time.Duration(n) * 10 * time.Second
		for _, m := range tr.Migrations {
			if d := m.Duration(); math.Abs(float64(d-want)) > float64(time.Millisecond) {
				t.Errorf("n=%d: migration took %v, want %v", n, d, want)
			}
			if m.Bytes != 1000<<20 || m.SourceLocality != "dc1" || m.TargetLocality != "dc1" || m.SourceNode != "a-1" || m.TargetNode == "a-1" {
				t.Errorf("n=%d: record %+v", n, m)
			}
		}
	}
}

func TestMigrationSharingFinishesAtExactTimes(t *testing.T) {
	// Two transfers of 1000 MB and 500 MB share 100 MB/s: the small one ends
	// at 10 s (50 MB/s each), the big one has 500 MB left and ends at 15 s.
	c := newTestCluster(t, "")
	do(c, func() {
		loc := c.localities["dc1"]
		a := &alloc{id: "big", job: &job{id: "x"}, grp: &group{name: "g"}, node: c.nodes[0]}
		b := &alloc{id: "small", job: &job{id: "x"}, grp: &group{name: "g"}, node: c.nodes[0]}
		c.migs = []*migration{
			{old: a, src: loc, sizeMB: 1000, start: c.now, mode: BreakBeforeMake},
			{old: b, src: loc, sizeMB: 500, start: c.now, mode: BreakBeforeMake},
		}
		a.client, b.client = allocComplete, allocComplete // nothing to stop
		c.progressMigrations(c.now, c.now.Add(time.Minute))
	})
	got := map[string]time.Duration{}
	for _, m := range c.Truth().Migrations {
		got[m.AllocID] = m.Duration()
	}
	if got["small"] != 10*time.Second || got["big"] != 15*time.Second {
		t.Errorf("durations = %v, want small 10s, big 15s", got)
	}
}

func TestReplacementModes(t *testing.T) {
	for _, mode := range []string{BreakBeforeMake, MakeBeforeBreak} {
		t.Run(mode, func(t *testing.T) {
			c := drainSetup(t, 1, 1, 1000, mode)
			drain(t, c, "a-1", time.Hour)
			var old, repl *alloc
			do(c, func() {
				for _, a := range c.jobs["m"].allocs {
					if a.node.name == "a-1" {
						old = a
					} else {
						repl = a
					}
				}
			})
			if old == nil || repl == nil || old.next != repl.id || repl.prev != old.id || !old.migrate {
				t.Fatalf("old %+v repl %+v", old, repl)
			}
			// The transfer takes 10 s; startup is 5 s.
			if err := c.Step(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			do(c, func() {
				switch mode {
				case BreakBeforeMake:
					if old.client != allocComplete || repl.client != allocPending {
						t.Errorf("at 10s: old %s, replacement %s; want complete, pending", old.client, repl.client)
					}
				case MakeBeforeBreak:
					if old.client != allocComplete || repl.client != allocRunning || !repl.runningSince.Before(old.stopAt) {
						t.Errorf("at 10s: old %s, replacement %s since %v; want the replacement running before the old stopped at %v",
							old.client, repl.client, repl.runningSince, old.stopAt)
					}
				}
			})
			if err := c.Step(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if repl.client != allocRunning {
				t.Errorf("replacement %s at 20s", repl.client)
			}
		})
	}
}

func TestSystemJobOnEveryEligibleNode(t *testing.T) {
	c := newTestCluster(t, "")
	do(c, func() {
		if _, err := c.setEligibility(c.nodeByName["b-2"].id, api.NodeSchedulingIneligible); err != nil {
			t.Fatal(err)
		}
	})
	j := api.NewSystemJob("sys", "sys", "global", 80)
	j.Datacenters = []string{"*"}
	tg := api.NewTaskGroup("g", 1)
	tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(100), MemoryMB: new(64)}))
	j.AddTaskGroup(tg)
	mustRegister(t, c, j)
	if got := nodesOf(c, "sys"); strings.Join(got, ",") != "a-1,a-2,a-3,b-1" {
		t.Errorf("system job on %v, want every eligible node", got)
	}
	do(c, func() {
		if _, err := c.setEligibility(c.nodeByName["b-2"].id, api.NodeSchedulingEligible); err != nil {
			t.Fatal(err)
		}
		c.reconcile(c.jobs["sys"], nil)
	})
	if got := nodesOf(c, "sys"); len(got) != 5 {
		t.Errorf("after b-2 became eligible: %v", got)
	}
}

func TestRollingUpdateRespectsMaxParallel(t *testing.T) {
	c := newTestCluster(t, "")
	j := serviceJob("roll", 4, 200, 256, 50)
	j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(10 * time.Second), HealthyDeadline: new(time.Minute)}
	mustRegister(t, c, j)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := serviceJob("roll", 4, 300, 256, 50) // destructive: more CPU
	v2.Update = j.Update
	mustRegister(t, c, v2)
	for range 12 {
		do(c, func() {
			old, fresh := 0, 0
			for _, a := range c.jobs["roll"].allocs {
				if a.terminal() {
					continue
				}
				if a.jobVersion == 0 {
					old++
				} else {
					fresh++
				}
			}
			if old+fresh > 4 || old < 3-fresh {
				t.Errorf("at %v: %d old and %d new allocations", c.now, old, fresh)
			}
		})
		if err := c.Step(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		d := latestDeployment(c.jobs["roll"])
		if d.status != api.DeploymentStatusSuccessful {
			t.Errorf("deployment %s: %s", d.status, d.statusDesc)
		}
		for _, a := range c.jobs["roll"].allocs {
			if !a.terminal() && a.grp.cpu != 300 {
				t.Errorf("allocation %s still runs the old version", a.name)
			}
		}
	})
}

func TestCrossLocalityMigrationUsesBothBandwidths(t *testing.T) {
	// dc1 has 100 MB/s, dc2 50 MB/s. A 1000 MB transfer dc1→dc2 moves at
	// dc2's 50 MB/s; a second one inside dc1 shares dc1 with it (50 each)
	// until the first ends.
	c := newTestCluster(t, "")
	do(c, func() {
		dc1, dc2 := c.localities["dc1"], c.localities["dc2"]
		mk := func(id string) *alloc {
			return &alloc{id: id, job: &job{id: "x"}, grp: &group{name: "g"}, node: c.nodes[0], client: allocComplete}
		}
		c.migs = []*migration{
			{old: mk("cross"), src: dc1, dst: dc2, sizeMB: 1000, start: c.now, mode: BreakBeforeMake},
			{old: mk("local"), src: dc1, dst: dc1, sizeMB: 1500, start: c.now, mode: BreakBeforeMake},
		}
		c.progressMigrations(c.now, c.now.Add(time.Minute))
	})
	got := map[string]time.Duration{}
	for _, m := range c.Truth().Migrations {
		got[m.AllocID] = m.Duration()
	}
	// cross: 1000 MB at 50 MB/s = 20 s. local: 1000 MB in those 20 s, then
	// 500 MB alone at 100 MB/s = 5 s more.
	if got["cross"] != 20*time.Second || got["local"] != 25*time.Second {
		t.Errorf("durations = %v, want cross 20s, local 25s", got)
	}
}

func TestReservedCores(t *testing.T) {
	// Every small-scenario node has one core of 4000 MHz: a group reserving
	// one core takes a whole node.
	c := newTestCluster(t, "")
	j := noUpdate(api.NewServiceJob("cores", "cores", "global", 50))
	j.Datacenters = []string{"dc1"}
	tg := api.NewTaskGroup("g", 4)
	tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{Cores: new(1), MemoryMB: new(256)}))
	j.AddTaskGroup(tg)
	ev := mustRegister(t, c, j)
	got := nodesOf(c, "cores")
	if strings.Join(got, ",") != "a-1,a-2,a-3" {
		t.Errorf("placed on %v, want one per dc1 node", got)
	}
	if ev.queued["g"] != 1 {
		t.Errorf("queued %v, want the fourth blocked", ev.queued)
	}
	do(c, func() {
		for _, n := range c.nodes[:3] {
			if n.resCPU != 4000 {
				t.Errorf("node %s holds %d MHz, want 4000", n.name, n.resCPU)
			}
		}
	})
}

func TestDrainWaitsForQueuedReplacements(t *testing.T) {
	// Nowhere to go: a-2 and a-3 stay ineligible. One migration starts
	// (max_parallel 1); its replacement is queued, so the drain starts no
	// other until the deadline forces the rest.
	c := newTestCluster(t, "")
	do(c, func() {
		for _, n := range []string{"a-2", "a-3", "b-1", "b-2"} {
			if _, err := c.setEligibility(c.nodeByName[n].id, api.NodeSchedulingIneligible); err != nil {
				t.Fatal(err)
			}
		}
	})
	j := noUpdate(serviceJob("m", 3, 100, 1000, 50))
	j.Datacenters = []string{"dc1"}
	mustRegister(t, c, j)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	drain(t, c, "a-1", 10*time.Minute)
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Truth().Migrations); got != 1 {
		t.Errorf("%d migrations before the deadline, want 1", got)
	}
	do(c, func() {
		if len(c.blocked) != 1 || c.blocked[0].queued["g"] != 1 {
			t.Errorf("blocked = %+v, want the replacement queued", c.blocked)
		}
	})
	if err := c.Step(6 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Truth().Migrations); got != 3 {
		t.Errorf("%d migrations after the deadline, want 3", got)
	}
	do(c, func() {
		if c.blocked[0].queued["g"] != 3 {
			t.Errorf("queued = %v, want all 3", c.blocked[0].queued)
		}
	})
	// Capacity comes back: the queued replacements are placed and linked.
	do(c, func() {
		if _, err := c.setEligibility(c.nodeByName["a-2"].id, api.NodeSchedulingEligible); err != nil {
			t.Fatal(err)
		}
	})
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "m"); strings.Join(got, ",") != "a-2,a-2,a-2" {
		t.Errorf("after a-2 came back: %v", got)
	}
	do(c, func() {
		for _, a := range c.jobs["m"].allocs {
			if a.node.name == "a-1" && a.next == "" {
				t.Errorf("migrated alloc %s has no next allocation", a.name)
			}
		}
	})
}

func TestAddedNodesBootAndTakeBlockedWork(t *testing.T) {
	c := newTestCluster(t, `
node_boot = "90s"

event "grow" {
  kind  = "add_nodes"
  at    = "10m"
  nodes = "b"
  count = 2
}
`)
	client := newTestAPI(t, c, "")
	// More than dc2's two nodes hold.
	j := noUpdate(serviceJob("big", 4, 3000, 1024, 50))
	j.Datacenters = []string{"dc2"}
	mustRegister(t, c, j)
	if got := nodesOf(c, "big"); len(got) != 2 {
		t.Fatalf("placed on %v, want 2 before the new nodes", got)
	}
	if err := c.Step(10*time.Minute + 10*time.Second); err != nil {
		t.Fatal(err)
	}
	stubs, _, _ := client.Nodes().List(nil)
	initializing := 0
	for _, s := range stubs {
		if s.Status == api.NodeStatusInit {
			initializing++
			if !strings.HasPrefix(s.Name, "b-") || s.Datacenter != "dc2" {
				t.Errorf("added node %s in %s", s.Name, s.Datacenter)
			}
		}
	}
	if len(stubs) != 7 || initializing != 2 {
		t.Fatalf("%d nodes, %d initializing; want 7, 2", len(stubs), initializing)
	}
	if got := nodesOf(c, "big"); len(got) != 2 {
		t.Errorf("placed on %v before the new nodes booted", got)
	}
	if err := c.Step(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "big"); strings.Join(got, ",") != "b-1,b-2,b-3,b-4" {
		t.Errorf("after boot: %v", got)
	}
	// Over the sim endpoint too.
	body := strings.NewReader(`{"Group":"a","Count":1}`)
	resp, err := http.Post(client.Address()+"/v1/sim/nodes", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	var out AddNodesResponse
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(out.NodeIDs) != 1 || !out.ReadyAt.Equal(c.Now().Add(90*time.Second)) {
		t.Errorf("POST /v1/sim/nodes: %d %+v", resp.StatusCode, out)
	}
	if _, err := c.AddNodes("nope", 1); err == nil {
		t.Error("adding nodes of an unknown group succeeded")
	}
	// Faults do not boot a node early.
	if err := c.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if n := c.findNode(out.NodeIDs[0]); n.status != api.NodeStatusInit {
		t.Errorf("added node is %s after SetFaults, want initializing", n.status)
	}
}

// TestPlaceholderHandover follows foreshape's reservation flow: a
// low-priority placeholder holds capacity in dc2; releasing it and stopping
// an allocation in dc1 lands the replacement in the released capacity.
func TestPlaceholderHandover(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	jobs := client.Jobs()
	// dc1 is full of the app; a new version lets it run in dc2 too (an
	// in-place update: the allocations stay).
	app := noUpdate(serviceJob("app", 3, 4000, 1024, 60))
	app.Datacenters = []string{"dc1"}
	if _, _, err := jobs.Register(app, nil); err != nil {
		t.Fatal(err)
	}
	app = noUpdate(serviceJob("app", 3, 4000, 1024, 60))
	app.Datacenters = []string{"dc1", "dc2"}
	if _, _, err := jobs.Register(app, nil); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "app"); strings.Join(got, ",") != "a-1,a-2,a-3" {
		t.Fatalf("app on %v", got)
	}
	// dc2 is full: filler on b-1, the placeholder on b-2.
	filler := onNode(noUpdate(serviceJob("filler", 1, 4000, 1024, 50)), "b-1")
	if _, _, err := jobs.Register(filler, nil); err != nil {
		t.Fatal(err)
	}
	ph := noUpdate(serviceJob("placeholder-dc2", 1, 4000, 1024, 20))
	ph.Datacenters = []string{"dc2"}
	if _, _, err := jobs.Register(ph, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "placeholder-dc2"); len(got) != 1 || got[0] != "b-2" {
		t.Fatalf("placeholder on %v", got)
	}
	// The source node is marked ineligible so the replacement cannot come
	// back to it; without releasing the reservation it has nowhere to go
	// (preemption is off for service jobs).
	allocs, _, _ := jobs.Allocations("app", false, nil)
	if _, err := client.Nodes().ToggleEligibility(allocs[0].NodeID, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Allocations().Stop(&api.Allocation{ID: allocs[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := jobs.Summary("app", nil); sum.Summary["g"].Queued != 1 {
		t.Fatalf("app summary %+v, want 1 queued", sum.Summary["g"])
	}
	// Hand the reservation over: scale the placeholder to zero.
	if _, _, err := jobs.Scale("placeholder-dc2", "g", new(0), "hand over to app", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	stopped, _, _ := client.Allocations().Info(allocs[0].ID, nil)
	next, _, err := client.Allocations().Info(stopped.NextAllocation, nil)
	if err != nil {
		t.Fatalf("replacement: %v", err)
	}
	if next.NodeName != "b-2" || next.ClientStatus != api.AllocClientStatusRunning {
		t.Errorf("replacement on %s (%s), want running on b-2", next.NodeName, next.ClientStatus)
	}
}

func TestConstraintOperands(t *testing.T) {
	n := &node{id: "id-1", name: "web-1", dc: "dc1", pool: "default", class: "web", cores: 4, cpu: 8000, mem: 16384,
		meta: map[string]string{"rack": "r1", "tier": "2", "zones": "a,b,c"}}
	for _, tc := range []struct {
		l, op, r string
		want     bool
	}{
		{"${node.class}", "=", "web", true},
		{"${node.class}", "==", "db", false},
		{"${node.class}", "is", "web", true},
		{"${node.class}", "!=", "db", true},
		{"${meta.nope}", "!=", "x", true},
		{"${meta.rack}", "not", "r1", false},
		{"${meta.tier}", "<", "10", true}, // numeric, not lexical
		{"${meta.tier}", ">=", "2", true},
		{"${meta.tier}", ">", "2", false},
		{"${meta.nope}", "<", "2", false},
		{"${meta.rack}", "is_set", "", true},
		{"${meta.nope}", "is_not_set", "", true},
		{"${node.unique.name}", "regexp", "^web-[0-9]+$", true},
		{"${node.unique.name}", "regexp", "(", false},
		{"${meta.zones}", "set_contains", "a,c", true},
		{"${meta.zones}", "set_contains_all", "a,d", false},
		{"${meta.zones}", "set_contains_any", "d,b", true},
		{"${attr.cpu.numcores}", "=", "4", true},
		{"${attr.memory.totalbytes}", ">", "1000", true},
		{"${node.pool}", "=", "default", true},
		{"${node.unique.id}", "=", "id-1", true},
		{"${node.datacenter}", "=", "dc2", false},
	} {
		if got := constraintHolds(n, &api.Constraint{LTarget: tc.l, Operand: tc.op, RTarget: tc.r}); got != tc.want {
			t.Errorf("%s %s %s = %v, want %v", tc.l, tc.op, tc.r, got, tc.want)
		}
	}
}

func TestDrainStopsSystemJobsLastUnlessIgnored(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		c := newTestCluster(t, "")
		sys := api.NewSystemJob("sys", "sys", "global", 80)
		sys.Datacenters = []string{"*"}
		tg := api.NewTaskGroup("g", 1)
		tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(100), MemoryMB: new(64)}))
		sys.AddTaskGroup(tg)
		mustRegister(t, c, sys)
		mustRegister(t, c, onNode(noUpdate(serviceJob("svc", 2, 500, 500, 50)), "a-1"))
		if err := c.Step(time.Minute); err != nil {
			t.Fatal(err)
		}
		// svc can only run on a-1: the first replacement stays queued, so
		// the second allocation (max_parallel 1) waits for the deadline.
		var err error
		do(c, func() {
			_, err = c.setDrain(c.nodeByName["a-1"].id, &api.DrainSpec{Deadline: 5 * time.Minute, IgnoreSystemJobs: ignore}, false, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Step(2 * time.Minute); err != nil {
			t.Fatal(err)
		}
		sysOn := func() string {
			var s string
			do(c, func() {
				for _, a := range c.jobs["sys"].allocs {
					if a.node.name == "a-1" {
						s = a.desired + "/" + a.client
					}
				}
			})
			return s
		}
		if got := sysOn(); got != "run/running" {
			t.Errorf("ignore=%v: system alloc on a-1 is %s while the service allocation is still there", ignore, got)
		}
		if err := c.Step(10 * time.Minute); err != nil {
			t.Fatal(err)
		}
		want := "stop/complete"
		if ignore {
			want = "run/running"
		}
		if got := sysOn(); got != want {
			t.Errorf("ignore=%v: system alloc on a-1 is %s after the drain, want %s", ignore, got, want)
		}
		if n := c.findNode("a-1"); n.drain != nil || n.lastDrain.Status != api.DrainStatusComplete {
			t.Errorf("ignore=%v: drain %+v last %+v", ignore, n.drain, n.lastDrain)
		}
		// A node added later gets the system job once it is ready.
		ids, err := c.AddNodes("b", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Step(3 * time.Minute); err != nil {
			t.Fatal(err)
		}
		found := false
		do(c, func() {
			for _, a := range c.jobs["sys"].allocs {
				if a.node.id == ids[0] && a.client == allocRunning {
					found = true
				}
			}
		})
		if !found {
			t.Errorf("ignore=%v: no system allocation on the added node", ignore)
		}
	}
}

func TestPlacerLimit(t *testing.T) {
	// smallScenario: three ready nodes in dc1, two in dc2.
	for _, tc := range []struct {
		name      string
		batch     bool
		dcs       []string
		count     int
		affinity  bool
		spread    bool
		nodeLimit uint
		want      int
	}{
		{name: "service in dc1: ceil(log2 3)", dcs: []string{"dc1"}, count: 1, want: 2},
		{name: "service everywhere: ceil(log2 5)", dcs: []string{"*"}, count: 1, want: 3},
		{name: "batch: two choices", batch: true, dcs: []string{"*"}, count: 1, want: 2},
		{name: "affinity: node_limit_for_feasibility_checks default", dcs: []string{"*"}, count: 1, affinity: true, want: 100},
		{name: "affinity: node limit set", dcs: []string{"*"}, count: 1, affinity: true, nodeLimit: 4, want: 4},
		{name: "affinity: count above the node limit", dcs: []string{"*"}, count: 150, affinity: true, want: 150},
		{name: "spread: node_limit_for_feasibility_checks default", dcs: []string{"*"}, count: 1, spread: true, want: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			do(c, func() { c.schedCfg.NodeLimitForFeasibilityChecks = tc.nodeLimit })
			j := noUpdate(serviceJob("limit", tc.count, 10, 10, 50))
			if tc.batch {
				j.Type = new(api.JobTypeBatch)
			}
			j.Datacenters = tc.dcs
			if tc.affinity {
				j.AddAffinity(api.NewAffinity("${node.datacenter}", "=", "dc1", 80))
			}
			if tc.spread {
				j.AddSpread(api.NewSpread("${meta.rack}", 50, nil))
			}
			mustRegister(t, c, j)
			var got int
			do(c, func() {
				sj := c.jobs["limit"]
				got = c.newPlacer(sj, sj.groups[0], nil).limit
			})
			if got != tc.want {
				t.Errorf("limit = %d, want %d", got, tc.want)
			}
		})
	}
}

// Nomad's limit iterator sets aside up to three fitting nodes scoring at
// most zero (here: a node already running the group, whose job
// anti-affinity penalty outweighs its fit) without counting them, and
// scores them only when it runs out of other nodes.
func TestPlacerSetsAsideNodesScoringZeroOrLess(t *testing.T) {
	c := newTestCluster(t, "")
	web := noUpdate(serviceJob("web", 1, 500, 512, 50))
	web.Datacenters = []string{"dc1"} // three nodes: two are scored
	mustRegister(t, c, web)
	busy := nodesOf(c, "web")[0]
	var empty, full string
	for _, n := range []string{"a-1", "a-2", "a-3"} {
		if n != busy && full == "" {
			full = n
		} else if n != busy {
			empty = n
		}
	}
	mustRegister(t, c, onNode(noUpdate(serviceJob("filler", 1, 2000, 4096, 50)), full))
	byName := func(name string) *node {
		for _, n := range c.nodes {
			if n.name == name {
				return n
			}
		}
		t.Fatalf("no node %s", name)
		return nil
	}
	for _, tc := range []struct {
		name  string
		order []string
		want  string
	}{
		{"the busy node does not use up the limit", []string{busy, empty, full}, full},
		{"set aside, then taken when nothing else fits", []string{busy}, busy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			do(c, func() {
				j := c.jobs["web"]
				p := c.newPlacer(j, j.groups[0], nil)
				if p.limit != 2 {
					t.Fatalf("limit = %d, want 2", p.limit)
				}
				if s := p.score(byName(busy), nil); s > 0 {
					t.Fatalf("score of the busy node = %.3f, want <= 0", s)
				}
				p.cand, p.off = nil, 0
				for _, name := range tc.order {
					p.cand = append(p.cand, byName(name))
				}
				if n := p.next(); n != nil {
					got = n.name
				}
			})
			if got != tc.want {
				t.Errorf("placed on %q, want %q (order %v: busy %s, empty %s, half full %s)", got, tc.want, tc.order, busy, empty, full)
			}
		})
	}
}

// A replacement's reschedule tracker carries what Nomad carries: under a
// policy with attempts, the earlier events within its interval; with
// unlimited attempts, the last five; then the failed allocation itself.
// Its penalty nodes are the failed allocation's node and every tracked
// node; a replacement of an allocation that did not fail penalises only
// the tracked nodes.
func TestRescheduleTracker(t *testing.T) {
	c := newTestCluster(t, "")
	n := c.nodes
	hour := time.Hour
	limited := &group{name: "g", resched: api.ReschedulePolicy{Attempts: new(3), Interval: &hour}}
	unlimited := &group{name: "g", resched: api.ReschedulePolicy{Attempts: new(0), Unlimited: new(true)}}
	var events []reschedEvent
	for i := range 7 {
		events = append(events, reschedEvent{at: c.now.Add(time.Duration(i-6) * 20 * time.Minute), prevAlloc: fmt.Sprint("a", i), prevNode: n[i%len(n)]})
	}
	prev := &alloc{id: "failed", node: n[4], client: allocFailed, resched: events}
	ids := func(es []reschedEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.prevAlloc)
		}
		return out
	}
	prev.grp = limited
	if got, want := ids(c.rescheduleEvents(prev)), []string{"a3", "a4", "a5", "a6", "failed"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attempts 3 in 1h: tracker %v, want %v (events up to an hour old, then the failed one)", got, want)
	}
	prev.grp = unlimited
	if got, want := ids(c.rescheduleEvents(prev)), []string{"a2", "a3", "a4", "a5", "a6", "failed"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("unlimited: tracker %v, want %v (the last five, then the failed one)", got, want)
	}

	prev.resched = events[5:] // on n[0] and n[1]
	names := func(set map[*node]bool) []string {
		var out []string
		for x := range set {
			out = append(out, x.name)
		}
		sort.Strings(out)
		return out
	}
	if got, want := names(penaltyNodes(prev)), []string{n[0].name, n[1].name, n[4].name}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("penalty nodes of a failed allocation's replacement %v, want %v", got, want)
	}
	prev.client = allocComplete
	if got, want := names(penaltyNodes(prev)), []string{n[0].name, n[1].name}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("penalty nodes of a stopped allocation's replacement %v, want %v", got, want)
	}
	if penaltyNodes(nil) != nil {
		t.Error("a new allocation has penalty nodes")
	}
}

// Whether Nomad reschedules a failed allocation, and the delay it would
// wait, by its group's policy and the attempts its tracker carries.
func TestRescheduleEligible(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	hour, sec5, min10 := time.Hour, 5*time.Second, 10*time.Minute
	policy := func(attempts int, unlimited bool, fn string) api.ReschedulePolicy {
		return api.ReschedulePolicy{Attempts: new(attempts), Interval: &hour, Unlimited: new(unlimited), Delay: &sec5, MaxDelay: &min10, DelayFunction: new(fn)}
	}
	events := func(delays ...time.Duration) []reschedEvent {
		var out []reschedEvent
		for i, d := range delays {
			out = append(out, reschedEvent{at: now.Add(time.Duration(i-len(delays)) * time.Minute), delay: d})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		pol      api.ReschedulePolicy
		tracked  []reschedEvent
		eligible bool
		delay    time.Duration
	}{
		{"unlimited", policy(0, true, "exponential"), events(sec5, 10*time.Second), true, 20 * time.Second},
		{"rescheduling off", policy(0, false, "constant"), nil, false, sec5},
		{"first failure of one attempt", policy(1, false, "constant"), nil, true, sec5},
		{"one attempt made within the interval", policy(1, false, "constant"), events(sec5), false, sec5},
		{"one attempt made over an hour before", policy(1, false, "constant"), []reschedEvent{{at: now.Add(-61 * time.Minute), delay: sec5}}, true, sec5},
		{"two attempts, one made", policy(2, false, "fibonacci"), events(sec5), true, sec5},
		{"fibonacci after two", policy(5, false, "fibonacci"), events(sec5, sec5, 10*time.Second), true, 15 * time.Second},
		{"exponential capped at max_delay", policy(0, true, "exponential"), events(8 * time.Minute), true, min10},
		{"capped, and back to the delay after a quiet spell", policy(0, true, "exponential"), []reschedEvent{{at: now.Add(-11 * time.Minute), delay: 8 * time.Minute}}, true, sec5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &alloc{grp: &group{resched: tc.pol}, client: allocFailed, failedAt: now, resched: tc.tracked}
			if got := rescheduleEligible(a); got != tc.eligible {
				t.Errorf("eligible %v, want %v", got, tc.eligible)
			}
			if got := nextDelay(a); got != tc.delay {
				t.Errorf("next delay %v, want %v", got, tc.delay)
			}
		})
	}
}

// A nodes block's drivers are what its nodes report and run: an exec task
// goes only to the nodes that have exec.
func TestNodeDrivers(t *testing.T) {
	c := newTestCluster(t, `
nodes "x" {
  datacenter = "dc1"
  count      = 2
  cpu        = 4000
  memory     = 8192
  drivers    = ["raw_exec"]
}`)
	client := newTestAPI(t, c, "")
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, stub := range nodes {
		n, _, err := client.Nodes().Info(stub.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, exec := n.Drivers["exec"]
		if strings.HasPrefix(n.Name, "x-") != !exec || n.Drivers["raw_exec"] == nil || !n.Drivers["raw_exec"].Healthy {
			t.Errorf("node %s reports drivers %v; want raw_exec, and exec only outside x", n.Name, slices.Sorted(maps.Keys(n.Drivers)))
		}
	}
	// One allocation a node, on every node if it could.
	j := noUpdate(serviceJob("spread-out", len(nodes), 100, 100, 50))
	j.Constrain(api.NewConstraint("", api.ConstraintDistinctHosts, "true"))
	mustRegister(t, c, j)
	placed := nodesOf(c, "spread-out")
	if len(placed) != len(nodes)-2 {
		t.Errorf("placed on %v; want every node but the two of x", placed)
	}
	for _, name := range placed {
		if strings.HasPrefix(name, "x-") {
			t.Errorf("an exec allocation placed on %s, which has raw_exec alone", name)
		}
	}
}
