package sim_test

// The reads foreshape makes of Nomad and the fields it takes from their
// answers: the list stubs (what each list carries only when asked), the
// table indexes it compares to skip a list, the node drain's metadata it
// recognises its own drains by, and a client's host stats.

import (
	"maps"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// noMatch is an ID prefix no node, allocation or job has: foreshape lists
// with it to read a table's index (X-Nomad-Index) at next to no cost.
const noMatch = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// The node list's index, which foreshape's Nomad source and coordinator
// compare with the last to decide whether to list the nodes again and on
// which the source's node watch blocks, is Nomad's node table index: it
// moves with every allocation update a client sends (Nomad stamps the
// node's LastAllocUpdateIndex in the same write), while the node's own
// ModifyIndex stays. A list whose prefix no ID has answers [] with its
// table's index, as the full list does (nodes, allocations, jobs).
// Measured on Nomad 2.0.6: nodes index 150 with the node's ModifyIndex 10.
func TestFidelityNodeTableIndex(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		lists := []struct {
			what string
			list func(q *api.QueryOptions) (int, uint64, error)
		}{
			{"nodes", func(q *api.QueryOptions) (int, uint64, error) {
				l, m, err := c.client.Nodes().List(q)
				return len(l), m.LastIndex, err
			}},
			{"allocations", func(q *api.QueryOptions) (int, uint64, error) {
				l, m, err := c.client.Allocations().List(q)
				return len(l), m.LastIndex, err
			}},
			{"jobs", func(q *api.QueryOptions) (int, uint64, error) {
				l, m, err := c.client.Jobs().List(q)
				return len(l), m.LastIndex, err
			}},
		}
		for _, l := range lists {
			// Nothing may change between the reads: empty, full, empty
			// again with the same index, or try again.
			for try := 0; ; try++ {
				n0, before, err := l.list(&api.QueryOptions{Prefix: noMatch})
				if err != nil {
					t.Fatalf("%s with prefix %s: %v", l.what, noMatch, err)
				}
				_, full, err := l.list(nil)
				if err != nil {
					t.Fatal(err)
				}
				_, after, _ := l.list(&api.QueryOptions{Prefix: noMatch})
				if n0 != 0 {
					t.Errorf("%s with prefix %s: %d rows, want none", l.what, noMatch, n0)
				}
				if before != after && try < 5 {
					continue
				}
				if full != before {
					t.Errorf("%s: index %d with prefix %s, %d without", l.what, before, noMatch, full)
				}
				break
			}
		}

		id := c.jobID("nodeidx")
		c.register(t, sleepJob(id, 1, 50, 32, 50))
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		a, _, err := c.client.Allocations().Info(allocs[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, nm, err := c.client.Nodes().List(&api.QueryOptions{Prefix: noMatch})
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := c.client.Nodes().Info(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The allocation's ModifyIndex past its AllocModifyIndex is its
		// client's update (running); the node table moved with it.
		if a.ModifyIndex <= a.AllocModifyIndex || nm.LastIndex < a.ModifyIndex || n.ModifyIndex != c.node.ModifyIndex {
			t.Errorf("after a client's allocation update (alloc modify %d, alloc's own %d): node table index %d, node's modify index %d (before %d); "+
				"want the table at or past the client's update and the node unchanged", a.ModifyIndex, a.AllocModifyIndex, nm.LastIndex, n.ModifyIndex, c.node.ModifyIndex)
		}

		// A blocking node list (the source's watch) wakes when a client
		// reports an allocation stopped, the node itself unchanged.
		start := nm.LastIndex
		done := make(chan uint64, 1)
		began := time.Now()
		go func() {
			_, meta, err := c.client.Nodes().List(&api.QueryOptions{WaitIndex: start, WaitTime: 30 * time.Second,
				Params: map[string]string{"resources": "true"}})
			if err != nil {
				t.Error(err)
				done <- 0
				return
			}
			done <- meta.LastIndex
		}()
		if _, err := c.client.Allocations().Stop(&api.Allocation{ID: a.ID}, nil); err != nil {
			t.Fatal(err)
		}
		if idx := <-done; idx <= start || time.Since(began) > 25*time.Second {
			t.Errorf("blocking node list from %d while an allocation stopped: index %d after %s; want a later index before the wait ends",
				start, idx, time.Since(began).Round(time.Millisecond))
		}
		c.waitAllocs(t, id, "stopped the old one", func(as []*api.AllocationListStub) bool {
			return count(as, func(x *api.AllocationListStub) bool {
				return x.ID == a.ID && x.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		if n, _, err = c.client.Nodes().Info(c.node.ID, nil); err != nil || n.ModifyIndex != c.node.ModifyIndex {
			t.Errorf("node's modify index %d after its allocations changed, want %d (%v)", n.ModifyIndex, c.node.ModifyIndex, err)
		}
	})
}

// foreshape recognises its own drain by the meta it drains with
// (LastDrain.Meta["foreshape.request"]). Nomad keeps a drain's start and
// meta when the drain is updated without meta (an operator changing the
// deadline), replaces the meta when the update brings some, keeps it when
// the drain is cancelled (LastDrain "canceled"; the node stays ineligible
// unless MarkEligible), and a cancel of a node that is not draining leaves
// LastDrain as it was.
func TestFidelityDrainMeta(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		// One allocation is migrated at a time and its replacement has
		// nowhere to go: the drain runs until its deadline.
		c.drainableJob(t, "drainmeta", 2)
		node := func() *api.Node {
			t.Helper()
			n, _, err := c.client.Nodes().Info(c.node.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n.LastDrain == nil {
				t.Fatalf("%s: node has no LastDrain (drain %+v)", c.name, n.DrainStrategy)
			}
			return n
		}
		if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: &api.DrainSpec{Deadline: time.Hour},
			Meta: map[string]string{"foreshape.request": "r-1", "message": "foreshape: test"}}, nil); err != nil {
			t.Fatal(err)
		}
		first := node()
		if first.DrainStrategy == nil || first.LastDrain.Status != api.DrainStatusDraining || first.LastDrain.Meta["foreshape.request"] != "r-1" {
			t.Fatalf("draining: strategy %+v, last drain %+v", first.DrainStrategy, first.LastDrain)
		}
		// Nomad's LastDrain times are whole seconds: let one pass.
		time.Sleep(1100 * time.Millisecond)

		// An update without meta keeps the drain's start and meta.
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: 30 * time.Minute}, false, nil); err != nil {
			t.Fatal(err)
		}
		n := node()
		if n.DrainStrategy == nil || !n.DrainStrategy.StartedAt.Equal(first.DrainStrategy.StartedAt) || !n.LastDrain.StartedAt.Equal(first.LastDrain.StartedAt) ||
			!maps.Equal(n.LastDrain.Meta, first.LastDrain.Meta) || n.LastDrain.Status != api.DrainStatusDraining {
			t.Errorf("drain updated without meta: strategy %+v, last drain %+v; want started %s (last drain %s) and meta %v as before",
				n.DrainStrategy, n.LastDrain, first.DrainStrategy.StartedAt, first.LastDrain.StartedAt, first.LastDrain.Meta)
		} else if d := n.DrainStrategy.ForceDeadline.Sub(n.LastDrain.UpdatedAt); n.DrainStrategy.Deadline != 30*time.Minute || d < 30*time.Minute-2*time.Second || d > 30*time.Minute+2*time.Second {
			t.Errorf("drain updated to a 30m deadline: deadline %s, force deadline %s after the update", n.DrainStrategy.Deadline, d)
		}

		// An update with meta replaces it.
		if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: &api.DrainSpec{Deadline: time.Hour},
			Meta: map[string]string{"foreshape.request": "r-2"}}, nil); err != nil {
			t.Fatal(err)
		}
		n = node()
		if want := map[string]string{"foreshape.request": "r-2"}; !maps.Equal(n.LastDrain.Meta, want) || !n.LastDrain.StartedAt.Equal(first.LastDrain.StartedAt) {
			t.Errorf("drain updated with meta: last drain %+v; want meta %v, started %s", n.LastDrain, want, first.LastDrain.StartedAt)
		}

		// Cancelled without MarkEligible: ineligible, meta kept.
		if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: nil, MarkEligible: false}, nil); err != nil {
			t.Fatal(err)
		}
		n = node()
		if n.DrainStrategy != nil || n.Drain || n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain.Status != api.DrainStatusCanceled ||
			n.LastDrain.Meta["foreshape.request"] != "r-2" {
			t.Errorf("drain cancelled: strategy %+v, drain %v, eligibility %s, last drain %+v; want none, ineligible, canceled with meta r-2",
				n.DrainStrategy, n.Drain, n.SchedulingEligibility, n.LastDrain)
		}
		cancelled := *n.LastDrain
		time.Sleep(1100 * time.Millisecond)

		// A cancel of a node that is not draining only makes it eligible.
		if _, err := c.client.Nodes().UpdateDrainOpts(c.node.ID, &api.DrainOptions{DrainSpec: nil, MarkEligible: true}, nil); err != nil {
			t.Fatalf("cancel the drain of a node that does not drain: %v", err)
		}
		n = node()
		if n.SchedulingEligibility != api.NodeSchedulingEligible || n.LastDrain.Status != cancelled.Status ||
			!n.LastDrain.UpdatedAt.Equal(cancelled.UpdatedAt) || !maps.Equal(n.LastDrain.Meta, cancelled.Meta) {
			t.Errorf("cancel without a drain: eligibility %s, last drain %+v; want eligible, last drain %+v", n.SchedulingEligibility, n.LastDrain, cancelled)
		}
	})
}

