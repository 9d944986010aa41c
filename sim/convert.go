package sim

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/api"
)

// The conversions below build nomad/api values from the model. They run
// under the cluster lock and share no memory with the model, so a response
// can be encoded after the lock is released.

const nomadVersion = "1.10.5"

func (n *node) attributes() map[string]string {
	return map[string]string{
		"kernel.name":           "linux",
		"os.name":               "ubuntu",
		"cpu.arch":              "amd64",
		"cpu.numcores":          strconv.Itoa(n.cores),
		"cpu.totalcompute":      strconv.FormatInt(n.cpu, 10),
		"cpu.frequency":         strconv.FormatInt(n.cpu/int64(n.cores), 10),
		"memory.totalbytes":     strconv.FormatInt(n.mem<<20, 10),
		"unique.hostname":       n.name,
		"nomad.version":         nomadVersion,
		"driver.exec":           "1",
		"foreshape.sim.iops":    strconv.FormatInt(n.iops, 10),
		"foreshape.sim.enabled": "true",
	}
}

func (n *node) resources() (*api.NodeResources, *api.NodeReservedResources) {
	return &api.NodeResources{
		Cpu:    api.NodeCpuResources{CpuShares: n.cpu, TotalCpuCores: uint16(n.cores)},
		Memory: api.NodeMemoryResources{MemoryMB: n.mem},
		Disk:   api.NodeDiskResources{DiskMB: 100 << 10},
	}, &api.NodeReservedResources{}
}

func (n *node) eligibility() string {
	if n.eligible {
		return api.NodeSchedulingEligible
	}
	return api.NodeSchedulingIneligible
}

// DefaultDrivers are the task drivers a simulated node reports healthy
// unless its nodes block says otherwise: those of the scenario's workloads
// (exec) and of foreshape's placeholders (raw_exec for tests, docker in
// production).
var DefaultDrivers = []string{"docker", "exec", "raw_exec"}

// drivers are the task drivers n reports, all healthy since at.
func drivers(n *node, at time.Time) map[string]*api.DriverInfo {
	out := map[string]*api.DriverInfo{}
	for _, d := range n.drivers {
		out[d] = &api.DriverInfo{Detected: true, Healthy: true, HealthDescription: "Healthy", UpdateTime: at,
			Attributes: map[string]string{"driver." + d: "true"}}
	}
	return out
}

// nodeStub is a node as Nomad lists it: its resources with resources=true,
// and of its attributes os.name alone with os=true (TestFidelityListFields).
func (c *Cluster) nodeStub(n *node, withResources, withOS bool) *api.NodeListStub {
	s := &api.NodeListStub{
		Address: "127.0.0.1", ID: n.id, Datacenter: n.dc, Name: n.name,
		NodeClass: n.class, NodePool: n.pool, Version: nomadVersion,
		Drain: n.drain != nil, SchedulingEligibility: n.eligibility(),
		Status: n.status, Drivers: drivers(n, c.sc.Start),
		LastDrain: copyDrainMeta(n.lastDrain), CreateIndex: n.createIdx, ModifyIndex: n.modifyIdx,
	}
	if withResources {
		s.NodeResources, s.ReservedResources = n.resources()
	}
	if withOS {
		s.Attributes = map[string]string{"os.name": n.attributes()["os.name"]}
	}
	return s
}

func copyDrainMeta(m *api.DrainMetadata) *api.DrainMetadata {
	if m == nil {
		return nil
	}
	out := *m
	out.Meta = maps.Clone(m.Meta)
	return &out
}

func (c *Cluster) nodeAPI(n *node) *api.Node {
	nr, rr := n.resources()
	out := &api.Node{
		ID: n.id, Datacenter: n.dc, Name: n.name, HTTPAddr: "127.0.0.1:4646",
		Attributes: n.attributes(), NodeResources: nr, ReservedResources: rr,
		Resources: &api.Resources{CPU: new(int(n.cpu)), MemoryMB: new(int(n.mem)), DiskMB: new(100 << 10), IOPS: new(int(n.iops))},
		Meta:      maps.Clone(n.meta), NodeClass: n.class, NodePool: n.pool,
		Drain: n.drain != nil, SchedulingEligibility: n.eligibility(),
		Status: n.status, StatusUpdatedAt: n.statusAt.Unix(), Drivers: drivers(n, c.sc.Start),
		LastDrain: copyDrainMeta(n.lastDrain), CreateIndex: n.createIdx, ModifyIndex: n.modifyIdx,
	}
	for _, e := range n.events {
		ev := *e
		out.Events = append(out.Events, &ev)
	}
	if out.Meta == nil {
		out.Meta = map[string]string{}
	}
	if n.drain != nil {
		d := *n.drain
		out.DrainStrategy = &d
	}
	return out
}

