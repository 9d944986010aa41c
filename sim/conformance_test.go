package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The conformance suite drives every endpoint through the real nomad/api
// client, the way foreshape and any Nomad tool would.

// unknownID is a well-formed ID nothing has: Nomad answers 404 for it (and
// 500 for an ID that is not a UUID).
const unknownID = "00000000-0000-0000-0000-000000000000"

const webJob = `
job "web" {
  datacenters = ["dc1"]
  priority    = 60

  group "web" {
    count  = 3
    cpu    = 500
    memory = 512
    iops   = 100

    load {
      cpu {
        trace = "web"
        scale = 1.5
      }
      memory {
        scale = 0.5
      }
      iops {
        scale = 0.4
      }
    }
  }
}
`

func TestConformanceNodes(t *testing.T) {
	c := newTestCluster(t, webJob)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	nodes := client.Nodes()

	stubs, qm, err := nodes.List(&api.QueryOptions{Params: map[string]string{"resources": "true"}})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(stubs) != 5 {
		t.Fatalf("listed %d nodes, want 5", len(stubs))
	}
	if qm.LastIndex == 0 || !qm.KnownLeader {
		t.Errorf("query meta = %+v, want an index and a known leader", qm)
	}
	byName := map[string]*api.NodeListStub{}
	for _, s := range stubs {
		byName[s.Name] = s
		if s.NodeResources == nil || s.NodeResources.Cpu.CpuShares != 4000 || s.NodeResources.Memory.MemoryMB != 8192 {
			t.Errorf("node %s resources = %+v, want 4000 MHz / 8192 MB", s.Name, s.NodeResources)
		}
		if s.Status != api.NodeStatusReady || s.SchedulingEligibility != api.NodeSchedulingEligible {
			t.Errorf("node %s status %s/%s", s.Name, s.Status, s.SchedulingEligibility)
		}
	}
	b1 := byName["b-1"]
	if b1 == nil || b1.Datacenter != "dc2" || b1.NodeClass != "db" || b1.NodePool != "default" {
		t.Fatalf("node b-1 = %+v", b1)
	}
	plain, _, err := nodes.List(nil)
	if err != nil || plain[0].NodeResources != nil {
		t.Errorf("list without resources: err %v, resources %v", err, plain[0].NodeResources)
	}

	info, _, err := nodes.Info(b1.ID, nil)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Meta["rack"] != "r2" || info.Attributes["foreshape.sim.iops"] != "1000" || info.NodeResources.Cpu.CpuShares != 4000 {
		t.Errorf("info = meta %v attrs %v", info.Meta, info.Attributes)
	}
	if _, _, err := nodes.Info("00000000-0000-0000-0000-000000000000", nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("unknown node: err %v, want 404", err)
	}

	// Allocations and stats of a node that runs the web job.
	var busy *api.NodeListStub
	for _, s := range stubs {
		allocs, _, err := nodes.Allocations(s.ID, nil)
		if err != nil {
			t.Fatalf("node allocations: %v", err)
		}
		if len(allocs) > 0 {
			busy = s
			if allocs[0].Job == nil || *allocs[0].Job.ID != "web" || allocs[0].NodeID != s.ID {
				t.Errorf("node allocation = %+v", allocs[0])
			}
		}
	}
	if busy == nil {
		t.Fatal("no node runs the web job")
	}
	st, err := nodes.Stats(busy.ID, nil)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.Memory == nil || st.Memory.Total != 8192<<20 || st.Memory.Used == 0 || len(st.CPU) == 0 || st.CPUTicksConsumed <= 0 {
		t.Errorf("host stats = %+v", st)
	}
	if _, err := nodes.Stats(unknownID, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("stats of unknown node: err %v, want 404", err)
	}
}

func TestConformanceDrainAndEligibility(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	nodes := client.Nodes()
	allocs, _, err := client.Allocations().List(nil)
	if err != nil || len(allocs) == 0 {
		t.Fatal(err)
	}
	// A node with work, so the drain does not complete at once.
	id := allocs[0].NodeID

	resp, err := nodes.UpdateDrain(id, &api.DrainSpec{Deadline: time.Hour}, false, nil)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	if resp.NodeModifyIndex == 0 {
		t.Errorf("drain response = %+v", resp)
	}
	n, _, err := nodes.Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy == nil || n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusDraining {
		t.Errorf("drained node = drain %+v elig %s last %+v", n.DrainStrategy, n.SchedulingEligibility, n.LastDrain)
	}
	if n.DrainStrategy != nil && !n.DrainStrategy.ForceDeadline.Equal(c.Now().Add(time.Hour)) {
		t.Errorf("force deadline %v, want an hour from %v", n.DrainStrategy.ForceDeadline, c.Now())
	}
	// Nomad's servers refuse without a status code, so its HTTP API
	// answers 500 with the message.
	if _, err := nodes.ToggleEligibility(id, true, nil); statusOf(err) != http.StatusInternalServerError ||
		!strings.Contains(err.Error(), "can not set node's scheduling eligibility to eligible while it is draining") {
		t.Errorf("eligible while draining: err %v, want 500 with Nomad's message", err)
	}
	if _, err := nodes.UpdateDrain(id, nil, true, nil); err != nil {
		t.Fatalf("cancel drain: %v", err)
	}
	n, _, _ = nodes.Info(id, nil)
	if n.DrainStrategy != nil || n.SchedulingEligibility != api.NodeSchedulingEligible || n.LastDrain.Status != api.DrainStatusCanceled {
		t.Errorf("after cancel: drain %+v elig %s last %+v", n.DrainStrategy, n.SchedulingEligibility, n.LastDrain)
	}
	if _, err := nodes.ToggleEligibility(id, false, nil); err != nil {
		t.Fatalf("ineligible: %v", err)
	}
	n, _, _ = nodes.Info(id, nil)
	if n.SchedulingEligibility != api.NodeSchedulingIneligible {
		t.Errorf("eligibility = %s", n.SchedulingEligibility)
	}
	if _, err := nodes.UpdateDrain(unknownID, &api.DrainSpec{}, false, nil); statusOf(err) != http.StatusInternalServerError || !strings.Contains(err.Error(), "node not found") {
		t.Errorf("drain unknown node: err %v, want 500 node not found", err)
	}
	if _, err := nodes.ToggleEligibility(unknownID, true, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("eligibility of unknown node: err %v, want 500", err)
	}
	if allocs, _, err := nodes.Allocations("nope", nil); err != nil || len(allocs) != 0 {
		t.Errorf("allocations of unknown node: %v %v, want an empty list", allocs, err)
	}
}