// The list stubs carry what foreshape reads of them, and what they carry
// only when asked: a job's meta with meta=true (the reaper asks), a node's
// resources with resources=true (its attributes only with os=true, and
// then only os.name), an allocation's resources with resources=true and
// no task states with task_states=false; allocations of every namespace
// with namespace=*; a node's allocations in full, with their job. A job's
// node pool is "default" when it names none. A job's scale status (the
// nomad-job target) names the job's create index, which its latest
// deployment repeats, and the job's modify index.
func TestFidelityListFields(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("fields")
		j := sleepJob(id, 1, 100, 64, 40)
		j.Meta = map[string]string{"foreshape_owner": "cluster-1"}
		c.register(t, j)
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		job, _, err := c.client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *job.Namespace != api.DefaultNamespace || job.NodePool == nil || *job.NodePool != "default" {
			t.Errorf("job: namespace %q, node pool %v; want default, default", *job.Namespace, job.NodePool)
		}

		jobStub := func(params map[string]string) *api.JobListStub {
			t.Helper()
			l, _, err := c.client.Jobs().List(&api.QueryOptions{Prefix: id, Params: params})
			if err != nil || len(l) != 1 {
				t.Fatalf("jobs with prefix %s: %d, %v", id, len(l), err)
			}
			return l[0]
		}
		s := jobStub(nil)
		if s.Namespace != api.DefaultNamespace || s.Type != api.JobTypeService || s.Priority != 40 || s.Stop ||
			s.JobModifyIndex != *job.JobModifyIndex || s.Meta != nil {
			t.Errorf("job stub: namespace %q type %s priority %d stop %v job modify %d (job's %d) meta %v; want default, service, 40, false, the job's, no meta",
				s.Namespace, s.Type, s.Priority, s.Stop, s.JobModifyIndex, *job.JobModifyIndex, s.Meta)
		}
		if s := jobStub(map[string]string{"meta": "true"}); s.Meta["foreshape_owner"] != "cluster-1" {
			t.Errorf("job stub with meta=true: meta %v", s.Meta)
		}

		nodeStub := func(params map[string]string) *api.NodeListStub {
			t.Helper()
			l, _, err := c.client.Nodes().List(&api.QueryOptions{Prefix: c.node.ID, Params: params})
			if err != nil || len(l) != 1 {
				t.Fatalf("nodes with prefix %s: %d, %v", c.node.ID, len(l), err)
			}
			return l[0]
		}
		if n := nodeStub(nil); n.NodeResources != nil || n.ReservedResources != nil || n.Attributes != nil || n.NodePool != "default" {
			t.Errorf("node stub: resources %+v reserved %+v attributes %v pool %q; want none, none, none, default", n.NodeResources, n.ReservedResources, n.Attributes, n.NodePool)
		}
		if n := nodeStub(map[string]string{"resources": "true"}); n.NodeResources == nil || n.ReservedResources == nil || n.Attributes != nil ||
			n.NodeResources.Cpu.CpuShares != c.node.NodeResources.Cpu.CpuShares || n.NodeResources.Memory.MemoryMB != c.node.NodeResources.Memory.MemoryMB {
			t.Errorf("node stub with resources=true: resources %+v reserved %+v attributes %v; want the node's resources and no attributes",
				n.NodeResources, n.ReservedResources, n.Attributes)
		}
		if n := nodeStub(map[string]string{"os": "true"}); len(n.Attributes) != 1 || n.Attributes["os.name"] != c.node.Attributes["os.name"] {
			t.Errorf("node stub with os=true: attributes %v, want os.name %q alone", n.Attributes, c.node.Attributes["os.name"])
		}

		allocStub := func(params map[string]string) *api.AllocationListStub {
			t.Helper()
			l, _, err := c.client.Allocations().List(&api.QueryOptions{Namespace: "*", Prefix: allocs[0].ID, Params: params})
			if err != nil || len(l) != 1 {
				t.Fatalf("allocations of namespace * with prefix %s: %d, %v", allocs[0].ID, len(l), err)
			}
			return l[0]
		}
		if a := allocStub(nil); a.AllocatedResources != nil || a.TaskStates == nil || a.JobType != api.JobTypeService || a.Namespace != api.DefaultNamespace {
			t.Errorf("allocation stub: resources %+v task states %v job type %q namespace %q; want none, some, service, default",
				a.AllocatedResources, a.TaskStates, a.JobType, a.Namespace)
		}
		a := allocStub(map[string]string{"resources": "true", "task_states": "false"})
		if a.TaskStates != nil || a.AllocatedResources == nil || len(a.AllocatedResources.Tasks) != 1 || a.AllocatedResources.Tasks["sleep"] == nil ||
			a.AllocatedResources.Tasks["sleep"].Cpu.CpuShares != 100 || a.AllocatedResources.Tasks["sleep"].Memory.MemoryMB != 64 {
			t.Errorf("allocation stub with resources=true, task_states=false: task states %v, resources %+v; want none, task sleep with 100 MHz and 64 MB",
				a.TaskStates, a.AllocatedResources)
		}

		// A node's allocations (a node request's moves): in full, with
		// their job.
		nas, _, err := c.client.Nodes().Allocations(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		var na *api.Allocation
		for _, x := range nas {
			if x.ID == allocs[0].ID {
				na = x
			}
		}
		if na == nil || na.Job == nil || *na.Job.Type != api.JobTypeService || na.AllocatedResources == nil || na.AllocatedResources.Tasks["sleep"] == nil ||
			na.AllocatedResources.Tasks["sleep"].Cpu.CpuShares != 100 || na.Namespace != api.DefaultNamespace || na.TaskGroup != "g" {
			t.Errorf("the node's allocations: %+v; want %s with its service job and 100 MHz for task sleep", na, allocs[0].ID)
		}

		st, _, err := c.client.Jobs().ScaleStatus(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		job, _, err = c.client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := waitLatestDeployment(t, c, id)
		if g := st.TaskGroups["g"]; st.JobCreateIndex != *job.CreateIndex || st.JobModifyIndex != *job.ModifyIndex || st.JobStopped ||
			g.Desired != 1 || g.Running != 1 || d.JobCreateIndex != *job.CreateIndex {
			t.Errorf("scale status: job create %d modify %d stopped %v, group %+v; deployment's job create %d; job create %d modify %d (job modify %d)",
				st.JobCreateIndex, st.JobModifyIndex, st.JobStopped, g, d.JobCreateIndex, *job.CreateIndex, *job.ModifyIndex, *job.JobModifyIndex)
		}
	})
}