// jobAPI returns a deep copy of the job's spec with server fields set. The
// copy is cached until the job changes and must not be modified.
func (c *Cluster) jobAPI(j *job) *api.Job {
	if j.apiCache != nil && j.apiCacheIdx == j.modifyIdx {
		return j.apiCache
	}
	b, err := json.Marshal(j.spec)
	if err != nil {
		panic("sim: encode job: " + err.Error())
	}
	var out api.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic("sim: decode job: " + err.Error())
	}
	out.Version = new(j.version)
	out.CreateIndex = new(j.createIdx)
	out.ModifyIndex = new(j.modifyIdx)
	out.JobModifyIndex = new(j.jobModIdx)
	out.SubmitTime = new(j.submitTime.UnixNano())
	out.Stop = new(j.stopped)
	out.Status = new(c.jobStatus(j))
	j.apiCache, j.apiCacheIdx = &out, j.modifyIdx
	return &out
}

func (c *Cluster) jobStatus(j *job) string {
	if j.spec.Status == nil {
		return jobPending
	}
	return *j.spec.Status
}

func (c *Cluster) jobSummary(j *job) *api.JobSummary {
	s := &api.JobSummary{JobID: j.id, Namespace: api.DefaultNamespace, Summary: map[string]api.TaskGroupSummary{},
		CreateIndex: j.createIdx, ModifyIndex: j.modifyIdx}
	for _, g := range j.groups {
		s.Summary[g.name] = api.TaskGroupSummary{}
	}
	for _, a := range j.allocs {
		ts, ok := s.Summary[a.grp.name]
		if !ok {
			continue
		}
		switch a.client {
		case allocPending:
			ts.Starting++
		case allocRunning:
			ts.Running++
		case allocComplete:
			ts.Complete++
		case allocFailed:
			ts.Failed++
		case allocLost:
			ts.Lost++
		}
		s.Summary[a.grp.name] = ts
	}
	for _, b := range c.blocked {
		if b.jobID == j.id {
			for g, q := range b.queued {
				ts := s.Summary[g]
				ts.Queued = q
				s.Summary[g] = ts
			}
		}
	}
	return s
}

// jobStub is a job as Nomad lists it: its meta only with meta=true
// (TestFidelityListFields).
func (c *Cluster) jobStub(j *job, withMeta bool) *api.JobListStub {
	s := &api.JobListStub{
		ID: j.id, ParentID: "", Name: *j.spec.Name, Namespace: api.DefaultNamespace,
		Datacenters: append([]string(nil), j.spec.Datacenters...), Type: j.typ, Priority: j.priority,
		Stop: j.stopped, Status: c.jobStatus(j), JobSummary: c.jobSummary(j),
		CreateIndex: j.createIdx, ModifyIndex: j.modifyIdx, JobModifyIndex: j.jobModIdx,
		SubmitTime: j.submitTime.UnixNano(),
	}
	if withMeta {
		s.Meta = maps.Clone(j.spec.Meta)
	}
	return s
}

func (a *alloc) allocated() *api.AllocatedResources {
	out := &api.AllocatedResources{Tasks: map[string]*api.AllocatedTaskResources{}, Shared: api.AllocatedSharedResources{DiskMB: 300}}
	n := int64(len(a.grp.tasks))
	for i, t := range a.grp.tasks {
		cpu, mem := a.reqCPU/n, a.grp.mem/n
		if i == 0 {
			cpu += a.reqCPU % n
			mem += a.grp.mem % n
		}
		out.Tasks[t] = &api.AllocatedTaskResources{
			Cpu:    api.AllocatedCpuResources{CpuShares: cpu},
			Memory: api.AllocatedMemoryResources{MemoryMB: mem},
		}
	}
	return out
}

func (a *alloc) taskStates() map[string]*api.TaskState {
	out := map[string]*api.TaskState{}
	if a.mock != nil {
		out[a.grp.tasks[0]] = a.mockTaskState()
		return out
	}
	for i, t := range a.grp.tasks {
		out[t] = a.taskState(i)
	}
	return out
}

func (a *alloc) deploymentStatus() *api.AllocDeploymentStatus {
	if a.deployID == "" && a.healthy == nil {
		return nil
	}
	s := &api.AllocDeploymentStatus{Timestamp: a.healthAt}
	if a.healthy != nil {
		s.Healthy = new(*a.healthy)
	}
	return s
}