func TestConformanceAllocations(t *testing.T) {
	c := newTestCluster(t, webJob)
	if err := c.Step(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	allocs := client.Allocations()
	list, _, err := allocs.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("listed %d allocations, want 3", len(list))
	}
	for _, s := range list {
		if s.JobID != "web" || s.ClientStatus != api.AllocClientStatusRunning || s.DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("alloc stub = %+v", s)
		}
	}
	a, _, err := allocs.Info(list[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.AllocatedResources == nil || a.AllocatedResources.Tasks["web"].Cpu.CpuShares != 500 || a.Job == nil {
		t.Errorf("alloc = %+v", a)
	}
	usage, err := allocs.Stats(a, nil)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if usage.ResourceUsage == nil || usage.ResourceUsage.CpuStats.TotalTicks <= 0 || usage.ResourceUsage.MemoryStats.RSS != 256<<20 || usage.Tasks["web"] == nil {
		t.Errorf("alloc stats = %+v", usage.ResourceUsage)
	}

	stop, err := allocs.Stop(a, nil)
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	if stop.EvalID == "" {
		t.Errorf("stop response = %+v", stop)
	}
	stopped, _, _ := allocs.Info(a.ID, nil)
	if !stopped.DesiredTransition.ShouldMigrate() || stopped.DesiredStatus != api.AllocDesiredStatusStop || stopped.NextAllocation == "" {
		t.Errorf("stopped alloc: transition %+v desired %s next %q", stopped.DesiredTransition, stopped.DesiredStatus, stopped.NextAllocation)
	}
	next, _, err := allocs.Info(stopped.NextAllocation, nil)
	if err != nil || next.PreviousAllocation != a.ID {
		t.Errorf("replacement: err %v previous %q", err, next.PreviousAllocation)
	}
	ev, _, err := client.Evaluations().Info(stop.EvalID, nil)
	if err != nil || ev.TriggeredBy != "alloc-stop" || ev.JobID != "web" || ev.Status != api.EvalStatusComplete {
		t.Errorf("stop eval: err %v eval %+v", err, ev)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	done, _, _ := allocs.Info(a.ID, nil)
	if done.ClientStatus != api.AllocClientStatusComplete {
		t.Errorf("migrated alloc client status = %s", done.ClientStatus)
	}
	if st, err := allocs.Stats(done, nil); err != nil || st.Timestamp != 0 || st.ResourceUsage.MemoryStats.Measured != nil {
		t.Errorf("stats of a stopped alloc: %+v, err %v; want its tasks' last usage alone (TestFidelityAllocStatsStopped)", st, err)
	}
	if _, _, err := allocs.Info(unknownID, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("unknown alloc: err %v, want 404", err)
	}
	if _, err := allocs.Stop(&api.Allocation{ID: unknownID}, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("stop unknown alloc: err %v, want 404", err)
	}
	if _, err := allocs.Stats(&api.Allocation{ID: unknownID}, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("stats of unknown alloc: err %v, want 404", err)
	}
}

func TestConformanceJobs(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	jobs := client.Jobs()

	job := serviceJob("svc", 2, 300, 256, 50)
	job.TaskGroups[0].Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(10 * time.Second), HealthyDeadline: new(time.Minute)}
	reg, _, err := jobs.Register(job, nil)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg.EvalID == "" || reg.JobModifyIndex == 0 {
		t.Errorf("register response = %+v", reg)
	}
	ev, _, err := client.Evaluations().Info(reg.EvalID, nil)
	if err != nil || ev.TriggeredBy != "job-register" || ev.Status != api.EvalStatusComplete {
		t.Errorf("register eval: err %v eval %+v", err, ev)
	}
	list, _, err := jobs.List(nil)
	if err != nil || len(list) != 1 || list[0].ID != "svc" || list[0].Type != api.JobTypeService || list[0].JobSummary.Summary["g"].Starting != 2 {
		t.Fatalf("list: err %v jobs %+v", err, list)
	}
	info, _, err := jobs.Info("svc", nil)
	if err != nil || *info.Priority != 50 || *info.TaskGroups[0].Count != 2 || *info.Status != "running" {
		t.Fatalf("info: err %v job %+v", err, info)
	}
	stubs, _, err := jobs.Allocations("svc", false, nil)
	if err != nil || len(stubs) != 2 {
		t.Fatalf("job allocations: err %v n %d", err, len(stubs))
	}

	// A deployment runs after registration; Nomad refuses to scale meanwhile.
	dep, _, err := jobs.LatestDeployment("svc", nil)
	if err != nil || dep == nil || dep.Status != api.DeploymentStatusRunning || dep.TaskGroups["g"].DesiredTotal != 2 {
		t.Fatalf("deployment: err %v dep %+v", err, dep)
	}
	if _, _, err := jobs.Scale("svc", "g", new(4), "more", false, nil, nil); statusOf(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "job scaling blocked due to active deployment") {
		t.Fatalf("scale during deployment: err %v, want 400 blocked", err)
	}
	if err := c.Step(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	dep, _, _ = jobs.LatestDeployment("svc", nil)
	if dep.Status != api.DeploymentStatusSuccessful || dep.TaskGroups["g"].HealthyAllocs != 2 {
		t.Fatalf("deployment after 30s = %s %+v", dep.Status, dep.TaskGroups["g"])
	}
	sr, _, err := jobs.Scale("svc", "g", new(4), "more", false, map[string]any{"by": "test"}, nil)
	if err != nil || sr.EvalID == "" {
		t.Fatalf("scale: err %v resp %+v", err, sr)
	}
	status, _, err := jobs.ScaleStatus("svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := status.TaskGroups["g"]
	// The refused attempt left no event: Nomad refuses before it records one.
	if g.Desired != 4 || g.Placed != 4 || g.Healthy != 2 || len(g.Events) != 1 || *g.Events[0].Count != 4 || g.Events[0].PreviousCount != 2 || g.Events[0].Message != "more" {
		t.Errorf("scale status = %+v", g)
	}
	// The scale's deployment counts the two allocations kept in place and
	// completes once the two new ones are healthy.
	dep, _, _ = jobs.LatestDeployment("svc", nil)
	if dep.Status != api.DeploymentStatusRunning || dep.TaskGroups["g"].DesiredTotal != 4 || dep.TaskGroups["g"].HealthyAllocs != 2 {
		t.Errorf("deployment after scale = %s %+v", dep.Status, dep.TaskGroups["g"])
	}
	if err := c.Step(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	dep, _, _ = jobs.LatestDeployment("svc", nil)
	if dep.Status != api.DeploymentStatusSuccessful || dep.TaskGroups["g"].HealthyAllocs != 4 {
		t.Errorf("deployment 30s after scale = %s %+v", dep.Status, dep.TaskGroups["g"])
	}
	if _, _, err := jobs.Scale("svc", "g", new(3), "less", false, nil, nil); err != nil {
		t.Errorf("scale down after the deployment: %v", err)
	}
	if _, _, err := jobs.Scale("svc", "nope", new(1), "", false, nil, nil); statusOf(err) != http.StatusBadRequest {
		t.Errorf("scale unknown group: err %v, want 400", err)
	}
	if _, _, err := jobs.Scale("nope", "g", new(1), "", false, nil, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("scale unknown job: err %v, want 404", err)
	}
	if _, _, err := jobs.ScaleStatus("nope", nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("scale status of unknown job: err %v, want 404", err)
	}

	// Bad registrations: Nomad's servers refuse what fails validation
	// with a 500 listing the errors.
	bad := api.NewServiceJob("bad", "bad", "global", 50)
	if _, _, err := jobs.Register(bad, nil); statusOf(err) != http.StatusInternalServerError || !strings.Contains(err.Error(), "Missing job task groups") {
		t.Errorf("register without groups: err %v, want 500", err)
	}
	if _, _, err := jobs.Register(serviceJob("bad", 1, 100, 100, 500), nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("register with priority 500: err %v, want 500", err)
	}
	small := serviceJob("bad", 1, 100, 100, 50)
	small.TaskGroups[0].EphemeralDisk = &api.EphemeralDisk{SizeMB: new(10)}
	if _, _, err := jobs.Register(small, nil); statusOf(err) != http.StatusInternalServerError ||
		!strings.Contains(err.Error(), "log storage (100 MB) must be less than requested disk capacity (10 MB)") {
		t.Errorf("register with less disk than its logs: err %v, want 500", err)
	}
	if _, _, err := jobs.EnforceRegister(serviceJob("svc", 1, 100, 100, 50), 1, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("enforce register with a stale index: err %v, want 500", err)
	}

	// Deregister, then purge.
	evalID, _, err := jobs.Deregister("svc", false, nil)
	if err != nil || evalID == "" {
		t.Fatalf("deregister: %v", err)
	}
	info, _, _ = jobs.Info("svc", nil)
	if !*info.Stop {
		t.Errorf("deregistered job not stopped")
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	stubs, _, _ = jobs.Allocations("svc", true, nil)
	for _, s := range stubs {
		if s.ClientStatus != api.AllocClientStatusComplete {
			t.Errorf("alloc %s of a stopped job is %s", s.Name, s.ClientStatus)
		}
	}
	if _, _, err := jobs.Deregister("svc", true, nil); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, _, err := jobs.Info("svc", nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("purged job: err %v, want 404", err)
	}
	if evalID, _, err := jobs.Deregister("svc", true, nil); err != nil || evalID != "" {
		t.Errorf("deregister unknown job: eval %q, err %v; want 200 without an evaluation", evalID, err)
	}
	if _, _, err := client.Evaluations().Info(unknownID, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("unknown eval: err %v, want 404", err)
	}
}

func TestConformanceOperatorAgentStatusMetrics(t *testing.T) {
	c := newTestCluster(t, webJob)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	op := client.Operator()
	cfg, _, err := op.SchedulerGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.SchedulerConfig.PreemptionConfig
	if !pc.SystemSchedulerEnabled || pc.ServiceSchedulerEnabled || pc.BatchSchedulerEnabled || cfg.SchedulerConfig.SchedulerAlgorithm != api.SchedulerAlgorithmBinpack {
		t.Errorf("default scheduler config = %+v", cfg.SchedulerConfig)
	}
	next := *cfg.SchedulerConfig
	next.PreemptionConfig.ServiceSchedulerEnabled = true
	set, _, err := op.SchedulerSetConfiguration(&next, nil)
	if err != nil || !set.Updated {
		t.Fatalf("set config: err %v resp %+v", err, set)
	}
	cfg, _, _ = op.SchedulerGetConfiguration(nil)
	if !cfg.SchedulerConfig.PreemptionConfig.ServiceSchedulerEnabled || !c.preemptionEnabled(api.JobTypeService) {
		t.Errorf("service preemption not enabled after set")
	}
	stale := *cfg.SchedulerConfig
	stale.ModifyIndex = 1
	if cas, _, err := op.SchedulerCASConfiguration(&stale, nil); err != nil || cas.Updated {
		t.Errorf("CAS with a stale index: err %v resp %+v, want not updated", err, cas)
	}
	reject := *cfg.SchedulerConfig
	reject.RejectJobRegistration = true
	if _, _, err := op.SchedulerSetConfiguration(&reject, nil); err != nil {
		t.Fatal(err)
	}
	// Nomad rejects them only from a token that is no management token:
	// with its ACLs off, every request is a management token's (measured
	// on Nomad 2.0, with ACLs off and on).
	if _, _, err := client.Jobs().Register(serviceJob("late", 1, 100, 100, 50), nil); err != nil {
		t.Errorf("register while registrations are rejected, ACLs off: %v, want it served", err)
	}
	const mgmt, limited = "5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33", "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80"
	c.SetACL([]string{mgmt}, map[string]Policy{limited: {Capabilities: []string{"read-job", "submit-job", "scale-job"}}})
	if _, _, err := newTestAPI(t, c, mgmt).Jobs().Register(serviceJob("later", 1, 100, 100, 50), nil); err != nil {
		t.Errorf("register while registrations are rejected, management token: %v, want it served", err)
	}
	lc := newTestAPI(t, c, limited)
	const disabled = "Job registration, dispatch, and scale are disabled by the scheduler configuration"
	if _, _, err := lc.Jobs().Register(serviceJob("latest", 1, 100, 100, 50), nil); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), disabled) {
		t.Errorf("register while registrations are rejected, a client token: %v, want 403 %q", err, disabled)
	}
	if _, _, err := lc.Jobs().Scale("web", "web", new(2), "", false, nil, nil); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), disabled) {
		t.Errorf("scale while registrations are rejected, a client token: %v, want 403 %q", err, disabled)
	}
	c.SetACL(nil, nil)
	reject.RejectJobRegistration = false
	if _, _, err := op.SchedulerSetConfiguration(&reject, nil); err != nil {
		t.Fatal(err)
	}
	next.SchedulerAlgorithm = "random"
	if _, _, err := op.SchedulerSetConfiguration(&next, nil); statusOf(err) != http.StatusBadRequest {
		t.Errorf("bad algorithm: err %v, want 400", err)
	}

	self, err := client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if self.Config["Datacenter"] != "dc1" || self.Member.Name == "" {
		t.Errorf("agent self = %+v", self)
	}
	leader, err := client.Status().Leader()
	if err != nil || leader == "" {
		t.Errorf("leader: %q %v", leader, err)
	}

	summary, _, err := op.MetricsSummary(nil)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, g := range summary.Gauges {
		if g.Name == "foreshape.sim.node.iops" && g.DisplayLabels["node_id"] != "" {
			found++
		}
	}
	if found != 5 {
		t.Errorf("JSON metrics: %d per-node IOPS gauges, want 5", found)
	}
	raw, err := op.Metrics(&api.QueryOptions{Params: map[string]string{"format": "prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("prometheus text does not parse: %v", err)
	}
	for _, name := range []string{"nomad_client_host_cpu_total_percent", "foreshape_sim_node_iops", "nomad_client_host_memory_used"} {
		f := fams[name]
		if f == nil || len(f.Metric) != 5 {
			t.Errorf("prometheus family %s = %v, want 5 series", name, f)
			continue
		}
		labels := map[string]bool{}
		for _, l := range f.Metric[0].Label {
			labels[l.GetName()] = true
		}
		for _, want := range []string{"node_id", "datacenter", "node_pool", "node_class"} {
			if !labels[want] {
				t.Errorf("%s lacks label %s", name, want)
			}
		}
	}
	iops := 0.0
	for _, m := range fams["foreshape_sim_node_iops"].Metric {
		iops += m.Gauge.GetValue()
	}
	if iops <= 0 {
		t.Errorf("total IOPS demand %v, want positive (web binds IOPS)", iops)
	}
	// node_exporter-style disk counters: a minute of 3 × 40 IOPS served.
	writes := fams["node_disk_writes_completed_total"]
	reads := fams["node_disk_reads_completed_total"]
	if writes == nil || reads == nil || writes.GetType().String() != "COUNTER" || len(writes.Metric) != 5 {
		t.Fatalf("disk counters = %v / %v", writes, reads)
	}
	total := 0.0
	for _, m := range append(reads.Metric, writes.Metric...) {
		total += m.Counter.GetValue()
	}
	if math.Abs(total-3*40*60) > 1e-6 {
		t.Errorf("disk operations counted %v, want %v", total, 3*40*60)
	}
	if a := fams["nomad_client_allocs_cpu_total_ticks"]; a == nil || len(a.Metric) != 3 {
		t.Errorf("per-allocation CPU series = %v, want 3", a)
	}
	for _, g := range summary.Gauges {
		if strings.HasPrefix(g.Name, "node.disk") {
			t.Errorf("counter %s in the JSON gauges", g.Name)
		}
	}
}

func TestAllocationMetricsCanBeTurnedOff(t *testing.T) {
	c := newTestCluster(t, webJob+"publish_allocation_metrics = false\n")
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	raw, err := newTestAPI(t, c, "").Operator().Metrics(&api.QueryOptions{Params: map[string]string{"format": "prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("nomad_client_allocs_")) || !bytes.Contains(raw, []byte("nomad_client_host_cpu_total_percent")) {
		t.Errorf("allocation metrics published although turned off")
	}
}

func TestConformanceBlockingQueries(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	nodes := client.Nodes()
	stubs, qm, err := nodes.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		idx uint64
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, meta, err := nodes.List(&api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 5 * time.Second})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{idx: meta.LastIndex, n: len(got)}
	}()
	select {
	case r := <-done:
		t.Fatalf("blocking query returned before any change: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := nodes.ToggleEligibility(stubs[0].ID, false, nil); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.idx <= qm.LastIndex || r.n != 5 {
		t.Fatalf("blocking query after change: %+v (index was %d)", r, qm.LastIndex)
	}
	// A change to another table does not wake a node query; the wait expires.
	_, qm2, _ := nodes.List(nil)
	go func() {
		_, meta, err := nodes.List(&api.QueryOptions{WaitIndex: qm2.LastIndex, WaitTime: 200 * time.Millisecond})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{idx: meta.LastIndex}
	}()
	if _, _, err := client.Jobs().Register(noUpdate(serviceJob("x", 1, 100, 100, 50)), nil); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r.err != nil || r.idx != qm2.LastIndex {
		t.Fatalf("query on an unchanged table: %+v, want index %d after the wait", r, qm2.LastIndex)
	}
	// Allocations wake on the job's placements.
	_, aqm, _ := client.Allocations().List(nil)
	go func() {
		got, meta, err := client.Allocations().List(&api.QueryOptions{WaitIndex: aqm.LastIndex, WaitTime: 5 * time.Second})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{idx: meta.LastIndex, n: len(got)}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r.err != nil || r.idx <= aqm.LastIndex || r.n != 1 {
		t.Fatalf("alloc blocking query: %+v", r)
	}
}

func TestConformanceTokens(t *testing.T) {
	c := newTestCluster(t, `
acl {
  tokens = ["s3cret"]
}
`)
	anon := newTestAPI(t, c, "")
	if _, _, err := anon.Nodes().List(nil); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("no token: err %v, want 403 Permission denied", err)
	}
	wrong := newTestAPI(t, c, "nope")
	if _, _, err := wrong.Jobs().Register(serviceJob("x", 1, 100, 100, 50), nil); statusOf(err) != http.StatusForbidden {
		t.Errorf("bad token: err %v, want 403", err)
	}
	good := newTestAPI(t, c, "s3cret")
	if _, _, err := good.Nodes().List(nil); err != nil {
		t.Errorf("good token: %v", err)
	}
	// Authorization: Bearer works too, the scheme in any case (Nomad's
	// parseToken lowercases it).
	srv := good.Address()
	for _, header := range []string{"Bearer s3cret", "bearer s3cret"} {
		req, _ := http.NewRequest(http.MethodGet, srv+"/v1/jobs", nil)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Authorization: %q: status %d", header, resp.StatusCode)
		}
	}
	// The request log shows every mutating call, refused ones too.
	if reqs := c.Truth().Requests; len(reqs) != 1 || reqs[0].Status != http.StatusForbidden || !strings.HasPrefix(reqs[0].Path, "/v1/jobs") {
		t.Errorf("request log = %+v, want the refused registration with 403", reqs)
	}
}

func TestConformanceFaults(t *testing.T) {
	c := newTestCluster(t, webJob)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	allocs, _, err := client.Allocations().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := allocs[0].NodeID
	if err := c.SetFaults(Faults{StatsUnreachable: []string{victim}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Nodes().Stats(victim, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("unreachable client stats: err %v, want 500", err)
	}
	if _, err := client.Allocations().Stats(&api.Allocation{ID: allocs[0].ID}, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("unreachable alloc stats: err %v, want 500", err)
	}
	if _, _, err := client.Nodes().Info(victim, nil); err != nil {
		t.Errorf("server endpoints stay up: %v", err)
	}

	// Faults over the sim endpoint: every request fails.
	body, _ := json.Marshal(Faults{ErrorRate: 1})
	req, _ := http.NewRequest(http.MethodPut, client.Address()+"/v1/sim/faults", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/sim/faults: %d", resp.StatusCode)
	}
	if _, _, err := client.Jobs().List(nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("error rate 1: err %v, want 500", err)
	}
	// A field the faults do not have (a typo) is refused, not ignored: it
	// would inject nothing and a test relying on it would pass for nothing.
	req, _ = http.NewRequest(http.MethodPut, client.Address()+"/v1/sim/faults", strings.NewReader(`{"TimeoutRatio": 1}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "TimeoutRatio") {
		t.Errorf("PUT /v1/sim/faults with an unknown field: %d %s, want 400 naming it", resp.StatusCode, msg)
	}
	if f := c.Faults(); f.ErrorRate != 1 {
		t.Errorf("a refused PUT changed the faults: %+v", f)
	}
	// Latency is wall time; timeouts hang until the client gives up.
	if err := c.SetFaults(Faults{Latency: Duration(30 * time.Millisecond), TimeoutRate: 1, PathPrefix: "/v1/job"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Nodes().List(nil); err != nil {
		t.Errorf("fault outside the path prefix: %v", err)
	}
	hc := &http.Client{Timeout: 150 * time.Millisecond}
	_, err = hc.Get(client.Address() + "/v1/job/web")
	if err == nil {
		t.Errorf("timeout fault: the request completed")
	}
	// Writes that met a fault are in the request log too: the one the sim
	// never answered with status 0, once the client has given up.
	n0 := len(c.Truth().Requests)
	_, err = hc.Post(client.Address()+"/v1/job/web/scale", "application/json", strings.NewReader(`{"Count":4}`))
	if err == nil {
		t.Errorf("timeout fault on a write: the request completed")
	}
	if err := c.SetFaults(Faults{ErrorRate: 1, PathPrefix: "/v1/job"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Jobs().Scale("web", "web", new(4), "", false, nil, nil); statusOf(err) != http.StatusInternalServerError {
		t.Errorf("error fault on a write: %v, want 500", err)
	}
	var logged []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		logged = logged[:0]
		for _, r := range c.Truth().Requests[n0:] {
			if strings.HasPrefix(r.Path, "/v1/job/web/scale") {
				logged = append(logged, r.Status)
			}
		}
		if len(logged) == 2 {
			break
		}
	}
	sort.Ints(logged) // the hanging request is logged when it ends
	if fmt.Sprint(logged) != "[0 500]" {
		t.Errorf("faulted writes logged with status %v, want [0 500]", logged)
	}

	// A node going down: its allocations are lost and replaced elsewhere.
	if err := c.SetFaults(Faults{NodesDown: []string{victim}}); err != nil {
		t.Fatal(err)
	}
	n, _, _ := client.Nodes().Info(victim, nil)
	if n.Status != api.NodeStatusDown {
		t.Errorf("node status = %s, want down", n.Status)
	}
	lost, replaced := 0, 0
	all, _, _ := client.Allocations().List(nil)
	for _, a := range all {
		if a.NodeID == victim && a.ClientStatus == api.AllocClientStatusLost {
			lost++
		}
		if a.NodeID != victim && a.DesiredStatus == api.AllocDesiredStatusRun {
			replaced++
		}
	}
	if lost == 0 || replaced != 3 {
		t.Errorf("after node down: %d lost, %d running elsewhere (want ≥1, 3)", lost, replaced)
	}
	if _, err := client.Nodes().Stats(victim, nil); statusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "No path to node") {
		t.Errorf("stats of a down node: err %v, want 404 No path to node", err)
	}
	if err := c.SetFaults(Faults{NodesDown: []string{"nope"}}); err == nil {
		t.Errorf("faults naming an unknown node were accepted")
	}
	if err := c.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	n, _, _ = client.Nodes().Info(victim, nil)
	if n.Status != api.NodeStatusReady {
		t.Errorf("node status after clearing faults = %s", n.Status)
	}
}

func TestSimEndpoints(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	base := client.Address()
	resp, err := http.Post(base+"/v1/sim/step?d=2m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var clk ClockState
	_ = json.NewDecoder(resp.Body).Decode(&clk)
	resp.Body.Close()
	if time.Duration(clk.Elapsed) != 2*time.Minute || !c.Now().Equal(clk.Now) {
		t.Errorf("step: clock %+v, cluster now %v", clk, c.Now())
	}
	resp, err = http.Post(base+"/v1/sim/step?d=banana", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad step: %d", resp.StatusCode)
	}
	if _, err := client.Allocations().Stop(&api.Allocation{ID: c.jobs["web"].allocs[0].id}, nil); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(base + "/v1/sim/truth")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tr Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.NodeMinutes) != 2*5 {
		t.Errorf("truth has %d node minutes, want 10", len(tr.NodeMinutes))
	}
	if len(tr.Requests) != 3 || tr.Requests[2].Method != http.MethodPut || !strings.Contains(tr.Requests[2].Path, "/stop") {
		t.Errorf("recorded requests = %+v", tr.Requests)
	}
}

func TestClientEndpointsIgnoreIndex(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	id := c.nodes[0].id
	done := make(chan error, 1)
	go func() {
		_, err := client.Nodes().Stats(id, &api.QueryOptions{WaitIndex: 1 << 40, WaitTime: time.Minute})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client stats blocked on an index")
	}
	stubs, _, err := client.Allocations().List(&api.QueryOptions{Params: map[string]string{"task_states": "false"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(stubs) != 3 {
		t.Fatalf("%d allocations", len(stubs))
	}
	for _, s := range stubs {
		if s.TaskStates != nil {
			t.Errorf("task_states=false still lists task states")
		}
	}
}

func TestReregistration(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	jobs := client.Jobs()
	if _, _, err := jobs.Register(serviceJob("r", 2, 100, 128, 50), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	version := func() uint64 {
		j, _, err := jobs.Info("r", nil)
		if err != nil {
			t.Fatal(err)
		}
		return *j.Version
	}
	deployments := func() int {
		ds, _, err := jobs.Deployments("r", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	// The same job again: an evaluation, no new version, no deployment.
	reg, _, err := jobs.Register(serviceJob("r", 2, 100, 128, 50), nil)
	if err != nil || reg.EvalID == "" {
		t.Fatalf("re-register: %v %+v", err, reg)
	}
	if v, d := version(), deployments(); v != 0 || d != 1 {
		t.Errorf("after an identical registration: version %d, %d deployments; want 0, 1", v, d)
	}
	// A scale makes version 1; registering the original spec (count 2) is a
	// change again, unless counts are preserved.
	if _, _, err := jobs.Scale("r", "g", new(3), "", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := jobs.RegisterOpts(serviceJob("r", 2, 100, 128, 50), &api.RegisterOptions{PreserveCounts: true}, nil); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 1 {
		t.Errorf("after a registration preserving counts: version %d, want 1", v)
	}
	if _, _, err := jobs.Register(serviceJob("r", 2, 100, 128, 50), nil); err != nil {
		t.Fatal(err)
	}
	st, _, _ := jobs.ScaleStatus("r", nil)
	if v := version(); v != 2 || st.TaskGroups["g"].Desired != 2 {
		t.Errorf("after registering count 2 over a scaled job: version %d, desired %d; want 2, 2", v, st.TaskGroups["g"].Desired)
	}
}

func TestFailedAllocationIsReplaced(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	allocs, _, _ := client.Allocations().List(nil)
	victim := allocs[0]
	resp, err := http.Post(client.Address()+"/v1/sim/allocation/"+victim.ID+"/fail?reason=oom", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fail: %d", resp.StatusCode)
	}
	a, _, _ := client.Allocations().Info(victim.ID, nil)
	// Its task exits with the reason as its exit message, and is not
	// restarted again after the two restarts of Nomad's default policy.
	if ts := a.TaskStates["web"]; a.ClientStatus != api.AllocClientStatusFailed || a.ClientDescription != "Failed tasks" ||
		ts == nil || len(ts.Events) < 2 || ts.Restarts != 2 ||
		ts.Events[len(ts.Events)-2].DisplayMessage != `Exit Code: 1, Exit Message: "oom"` || ts.Events[len(ts.Events)-2].Details["exit_message"] != "oom" ||
		ts.Events[len(ts.Events)-1].Type != api.TaskNotRestarting || !ts.Events[len(ts.Events)-1].FailsTask {
		t.Errorf("failed alloc = %s %q, its task %+v; want failed, Failed tasks, a Terminated event saying oom, then Not Restarting", a.ClientStatus, a.ClientDescription, ts)
	}
	// Nomad's default policy for service jobs reschedules after 30 s.
	if err := c.Step(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if a, _, _ = client.Allocations().Info(victim.ID, nil); a.NextAllocation != "" {
		t.Error("replaced within 20 s, before the reschedule policy's delay")
	}
	if err := c.Step(40 * time.Second); err != nil {
		t.Fatal(err)
	}
	a, _, _ = client.Allocations().Info(victim.ID, nil)
	if a.NextAllocation == "" {
		t.Fatal("no replacement for the failed allocation")
	}
	if next, _, _ := client.Allocations().Info(a.NextAllocation, nil); next.CreateTime-a.TaskStates["web"].FinishedAt.UnixNano() != int64(30*time.Second) {
		t.Errorf("replaced %v after the failure, want 30s", time.Duration(next.CreateTime-a.TaskStates["web"].FinishedAt.UnixNano()))
	}
	next, _, _ := client.Allocations().Info(a.NextAllocation, nil)
	if next.PreviousAllocation != victim.ID || next.ClientStatus != api.AllocClientStatusRunning || next.Name != victim.Name {
		t.Errorf("replacement = %s %s prev %s", next.Name, next.ClientStatus, next.PreviousAllocation)
	}
	if next.NodeID == victim.NodeID {
		t.Errorf("replacement went back to the node the allocation failed on")
	}
	if err := c.FailAlloc(victim.ID, ""); statusOf(nil) != 0 || err == nil {
		t.Errorf("failing a failed alloc: %v", err)
	}
	if err := c.FailAlloc("nope", ""); err == nil {
		t.Error("failing an unknown alloc succeeded")
	}
}

func TestConformanceEvaluationsDeploymentsAndSimReads(t *testing.T) {
	c := newTestCluster(t, `
duration = "30m"
fault {
  error_rate = 0.25
  path_prefix = "/v1/nope"
}
`)
	client := newTestAPI(t, c, "")
	job := serviceJob("svc", 2, 300, 256, 50)
	reg, _, err := client.Jobs().Register(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	evals, _, err := client.Jobs().Evaluations("svc", nil)
	if err != nil || len(evals) != 1 || evals[0].ID != reg.EvalID {
		t.Fatalf("job evaluations: %v %+v", err, evals)
	}
	all, _, err := client.Evaluations().List(nil)
	if err != nil || len(all) != 1 {
		t.Fatalf("evaluation list: %v %d", err, len(all))
	}
	if _, _, err := client.Jobs().Evaluations("nope", nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("evaluations of an unknown job: %v, want 404", err)
	}
	dep, _, err := client.Jobs().LatestDeployment("svc", nil)
	if err != nil || dep == nil {
		t.Fatal(err)
	}
	got, _, err := client.Deployments().Info(dep.ID, nil)
	if err != nil || got.JobID != "svc" || got.Status != api.DeploymentStatusRunning {
		t.Errorf("deployment info: %v %+v", err, got)
	}
	if _, _, err := client.Deployments().Info(unknownID, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("unknown deployment: %v, want 404", err)
	}
	if err := c.RunScenario(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(client.Address() + "/v1/sim/clock")
	if err != nil {
		t.Fatal(err)
	}
	var clk ClockState
	_ = json.NewDecoder(resp.Body).Decode(&clk)
	resp.Body.Close()
	if time.Duration(clk.Elapsed) != 30*time.Minute || clk.Scenario != "small" || clk.Running {
		t.Errorf("clock = %+v", clk)
	}
	resp, err = http.Get(client.Address() + "/v1/sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	var f Faults
	_ = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if f.ErrorRate != 0.25 || f.PathPrefix != "/v1/nope" {
		t.Errorf("faults = %+v", f)
	}
	resp, err = http.Get(client.Address() + "/v1/sim/truth?since=" + c.sc.Start.Add(29*time.Minute).Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	var tr Truth
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if len(tr.NodeMinutes) != 5 || len(tr.Requests) != 0 {
		t.Errorf("truth since 29m: %d node minutes, %d requests; want 5, 0", len(tr.NodeMinutes), len(tr.Requests))
	}
	for _, bad := range []string{"/v1/sim/truth?since=yesterday", "/v1/nodes?index=x", "/v1/nodes?index=5&wait=later"} {
		resp, err := http.Get(client.Address() + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, client.Address()+"/v1/sim/faults", strings.NewReader(`{"ErrorRate": 2}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("error rate 2: %d, want 400", resp.StatusCode)
	}
}

func TestNodeDownDuringTransfer(t *testing.T) {
	// A node goes down while its allocation's state is being moved: the
	// transfer is dropped, the old allocation is lost and its waiting
	// replacement starts at once.
	c := drainSetup(t, 1, 1, 1000, BreakBeforeMake)
	drain(t, c, "a-1", time.Hour)
	if err := c.Step(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFaults(Faults{NodesDown: []string{"a-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var old, repl *alloc
	do(c, func() {
		for _, a := range c.jobs["m"].allocs {
			if a.node.name == "a-1" {
				old = a
			} else if a.client == allocRunning {
				repl = a
			}
		}
		if len(c.migs) != 0 {
			t.Errorf("%d transfers still running", len(c.migs))
		}
	})
	if old.client != allocLost || repl == nil || old.next != repl.id {
		t.Errorf("old %s next %q, running replacement %v", old.client, old.next, repl)
	}
	if n := len(c.Truth().Migrations); n != 0 {
		t.Errorf("%d finished transfers recorded, want none", n)
	}
}

func TestConformanceClusterReads(t *testing.T) {
	c := newTestCluster(t, webJob+`
nodes "batch" {
  datacenter = "dc2"
  count      = 1
  node_pool  = "batch"
  cpu        = 1000
  memory     = 1000
}
`)
	client := newTestAPI(t, c, "")
	pools, _, err := client.NodePools().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "all,batch,default" {
		t.Errorf("node pools = %v", names)
	}
	if regions, err := client.Regions().List(); err != nil || len(regions) != 1 || regions[0] != "global" {
		t.Errorf("regions = %v %v", regions, err)
	}
	if peers, err := client.Status().Peers(); err != nil || len(peers) != 1 {
		t.Errorf("peers = %v %v", peers, err)
	}
	members, err := client.Agent().Members()
	if err != nil || len(members.Members) != 1 || members.ServerRegion != "global" {
		t.Errorf("members = %+v %v", members, err)
	}
	deps, _, err := client.Deployments().List(nil)
	if err != nil || len(deps) != 1 || deps[0].JobID != "web" {
		t.Errorf("deployments = %+v %v", deps, err)
	}
	evalID, _, err := client.Jobs().ForceEvaluate("web", nil)
	if err != nil || evalID == "" {
		t.Fatalf("job evaluate: %q %v", evalID, err)
	}
	if ev, _, err := client.Evaluations().Info(evalID, nil); err != nil || ev.TriggeredBy != "job-register" {
		t.Errorf("job eval = %+v %v", ev, err)
	}
	if _, _, err := client.Jobs().ForceEvaluate("nope", nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("evaluate unknown job: %v", err)
	}
	allocs, _, _ := client.Allocations().List(nil)
	// Nomad's answer names its evaluations in EvalIDs and has no EvalID,
	// which nomad/api reads (TestFidelityNodeEvaluate).
	if evalID, wm, err := client.Nodes().ForceEvaluate(allocs[0].NodeID, nil); err != nil || evalID != "" || wm.LastIndex == 0 {
		t.Errorf("node evaluate: %q %v %v", evalID, wm, err)
	}
}

func TestScalingHistoryIsBounded(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	jobs := client.Jobs()
	if _, _, err := jobs.Register(serviceJob("s", 1, 100, 64, 50), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := c.Step(time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, _, err := jobs.Scale("s", "g", new(1+i%3), "", false, nil, nil); err != nil {
			t.Fatalf("scale %d: %v", i, err)
		}
	}
	st, _, _ := jobs.ScaleStatus("s", nil)
	if n := len(st.TaskGroups["g"].Events); n != 20 {
		t.Errorf("%d scaling events kept, want Nomad's 20", n)
	}
	if err := c.Step(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	deps, _, _ := jobs.Deployments("s", true, nil)
	if len(deps) != 1 || deps[0].Status != api.DeploymentStatusSuccessful {
		t.Errorf("%d deployments after GC, want the latest only", len(deps))
	}
}

func TestBlockingJobReadAndRequestLog(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	jobs := client.Jobs()
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	_, qm, err := jobs.Info("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *api.Job, 1)
	go func() {
		j, _, err := jobs.Info("web", &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 5 * time.Second})
		if err != nil {
			done <- nil
			return
		}
		done <- j
	}()
	time.Sleep(50 * time.Millisecond)
	big := strings.Repeat("x", 2000)
	if _, _, err := jobs.Scale("web", "web", new(4), big, false, nil, nil); err != nil {
		t.Fatal(err)
	}
	j := <-done
	if j == nil || *j.TaskGroups[0].Count != 4 {
		t.Fatalf("blocking job read after scale: %+v", j)
	}
	reqs := c.Truth().Requests
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodPut || !strings.HasPrefix(last.Path, "/v1/job/web/scale") || last.Status != http.StatusOK || len(last.Body) != 512 {
		t.Errorf("last request = %s %s %d, body %d bytes", last.Method, last.Path, last.Status, len(last.Body))
	}
}

// Allocations that fail together wait in one follow-up evaluation; one
// failing later gets its own; a delay of a second or less needs none: the
// evaluation of the failure places the replacement. Failures an
// evaluation finds waiting with times more than 5 s apart get a follow-up
// each, the later ones "alloc-failure" without a description.
func TestFollowUpEvaluationsShared(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	reg := func(id string, count int, delay time.Duration, fn string) {
		j := noUpdate(serviceJob(id, count, 100, 64, 50))
		j.TaskGroups[0].ReschedulePolicy = &api.ReschedulePolicy{Unlimited: new(true), Delay: new(delay), DelayFunction: new(fn), MaxDelay: new(time.Minute)}
		if _, _, err := client.Jobs().Register(j, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg("slow", 3, 20*time.Second, "constant")
	reg("quick", 1, time.Second, "constant")
	reg("exp", 2, 10*time.Second, "exponential")
	if err := c.Step(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	allocs := func(job string) []*api.AllocationListStub {
		as, _, err := client.Jobs().Allocations(job, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	slow, exp := allocs("slow"), allocs("exp")
	for _, a := range append(append(slow[:2:2], allocs("quick")...), exp[0]) {
		if err := c.FailAlloc(a.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Step(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.FailAlloc(slow[2].ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	follow := map[string]string{}
	for _, a := range allocs("slow") {
		follow[a.ID] = a.FollowupEvalID
	}
	first, second := follow[slow[0].ID], follow[slow[2].ID]
	if first == "" || follow[slow[1].ID] != first || second == "" || second == first {
		t.Fatalf("follow-ups %v: want the two failed together to share one, the later failure its own", follow)
	}
	for _, id := range []string{first, second} {
		e, _, err := client.Evaluations().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != api.EvalStatusPending || e.TriggeredBy != "alloc-reschedule" {
			t.Errorf("follow-up %s: %s %s", id[:8], e.TriggeredBy, e.Status)
		}
	}
	q := allocs("quick")
	if len(q) != 2 {
		t.Fatalf("quick: %d allocations, want the failed one and its replacement", len(q))
	}
	for _, a := range q {
		if a.FollowupEvalID != "" {
			t.Errorf("quick: %s has follow-up %s; a delay of a second needs none", a.ID[:8], a.FollowupEvalID)
		}
	}
	// Both follow-ups run at their times and place the replacements.
	if err := c.Step(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if as := allocs("slow"); len(as) != 6 {
		t.Errorf("slow: %d allocations, want 3 failed and 3 replacements", len(as))
	}
	// exp[0] was replaced 10 s after it failed; its replacement waits 20 s
	// after failing, exp[1] 10 s: two follow-ups.
	a0, _, err := client.Allocations().Info(exp[0].ID, nil)
	if err != nil || a0.NextAllocation == "" {
		t.Fatalf("exp: %v, no replacement of the first failure", err)
	}
	for _, id := range []string{a0.NextAllocation, exp[1].ID} {
		if err := c.FailAlloc(id, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Step(time.Second); err != nil {
		t.Fatal(err)
	}
	repl, _, err := client.Allocations().Info(a0.NextAllocation, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := client.Allocations().Info(exp[1].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	e1, _, err := client.Evaluations().Info(other.FollowupEvalID, nil)
	if err != nil {
		t.Fatal(err)
	}
	e2, _, err := client.Evaluations().Info(repl.FollowupEvalID, nil)
	if err != nil {
		t.Fatal(err)
	}
	failedAt := repl.TaskStates["t"].FinishedAt
	if e1.ID == e2.ID || !e1.WaitUntil.Equal(failedAt.Add(10*time.Second)) || !e2.WaitUntil.Equal(failedAt.Add(20*time.Second)) {
		t.Fatalf("follow-ups %s until %v and %s until %v; want two, 10 s and 20 s after %v", e1.ID[:8], e1.WaitUntil, e2.ID[:8], e2.WaitUntil, failedAt)
	}
	if e1.TriggeredBy != "alloc-reschedule" || e1.StatusDescription != "created for delayed rescheduling" || e2.TriggeredBy != "alloc-failure" || e2.StatusDescription != "" {
		t.Errorf("follow-ups: %s %q, then %s %q", e1.TriggeredBy, e1.StatusDescription, e2.TriggeredBy, e2.StatusDescription)
	}
	by, _, err := client.Evaluations().Info(e1.PreviousEval, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e2.PreviousEval != by.ID || by.TriggeredBy != "alloc-failure" || by.NextEval != e2.ID {
		t.Errorf("follow-ups after %s (%s, next %s), want both after the failures' evaluation, naming the last", by.ID[:8], by.TriggeredBy, by.NextEval)
	}
}

// auto_revert rolls a failed deployment back to the latest stable version
// once; when the rolled-back version fails too, the stable version has its
// specification and nothing is registered again.
func TestAutoRevertOnce(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	job := func(args string) *api.Job {
		j := serviceJob("rv", 1, 100, 64, 50)
		j.TaskGroups[0].Tasks[0].SetConfig("args", []string{args})
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(30 * time.Second), HealthyDeadline: new(time.Minute),
			ProgressDeadline: new(time.Duration(0)), AutoRevert: new(true)}
		return j
	}
	step := func(d time.Duration) {
		if err := c.Step(d); err != nil {
			t.Fatal(err)
		}
	}
	failVersion := func(v uint64) *api.Deployment {
		t.Helper()
		as, _, err := client.Jobs().Allocations("rv", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.JobVersion == v && a.ClientStatus == api.AllocClientStatusRunning {
				if err := c.FailAlloc(a.ID, ""); err != nil {
					t.Fatal(err)
				}
				full, _, err := client.Allocations().Info(a.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				step(2 * time.Second)
				d, _, err := client.Deployments().Info(full.DeploymentID, nil)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
		}
		t.Fatalf("no running allocation of version %d", v)
		return nil
	}
	if _, _, err := client.Jobs().Register(job("a"), nil); err != nil {
		t.Fatal(err)
	}
	step(time.Minute) // version 0 healthy: stable
	if _, _, err := client.Jobs().Register(job("b"), nil); err != nil {
		t.Fatal(err)
	}
	step(10 * time.Second)
	if d := failVersion(1); d.StatusDescription != "Failed due to unhealthy allocations - rolling back to job version 0" {
		t.Fatalf("version 1: %s %q", d.Status, d.StatusDescription)
	}
	step(10 * time.Second)
	d := failVersion(2)
	if want := "Failed due to unhealthy allocations - not rolling back to stable job version 0 as current job has same specification"; d.Status != api.DeploymentStatusFailed || d.StatusDescription != want {
		t.Errorf("version 2: %s %q, want %q", d.Status, d.StatusDescription, want)
	}
	step(time.Minute)
	if j, _, err := client.Jobs().Info("rv", nil); err != nil || *j.Version != 2 {
		t.Errorf("job after the second failure: %v, version %d, want 2", err, *j.Version)
	}
}

// After a job's deployment failed, a lost allocation of that version is
// still replaced (Nomad's reconciler places lost allocations whatever the
// deployment), while its failed allocation is not rescheduled.
func TestFailedDeploymentReplacesLost(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	j := serviceJob("fl", 2, 100, 64, 50)
	j.Datacenters = []string{"dc1"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(30 * time.Second), HealthyDeadline: new(time.Minute),
		ProgressDeadline: new(time.Duration(0))}
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration) {
		if err := c.Step(d); err != nil {
			t.Fatal(err)
		}
	}
	step(10 * time.Second)
	as, _, err := client.Jobs().Allocations("fl", true, nil)
	if err != nil || len(as) != 2 {
		t.Fatalf("allocations: %v %s", err, fmt.Sprint(len(as)))
	}
	failed, other := as[0], as[1]
	if err := c.FailAlloc(failed.ID, ""); err != nil {
		t.Fatal(err)
	}
	step(10 * time.Second)
	if d, _, err := client.Jobs().LatestDeployment("fl", nil); err != nil || d.Status != api.DeploymentStatusFailed {
		t.Fatalf("deployment after the failure: %v %+v", err, d)
	}
	do(c, func() { c.setNodeStatus(c.nodeByID[other.NodeID], true) })
	step(time.Minute)
	as, _, err = client.Jobs().Allocations("fl", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var replaced, rescheduled bool
	for _, a := range as {
		full, _, err := client.Allocations().Info(a.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		replaced = replaced || (full.PreviousAllocation == other.ID && full.ClientStatus == api.AllocClientStatusRunning)
		rescheduled = rescheduled || full.PreviousAllocation == failed.ID
	}
	if !replaced || rescheduled {
		t.Errorf("after the deployment failed: lost allocation replaced %v (want true), failed one rescheduled %v (want false): %d allocations",
			replaced, rescheduled, len(as))
	}
}

// An allocation lost before it turned healthy gets no health (Nomad's
// client is gone; nothing sets it): its deployment, without a progress
// deadline, does not fail, and the replacement completes it.
func TestLostBeforeHealthyHasNoHealth(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	j := serviceJob("lh", 1, 100, 64, 50)
	j.Datacenters = []string{"dc1"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(30 * time.Second), HealthyDeadline: new(time.Minute),
		ProgressDeadline: new(time.Duration(0))}
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	as, _, err := client.Jobs().Allocations("lh", true, nil)
	if err != nil || len(as) != 1 || as[0].ClientStatus != api.AllocClientStatusRunning {
		t.Fatalf("allocations: %v %d", err, len(as))
	}
	lost := as[0]
	do(c, func() { c.setNodeStatus(c.nodeByID[lost.NodeID], true) })
	if err := c.Step(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	full, _, err := client.Allocations().Info(lost.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if full.ClientStatus != api.AllocClientStatusLost || (full.DeploymentStatus != nil && full.DeploymentStatus.Healthy != nil) {
		t.Errorf("lost allocation: %s, deployment status %+v; want lost with no health", full.ClientStatus, full.DeploymentStatus)
	}
	d, _, err := client.Jobs().LatestDeployment("lh", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.TaskGroups["g"]; d.Status != api.DeploymentStatusSuccessful || st.UnhealthyAllocs != 0 || st.HealthyAllocs != 1 {
		t.Errorf("deployment: %s %q, group %+v; want successful, 1 healthy, none unhealthy", d.Status, d.StatusDescription, st)
	}
}