// A node's host stats, as foreshape's Nomad source reads them when no
// foreshape client agent reports for the node: memory in bytes (its total
// the node's memory in MB, as Nomad's fingerprint rounds it down), CPU used
// in MHz (CPUTicksConsumed, at most the node's compute: a busy host reads
// it all), one CPU entry per core. (A real host's memory in use includes
// what its system and Nomad's client take; the simulator's is its
// allocations' alone.)
func TestFidelityHostStats(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		st, err := c.client.Nodes().Stats(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := c.node.NodeResources
		if st.Memory == nil || int64(st.Memory.Total>>20) != r.Memory.MemoryMB || st.Memory.Used > st.Memory.Total {
			t.Errorf("memory %+v, want a total of %d MB and what is used of it", st.Memory, r.Memory.MemoryMB)
		}
		if st.CPUTicksConsumed < 0 || st.CPUTicksConsumed > 1.01*float64(r.Cpu.CpuShares) || len(st.CPU) != int(r.Cpu.TotalCpuCores) {
			t.Errorf("cpu ticks %.1f of %d MHz, %d cpus of %d cores", st.CPUTicksConsumed, r.Cpu.CpuShares, len(st.CPU), r.Cpu.TotalCpuCores)
		}
		t.Logf("%s: memory used %d MB of %d, cpu %.0f MHz of %d", c.name, st.Memory.Used>>20, st.Memory.Total>>20, st.CPUTicksConsumed, r.Cpu.CpuShares)
	})
}