func (c *Cluster) allocStub(a *alloc, withResources bool) *api.AllocationListStub {
	s := &api.AllocationListStub{
		ID: a.id, EvalID: a.evalID, Name: a.name, Namespace: api.DefaultNamespace,
		NodeID: a.node.id, NodeName: a.node.name, JobID: a.job.id, JobType: a.job.typ,
		JobVersion: a.jobVersion, TaskGroup: a.grp.name,
		DesiredStatus: a.desired, DesiredDescription: a.desiredDesc,
		ClientStatus: a.client, ClientDescription: a.clientDesc, TaskStates: a.taskStates(),
		DeploymentStatus: a.deploymentStatus(), NextAllocation: a.next, FollowupEvalID: a.followupID(),
		PreemptedAllocations: append([]string(nil), a.preempted...), PreemptedByAllocation: a.preemptedBy,
		CreateIndex: a.createIdx, ModifyIndex: a.modifyIdx,
		CreateTime: a.created.UnixNano(), ModifyTime: a.modified.UnixNano(),
	}
	if withResources {
		s.AllocatedResources = a.allocated()
	}
	s.RescheduleTracker = a.rescheduleTracker()
	return s
}

// rescheduleTracker is a's tracker as Nomad's API shows it, nil when a
// replaces no failed allocation.
func (a *alloc) rescheduleTracker() *api.RescheduleTracker {
	if len(a.resched) == 0 {
		return nil
	}
	t := &api.RescheduleTracker{LastReschedule: "ok"}
	for _, e := range a.resched {
		t.Events = append(t.Events, &api.RescheduleEvent{RescheduleTime: e.at.UnixNano(), PrevAllocID: e.prevAlloc, PrevNodeID: e.prevNode.id})
	}
	return t
}

func (c *Cluster) allocAPI(a *alloc) *api.Allocation {
	out := &api.Allocation{
		ID: a.id, Namespace: api.DefaultNamespace, EvalID: a.evalID, Name: a.name,
		NodeID: a.node.id, NodeName: a.node.name, JobID: a.job.id, Job: c.jobAPI(a.job),
		TaskGroup: a.grp.name,
		//lint:ignore SA1019 Nomad 2.0 still sends it, and clients still read it.
		Resources:          &api.Resources{CPU: new(int(a.reqCPU)), MemoryMB: new(int(a.grp.mem)), DiskMB: new(300), IOPS: new(int(a.grp.iops))},
		AllocatedResources: a.allocated(), DesiredStatus: a.desired, DesiredDescription: a.desiredDesc,
		ClientStatus: a.client, ClientDescription: a.clientDesc, TaskStates: a.taskStates(),
		DeploymentID: a.deployID, DeploymentStatus: a.deploymentStatus(),
		PreviousAllocation: a.prev, NextAllocation: a.next, RescheduleTracker: a.rescheduleTracker(),
		FollowupEvalID:       a.followupID(),
		PreemptedAllocations: append([]string(nil), a.preempted...), PreemptedByAllocation: a.preemptedBy,
		CreateIndex: a.createIdx, ModifyIndex: a.modifyIdx, AllocModifyIndex: a.allocModIdx,
		CreateTime: a.created.UnixNano(), ModifyTime: a.modified.UnixNano(),
	}
	if a.migrate {
		out.DesiredTransition.Migrate = new(true)
	}
	if a.reschedule {
		out.DesiredTransition.Reschedule = new(true)
	}
	return out
}

// followupID is a's FollowupEvalID: the evaluation that reschedules it
// once its delay has passed, "" when none was created.
func (a *alloc) followupID() string {
	if a.followup == nil {
		return ""
	}
	return a.followup.id
}

func (c *Cluster) evalAPI(e *eval) *api.Evaluation {
	out := &api.Evaluation{
		ID: e.id, Priority: e.priority, Type: e.typ, TriggeredBy: e.triggeredBy, Namespace: api.DefaultNamespace,
		JobID: e.jobID, JobModifyIndex: e.jobModIdx, NodeID: e.nodeID, NodeModifyIndex: e.nodeModIdx,
		DeploymentID: e.deployID, Status: e.status, StatusDescription: e.statusDesc,
		PreviousEval: e.prevEval, NextEval: e.nextEval, BlockedEval: e.blockedEval, WaitUntil: e.waitUntil,
		QueuedAllocations: e.queuedShown(),
		CreateIndex:       e.createIdx, ModifyIndex: e.modifyIdx,
		CreateTime: e.created.UnixNano(), ModifyTime: e.modified.UnixNano(),
	}
	if len(e.failed) > 0 {
		out.FailedTGAllocs = map[string]*api.AllocationMetric{}
		for g, m := range e.failed {
			out.FailedTGAllocs[g] = cloneMetric(m)
		}
	}
	return out
}

func (c *Cluster) deployAPI(d *deployment) *api.Deployment {
	out := &api.Deployment{
		ID: d.id, Namespace: api.DefaultNamespace, JobID: d.job.id, JobVersion: d.jobVersion,
		JobModifyIndex: d.jobModIdx, JobSpecModifyIndex: d.jobModIdx, JobCreateIndex: d.jobCreate,
		TaskGroups: map[string]*api.DeploymentState{}, Status: d.status, StatusDescription: d.statusDesc,
		CreateIndex: d.createIdx, ModifyIndex: d.modifyIdx,
		CreateTime: d.started.UnixNano(), ModifyTime: c.now.UnixNano(),
	}
	for g, st := range d.groups {
		cp := *st
		out.TaskGroups[g] = &cp
	}
	return out
}

// scaleStatus is GET /v1/job/:id/scale's answer; its JobModifyIndex is
// the job's ModifyIndex, as Nomad fills it (TestFidelityListFields).
func (c *Cluster) scaleStatus(j *job) *api.JobScaleStatusResponse {
	out := &api.JobScaleStatusResponse{
		JobID: j.id, Namespace: api.DefaultNamespace, JobCreateIndex: j.createIdx,
		JobModifyIndex: j.modifyIdx, JobStopped: j.stopped, TaskGroups: map[string]api.TaskGroupScaleStatus{},
	}
	for _, g := range j.groups {
		st := api.TaskGroupScaleStatus{Desired: g.count, Events: append([]api.ScalingEvent{}, j.scaleEvts[g.name]...)}
		for _, a := range j.allocs {
			if a.grp.name != g.name || a.terminal() {
				continue
			}
			st.Placed++
			if a.client == allocRunning {
				st.Running++
			}
			if a.healthy != nil {
				if *a.healthy {
					st.Healthy++
				} else {
					st.Unhealthy++
				}
			}
		}
		out.TaskGroups[g.name] = st
	}
	return out
}

// hostStats is what a Nomad client reports for itself: CPU per core as the
// served share of capacity, memory in bytes.
func (c *Cluster) hostStats(n *node) *api.HostStats {
	served := math.Min(n.demCPU, float64(n.cpu))
	util := 0.0
	if n.cpu > 0 {
		util = served / float64(n.cpu) * 100
	}
	out := &api.HostStats{Uptime: uint64(n.hostUptime.Seconds()), CPUTicksConsumed: served}
	for i := 0; i < n.cores; i++ {
		out.CPU = append(out.CPU, &api.HostCPUStats{CPU: "cpu" + strconv.Itoa(i), User: util * 0.8, System: util * 0.2, Idle: 100 - util})
	}
	total := uint64(n.mem) << 20
	used := uint64(math.Min(n.demMem, float64(n.mem))) << 20
	out.Memory = &api.HostMemoryStats{Total: total, Used: used, Available: total - used, Free: total - used}
	disk := &api.HostDiskStats{Device: "/dev/sda1", Mountpoint: "/", Size: 100 << 30, Used: 20 << 30, Available: 80 << 30, UsedPercent: 20, InodesUsedPercent: 5}
	out.DiskStats = []*api.HostDiskStats{disk}
	ad := *disk
	out.AllocDirStats = &ad
	return out
}