// foreshape's calls carry nomad.namespace when it is set. The simulator,
// like a fresh Nomad, has the namespace "default" alone; a call naming a
// namespace that does not exist is answered as Nomad answers it: its lists
// are empty, a job is not found in it (404 "job not found"; its latest
// deployment null, its allocations []; scaling 404 `job "ID" not found`;
// deregistering 200 without an evaluation, the job in "default" left
// running), reads by ID (an allocation, a deployment) ignore it, and a
// registration in it is refused, 500 "job "ID" is in nonexistent namespace".
func TestFidelityOtherNamespace(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		const ns = "fidelity-none"
		q, w := &api.QueryOptions{Namespace: ns}, &api.WriteOptions{Namespace: ns}
		id := c.jobID("ns")
		c.register(t, sleepJob(id, 1, 50, 32, 50))
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		d := waitLatestDeployment(t, c, id)

		jobs, _, err := c.client.Jobs().List(q)
		if err != nil || len(jobs) != 0 {
			t.Errorf("jobs of namespace %s: %d, %v; want none", ns, len(jobs), err)
		}
		as, _, err := c.client.Allocations().List(q)
		if err != nil || len(as) != 0 {
			t.Errorf("allocations of namespace %s: %d, %v; want none", ns, len(as), err)
		}
		ds, _, err := c.client.Deployments().List(q)
		if err != nil || len(ds) != 0 {
			t.Errorf("deployments of namespace %s: %d, %v; want none", ns, len(ds), err)
		}
		evals, _, err := c.client.Evaluations().List(q)
		if err != nil || len(evals) != 0 {
			t.Errorf("evaluations of namespace %s: %d, %v; want none", ns, len(evals), err)
		}
		_, _, err = c.client.Jobs().Info(id, q)
		if code, body := response(err); code != 404 || body != "job not found" {
			t.Errorf("job in namespace %s: %d %q (%v)", ns, code, body, err)
		}
		_, _, err = c.client.Jobs().ScaleStatus(id, q)
		if code, body := response(err); code != 404 || body != "job not found" {
			t.Errorf("scale status in namespace %s: %d %q (%v)", ns, code, body, err)
		}
		if dep, _, err := c.client.Jobs().LatestDeployment(id, q); err != nil || dep != nil {
			t.Errorf("latest deployment in namespace %s: %+v, %v; want null", ns, dep, err)
		}
		if ja, _, err := c.client.Jobs().Allocations(id, false, q); err != nil || len(ja) != 0 {
			t.Errorf("job's allocations in namespace %s: %d, %v; want none", ns, len(ja), err)
		}
		_, _, err = c.client.Jobs().Scale(id, "g", new(2), "", false, nil, w)
		if code, body := response(err); code != 404 || body != `job "`+id+`" not found` {
			t.Errorf("scale in namespace %s: %d %q (%v)", ns, code, body, err)
		}
		if ev, _, err := c.client.Jobs().Deregister(id, false, w); err != nil || ev != "" {
			t.Errorf("deregister in namespace %s: eval %q, %v; want 200 without an evaluation", ns, ev, err)
		}
		if j, _, err := c.client.Jobs().Info(id, nil); err != nil {
			t.Error(err)
		} else if *j.Stop || *j.TaskGroups[0].Count != 1 {
			t.Errorf("the job in namespace default after calls in %s: stop %v, count %d; want running, 1", ns, *j.Stop, *j.TaskGroups[0].Count)
		}
		if a, _, err := c.client.Allocations().Info(allocs[0].ID, q); err != nil || a.ID != allocs[0].ID {
			t.Errorf("allocation by ID in namespace %s: %v", ns, err)
		}
		if got, _, err := c.client.Deployments().Info(d.ID, q); err != nil || got.ID != d.ID {
			t.Errorf("deployment by ID in namespace %s: %v", ns, err)
		}

		other := c.jobID("ns-other")
		_, _, err = c.client.Jobs().Register(sleepJob(other, 1, 50, 32, 50), w)
		if code, body := response(err); code != 500 || body != "1 error occurred:\n\t* job \""+other+"\" is in nonexistent namespace \""+ns+"\"" {
			t.Errorf("register in namespace %s: %d %q (%v)", ns, code, body, err)
		}
		if err == nil {
			t.Cleanup(func() { _, _, _ = c.client.Jobs().Deregister(other, true, w) })
		}
		if _, _, err := c.client.Jobs().Info(other, nil); func() bool { code, _ := response(err); return code != 404 }() {
			t.Errorf("a job refused in namespace %s is in namespace default: %v", ns, err)
		}
	})
}