// allocStats reports an allocation's usage the way a Nomad client does:
// TotalTicks is the served CPU in MHz, Percent is relative to one core,
// memory is in bytes; CPU demand above the node's capacity shows as
// throttling where the task's driver measures it. Each task reports what
// its driver measures (taskMeasures); the allocation's usage is the sum of
// its tasks', its Measured lists their union in task order, as Nomad's
// client adds them.
//
// A client that does not publish allocation metrics never measures them:
// it answers with no task, zero usage and a zero Timestamp (measured on a
// Nomad 2.0.6-dev client without telemetry's publish_allocation_metrics,
// TestFidelityAllocStatsUnpublished). An allocation whose tasks have
// stopped keeps each task's last usage under its name, and its own usage is
// zero with no Measured list and a zero Timestamp, as Nomad's client adds
// only running tasks (TestFidelityAllocStatsStopped).
func (c *Cluster) allocStats(a *alloc) *api.AllocResourceUsage {
	n := a.node
	if n.noAllocMet {
		return &api.AllocResourceUsage{ResourceUsage: &api.ResourceUsage{MemoryStats: &api.MemoryStats{}, CpuStats: &api.CpuStats{},
			DeviceStats: []*api.DeviceGroupStats{}}, Tasks: map[string]*api.TaskResourceUsage{}}
	}
	served := a.served
	core := float64(n.cpu) / float64(n.cores)
	ts := c.now.UnixNano()
	share := 1 / float64(len(a.grp.tasks))
	total := &api.ResourceUsage{MemoryStats: &api.MemoryStats{}, CpuStats: &api.CpuStats{}, DeviceStats: []*api.DeviceGroupStats{}}
	out := &api.AllocResourceUsage{ResourceUsage: total, Tasks: map[string]*api.TaskResourceUsage{}, Timestamp: ts}
	for i, t := range a.grp.tasks {
		var driver string
		if i < len(a.grp.drivers) {
			driver = a.grp.drivers[i]
		}
		m := taskMeasures(driver)
		mem := uint64(a.mem*share) << 20
		ms := &api.MemoryStats{RSS: mem, Measured: m.mem}
		if m.usage {
			ms.Usage = mem
		}
		cs := &api.CpuStats{
			TotalTicks: served * share, Percent: served * share / core * 100, Measured: m.cpu,
		}
		if m.modes {
			cs.UserMode, cs.SystemMode = served*share/core*80, served*share/core*20
		}
		if m.throttling {
			cs.ThrottledPeriods, cs.ThrottledTime = uint64(a.thrPeriods*share), uint64(a.thrNS*share)
		}
		out.Tasks[t] = &api.TaskResourceUsage{ResourceUsage: &api.ResourceUsage{MemoryStats: ms, CpuStats: cs,
			DeviceStats: []*api.DeviceGroupStats{}}, Timestamp: ts, Pids: map[string]*api.ResourceUsage{}}
		if !a.clientTerminal() {
			addUsage(total, ms, cs)
		}
	}
	if a.clientTerminal() {
		out.Timestamp = 0
	}
	return out
}

// measures is what a task driver's stats measure on a cgroups v2 Linux
// client (Nomad's executor and docker driver lists).
type measures struct {
	mem, cpu                 []string
	usage, modes, throttling bool
}

// taskMeasures returns what a task of this driver reports: raw_exec runs
// without cgroups and samples its processes (RSS, Swap; System Mode, User
// Mode, Percent); exec's executor reads its cgroup (adding Cache, Usage and
// throttling); docker reads its container's cgroup (throttling, no modes).
// An unknown driver reports as docker, as the simulator always did.
func taskMeasures(driver string) measures {
	switch driver {
	case "raw_exec":
		return measures{mem: []string{"RSS", "Swap"}, cpu: []string{"System Mode", "User Mode", "Percent"}, modes: true}
	case "exec", "java":
		return measures{mem: []string{"RSS", "Cache", "Swap", "Usage"},
			cpu:   []string{"System Mode", "User Mode", "Throttled Periods", "Throttled Time", "Percent"},
			usage: true, modes: true, throttling: true}
	default:
		return measures{mem: []string{"RSS", "Cache", "Swap", "Usage"}, cpu: []string{"Throttled Periods", "Throttled Time", "Percent"},
			usage: true, throttling: true}
	}
}

// addUsage adds a task's memory and CPU stats to an allocation's, as
// Nomad's client sums them: values added, Measured lists joined.
func addUsage(to *api.ResourceUsage, ms *api.MemoryStats, cs *api.CpuStats) {
	t := to.MemoryStats
	t.RSS += ms.RSS
	t.Cache += ms.Cache
	t.Swap += ms.Swap
	t.Usage += ms.Usage
	t.MaxUsage += ms.MaxUsage
	t.Measured = joinMeasured(t.Measured, ms.Measured)
	c := to.CpuStats
	c.SystemMode += cs.SystemMode
	c.UserMode += cs.UserMode
	c.TotalTicks += cs.TotalTicks
	c.ThrottledPeriods += cs.ThrottledPeriods
	c.ThrottledTime += cs.ThrottledTime
	c.Percent += cs.Percent
	c.Measured = joinMeasured(c.Measured, cs.Measured)
}

// joinMeasured is a followed by b's names not in a.
func joinMeasured(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// sortedAllocs returns allocs ordered by create index, newest first.
func sortedAllocs(in []*alloc) []*alloc {
	out := append([]*alloc(nil), in...)
	sort.Slice(out, func(i, k int) bool { return out[i].createIdx > out[k].createIdx })
	return out
}