// The job list's index (X-Nomad-Index), which foreshape's coordinator
// compares with the last to decide whether to list the jobs again, is
// Nomad's jobs and job summaries tables' index: it moves when an
// allocation's client status changes a job's summary (pending to
// running), not when a client reports only its health. Measured on Nomad
// 2.0.6.
func TestFidelityJobTableIndex(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		jobsIndex := func() uint64 {
			t.Helper()
			_, m, err := c.client.Jobs().List(&api.QueryOptions{Prefix: noMatch})
			if err != nil {
				t.Fatal(err)
			}
			return m.LastIndex
		}
		id := c.jobID("jobidx")
		j := sleepJob(id, 1, 50, 32, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		j.TaskGroups[0].Migrate = &api.MigrateStrategy{MinHealthyTime: new(3 * time.Second)}
		c.register(t, j)
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		ran, _, err := c.client.Allocations().Info(allocs[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ran.DeploymentStatus != nil && ran.DeploymentStatus.Healthy != nil {
			t.Fatalf("%s: healthy before min_healthy_time (3s)", c.name)
		}
		if got := jobsIndex(); got < ran.ModifyIndex {
			t.Errorf("job list index %d once the allocation runs (its update %d); want at or past it: the job's summary changed", got, ran.ModifyIndex)
		}
		before := jobsIndex()
		healthy := c.waitAlloc(t, ran.ID, "turned healthy", func(a *api.Allocation) bool {
			return a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil
		})
		if got := jobsIndex(); got != before {
			t.Errorf("job list index %d after the allocation's health (its update %d), %d before; want it unmoved", got, healthy.ModifyIndex, before)
		}
	})
}

// A foreshape client agent without nomad.node_id reports on the node of
// its local Nomad agent's client: /v1/agent/self's Stats["client"]
// ["node_id"]. Nomad fills Stats["client"] only on an agent that runs a
// client (Config["Client"]["Enabled"]), naming its node; a server-only
// agent has none, and foreshape then asks for nomad.node_id. The
// simulator, which has no local client, answers as a server-only agent.
// Measured on a Nomad 2.0.6 dev agent (server and client); a server-only
// agent's answer is read from Nomad's Agent.Stats (client stats only when
// it runs a client), not measured.
func TestFidelityAgentSelfNode(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		self, err := c.client.Agent().Self()
		if err != nil {
			t.Fatal(err)
		}
		client, _ := self.Config["Client"].(map[string]any)
		enabled, _ := client["Enabled"].(bool)
		stats, has := self.Stats["client"]
		if c.sim != nil && enabled {
			t.Errorf("the simulator's agent says it runs a client: %v", client)
		}
		if has != enabled {
			t.Fatalf("%s: client enabled %v, client stats %v", c.name, enabled, stats)
		}
		if !enabled {
			return
		}
		n, _, err := c.client.Nodes().Info(stats["node_id"], nil)
		if err != nil || n.ID != stats["node_id"] {
			t.Errorf("the agent's client node %q: %v", stats["node_id"], err)
		}
	})
}
