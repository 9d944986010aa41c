package sim_test

// The fidelity suite checks, through the real nomad/api client, every call
// foreshape's act half makes (job register with priority, constraints,
// affinities and meta; scale and its refusal during a deployment;
// allocation stop and where the replacement lands; node drain with a
// deadline honouring the job's migrate block; eligibility; deregister and
// purge; blocking queries on allocations and deployments; the error codes
// and bodies of the failure cases) against the simulator, and against a
// real Nomad when NOMAD_ADDR is set. Where the two disagree the simulator
// is wrong.
//
// The real Nomad must be a dev agent with raw_exec enabled and one ready
// node, which the checks drain and fill for a while (they restore it):
// use one no other test relies on meanwhile.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/plugins/source"
	nomadsource "github.com/foreshape/foreshape/plugins/source/nomad"
	"github.com/foreshape/foreshape/sim"
)

// fidelityScenario is shaped like a Nomad dev agent: one ready node in dc1,
// node pool default, no node class.
const fidelityScenario = `
name    = "fidelity"
seed    = 11
start   = "2026-01-05T09:00:00Z"
tick    = "1s"
startup = "1s"

datacenter "dc1" {
  bandwidth = 1000
}

nodes "vm" {
  datacenter = "dc1"
  count      = 1
  cpu        = 4600
  memory     = 24105
  iops       = 1000
  cores      = 2
}
`

// simSpeed runs the simulator's clock this many times faster than the wall.
const simSpeed = 10

// cluster is the Nomad a check runs against.
type cluster struct {
	name   string
	client *api.Client
	token  string       // client's token ("" on the simulator)
	sim    *sim.Cluster // nil for a real Nomad
	node   *api.Node    // the ready node the checks use
	pin    bool         // register puts jobs on node alone (pinned)
}

var jobSeq atomic.Int64

// jobID returns a job ID unique to this run.
func (c *cluster) jobID(what string) string {
	return fmt.Sprintf("fidelity-%s-%d-%d", what, os.Getpid(), jobSeq.Add(1))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// forEachNomad runs check against the simulator and, when NOMAD_ADDR is
// set, against that Nomad.
func forEachNomad(t *testing.T, check func(t *testing.T, c *cluster)) {
	forEachNomadIn(t, fidelityScenario, nil, check)
}

// forEachNomadIn is forEachNomad with the simulator running scenario.
// lacks, when not nil, says what a real Nomad's nodes lack for the check
// ("" when nothing), and the check skips that Nomad saying so.
func forEachNomadIn(t *testing.T, scenario string, lacks func([]*api.NodeListStub) string, check func(t *testing.T, c *cluster)) {
	if os.Getenv("NOMAD_ADDR") == "" {
		// Against its own simulator alone, a check shares nothing with
		// another: it runs in parallel (a real Nomad's one node is
		// shared, so the checks against it run one at a time).
		t.Parallel()
	}
	t.Run("sim", func(t *testing.T) {
		sc, err := sim.ParseScenario([]byte(scenario), "fidelity.hcl")
		if err != nil {
			t.Fatal(err)
		}
		s, err := sim.New(sc, sim.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logWriter{t}, Level: hclog.Info})})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptestServer(t, s.Handler())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx, simSpeed) }()
		t.Cleanup(func() { cancel(); <-done })
		check(t, newCluster(t, "sim", srv, s))
	})
	t.Run("nomad", func(t *testing.T) {
		addr := os.Getenv("NOMAD_ADDR")
		if addr == "" {
			t.Skip("NOMAD_ADDR is not set: checked against the simulator only. Set it to a Nomad dev agent with raw_exec " +
				"enabled (its one node is drained and filled for a while) to check the simulator against a real Nomad.")
		}
		if lacks != nil {
			client := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
			nodes, _, err := client.Nodes().List(nil)
			if err != nil {
				t.Fatalf("list nodes of %s: %v", addr, err)
			}
			if why := lacks(nodes); why != "" {
				t.Skipf("the Nomad at NOMAD_ADDR=%s %s: checked against the simulator only.", addr, why)
			}
		}
		check(t, newCluster(t, "nomad", addr, nil))
	})
}

func newCluster(t *testing.T, name, addr string, s *sim.Cluster) *cluster {
	t.Helper()
	// The checks drive Nomad itself (register, drain, stop...): a real
	// Nomad with ACLs needs a management token (realnomad.SetupToken).
	token := ""
	if s == nil {
		token = realnomad.SetupToken(t, addr)
	}
	client := realnomad.Client(t, addr, token)
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatalf("list nodes of %s: %v", addr, err)
	}
	for _, n := range nodes {
		if n.Status == api.NodeStatusReady && n.SchedulingEligibility == api.NodeSchedulingEligible && n.Datacenter == "dc1" {
			node, _, err := client.Nodes().Info(n.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			return &cluster{name: name, client: client, token: token, sim: s, node: node}
		}
	}
	t.Fatalf("%s has no ready, eligible node in dc1", addr)
	return nil
}

// sleepJob is a service job of one group "g" running raw_exec sleeps of
// cpu MHz and mem MB each.
func sleepJob(id string, count, cpu, mem, priority int) *api.Job {
	j := api.NewServiceJob(id, id, "global", priority)
	j.Datacenters = []string{"dc1"}
	tg := api.NewTaskGroup("g", count)
	tg.AddTask(api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
		Require(&api.Resources{CPU: new(cpu), MemoryMB: new(mem)}))
	j.AddTaskGroup(tg)
	// Short deployments and no restarts keep the checks quick.
	j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second),
		HealthyDeadline: new(30 * time.Second), ProgressDeadline: new(time.Minute)}
	return j
}

// register registers j and purges it when the test ends.
// drainableJob registers a job of n sleeping allocations whose migrate
// block moves one at a time (and whose replacements have nowhere to go on
// the one node, so a drain runs until its deadline), waits until they
// run, and at the test's end cancels any drain of the node and makes it
// eligible again. It returns the job's ID.
func (c *cluster) drainableJob(t *testing.T, name string, n int) string {
	t.Helper()
	id := c.jobID(name)
	j := sleepJob(id, n, 50, 32, 50)
	j.TaskGroups[0].Migrate = &api.MigrateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second),
		HealthyDeadline: new(20 * time.Second)}
	c.register(t, j)
	c.waitAllocs(t, id, fmt.Sprintf("%d running", n), func(as []*api.AllocationListStub) bool { return count(as, running) == n })
	c.giveBackAtEnd(t)
	return id
}

// giveBackAtEnd cancels any drain of the check's node and makes it
// eligible again when the test ends.
func (c *cluster) giveBackAtEnd(t *testing.T) {
	t.Cleanup(func() {
		_, _ = c.client.Nodes().UpdateDrain(c.node.ID, nil, true, nil)
		_, _ = c.client.Nodes().ToggleEligibility(c.node.ID, true, nil)
	})
}

func (c *cluster) register(t *testing.T, j *api.Job) *api.JobRegisterResponse {
	t.Helper()
	if c.pin && slices.Equal(j.Datacenters, []string{"dc1"}) {
		j.Datacenters = []string{c.node.Datacenter}
		j.Constrain(api.NewConstraint("${node.unique.id}", "=", c.node.ID))
	}
	resp, _, err := c.client.Jobs().Register(j, nil)
	if err != nil {
		t.Fatalf("register %s: %v", *j.ID, err)
	}
	t.Cleanup(func() { _, _, _ = c.client.Jobs().Deregister(*j.ID, true, nil) })
	return resp
}

const waitLimit = 90 * time.Second

// waitAllocs follows the job's allocations with blocking queries until ok
// holds, and returns them.
func (c *cluster) waitAllocs(t *testing.T, jobID, what string, ok func([]*api.AllocationListStub) bool) []*api.AllocationListStub {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		allocs, meta, err := c.client.Jobs().Allocations(jobID, true, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatalf("allocations of %s: %v", jobID, err)
		}
		if ok(allocs) {
			return allocs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: allocations of %s never %s: %s", c.name, jobID, what, describe(allocs))
		}
		index = meta.LastIndex
	}
}

// waitJob follows the job with blocking queries until ok holds.
func (c *cluster) waitJob(t *testing.T, jobID, what string, ok func(*api.Job) bool) *api.Job {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		j, meta, err := c.client.Jobs().Info(jobID, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatalf("job %s: %v", jobID, err)
		}
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: job %s never %s (status %s)", c.name, jobID, what, *j.Status)
		}
		index = meta.LastIndex
	}
}

// waitNode follows the check's node until ok holds.
func (c *cluster) waitNode(t *testing.T, what string, ok func(*api.Node) bool) *api.Node {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		n, meta, err := c.client.Nodes().Info(c.node.ID, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: node never %s: drain %+v, eligibility %s, last drain %+v", c.name, what, n.DrainStrategy, n.SchedulingEligibility, n.LastDrain)
		}
		index = meta.LastIndex
	}
}

func describe(allocs []*api.AllocationListStub) string {
	var parts []string
	for _, a := range allocs {
		parts = append(parts, fmt.Sprintf("%s %s/%s on %s", a.ID[:8], a.DesiredStatus, a.ClientStatus, a.NodeName))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func count(allocs []*api.AllocationListStub, f func(*api.AllocationListStub) bool) int {
	n := 0
	for _, a := range allocs {
		if f(a) {
			n++
		}
	}
	return n
}

func running(a *api.AllocationListStub) bool {
	return a.DesiredStatus == api.AllocDesiredStatusRun && a.ClientStatus == api.AllocClientStatusRunning
}

func stopping(a *api.AllocationListStub) bool { return a.DesiredStatus == api.AllocDesiredStatusStop }

// response is a failed call's status code and body.
func response(err error) (int, string) {
	var ure api.UnexpectedResponseError
	if errors.As(err, &ure) {
		return ure.StatusCode(), strings.TrimSpace(ure.Body())
	}
	return 0, ""
}

// A job registers with its priority, constraints, affinities and meta, and
// its allocations run on the node.
func TestFidelityRegister(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("register")
		j := sleepJob(id, 2, 100, 64, 30)
		j.Meta = map[string]string{"foreshape_owner": "cluster-1", "foreshape_request": "mr-1"}
		j.Constraints = []*api.Constraint{
			api.NewConstraint("${node.datacenter}", "=", "dc1"),
			api.NewConstraint("${node.pool}", "=", "default"),
			api.NewConstraint("${node.class}", "!=", "gpu"),
		}
		j.Affinities = []*api.Affinity{api.NewAffinity("${node.unique.id}", "=", c.node.ID, 50)}
		resp := c.register(t, j)
		if resp.EvalID == "" || resp.JobModifyIndex == 0 {
			t.Errorf("register response = %+v, want an evaluation and an index", resp)
		}
		got, _, err := c.client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Priority != 30 || got.Meta["foreshape_request"] != "mr-1" || *got.Type != api.JobTypeService || *got.Version != 0 {
			t.Errorf("job = priority %d meta %v type %s version %d", *got.Priority, got.Meta, *got.Type, *got.Version)
		}
		var cons []string
		for _, k := range got.Constraints {
			cons = append(cons, k.LTarget+" "+k.Operand+" "+k.RTarget)
		}
		if fmt.Sprint(cons) != "[${node.datacenter} = dc1 ${node.pool} = default ${node.class} != gpu]" {
			t.Errorf("constraints = %v", cons)
		}
		if len(got.Affinities) != 1 || got.Affinities[0].RTarget != c.node.ID || *got.Affinities[0].Weight != 50 {
			t.Errorf("affinities = %+v", got.Affinities)
		}
		allocs := c.waitAllocs(t, id, "ran twice", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		for _, a := range allocs {
			if a.NodeID != c.node.ID || a.JobVersion != 0 || a.TaskGroup != "g" {
				t.Errorf("allocation %+v", a)
			}
		}
		c.waitJob(t, id, "ran", func(j *api.Job) bool { return *j.Status == "running" })

		// Adding an affinity (the affinity strategy) updates the job in
		// place: a new version, the same allocations, which now carry it.
		before := map[string]bool{}
		for _, a := range allocs {
			before[a.ID] = true
		}
		j.Affinities = append(j.Affinities, api.NewAffinity("${node.datacenter}", "=", "dc1", 80))
		if _, _, err := c.client.Jobs().Register(j, nil); err != nil {
			t.Fatal(err)
		}
		allocs = c.waitAllocs(t, id, "moved to version 1", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == 1 }) == 2
		})
		for _, a := range allocs {
			if !before[a.ID] {
				t.Errorf("an affinity change replaced allocations: %s", describe(allocs))
				break
			}
		}

		// Registering the same job again with EnforceIndex and a stale index
		// is refused.
		_, _, err = c.client.Jobs().EnforceRegister(j, 1, nil)
		if code, body := response(err); code != http.StatusInternalServerError ||
			!strings.Contains(body, "Enforcing job modify index 1: job exists with conflicting job modify index") {
			t.Errorf("stale EnforceIndex: %d %q", code, body)
		}
	})
}

// A placeholder (a low-priority job of sleeps) holds capacity like any job:
// what does not fit beside it waits in a blocked evaluation, and is placed
// as soon as the placeholder is scaled down.
func TestFidelityPlaceholderHoldsCapacity(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		free := freeMemory(t, c)
		hold := c.jobID("placeholder")
		ph := sleepJob(hold, 1, 50, free-200, 10)
		ph.Meta = map[string]string{"foreshape_reservation": "res-1"}
		ph.Constraints = []*api.Constraint{api.NewConstraint("${node.datacenter}", "=", "dc1")}
		// No update block: a deployment would block the hand-over by
		// scaling until it ends.
		ph.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, ph)
		c.waitAllocs(t, hold, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		work := c.jobID("work")
		c.register(t, sleepJob(work, 1, 50, 400, 50))
		// The work does not fit: a blocked evaluation waits for capacity.
		sum := waitSummary(t, c, work, func(s *api.JobSummary) bool { return s.Summary["g"].Queued == 1 })
		if sum.Summary["g"].Running != 0 {
			t.Errorf("summary = %+v", sum.Summary["g"])
		}
		evals, _, err := c.client.Jobs().Evaluations(work, nil)
		if err != nil {
			t.Fatal(err)
		}
		var blocked, failed bool
		for _, e := range evals {
			blocked = blocked || e.Status == api.EvalStatusBlocked
			if m := e.FailedTGAllocs["g"]; m != nil && m.DimensionExhausted["memory"] > 0 {
				failed = true
			}
		}
		if !blocked || !failed {
			t.Errorf("evaluations of the work: blocked %v, memory exhausted %v: %s", blocked, failed, describeEvals(evals))
		}
		// Hand-over: scale the placeholder down; the work is placed.
		if _, _, err := c.client.Jobs().Scale(hold, "g", new(0), "hand over to "+work, false, nil, nil); err != nil {
			t.Fatalf("scale the placeholder down: %v", err)
		}
		c.waitAllocs(t, work, "ran after the hand-over", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		c.waitAllocs(t, hold, "stopped", func(as []*api.AllocationListStub) bool { return count(as, stopping) == 1 })
	})
}

// freeMemory is the check node's memory not held by running allocations.
func freeMemory(t *testing.T, c *cluster) int {
	t.Helper()
	_, mem := freeOn(t, c, c.node.ID)
	return mem
}

// freeOn is a node's CPU (MHz) and memory (MB) not held by running
// allocations.
func freeOn(t *testing.T, c *cluster, nodeID string) (cpu, mem int) {
	t.Helper()
	n, _, err := c.client.Nodes().Info(nodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	cpu, mem = int(n.NodeResources.Cpu.CpuShares), int(n.NodeResources.Memory.MemoryMB)
	if n.ReservedResources != nil {
		cpu -= int(n.ReservedResources.Cpu.CpuShares)
		mem -= int(n.ReservedResources.Memory.MemoryMB)
	}
	allocs, _, err := c.client.Nodes().Allocations(nodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if a.DesiredStatus == api.AllocDesiredStatusRun && !a.ClientTerminalStatus() && a.AllocatedResources != nil {
			for _, tr := range a.AllocatedResources.Tasks {
				cpu -= int(tr.Cpu.CpuShares)
				mem -= int(tr.Memory.MemoryMB)
			}
		}
	}
	return cpu, mem
}

func waitSummary(t *testing.T, c *cluster, jobID string, ok func(*api.JobSummary) bool) *api.JobSummary {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		s, meta, err := c.client.Jobs().Summary(jobID, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: summary of %s never as wanted: %+v", c.name, jobID, s.Summary)
		}
		index = meta.LastIndex
	}
}

func describeEvals(evals []*api.Evaluation) string {
	var parts []string
	for _, e := range evals {
		parts = append(parts, fmt.Sprintf("%s %s by %s failed %v", e.ID[:8], e.Status, e.TriggeredBy, e.FailedTGAllocs))
	}
	return strings.Join(parts, "; ")
}

// Scaling is refused while the job's deployment is active, with no
// scaling event; after the deployment it raises the job's version and
// records the event with foreshape's message and meta.
func TestFidelityScale(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("scale")
		j := sleepJob(id, 1, 50, 32, 50)
		j.TaskGroups[0].Scaling = &api.ScalingPolicy{Min: new(int64(0)), Max: new(int64(3))}
		j.Update.MinHealthyTime = new(5 * time.Second)
		c.register(t, j)
		// The scheduler creates the deployment when it places the job.
		d := waitLatestDeployment(t, c, id)
		_, _, err := c.client.Jobs().Scale(id, "g", new(2), "early", false, map[string]any{"foreshape_request_id": "s-1"}, nil)
		if code, body := response(err); code != http.StatusBadRequest || body != "job scaling blocked due to active deployment" {
			t.Fatalf("scale during the deployment: %d %q (deployment %s)", code, body, d.Status)
		}
		st, _, err := c.client.Jobs().ScaleStatus(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if evs := st.TaskGroups["g"].Events; len(evs) != 0 {
			t.Errorf("a refused scale left events: %+v", evs)
		}
		// Follow the deployment with blocking queries until it ends.
		d = waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d.Status != api.DeploymentStatusSuccessful {
			t.Fatalf("deployment ended %s: %s", d.Status, d.StatusDescription)
		}
		resp, _, err := c.client.Jobs().Scale(id, "g", new(2), "p90 over the line", false, map[string]any{"foreshape_request_id": "s-1"}, nil)
		if err != nil {
			t.Fatalf("scale after the deployment: %v", err)
		}
		if resp.EvalID == "" {
			t.Errorf("scale response = %+v", resp)
		}
		got, _, _ := c.client.Jobs().Info(id, nil)
		if *got.Version != 1 || *got.TaskGroups[0].Count != 2 {
			t.Errorf("after scaling: version %d count %d, want 1 and 2", *got.Version, *got.TaskGroups[0].Count)
		}
		st, _, _ = c.client.Jobs().ScaleStatus(id, nil)
		evs := st.TaskGroups["g"].Events
		if len(evs) != 1 || evs[0].Count == nil || *evs[0].Count != 2 || evs[0].PreviousCount != 1 || evs[0].Error ||
			evs[0].Message != "p90 over the line" || evs[0].Meta["foreshape_request_id"] != "s-1" || evs[0].EvalID == nil {
			t.Errorf("scaling events = %+v", evs)
		}
		c.waitAllocs(t, id, "ran twice", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		for _, tc := range []struct {
			group string
			count int
			code  int
			body  string
		}{
			{"g", 4, 400, "group count was greater than scaling policy maximum: 4 > 3"},
			{"h", 1, 400, `task group "h" specified for scaling does not exist in job`},
		} {
			_, _, err := c.client.Jobs().Scale(id, tc.group, new(tc.count), "", false, nil, nil)
			if code, body := response(err); code != tc.code || body != tc.body {
				t.Errorf("scale %s to %d: %d %q, want %d %q", tc.group, tc.count, code, body, tc.code, tc.body)
			}
		}
	})
}

func waitLatestDeployment(t *testing.T, c *cluster, jobID string) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		d, meta, err := c.client.Jobs().LatestDeployment(jobID, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: job %s has no deployment", c.name, jobID)
		}
		index = meta.LastIndex
	}
}

func waitDeployment(t *testing.T, c *cluster, id string, ok func(*api.Deployment) bool) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		d, meta, err := c.client.Deployments().Info(id, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: deployment %s stayed %s", c.name, id, d.Status)
		}
		if meta.LastIndex < index {
			t.Fatalf("blocking query went back: index %d after %d", meta.LastIndex, index)
		}
		index = meta.LastIndex
	}
}

// Stopping an allocation migrates it: the old one is told to stop with a
// migrate transition and its replacement, linked both ways, runs on an
// eligible node.
func TestFidelityStopAllocation(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("stop")
		c.register(t, sleepJob(id, 2, 50, 32, 50))
		allocs := c.waitAllocs(t, id, "ran twice", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		old := allocs[0].ID
		resp, err := c.client.Allocations().Stop(&api.Allocation{ID: old}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.EvalID == "" {
			t.Errorf("stop response = %+v", resp)
		}
		// The stop marks the allocation for migration at once; the
		// evaluation that stops it and places its replacement runs after
		// the answer (in Nomad, milliseconds later).
		a, _, err := c.client.Allocations().Info(old, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.DesiredTransition.Migrate == nil || !*a.DesiredTransition.Migrate {
			t.Errorf("stopped allocation: transition %+v, want migrate", a.DesiredTransition)
		}
		allocs = c.waitAllocs(t, id, "replaced the stopped one", func(as []*api.AllocationListStub) bool {
			return count(as, running) == 2 && count(as, func(x *api.AllocationListStub) bool {
				return x.ID == old && x.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		full := make(map[string]*api.Allocation)
		for _, x := range allocs {
			f, _, err := c.client.Allocations().Info(x.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			full[x.ID] = f
		}
		var replacement *api.Allocation
		for _, f := range full {
			if f.PreviousAllocation == old {
				replacement = f
			}
		}
		if replacement == nil {
			t.Fatalf("no allocation names %s as its previous one: %s", old[:8], describe(allocs))
		}
		if full[old].NextAllocation != replacement.ID || replacement.NodeID != c.node.ID || replacement.ClientStatus != api.AllocClientStatusRunning {
			t.Errorf("replacement %s on %s (%s); old's next %q", replacement.ID[:8], replacement.NodeName, replacement.ClientStatus, full[old].NextAllocation)
		}
		// Its client reports it as any stop ends.
		if o := full[old]; o.ClientDescription != "All tasks have completed" || o.DesiredDescription != "alloc is being migrated" {
			t.Errorf("the migrated allocation: client %q, desired %q; want All tasks have completed, alloc is being migrated", o.ClientDescription, o.DesiredDescription)
		}
	})
}

// An allocation's AllocModifyIndex moves when a server changes it (its
// placement, a stop), not with the client's updates, which move only its
// ModifyIndex: measured on Nomad 2.0.6, created at 188, running with
// ModifyIndex 207 and AllocModifyIndex still 188; stopped through the API,
// both 218; complete, ModifyIndex 220 and AllocModifyIndex 218.
func TestFidelityAllocModifyIndex(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("allocidx")
		c.register(t, sleepJob(id, 1, 50, 32, 50))
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		a, _, err := c.client.Allocations().Info(allocs[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.AllocModifyIndex != a.CreateIndex || a.ModifyIndex <= a.CreateIndex {
			t.Errorf("running: create %d, modify %d, alloc modify %d; want alloc modify = create < modify (the client's updates)",
				a.CreateIndex, a.ModifyIndex, a.AllocModifyIndex)
		}
		if _, err := c.client.Allocations().Stop(&api.Allocation{ID: a.ID}, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, id, "stopped the old one", func(as []*api.AllocationListStub) bool {
			return count(as, func(x *api.AllocationListStub) bool {
				return x.ID == a.ID && x.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		stopped, _, err := c.client.Allocations().Info(a.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if stopped.AllocModifyIndex <= a.ModifyIndex || stopped.ModifyIndex <= stopped.AllocModifyIndex {
			t.Errorf("stopped and complete: modify %d, alloc modify %d (running: modify %d); want running's modify < alloc modify (the stop) < modify (the client's complete)",
				stopped.ModifyIndex, stopped.AllocModifyIndex, a.ModifyIndex)
		}
	})
}

// A node taken out of scheduling keeps what runs on it, but a stopped
// allocation's replacement is not placed there: with no other node it
// waits, queued, until the node is eligible again. (foreshape takes a
// spread's source node out of scheduling while the spread runs, because
// Nomad does not steer a stopped allocation's replacement away from the
// node it left.)
func TestFidelityStopOnIneligibleNode(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("cordon")
		c.register(t, sleepJob(id, 2, 50, 32, 50))
		allocs := c.waitAllocs(t, id, "ran twice", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		t.Cleanup(func() { _, _ = c.client.Nodes().ToggleEligibility(c.node.ID, true, nil) })
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, false, nil); err != nil {
			t.Fatal(err)
		}
		n := c.waitNode(t, "ineligible", func(n *api.Node) bool { return n.SchedulingEligibility == api.NodeSchedulingIneligible })
		if n.Drain || n.DrainStrategy != nil {
			t.Errorf("ineligible node drains: drain %v strategy %+v", n.Drain, n.DrainStrategy)
		}
		old := allocs[0].ID
		if _, err := c.client.Allocations().Stop(&api.Allocation{ID: old}, nil); err != nil {
			t.Fatal(err)
		}
		allocs = c.waitAllocs(t, id, "stopped one", func(as []*api.AllocationListStub) bool {
			return count(as, running) == 1 && count(as, func(x *api.AllocationListStub) bool {
				return x.ID == old && x.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		if len(allocs) != 2 {
			t.Errorf("a replacement was placed on the ineligible node: %s", describe(allocs))
		}
		waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["g"].Queued == 1 && s.Summary["g"].Running == 1 })
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, true, nil); err != nil {
			t.Fatal(err)
		}
		allocs = c.waitAllocs(t, id, "replaced the stopped one", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		for _, x := range allocs {
			if running(x) && x.NodeID != c.node.ID {
				t.Errorf("replacement %s on %s, want %s", x.ID[:8], x.NodeName, c.node.Name)
			}
		}
	})
}

// A drain with a deadline stops the job's allocations as its migrate block
// allows (one at a time here, and the replacements have nowhere to go), forces
// the rest at the deadline, leaves the node ineligible when it completes,
// and refuses eligibility while it runs.
func TestFidelityDrain(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.drainableJob(t, "drain", 3)
		const deadline = 15 * time.Second
		resp, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: deadline}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.NodeModifyIndex == 0 {
			t.Errorf("drain response = %+v", resp)
		}
		n, _, err := c.client.Nodes().Info(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.DrainStrategy == nil || n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain == nil ||
			n.LastDrain.Status != api.DrainStatusDraining || !n.Drain {
			t.Fatalf("draining node: strategy %+v eligibility %s last %+v", n.DrainStrategy, n.SchedulingEligibility, n.LastDrain)
		}
		if got := n.DrainStrategy.ForceDeadline.Sub(n.LastDrain.StartedAt); got < deadline-time.Second || got > deadline+time.Second {
			t.Errorf("force deadline %v after the drain started, want %v", got, deadline)
		}
		_, err = c.client.Nodes().ToggleEligibility(c.node.ID, true, nil)
		if code, body := response(err); code != http.StatusInternalServerError || !strings.Contains(body, "can not set node's scheduling eligibility to eligible while it is draining") {
			t.Errorf("eligible while draining: %d %q", code, body)
		}
		// Before the deadline the migrate block's max_parallel holds: one
		// allocation is migrated, its replacement cannot be placed, so no
		// second one is stopped.
		allocs := c.waitAllocs(t, id, "began migrating", func(as []*api.AllocationListStub) bool { return count(as, stopping) >= 1 })
		if n := count(allocs, stopping); n != 1 {
			t.Errorf("%d allocations stopped at once, want 1 (migrate max_parallel): %s", n, describe(allocs))
		}
		// At the deadline the rest are stopped and the drain completes; the
		// node stays ineligible.
		c.waitAllocs(t, id, "all stopped", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return a.NodeID == c.node.ID && running(a) }) == 0
		})
		n = c.waitNode(t, "finished draining", func(n *api.Node) bool { return n.DrainStrategy == nil })
		if n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain.Status != api.DrainStatusComplete || n.Drain {
			t.Errorf("drained node: eligibility %s last %+v", n.SchedulingEligibility, n.LastDrain)
		}
		waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["g"].Queued == 3 && s.Summary["g"].Running == 0 })
		// Each node-drain evaluation that could not place names its first
		// failed placement's metric, no node of dc1 ready, and the rest as
		// coalesced: none for the one migration before the deadline, two
		// for the three queued at it.
		evs, _, err := c.client.Jobs().Evaluations(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(evs, func(a, b *api.Evaluation) int { return cmp.Compare(a.CreateIndex, b.CreateIndex) })
		var coalesced []int
		for _, e := range evs {
			if m := e.FailedTGAllocs["g"]; e.TriggeredBy == "node-drain" && m != nil {
				coalesced = append(coalesced, m.CoalescedFailures)
				if m.NodesInPool != 0 || m.NodesEvaluated != 0 || len(m.NodesAvailable) != 0 {
					t.Errorf("node-drain evaluation %s's failed metric: in pool %d, evaluated %d, available %v; want none",
						e.ID[:8], m.NodesInPool, m.NodesEvaluated, m.NodesAvailable)
				}
			}
		}
		if !slices.Equal(coalesced, []int{0, 2}) {
			t.Errorf("node-drain evaluations' coalesced failures %v, want [0 2]: %s", coalesced, describeEvals(evs))
		}
		// Eligible again: the queued replacements are placed.
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, true, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, id, "ran again", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })
	})
}

// Deregistering stops a job and keeps it readable as stopped; purging
// forgets it; either of an unknown job answers 200 without an evaluation.
func TestFidelityDeregister(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("dereg")
		c.register(t, sleepJob(id, 1, 50, 32, 50))
		c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		evalID, _, err := c.client.Jobs().Deregister(id, false, nil)
		if err != nil || evalID == "" {
			t.Fatalf("deregister: %q %v", evalID, err)
		}
		j := c.waitJob(t, id, "died", func(j *api.Job) bool { return *j.Status == "dead" })
		if !*j.Stop {
			t.Errorf("deregistered job: stop %v", *j.Stop)
		}
		c.waitAllocs(t, id, "stopped", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool {
				return stopping(a) && a.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		if _, _, err := c.client.Jobs().Deregister(id, true, nil); err != nil {
			t.Fatalf("purge: %v", err)
		}
		if _, _, err := c.client.Jobs().Info(id, nil); func() bool { code, body := response(err); return code != 404 || body != "job not found" }() {
			t.Errorf("read a purged job: %v", err)
		}
		for _, purge := range []bool{false, true} {
			evalID, _, err := c.client.Jobs().Deregister(c.jobID("never"), purge, nil)
			if err != nil || evalID != "" {
				t.Errorf("deregister an unknown job (purge %v): eval %q, %v; want 200 without an evaluation", purge, evalID, err)
			}
		}
	})
}

// Blocking queries on allocations answer when they change, and after the
// wait with the same index when they do not.
func TestFidelityBlockingAllocations(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		_, meta, err := c.client.Allocations().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		start := meta.LastIndex
		_, meta, err = c.client.Allocations().List(&api.QueryOptions{WaitIndex: start, WaitTime: 300 * time.Millisecond})
		if err != nil || meta.LastIndex != start {
			t.Errorf("unchanged allocations: index %d, %v; want %d", meta.LastIndex, err, start)
		}
		done := make(chan uint64, 1)
		go func() {
			_, meta, err := c.client.Allocations().List(&api.QueryOptions{WaitIndex: start, WaitTime: time.Minute})
			if err != nil {
				t.Error(err)
			}
			done <- meta.LastIndex
		}()
		id := c.jobID("block")
		c.register(t, sleepJob(id, 1, 50, 32, 50))
		if idx := <-done; idx <= start {
			t.Errorf("blocking query after a registration: index %d, want > %d", idx, start)
		}
	})
}

// Failure cases answer with Nomad's codes and bodies.
func TestFidelityErrors(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		const zero = "00000000-0000-0000-0000-000000000000"
		for _, tc := range []struct {
			method, path, body string
			code               int
			want               string
		}{
			{"GET", "/v1/job/nope", "", 404, "job not found"},
			{"GET", "/v1/job/nope/scale", "", 404, "job not found"},
			{"GET", "/v1/job/nope/deployment", "", 200, "null"},
			{"GET", "/v1/job/nope/allocations", "", 200, "[]"},
			{"GET", "/v1/allocation/" + zero, "", 404, "alloc not found"},
			{"GET", "/v1/allocation/nope", "", 500, "alloc lookup failed: index error: UUID must be 36 characters"},
			{"POST", "/v1/allocation/" + zero + "/stop", "", 404, "allocation not found"},
			{"GET", "/v1/node/" + zero, "", 404, "node not found"},
			{"GET", "/v1/node/" + zero + "/allocations", "", 200, "[]"},
			{"POST", "/v1/node/" + zero + "/drain", `{"DrainSpec":{"Deadline":60000000000}}`, 500, "node not found"},
			{"POST", "/v1/node/" + zero + "/eligibility", `{"Eligibility":"eligible"}`, 500, "node not found"},
			{"GET", "/v1/deployment/" + zero, "", 404, "deployment not found"},
			{"POST", "/v1/job/nope/scale", `{"Count":3,"Target":{"Group":"g"}}`, 404, `job "nope" not found`},
			{"POST", "/v1/jobs", `{}`, 400, "Job must be specified"},
			{"POST", "/v1/jobs", `{"Job":`, 400, "unexpected EOF"},
			{"POST", "/v1/jobs", `{"Job":{"ID":"fidelity-bad","Name":"fidelity-bad","Type":"service","Datacenters":["dc1"]}}`, 500, "1 error occurred:\n\t* Missing job task groups"},
			{"POST", "/v1/jobs", `{"Job":{"Name":"x"}}`, 400, "Job ID hasn't been provided"},
			{"POST", "/v1/jobs", badJob(`"ID":""`, ""), 500, "1 error occurred:\n\t* Missing job ID"},
			{"POST", "/v1/jobs", badJob(`"Priority":101`, ""), 500, "1 error occurred:\n\t* job priority must be between [1, 100]"},
			{"POST", "/v1/jobs", badJob(`"Type":"weird"`, ""), 500, "1 error occurred:\n\t* Invalid job type: \"weird\""},
			{"POST", "/v1/jobs", badJob("", `"EphemeralDisk":{"SizeMB":10}`), 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* " +
				"Task t validation failed: 1 error occurred:\n\t* 1 error occurred:\n\t* log storage (100 MB) must be less than requested disk capacity (10 MB)"},
			{"POST", "/v1/jobs", badJob("", `"Update":{"MinHealthyTime":30000000000,"HealthyDeadline":30000000000}`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Minimum healthy time must be less than healthy deadline: 30s > 30s"},
			{"POST", "/v1/jobs", badJob("", `"Update":{"MinHealthyTime":-1,"HealthyDeadline":600000000000,"ProgressDeadline":300000000000}`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 2 errors occurred:\n\t* Minimum healthy time may not be less than zero: -1ns\n\t* " +
					"Healthy deadline must be less than progress deadline: 10m0s > 5m0s"},
			{"POST", "/v1/jobs", badJob("", `"Migrate":{"MaxParallel":1,"HealthCheck":"checks","MinHealthyTime":5000000000,"HealthyDeadline":3000000000}`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* MinHealthyTime must be less than HealthyDeadline"},
			{"POST", "/v1/jobs", badJob("", `"Disconnect":{"LostAfter":-1}`), 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* lost_after cannot be a negative duration"},
			{"POST", "/v1/jobs", badJob("", `"Disconnect":{"StopOnClientAfter":-1}`), 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* stop_after cannot be a negative duration"},
			{"POST", "/v1/jobs", badJob("", `"Disconnect":{"LostAfter":60000000000,"StopOnClientAfter":30000000000}`), 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Disconnect cannot be configured with both lost_after and stop_after"},
			{"POST", "/v1/jobs", `{"Job":{"ID":"fidelity-bad","Name":"x","Type":"system","Datacenters":["dc1"],"TaskGroups":[{"Disconnect":{"StopOnClientAfter":30000000000},` + sleepGroup[1:] + `]}}`, 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* stop_after can only be used with service or batch job types"},
			{"POST", "/v1/jobs", badJob("", `"Count":-1`), 500, "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Task group count can't be negative"},
			{"POST", "/v1/jobs", badJob("", `"Affinities":[{"LTarget":"${node.datacenter}","RTarget":"dc1","Operand":"=","Weight":0}]`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Affinity 1 validation failed: 1 error occurred:\n\t* Affinity weight cannot be zero"},
			{"POST", "/v1/jobs", badJob("", `"Affinities":[{"LTarget":"${node.datacenter}","RTarget":"dc1","Operand":"=","Weight":101}]`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Affinity 1 validation failed: 1 error occurred:\n\t* Affinity weight must be within the range [-100,100]"},
			{"POST", "/v1/jobs", badJob("", `"Affinities":[{"LTarget":"${node.datacenter}","RTarget":"dc1","Operand":"is_set","Weight":50}]`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Affinity 1 validation failed: 1 error occurred:\n\t* Unknown affinity operator \"is_set\""},
			{"POST", "/v1/jobs", badJob(`"Affinities":[{"LTarget":"${node.datacenter}","RTarget":"dc1","Operand":"=","Weight":0}]`, ""), 500,
				"1 error occurred:\n\t* Affinity 1 validation failed: 1 error occurred:\n\t* Affinity weight cannot be zero"},
			{"POST", "/v1/jobs", badJob("", `"Spreads":[{"Attribute":"${node.datacenter}","Weight":0}]`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Spread 1 validation failed: 1 error occurred:\n\t* Spread block must have a positive weight from 0 to 100"},
			{"POST", "/v1/jobs", badJob(`"Spreads":[{"Attribute":"","Weight":50,"SpreadTarget":[{"Value":"dc1","Percent":60},{"Value":"dc1","Percent":50}]}]`, ""), 500,
				"1 error occurred:\n\t* Spread 1 validation failed: 3 errors occurred:\n\t* Missing spread attribute\n\t* Spread target value \"dc1\" already defined\n\t* " +
					"Sum of spread target percentages must not be greater than 100%; got 110%"},
			{"POST", "/v1/jobs", badJob("", `"Spreads":[{"Attribute":"${node.datacenter}","Weight":50,"SpreadTarget":[{"Value":"dc1","Percent":101}]}]`), 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Spread 1 validation failed: 2 errors occurred:\n\t* " +
					"Spread target percentage for value \"dc1\" must be between 0 and 100\n\t* Sum of spread target percentages must not be greater than 100%; got 101%"},
			{"POST", "/v1/jobs", `{"Job":{"ID":"fidelity-bad","Name":"x","Type":"system","Datacenters":["dc1"],"Spreads":[{"Attribute":"${node.datacenter}"}],"TaskGroups":[` + sleepGroup + `]}}`, 500,
				"1 error occurred:\n\t* System jobs may not have a spread block"},
			{"POST", "/v1/jobs", `{"Job":{"ID":"fidelity-bad","Name":"x","Type":"service","Datacenters":["dc1"],"TaskGroups":[{"Name":"g"}]}}`, 500,
				"1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t* Missing tasks for task group"},
			{"POST", "/v1/jobs", `{"Job":{"ID":"fidelity-bad","Name":"x","Type":"service","Datacenters":["dc1"],"TaskGroups":[` + sleepGroup + `,` + sleepGroup + `]}}`, 500,
				"1 error occurred:\n\t* Job task group 2 redefines 'g' from group 1"},
			{"POST", "/v1/job/nope/scale", `{"Count":-1,"Target":{"Group":"g"}}`, 400, "scaling action count can't be negative"},
			{"POST", "/v1/job/nope/scale", `{"Count":1}`, 400, "missing task group name for scaling action"},
			{"GET", "/v1/node/vm", "", 500, "node lookup failed: index error: UUID must be 36 characters"},
			{"POST", "/v1/node/vm/drain", `{"DrainSpec":{"Deadline":1}}`, 500, "node lookup failed: index error: UUID must be 36 characters"},
			{"POST", "/v1/node/vm/eligibility", `{"Eligibility":"eligible"}`, 500, "node lookup failed: index error: UUID must be 36 characters"},
			{"POST", "/v1/node/" + zero + "/eligibility", `{"Eligibility":"maybe"}`, 500, `invalid scheduling eligibility "maybe"`},
			{"GET", "/v1/node/vm/allocations", "", 200, "[]"},
			{"POST", "/v1/allocation/nope/stop", "", 500, "alloc lookup failed: index error: UUID must be 36 characters"},
			{"GET", "/v1/client/allocation/nope/stats", "", 500, "alloc lookup failed: index error: UUID must be 36 characters"},
			{"GET", "/v1/client/allocation/" + zero + "/stats", "", 404, `Unknown allocation "` + zero + `"`},
			{"GET", "/v1/client/stats?node_id=vm", "", 500, "node lookup failed: index error: UUID must be 36 characters"},
			{"GET", "/v1/client/stats?node_id=" + zero, "", 404, "Unknown node " + zero},
			{"GET", "/v1/deployment/nope", "", 500, "deployment lookup failed: index error: UUID must be 36 characters"},
			{"GET", "/v1/evaluation/nope", "", 500, "failed to lookup eval: eval lookup failed: index error: UUID must be 36 characters"},
		} {
			req, err := http.NewRequest(tc.method, c.client.Address()+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tok := c.token; tok != "" {
				req.Header.Set("X-Nomad-Token", tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(b)); resp.StatusCode != tc.code || got != tc.want {
				t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, got, tc.code, tc.want)
			}
		}
	})
}

// sleepGroup is a task group "g" of one raw_exec sleep, as JSON.
const sleepGroup = `{"Name":"g","Tasks":[{"Name":"t","Driver":"raw_exec","Config":{"command":"/bin/sleep"}}]}`

// badJob is a registration of job fidelity-bad with extra job fields and
// extra fields of its group "g".
func badJob(jobFields, groupFields string) string {
	group := sleepGroup
	if groupFields != "" {
		group = `{` + groupFields + `,` + sleepGroup[1:]
	}
	j := `"ID":"fidelity-bad","Name":"x","Type":"service","Datacenters":["dc1"],"TaskGroups":[` + group + `]`
	if jobFields != "" {
		j = j + "," + jobFields
	}
	return `{"Job":{` + j + `}}`
}

// httptestServer serves h on a loopback port for the test's life.
func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// An allocation's stats, as the agent reads them when a policy spreads by
// use: the allocation's usage and each task's under its name, CPU as
// ticks (MHz) and memory in bytes, the allocation's figures its one task's;
// and the Nomad source's task group series built from them.
func TestFidelityAllocStats(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("stats")
		c.register(t, sleepJob(id, 1, 100, 64, 50))
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		st, err := c.client.Allocations().Stats(&api.Allocation{ID: allocs[0].ID}, nil)
		if err != nil {
			t.Fatalf("stats of %s: %v", allocs[0].ID[:8], err)
		}
		rs := st.ResourceUsage
		if rs == nil || rs.CpuStats == nil || rs.MemoryStats == nil {
			t.Fatalf("stats without the allocation's cpu and memory: %+v", st)
		}
		if rs.CpuStats.TotalTicks < 0 || rs.CpuStats.Percent < 0 || st.Timestamp <= 0 {
			t.Errorf("cpu %+v at %d", rs.CpuStats, st.Timestamp)
		}
		task := st.Tasks["sleep"]
		if len(st.Tasks) != 1 || task == nil || task.ResourceUsage == nil || task.ResourceUsage.MemoryStats == nil || task.ResourceUsage.CpuStats == nil {
			t.Fatalf("tasks %+v, want the one task \"sleep\" with its usage", st.Tasks)
		}
		// raw_exec samples its processes without cgroups: it measures
		// these and no throttling.
		if m, c := strings.Join(rs.MemoryStats.Measured, ","), strings.Join(rs.CpuStats.Measured, ","); m != "RSS,Swap" ||
			c != "System Mode,User Mode,Percent" || rs.CpuStats.ThrottledPeriods != 0 {
			t.Errorf("raw_exec measured memory %q, cpu %q (throttled periods %d); want \"RSS,Swap\", \"System Mode,User Mode,Percent\"",
				m, c, rs.CpuStats.ThrottledPeriods)
		}
		if task.ResourceUsage.MemoryStats.RSS != rs.MemoryStats.RSS {
			t.Errorf("one task: allocation's RSS %d, task's %d", rs.MemoryStats.RSS, task.ResourceUsage.MemoryStats.RSS)
		}
		t.Logf("%s: memory %+v cpu %+v", c.name, *rs.MemoryStats, *rs.CpuStats)

		src, err := nomadsource.New(nomadsource.Config{Client: c.client, AllocStats: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := src.Collect(context.Background(), source.Request{Now: time.Now(), Step: time.Minute,
			Localities: []source.Locality{{Datacenter: "dc1"}}})
		if err != nil {
			t.Fatal(err)
		}
		scope := "group/default/" + id + "/g"
		got := map[string]float64{}
		for _, smp := range res.Samples {
			if strings.HasPrefix(smp.Series, scope+":") {
				got[strings.TrimPrefix(smp.Series, scope+":")] = smp.Value
			}
		}
		for _, s := range res.Stale {
			if strings.HasPrefix(s.Series, scope+":") {
				t.Errorf("stale %s: %s", s.Series, s.Reason)
			}
		}
		if len(got) != 3 || got[source.Allocs] != 1 || got[source.CPUMHz] < 0 || got[source.MemoryMB] < 0 {
			t.Errorf("%s series %v, want cpu_mhz, memory_mb and allocs 1", scope, got)
		}
	})
}

// A stopped allocation's stats, which the Nomad source reads when the
// allocation stops between its listing and its stats: 200, each task's last
// usage under its name (with its own Timestamp), and the allocation's own
// usage zero with no Measured list and a zero Timestamp, since Nomad's
// client adds only running tasks (the simulator answered 400).
func TestFidelityAllocStatsStopped(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("stats-stopped")
		c.register(t, sleepJob(id, 1, 100, 64, 50))
		allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		time.Sleep(2 * time.Second) // measured at least once
		a := &api.Allocation{ID: allocs[0].ID}
		if _, err := c.client.Allocations().Stop(a, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			info, _, err := c.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if info.ClientStatus == api.AllocClientStatusComplete {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s a minute after its stop", a.ID[:8], info.ClientStatus)
			}
			time.Sleep(200 * time.Millisecond)
		}
		st, err := c.client.Allocations().Stats(a, nil)
		if err != nil {
			t.Fatalf("%s: stats of a stopped allocation: %v", c.name, err)
		}
		rs := st.ResourceUsage
		if st.Timestamp != 0 || rs == nil || rs.CpuStats == nil || rs.MemoryStats == nil || rs.CpuStats.TotalTicks != 0 ||
			rs.MemoryStats.RSS != 0 || rs.MemoryStats.Measured != nil || rs.CpuStats.Measured != nil {
			t.Errorf("%s: allocation's own stats at %d: %+v; want zero, nothing measured, Timestamp 0", c.name, st.Timestamp, rs)
		}
		if task := st.Tasks["sleep"]; len(st.Tasks) != 1 || task == nil || task.Timestamp <= 0 || task.ResourceUsage == nil {
			t.Errorf("%s: tasks %+v, want the task \"sleep\" with its last usage", c.name, st.Tasks)
		}
	})
}

// An allocation on a client without telemetry's publish_allocation_metrics
// (a Nomad client's default; a dev agent publishes them): its client never
// measures it, and its stats answer with no task, zero usage and a zero
// Timestamp, however long it has run; the dev agent's own allocation is
// measured. The Nomad source reports the unmeasured group stale, naming the
// setting, and publishes the measured one. On a real Nomad it runs when
// dc2's client says (its /v1/agent/self) it does not publish them.
func TestFidelityAllocStatsUnpublished(t *testing.T) {
	scenario := strings.Replace(twoDCScenario, `nodes "vm-dc2" {`, `nodes "vm-dc2" {
  publish_allocation_metrics = false`, 1)
	forEachNomadIn(t, scenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		dc2 := readyIn(nodes, "dc2")
		if c.sim == nil {
			node, _, err := c.client.Nodes().Info(dc2.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			self, err := realnomad.Client(t, "http://"+node.HTTPAddr, c.token).Agent().Self()
			if err != nil {
				t.Skipf("dc2's client %s at %s does not say how it is configured (%v): checked against the simulator only", node.Name, node.HTTPAddr, err)
			}
			if tel, _ := self.Config["Telemetry"].(map[string]any); tel == nil || tel["PublishAllocationMetrics"] != false {
				t.Skipf("dc2's client %s publishes allocation metrics: checked against the simulator only", node.Name)
			}
		}
		jobs := map[string]string{} // datacenter → job
		for _, dc := range []string{"dc1", "dc2"} {
			id := c.jobID("unpublished-" + dc)
			j := sleepJob(id, 1, 100, 64, 50)
			j.Datacenters = []string{dc}
			c.register(t, j)
			jobs[dc] = id
		}
		var allocs []*api.AllocationListStub
		for _, dc := range []string{"dc1", "dc2"} {
			allocs = append(allocs, c.waitAllocs(t, jobs[dc], "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })...)
		}
		time.Sleep(3 * time.Second) // a few of the clients' collection intervals (1 s)
		for i, dc := range []string{"dc1", "dc2"} {
			st, err := c.client.Allocations().Stats(&api.Allocation{ID: allocs[i].ID}, nil)
			if err != nil {
				t.Fatalf("stats of %s in %s: %v", allocs[i].ID[:8], dc, err)
			}
			measured := st.Timestamp != 0 && len(st.Tasks) == 1
			empty := st.Timestamp == 0 && len(st.Tasks) == 0 && st.ResourceUsage != nil && st.ResourceUsage.CpuStats != nil &&
				st.ResourceUsage.CpuStats.TotalTicks == 0 && st.ResourceUsage.MemoryStats != nil && st.ResourceUsage.MemoryStats.RSS == 0
			if (dc == "dc1" && !measured) || (dc == "dc2" && !empty) {
				t.Errorf("%s: stats of %s at %d, tasks %v, usage %+v; want it measured in dc1, unmeasured in dc2",
					c.name, dc, st.Timestamp, st.Tasks, st.ResourceUsage)
			}
		}

		src, err := nomadsource.New(nomadsource.Config{Client: c.client, AllocStats: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := src.Collect(context.Background(), source.Request{Now: time.Now(), Step: time.Minute,
			Localities: []source.Locality{{Datacenter: "dc1"}, {Datacenter: "dc2"}}})
		if err != nil {
			t.Fatal(err)
		}
		sampled, stale := map[string]bool{}, map[string]string{}
		for _, smp := range res.Samples {
			sampled[smp.Series] = true
		}
		for _, s := range res.Stale {
			stale[s.Series] = s.Reason
		}
		for _, m := range []string{source.CPUMHz, source.MemoryMB, source.Allocs} {
			on, off := "group/default/"+jobs["dc1"]+"/g:"+m, "group/default/"+jobs["dc2"]+"/g:"+m
			if !sampled[on] {
				t.Errorf("%s not sampled (stale: %q)", on, stale[on])
			}
			if sampled[off] || !strings.Contains(stale[off], "publish_allocation_metrics") {
				t.Errorf("%s sampled %v, stale %q; want it stale naming publish_allocation_metrics", off, sampled[off], stale[off])
			}
		}
	})
}

// twoDCScenario is shaped like the two-datacenter dev setup: one node in
// dc1 and one in dc2, alike (both clients fingerprint the same machine).
const twoDCScenario = `
name    = "fidelity-two-dcs"
seed    = 11
start   = "2026-01-05T09:00:00Z"
tick    = "1s"
startup = "1s"

datacenter "dc1" {
  bandwidth = 1000
}

datacenter "dc2" {
  bandwidth = 1000
}

nodes "vm" {
  datacenter = "dc1"
  count      = 1
  cpu        = 4600
  memory     = 24105
  iops       = 1000
  cores      = 2
}

nodes "vm-dc2" {
  datacenter = "dc2"
  count      = 1
  cpu        = 4600
  memory     = 24105
  iops       = 1000
  cores      = 2
}
`

// listNodes lists the cluster's nodes, failing the test when it cannot.
func (c *cluster) listNodes(t *testing.T) []*api.NodeListStub {
	t.Helper()
	nodes, _, err := c.client.Nodes().List(nil)
	if err != nil {
		t.Fatalf("%s: list nodes: %v", c.name, err)
	}
	return nodes
}

// lacksDC2 says when no ready, eligible node is in dc2.
func lacksDC2(nodes []*api.NodeListStub) string {
	if readyIn(nodes, "dc2") == nil {
		return "has no ready, eligible node in dc2 (start a second client with datacenter = \"dc2\" to run this check)"
	}
	return ""
}

func readyIn(nodes []*api.NodeListStub, dc string) *api.NodeListStub {
	for _, n := range nodes {
		if n.Status == api.NodeStatusReady && n.SchedulingEligibility == api.NodeSchedulingEligible && n.Datacenter == dc {
			return n
		}
	}
	return nil
}

// A group that may run in dc1 and dc2 with an affinity to dc1 is placed in
// dc1 even though dc2's node, nearly full, fits it better by bin packing,
// and so is a stopped allocation's replacement: Nomad averages a node's
// binpack fit with its affinity score, and a node matching no affinity
// adds a zero to that average. Without the affinity the same group goes
// to dc2's fuller node. (foreshape holds room for a migration in its
// target datacenter; where the moved allocations land decides whether that
// room is used.)
func TestFidelityAffinityAcrossDatacenters(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		dc2 := readyIn(nodes, "dc2")
		// Fill dc2's node to about 85% of what is free on it.
		cpu, mem := freeOn(t, c, dc2.ID)
		fill := c.jobID("fill-dc2")
		filler := sleepJob(fill, 1, cpu*85/100, mem*85/100, 50)
		filler.Datacenters = []string{"dc2"}
		filler.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, filler)
		c.waitAllocs(t, fill, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		web := func(what string, affinity bool) string {
			id := c.jobID(what)
			j := sleepJob(id, 1, 100, 128, 50)
			j.Datacenters = []string{"dc1", "dc2"}
			if affinity {
				j.AddAffinity(api.NewAffinity("${node.datacenter}", "=", "dc1", 80))
			}
			j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			c.register(t, j)
			return id
		}
		dcOf := func(nodeID string) string {
			for _, n := range nodes {
				if n.ID == nodeID {
					return n.Datacenter
				}
			}
			return "?"
		}

		plain := web("plain", false)
		as := c.waitAllocs(t, plain, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if dc := dcOf(as[0].NodeID); dc != "dc2" {
			t.Errorf("without an affinity: placed in %s (%s), want dc2's fuller node %s", dc, as[0].NodeName, dc2.Name)
		}

		aff := web("affinity", true)
		as = c.waitAllocs(t, aff, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if dc := dcOf(as[0].NodeID); dc != "dc1" {
			t.Errorf("with an affinity to dc1: placed in %s (%s), want dc1", dc, as[0].NodeName)
		}
		old := as[0].ID
		if _, err := c.client.Allocations().Stop(&api.Allocation{ID: old}, nil); err != nil {
			t.Fatal(err)
		}
		as = c.waitAllocs(t, aff, "replaced the stopped one", func(as []*api.AllocationListStub) bool {
			return count(as, running) == 1 && count(as, func(x *api.AllocationListStub) bool {
				return x.ID == old && x.ClientStatus == api.AllocClientStatusComplete
			}) == 1
		})
		for _, x := range as {
			if running(x) {
				if dc := dcOf(x.NodeID); dc != "dc1" {
					t.Errorf("the stopped allocation's replacement: placed in %s (%s), want dc1", dc, x.NodeName)
				}
			}
		}
	})
}

// enableServicePreemption turns on preemption for service jobs through the
// scheduler configuration API and restores the configuration when the test
// ends.
func enableServicePreemption(t *testing.T, c *cluster) {
	t.Helper()
	op := c.client.Operator()
	cur, _, err := op.SchedulerGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	saved := *cur.SchedulerConfig
	next := saved
	next.PreemptionConfig.ServiceSchedulerEnabled = true
	if _, _, err := op.SchedulerSetConfiguration(&next, nil); err != nil {
		t.Fatalf("enable service preemption: %v", err)
	}
	t.Cleanup(func() {
		if _, _, err := op.SchedulerSetConfiguration(&saved, nil); err != nil {
			t.Errorf("restore the scheduler configuration: %v", err)
		}
	})
}

// holdGroup is a task group of count sleeps of cpu MHz and mem MB each.
func holdGroup(name string, count, cpu, mem int) *api.TaskGroup {
	tg := api.NewTaskGroup(name, count)
	tg.AddTask(api.NewTask("hold", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
		Require(&api.Resources{CPU: new(cpu), MemoryMB: new(mem)}))
	return tg
}

// A service job that does not fit preempts allocations of jobs at least 10
// priorities lower, as Nomad picks them: the lowest priority first and,
// within it, the allocation closest in size to what is asked (not the
// largest), one placement at a time. The preempted allocations are
// evicted, name the allocation that preempted them, and their job is
// evaluated again ("preemption"); a job 9 priorities lower is never
// touched. (foreshape's placeholders are such low-priority jobs, of
// groups of several sizes.)
func TestFidelityPreemption(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		enableServicePreemption(t, c)
		low := c.jobID("hold-low")
		lj := api.NewServiceJob(low, low, "global", 10)
		lj.Datacenters = []string{"dc1"}
		lj.AddTaskGroup(holdGroup("small", 2, 100, 2000))
		lj.AddTaskGroup(holdGroup("big", 1, 200, 4500))
		lj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, lj)
		c.waitAllocs(t, low, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })

		// A job 9 priorities below the work fills the node but 500 MB.
		near := c.jobID("near")
		nj := sleepJob(near, 1, 50, freeMemory(t, c)-500, 41)
		nj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, nj)
		c.waitAllocs(t, near, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		work := c.jobID("work")
		wj := sleepJob(work, 2, 100, 2000, 50)
		wj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, wj)
		works := c.waitAllocs(t, work, "ran twice", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })

		// Nomad records the evictions with the placements that need them.
		lows, _, err := c.client.Jobs().Allocations(low, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		preemptedBy := map[string]string{} // evicted allocation → the work allocation that preempted it
		for _, w := range works {
			for _, id := range w.PreemptedAllocations {
				preemptedBy[id] = w.ID
			}
		}
		var evicted []string
		for _, a := range lows {
			if a.DesiredStatus != api.AllocDesiredStatusEvict {
				continue
			}
			evicted = append(evicted, a.TaskGroup)
			if preemptedBy[a.ID] == "" || a.PreemptedByAllocation != preemptedBy[a.ID] ||
				a.DesiredDescription != "Preempted by alloc ID "+preemptedBy[a.ID] {
				t.Errorf("evicted %s: preempted by %q, description %q; the work's allocations list it for %q",
					a.Name, a.PreemptedByAllocation, a.DesiredDescription, preemptedBy[a.ID])
			}
		}
		sort.Strings(evicted)
		if fmt.Sprint(evicted) != "[small small]" || len(preemptedBy) != 2 {
			t.Errorf("evicted %v (the work lists %d), want both allocations of group small, the size asked: %s", evicted, len(preemptedBy), describe(lows))
		}
		for _, w := range works {
			if len(w.PreemptedAllocations) != 1 {
				t.Errorf("work allocation %s preempted %d allocations, want 1", w.Name, len(w.PreemptedAllocations))
			}
		}
		nears, _, err := c.client.Jobs().Allocations(near, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if count(nears, running) != 1 {
			t.Errorf("the job 9 priorities lower was touched: %s", describe(nears))
		}

		// The preempted job is evaluated again; its replacements do not
		// fit and wait, queued, in a blocked evaluation.
		sum := waitSummary(t, c, low, func(s *api.JobSummary) bool { return s.Summary["small"].Queued == 2 })
		if s := sum.Summary["big"]; s.Running != 1 || s.Queued != 0 {
			t.Errorf("summary of group big = %+v", s)
		}
		evals, _, err := c.client.Jobs().Evaluations(low, nil)
		if err != nil {
			t.Fatal(err)
		}
		var byPreemption, blocked bool
		for _, e := range evals {
			byPreemption = byPreemption || e.TriggeredBy == "preemption"
			blocked = blocked || e.Status == api.EvalStatusBlocked
		}
		if !byPreemption || !blocked {
			t.Errorf("evaluations of the preempted job: one triggered by preemption %v, blocked %v: %s", byPreemption, blocked, describeEvals(evals))
		}
		c.waitAllocs(t, low, "stopped the evicted", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool {
				return a.DesiredStatus == api.AllocDesiredStatusEvict && a.ClientStatus == api.AllocClientStatusComplete
			}) == 2
		})

		// Once the work is gone, the preempted group is placed again: new
		// allocations of the same names, not linked to the evicted ones.
		if _, _, err := c.client.Jobs().Deregister(work, true, nil); err != nil {
			t.Fatal(err)
		}
		lows = c.waitAllocs(t, low, "placed again", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })
		for _, a := range lows {
			if !running(a) || a.TaskGroup != "small" {
				continue
			}
			f, _, err := c.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if f.PreviousAllocation != "" {
				t.Errorf("%s placed after the preemption names %s as its previous allocation, want none", f.Name, f.PreviousAllocation[:8])
			}
		}
	})
}

// When no node fits, Nomad walks the nodes again and scores those where
// preempting makes room like any placement: the fit counts the allocations
// still there, and the preemption score (a logistic of the evicted
// priorities) is near 1 for any low priorities. So it does not pick the
// node that evicts the fewest: here dc2's node, busier in CPU, evicts two
// allocations and dc1's one, and the work goes to dc2.
func TestFidelityPreemptionChoosesNode(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		enableServicePreemption(t, c)
		nodes := c.listNodes(t)
		fill := func(dc string, lowCount, lowCPU, lowMem int) string {
			n := readyIn(nodes, dc)
			low := c.jobID("low-" + dc)
			lj := api.NewServiceJob(low, low, "global", 10)
			lj.Datacenters = []string{dc}
			lj.AddTaskGroup(holdGroup("g", lowCount, lowCPU, lowMem))
			lj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			c.register(t, lj)
			c.waitAllocs(t, low, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == lowCount })
			_, mem := freeOn(t, c, n.ID)
			near := c.jobID("near-" + dc)
			nj := sleepJob(near, 1, 50, mem-1000, 41)
			nj.Datacenters = []string{dc}
			nj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			c.register(t, nj)
			c.waitAllocs(t, near, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
			return low
		}
		low1 := fill("dc1", 1, 100, 4000)
		low2 := fill("dc2", 2, 1800, 2000)

		work := c.jobID("work")
		wj := sleepJob(work, 1, 100, 3500, 50)
		wj.Datacenters = []string{"dc1", "dc2"}
		wj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, wj)
		as := c.waitAllocs(t, work, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if dc2 := readyIn(nodes, "dc2"); as[0].NodeID != dc2.ID {
			t.Errorf("work placed on %s, want dc2's %s (the best score, though it evicts two)", as[0].NodeName, dc2.Name)
		}
		for low, want := range map[string]int{low1: 0, low2: 2} {
			ls, _, err := c.client.Jobs().Allocations(low, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := count(ls, func(a *api.AllocationListStub) bool { return a.DesiredStatus == api.AllocDesiredStatusEvict }); got != want {
				t.Errorf("%s: %d evicted, want %d: %s", low, got, want, describe(ls))
			}
		}
	})
}

// A spread block places a group's allocations by its targets' percentages
// (75% dc1, 25% dc2: three and one of four), and a spread without targets
// evens them out even against an affinity (two and two, where the affinity
// alone keeps most in dc1): Nomad adds a spread score to each node's
// average. (Operators' jobs spread over datacenters, racks or zones; where
// a replacement lands decides whether room foreshape held is used.)
func TestFidelitySpread(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		dcOf := func(nodeID string) string {
			for _, n := range nodes {
				if n.ID == nodeID {
					return n.Datacenter
				}
			}
			return "?"
		}
		perDC := func(id string) map[string]int {
			as := c.waitAllocs(t, id, "ran four", func(as []*api.AllocationListStub) bool { return count(as, running) == 4 })
			out := map[string]int{}
			for _, a := range as {
				if running(a) {
					out[dcOf(a.NodeID)]++
				}
			}
			return out
		}
		job := func(what string) *api.Job {
			id := c.jobID(what)
			j := sleepJob(id, 4, 100, 128, 50)
			j.Datacenters = []string{"dc1", "dc2"}
			j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			return j
		}

		targets := job("spread-targets")
		targets.TaskGroups[0].AddSpread(api.NewSpread("${node.datacenter}", 100, []*api.SpreadTarget{
			api.NewSpreadTarget("dc1", 75), api.NewSpreadTarget("dc2", 25)}))
		c.register(t, targets)
		if got := perDC(*targets.ID); got["dc1"] != 3 || got["dc2"] != 1 {
			t.Errorf("spread 75%% dc1 / 25%% dc2 over four: %v, want dc1 3, dc2 1", got)
		}

		even := job("spread-even")
		even.AddAffinity(api.NewAffinity("${node.datacenter}", "=", "dc1", 100))
		even.AddSpread(api.NewSpread("${node.datacenter}", 50, nil))
		c.register(t, even)
		if got := perDC(*even.ID); got["dc1"] != 2 || got["dc2"] != 2 {
			t.Errorf("even spread over four against an affinity to dc1: %v, want 2 and 2", got)
		}

		affinity := job("affinity")
		affinity.AddAffinity(api.NewAffinity("${node.datacenter}", "=", "dc1", 100))
		c.register(t, affinity)
		if got := perDC(*affinity.ID); got["dc1"] < 3 {
			t.Errorf("the affinity to dc1 alone over four: %v, want 3 or more in dc1", got)
		}
	})
}

// Nomad's preemptor counts the room on a node without the allocations of
// the job being placed, so where that job already runs it can evict too
// few: the plan applier rejects the placement, the evaluation fails after
// five attempts and leaves a blocked one, and nothing is evicted. Here the
// job holds 2000 MB on the full node and asks 2000 MB more: Nomad sees
// 2000 MB free, evicts one 1000 MB allocation on paper, and the plan does
// not fit. Another job asking the same, with nothing on the node, evicts
// two and runs.
func TestFidelityPreemptionBesideItsOwnAllocation(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		enableServicePreemption(t, c)
		work := c.jobID("work")
		wj := sleepJob(work, 1, 100, 2000, 50)
		wj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, wj)
		c.waitAllocs(t, work, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		low := c.jobID("low")
		lj := sleepJob(low, 4, 100, 1000, 10)
		lj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, lj)
		c.waitAllocs(t, low, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 4 })
		near := c.jobID("near")
		nj := sleepJob(near, 1, 50, freeMemory(t, c), 41)
		nj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, nj)
		c.waitAllocs(t, near, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		resp, _, err := c.client.Jobs().Scale(work, "g", new(2), "one more", false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var scaled *api.Evaluation
		deadline := time.Now().Add(waitLimit)
		for scaled == nil || scaled.Status == api.EvalStatusPending {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the scaling evaluation never finished: %+v", c.name, scaled)
			}
			time.Sleep(100 * time.Millisecond)
			if scaled, _, err = c.client.Evaluations().Info(resp.EvalID, nil); err != nil {
				t.Fatal(err)
			}
		}
		if scaled.Status != api.EvalStatusFailed || scaled.StatusDescription != "maximum attempts reached (5)" || scaled.BlockedEval == "" {
			t.Errorf("scaling evaluation %s %q, blocked %q: want failed after five attempts, and blocked", scaled.Status, scaled.StatusDescription, scaled.BlockedEval)
		} else {
			b, _, err := c.client.Evaluations().Info(scaled.BlockedEval, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != api.EvalStatusBlocked || b.TriggeredBy != "max-plan-attempts" || b.StatusDescription != "created due to placement conflicts" {
				t.Errorf("blocked evaluation %s by %s %q", b.Status, b.TriggeredBy, b.StatusDescription)
			}
		}
		sum := waitSummary(t, c, work, func(s *api.JobSummary) bool { return s.Summary["g"].Queued == 1 })
		if sum.Summary["g"].Running != 1 {
			t.Errorf("summary of the work = %+v, want 1 running, 1 queued", sum.Summary["g"])
		}
		lows, _, err := c.client.Jobs().Allocations(low, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(lows, running); n != 4 {
			t.Errorf("%d of the low-priority allocations run, want all 4: %s", n, describe(lows))
		}

		other := c.jobID("other")
		oj := sleepJob(other, 1, 100, 2000, 50)
		oj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, oj)
		others := c.waitAllocs(t, other, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		lows, _, err = c.client.Jobs().Allocations(low, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Count what the other job's allocation evicted: once evicted
		// allocations finish, Nomad may retry the work's blocked evaluation,
		// which can evict more.
		if n := count(lows, func(a *api.AllocationListStub) bool {
			return a.DesiredStatus == api.AllocDesiredStatusEvict && a.PreemptedByAllocation == others[0].ID
		}); n != 2 || len(others[0].PreemptedAllocations) != 2 {
			t.Errorf("a job with nothing on the node evicted %d (it lists %d), want 2: %s", n, len(others[0].PreemptedAllocations), describe(lows))
		}
	})
}

// fillDC2 fills dc2's node to pct% of what is free on it, so bin packing
// prefers it to dc1's, and returns dc1's and dc2's nodes.
func fillDC2(t *testing.T, c *cluster, pct int) (dc1, dc2 *api.NodeListStub) {
	t.Helper()
	nodes := c.listNodes(t)
	dc1, dc2 = readyIn(nodes, "dc1"), readyIn(nodes, "dc2")
	cpu, mem := freeOn(t, c, dc2.ID)
	fill := c.jobID("fill-dc2")
	filler := sleepJob(fill, 1, cpu*pct/100, mem*pct/100, 50)
	filler.Datacenters = []string{"dc2"}
	filler.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	c.register(t, filler)
	c.waitAllocs(t, fill, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
	return dc1, dc2
}

// Nomad scores a failed allocation's replacement away from the node it
// failed on and from the node of every earlier attempt its reschedule
// tracker carries, not only the last: an allocation that failed on dc2's
// node (the better fit), then on dc1's, then on dc2's again, finds both
// nodes penalised for its fourth attempt and goes back to dc2's, the better
// fit, where the last node alone would send it to dc1's. Each replacement's
// tracker lists the attempts before it; a replaced attempt is desired to
// stop, and its replacement waited the policy's delay. (A crashing task's replacement may
// land where foreshape holds room, or where it does not.)
func TestFidelityRescheduleHistory(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		dc1, dc2 := fillDC2(t, c, 30)
		id := c.jobID("crash")
		j := sleepJob(id, 1, 100, 128, 50)
		j.Datacenters = []string{"dc1", "dc2"}
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		tg := j.TaskGroups[0]
		// The task fails two seconds after it starts (the simulator fails it
		// through its fault API), is not restarted, and is rescheduled after
		// Nomad's least delay, without a limit on attempts.
		tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
		tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
		tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Interval: new(time.Duration(0)), Unlimited: new(true),
			Delay: new(5 * time.Second), DelayFunction: new("constant")}
		c.register(t, j)

		var chain []*api.Allocation
		for attempt := range 4 {
			as := c.waitAllocs(t, id, fmt.Sprintf("placed attempt %d", attempt+1), func(as []*api.AllocationListStub) bool {
				return len(as) == attempt+1 && count(as, func(a *api.AllocationListStub) bool { return a.ClientStatus != api.AllocClientStatusPending }) == attempt+1
			})
			var cur *api.AllocationListStub
			for _, a := range as {
				if a.NextAllocation == "" && a.ClientStatus != api.AllocClientStatusFailed {
					cur = a
				}
			}
			if cur == nil {
				t.Fatalf("%s: attempt %d: no allocation without a replacement: %s", c.name, attempt+1, describe(as))
			}
			full, _, err := c.client.Allocations().Info(cur.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, full)
			if attempt == 3 {
				break
			}
			if c.sim != nil {
				if err := c.sim.FailAlloc(cur.ID, "exit 1"); err != nil {
					t.Fatal(err)
				}
			}
			c.waitAllocs(t, id, fmt.Sprintf("failed attempt %d", attempt+1), func(as []*api.AllocationListStub) bool {
				return count(as, func(a *api.AllocationListStub) bool {
					return a.ID == cur.ID && a.ClientStatus == api.AllocClientStatusFailed
				}) == 1
			})
		}

		dcOf := map[string]string{dc1.ID: "dc1", dc2.ID: "dc2"}
		var got []string
		for _, a := range chain {
			got = append(got, dcOf[a.NodeID])
		}
		if want := []string{"dc2", "dc1", "dc2", "dc2"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("attempts placed in %v, want %v (the fourth with both nodes penalised: dc2's, the better fit)", got, want)
		}
		for i, a := range chain {
			var events []string
			if a.RescheduleTracker != nil {
				for _, e := range a.RescheduleTracker.Events {
					events = append(events, e.PrevAllocID+"@"+dcOf[e.PrevNodeID])
				}
			}
			var want []string
			for _, p := range chain[:i] {
				want = append(want, p.ID+"@"+dcOf[p.NodeID])
			}
			if fmt.Sprint(events) != fmt.Sprint(want) || (i > 0 && a.PreviousAllocation != chain[i-1].ID) {
				t.Errorf("attempt %d: previous %q, reschedule events %v, want the attempts before it %v", i+1, a.PreviousAllocation, events, want)
			}
			if i == len(chain)-1 {
				break
			}
			// A replaced attempt is failed and desired to stop.
			now, _, err := c.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if now.ClientStatus != api.AllocClientStatusFailed || now.DesiredStatus != api.AllocDesiredStatusStop || now.NextAllocation != chain[i+1].ID {
				t.Errorf("replaced attempt %d: %s/%s (%q), next %q; want stop/failed, next %s", i+1, now.DesiredStatus, now.ClientStatus, now.DesiredDescription, now.NextAllocation, chain[i+1].ID)
			}
			// The replacement waits the policy's 5 s delay after the
			// failure (Nomad reschedules up to a second early).
			if ts := now.TaskStates["sleep"]; ts == nil || ts.FinishedAt.IsZero() {
				t.Errorf("replaced attempt %d: no finish time: %+v", i+1, now.TaskStates)
			} else if gap := time.Duration(chain[i+1].CreateTime - ts.FinishedAt.UnixNano()); gap < 4*time.Second || gap > 20*time.Second {
				t.Errorf("attempt %d placed %v after attempt %d failed, want the 5 s delay", i+2, gap, i+1)
			} else {
				t.Logf("%s: attempt %d placed %v after attempt %d failed", c.name, i+2, gap.Round(time.Millisecond), i+1)
			}
		}
	})
}

// Nomad's spread score weighs a target's boost by its block's weight over
// the weights of every task group the evaluation has scored so far, not
// over its own group's: scaling group b of a job from 0 to 1, after the
// scheduler has checked group a's allocation for an in-place update, weighs
// b's spread (weight 10, 60% dc1 / 40% dc2) by 10/(90+10) where a's spread
// weighs 90, and bin packing sends the allocation to dc2's fuller node. The
// same group alone in a job weighs its spread fully and goes to dc1.
func TestFidelitySpreadWeightsAcrossGroups(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		dc1, dc2 := fillDC2(t, c, 30)
		dcOf := map[string]string{dc1.ID: "dc1", dc2.ID: "dc2"}
		groupB := func(count int) *api.TaskGroup {
			b := holdGroup("b", count, 100, 128)
			b.AddSpread(api.NewSpread("${node.datacenter}", 10, []*api.SpreadTarget{
				api.NewSpreadTarget("dc1", 60), api.NewSpreadTarget("dc2", 40)}))
			return b
		}
		placedB := func(id string) string {
			as := c.waitAllocs(t, id, "ran group b", func(as []*api.AllocationListStub) bool {
				return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.TaskGroup == "b" }) == 1
			})
			for _, a := range as {
				if running(a) && a.TaskGroup == "b" {
					return dcOf[a.NodeID]
				}
			}
			return ""
		}

		two := c.jobID("two-groups")
		tj := api.NewServiceJob(two, two, "global", 50)
		tj.Datacenters = []string{"dc1", "dc2"}
		a := holdGroup("a", 1, 100, 128)
		a.AddSpread(api.NewSpread("${node.datacenter}", 90, nil))
		tj.AddTaskGroup(a)
		tj.AddTaskGroup(groupB(0))
		tj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, tj)
		c.waitAllocs(t, two, "ran group a", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if _, _, err := c.client.Jobs().Scale(two, "b", new(1), "one of b", false, nil, nil); err != nil {
			t.Fatal(err)
		}
		if dc := placedB(two); dc != "dc2" {
			t.Errorf("group b scaled beside group a: placed in %s, want dc2 (its spread weighs 10/100)", dc)
		}

		alone := c.jobID("one-group")
		aj := api.NewServiceJob(alone, alone, "global", 50)
		aj.Datacenters = []string{"dc1", "dc2"}
		aj.AddTaskGroup(groupB(1))
		aj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, aj)
		if dc := placedB(alone); dc != "dc1" {
			t.Errorf("group b alone: placed in %s, want dc1 (its spread weighs 10/10)", dc)
		}
	})
}

// A job-level spread and a group-level spread on the same attribute: Nomad
// scores both blocks with the job's (here even, no targets), and the group
// block's targets only change how it counts values (dc2 under "*"), while
// its even boost looks the node's own value up: dc2 is never found, so
// that block boosts dc2's node as if the group had nothing there. Three
// allocations go dc1 (the fuller node), dc2, then dc2 again, where counting
// dc2 under "*" would send the third back to dc1.
func TestFidelitySpreadJobAndGroupBlocks(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		dc1, dc2 := readyIn(nodes, "dc1"), readyIn(nodes, "dc2")
		cpu, mem := freeOn(t, c, dc1.ID)
		fill := c.jobID("fill-dc1")
		filler := sleepJob(fill, 1, cpu*30/100, mem*30/100, 50)
		filler.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, filler)
		c.waitAllocs(t, fill, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		id := c.jobID("job-and-group-spread")
		j := sleepJob(id, 3, 100, 128, 50)
		j.Datacenters = []string{"dc1", "dc2"}
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		j.AddSpread(api.NewSpread("${node.datacenter}", 50, nil))
		j.TaskGroups[0].AddSpread(api.NewSpread("${node.datacenter}", 50, []*api.SpreadTarget{api.NewSpreadTarget("dc1", 50)}))
		c.register(t, j)
		as := c.waitAllocs(t, id, "ran three", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })
		sort.Slice(as, func(i, k int) bool { return as[i].Name < as[k].Name })
		dcOf := map[string]string{dc1.ID: "dc1", dc2.ID: "dc2"}
		var got []string
		for _, a := range as {
			got = append(got, dcOf[a.NodeID])
		}
		if want := []string{"dc1", "dc2", "dc2"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("allocations [0], [1], [2] placed in %v, want %v", got, want)
		}
	})
}

// A failed allocation is rescheduled only as its reschedule policy allows:
// with one attempt in an hour, the replacement of the first failure is
// placed and its own failure is not replaced; with rescheduling off
// (attempts 0, not unlimited), the first failure is not replaced. Nothing
// waits queued for them. (The default for batch jobs is one attempt a day.)
func TestFidelityRescheduleAttempts(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		crash := func(what string, attempts int) string {
			id := c.jobID(what)
			j := sleepJob(id, 1, 100, 128, 50)
			j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			tg := j.TaskGroups[0]
			tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
			tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
			tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(attempts), Interval: new(time.Hour), Unlimited: new(false),
				Delay: new(5 * time.Second), DelayFunction: new("constant")}
			c.register(t, j)
			return id
		}
		// fail follows the job until n allocations exist and all have
		// failed (failing them on the simulator).
		fail := func(id string, n int) {
			deadline := time.Now().Add(waitLimit)
			for {
				as, _, err := c.client.Jobs().Allocations(id, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				failed := 0
				for _, a := range as {
					switch {
					case a.ClientStatus == api.AllocClientStatusFailed:
						failed++
					case c.sim != nil && a.ClientStatus == api.AllocClientStatusRunning:
						if err := c.sim.FailAlloc(a.ID, "exit 1"); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(as) == n && failed == n {
					return
				}
				if len(as) > n || time.Now().After(deadline) {
					t.Fatalf("%s: %s never had %d failed allocations: %s", c.name, id, n, describe(as))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		once, never := crash("resched-once", 1), crash("resched-off", 0)
		fail(once, 2)
		fail(never, 1)
		// Three times the delay: a reschedule would have been placed.
		wait := 15 * time.Second
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		for id, want := range map[string]int{once: 2, never: 1} {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) != want || count(as, func(a *api.AllocationListStub) bool { return a.ClientStatus == api.AllocClientStatusFailed }) != want {
				t.Errorf("%s: %s, want %d failed and no replacement", id, describe(as), want)
			}
			if s := waitSummary(t, c, id, func(*api.JobSummary) bool { return true }).Summary["g"]; s.Queued != 0 || s.Failed != want {
				t.Errorf("%s: summary %+v, want %d failed and none queued", id, s, want)
			}
		}
	})
}

// crashJob is a service job of one allocation that fails two seconds after
// it starts (the simulator fails it through its fault API when a check
// asks), is not restarted, and is rescheduled after delay, without a limit
// on attempts.
func crashJob(id string, delay time.Duration) *api.Job {
	j := sleepJob(id, 1, 100, 64, 50)
	tg := j.TaskGroups[0]
	tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
	tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
	tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Interval: new(time.Duration(0)), Unlimited: new(true),
		Delay: new(delay), DelayFunction: new("constant")}
	return j
}

// firstFailure waits until the job's first allocation has failed (failing
// it on the simulator once it runs) and returns it.
func (c *cluster) firstFailure(t *testing.T, jobID string) *api.Allocation {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		as, _, err := c.client.Jobs().Allocations(jobID, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) > 1 || time.Now().After(deadline) {
			t.Fatalf("%s: %s: want one allocation failing, have %s", c.name, jobID, describe(as))
		}
		if len(as) == 1 {
			switch a := as[0]; {
			case a.ClientStatus == api.AllocClientStatusFailed:
				full, _, err := c.client.Allocations().Info(a.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				return full
			case c.sim != nil && a.ClientStatus == api.AllocClientStatusRunning:
				if err := c.sim.FailAlloc(a.ID, "exit 1"); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAlloc follows one allocation with blocking queries until ok holds.
func (c *cluster) waitAlloc(t *testing.T, id, what string, ok func(*api.Allocation) bool) *api.Allocation {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var index uint64
	for {
		a, meta, err := c.client.Allocations().Info(id, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatalf("allocation %s: %v", id, err)
		}
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: allocation %s never %s: %s/%s, next %q, follow-up %q", c.name, id[:8], what, a.DesiredStatus, a.ClientStatus, a.NextAllocation, a.FollowupEvalID)
		}
		index = meta.LastIndex
	}
}

// waitEval polls an evaluation until ok holds.
func (c *cluster) waitEval(t *testing.T, id, what string, ok func(*api.Evaluation) bool) *api.Evaluation {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		e, _, err := c.client.Evaluations().Info(id, nil)
		if err != nil {
			t.Fatalf("evaluation %s: %v", id, err)
		}
		if ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: evaluation %s never %s: %s %s %q", c.name, id[:8], what, e.TriggeredBy, e.Status, e.StatusDescription)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func anyEval(*api.Evaluation) bool { return true }

// A failed allocation waiting out its reschedule delay: the evaluation of
// the failure ("alloc-failure") creates a follow-up evaluation, pending
// until the failure time plus the delay ("alloc-reschedule", "created for
// delayed rescheduling"), and names it as its next; the allocation names it
// as its FollowupEvalID and stays desired to run. At that time the
// follow-up runs (complete, its description cleared) and places the
// replacement.
func TestFidelityRescheduleFollowUp(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		const delay = 20 * time.Second
		id := c.jobID("followup")
		j := crashJob(id, delay)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)} // no deployment
		c.register(t, j)
		failed := c.firstFailure(t, id)
		a := c.waitAlloc(t, failed.ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		fe := c.waitEval(t, a.FollowupEvalID, "read", anyEval)
		finished := a.TaskStates["sleep"].FinishedAt
		if fe.TriggeredBy != "alloc-reschedule" || fe.Status != api.EvalStatusPending || fe.StatusDescription != "created for delayed rescheduling" {
			t.Errorf("follow-up evaluation: %s %s %q, want alloc-reschedule pending %q", fe.TriggeredBy, fe.Status, fe.StatusDescription, "created for delayed rescheduling")
		}
		if d := fe.WaitUntil.Sub(finished.Add(delay)); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("follow-up waits until %v, want the failure %v plus %v", fe.WaitUntil, finished, delay)
		}
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.NextAllocation != "" {
			t.Errorf("failed allocation waiting: %s, next %q; want run, none", a.DesiredStatus, a.NextAllocation)
		}
		prev := c.waitEval(t, fe.PreviousEval, "read", anyEval)
		if prev.TriggeredBy != "alloc-failure" || prev.Status != api.EvalStatusComplete || prev.NextEval != fe.ID {
			t.Errorf("evaluation before the follow-up: %s %s next %q; want alloc-failure complete next %s", prev.TriggeredBy, prev.Status, prev.NextEval, fe.ID)
		}

		a = c.waitAlloc(t, failed.ID, "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		next, _, err := c.client.Allocations().Info(a.NextAllocation, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.EvalID != fe.ID {
			t.Errorf("replacement placed by evaluation %s, want the follow-up %s", next.EvalID, fe.ID)
		}
		if gap := time.Unix(0, next.CreateTime).Sub(fe.WaitUntil); gap < -time.Second || gap > 5*time.Second {
			t.Errorf("replacement placed %v after the follow-up's time", gap)
		}
		fe = c.waitEval(t, fe.ID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if fe.StatusDescription != "" {
			t.Errorf("follow-up run: description %q, want none", fe.StatusDescription)
		}
	})
}

// A failed allocation of a job whose deployment runs is not rescheduled on
// its own: the evaluation of the failure leaves it (no follow-up); Nomad's
// deployment watcher then lets it reschedule (DesiredTransition.Reschedule)
// with an evaluation of its own, which creates the follow-up; the
// deployment goes on running (its progress deadline is ten minutes away and
// the policy allows more attempts) and the replacement joins it. Without a
// progress deadline the deployment fails at the failure, and Nomad never
// replaces an allocation of a failed deployment: its follow-up evaluation
// runs and places nothing.
func TestFidelityRescheduleInDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		const delay = 10 * time.Second
		update := func(progress time.Duration) *api.UpdateStrategy {
			return &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(50 * time.Second),
				HealthyDeadline: new(time.Minute), ProgressDeadline: new(progress)}
		}
		gated, nodl := c.jobID("resched-deploy"), c.jobID("resched-nodeadline")
		for id, progress := range map[string]time.Duration{gated: 10 * time.Minute, nodl: 0} {
			j := crashJob(id, delay)
			j.Update = update(progress)
			c.register(t, j)
		}
		failed := map[string]*api.Allocation{gated: c.firstFailure(t, gated), nodl: c.firstFailure(t, nodl)}

		// Running deployment: the watcher lets the allocation reschedule.
		a := c.waitAlloc(t, failed[gated].ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		if a.DesiredTransition.Reschedule == nil || !*a.DesiredTransition.Reschedule {
			t.Errorf("failed allocation of the running deployment: DesiredTransition %+v, want Reschedule", a.DesiredTransition)
		}
		fe := c.waitEval(t, a.FollowupEvalID, "read", anyEval)
		by := c.waitEval(t, fe.PreviousEval, "read", anyEval)
		if fe.TriggeredBy != "alloc-reschedule" || by.TriggeredBy != "deployment-watcher" || by.DeploymentID != a.DeploymentID || by.NextEval != fe.ID {
			t.Errorf("follow-up %s after %s (deployment %q, next %q); want alloc-reschedule after deployment-watcher of %s",
				fe.TriggeredBy, by.TriggeredBy, by.DeploymentID, by.NextEval, a.DeploymentID)
		}
		evals, _, err := c.client.Jobs().Evaluations(gated, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := countEvals(evals, func(e *api.Evaluation) bool {
			return e.TriggeredBy == "alloc-failure" && e.Status == api.EvalStatusComplete && e.NextEval == ""
		}); n != 1 {
			t.Errorf("want one alloc-failure evaluation that created no follow-up, have %s", describeEvals(evals))
		}
		a = c.waitAlloc(t, failed[gated].ID, "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		next, _, err := c.client.Allocations().Info(a.NextAllocation, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := c.client.Deployments().Info(a.DeploymentID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := d.TaskGroups["g"]; d.Status != api.DeploymentStatusRunning || st.UnhealthyAllocs < 1 || st.PlacedAllocs != 2 || next.DeploymentID != d.ID {
			t.Errorf("deployment after the reschedule: %s %q, group %+v, replacement in %q; want running, the replacement placed in it",
				d.Status, d.StatusDescription, st, next.DeploymentID)
		}

		// No progress deadline: the deployment fails; nothing replaces the
		// failed allocation.
		a = c.waitAlloc(t, failed[nodl].ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		d, _, err = c.client.Deployments().Info(a.DeploymentID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != api.DeploymentStatusFailed || d.StatusDescription != "Failed due to unhealthy allocations" {
			t.Errorf("deployment without a progress deadline: %s %q, want failed %q", d.Status, d.StatusDescription, "Failed due to unhealthy allocations")
		}
		ran := c.waitEval(t, a.FollowupEvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if ran.DeploymentID != d.ID {
			t.Errorf("follow-up run after the deployment failed: deployment %q, want the job's latest, %s", ran.DeploymentID, d.ID)
		}
		time.Sleep(time.Second) // anything the evaluation placed is listed by now
		as, _, err := c.client.Jobs().Allocations(nodl, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].ClientStatus != api.AllocClientStatusFailed || as[0].DesiredStatus != api.AllocDesiredStatusRun || as[0].NextAllocation != "" {
			t.Errorf("allocations of the failed deployment's job: %s, want the failed one alone, desired to run", describe(as))
		}
		if s := waitSummary(t, c, nodl, func(*api.JobSummary) bool { return true }).Summary["g"]; s.Failed != 1 || s.Queued != 0 {
			t.Errorf("summary %+v, want 1 failed, none queued", s)
		}
	})
}

func countEvals(evals []*api.Evaluation, f func(*api.Evaluation) bool) int {
	n := 0
	for _, e := range evals {
		if f(e) {
			n++
		}
	}
	return n
}

// failVersion fails (on the simulator) the job's running allocations of
// the given version until one of them has failed, and returns the latest
// deployment of that version.
func (c *cluster) failVersion(t *testing.T, jobID string, version uint64) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		as, _, err := c.client.Jobs().Allocations(jobID, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.JobVersion != version {
				continue
			}
			switch {
			case a.ClientStatus == api.AllocClientStatusFailed:
				full, _, err := c.client.Allocations().Info(a.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				d, _, err := c.client.Deployments().Info(full.DeploymentID, nil)
				if err != nil {
					t.Fatal(err)
				}
				return d
			case c.sim != nil && a.ClientStatus == api.AllocClientStatusRunning:
				if err := c.sim.FailAlloc(a.ID, "exit 1"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: no allocation of version %d failed: %s", c.name, jobID, version, describe(as))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auto_revert: a deployment that fails rolls the job back to its latest
// stable version, registered again as a new version, and says so; with no
// stable version it says that instead. (The failing allocations' policy
// allows no reschedule, so Nomad's deployment watcher fails the deployment
// at the first failure.)
func TestFidelityAutoRevert(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		crash := func(j *api.Job) *api.Job {
			tg := j.TaskGroups[0]
			tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
			tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
			tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
			// It fails before it is healthy (the simulator's clock runs
			// ten times faster: 5 s of wall time to fail it).
			j.Update.MinHealthyTime, j.Update.HealthyDeadline = new(50*time.Second), new(time.Minute)
			j.Update.ProgressDeadline = new(2 * time.Minute)
			return j
		}
		revert := func(j *api.Job) *api.Job {
			j.Update.AutoRevert = new(true)
			return j
		}
		good, fresh := c.jobID("revert"), c.jobID("revert-none")
		c.register(t, revert(sleepJob(good, 1, 100, 64, 50)))
		d0 := waitLatestDeployment(t, c, good)
		waitDeployment(t, c, d0.ID, func(d *api.Deployment) bool { return d.Status == api.DeploymentStatusSuccessful })
		c.register(t, crash(revert(sleepJob(good, 1, 100, 64, 50))))
		c.register(t, crash(revert(sleepJob(fresh, 1, 100, 64, 50))))

		d1 := c.failVersion(t, good, 1)
		d1 = waitDeployment(t, c, d1.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if want := "Failed due to unhealthy allocations - rolling back to job version 0"; d1.Status != api.DeploymentStatusFailed || d1.StatusDescription != want ||
			!d1.TaskGroups["g"].AutoRevert {
			t.Errorf("deployment of version 1: %s %q (auto revert %v), want failed %q", d1.Status, d1.StatusDescription, d1.TaskGroups["g"].AutoRevert, want)
		}
		j := c.waitJob(t, good, "at version 2", func(j *api.Job) bool { return *j.Version == 2 })
		if cmd := j.TaskGroups[0].Tasks[0].Config["command"]; cmd != "/bin/sleep" {
			t.Errorf("version 2 runs %v, want version 0's /bin/sleep", cmd)
		}
		d2 := waitLatestDeployment(t, c, good)
		waitDeployment(t, c, d2.ID, func(d *api.Deployment) bool { return d.JobVersion == 2 && d.Status == api.DeploymentStatusSuccessful })
		c.waitAllocs(t, good, "running version 2", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == 2 }) == 1
		})

		dn := c.failVersion(t, fresh, 0)
		dn = waitDeployment(t, c, dn.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if want := "Failed due to unhealthy allocations - no stable job version to auto revert to"; dn.Status != api.DeploymentStatusFailed || dn.StatusDescription != want {
			t.Errorf("deployment of a job with no stable version: %s %q, want failed %q", dn.Status, dn.StatusDescription, want)
		}
		if j, _, err := c.client.Jobs().Info(fresh, nil); err != nil || *j.Version != 0 {
			t.Errorf("job with no stable version: %v, version %d, want 0", err, *j.Version)
		}
	})
}

// A new job version replaces the allocations when a task's config, env or
// meta (job, group or task) changes, as Nomad's scheduler updates them
// destructively; a change of the reschedule policy alone updates them in
// place (same allocation, new version).
func TestFidelityDestructiveUpdate(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("update")
		j := sleepJob(id, 1, 100, 64, 50)
		c.register(t, j)
		cur := func(version uint64) *api.AllocationListStub {
			as := c.waitAllocs(t, id, fmt.Sprintf("running version %d", version), func(as []*api.AllocationListStub) bool {
				return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == version }) == 1
			})
			for _, a := range as {
				if running(a) && a.JobVersion == version {
					return a
				}
			}
			return nil
		}
		prev := cur(0)
		for i, step := range []struct {
			what        string
			change      func(*api.Job)
			destructive bool
		}{
			{"reschedule policy", func(j *api.Job) {
				j.TaskGroups[0].ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(2), Interval: new(time.Hour), Unlimited: new(false)}
			}, false},
			{"task config", func(j *api.Job) { j.TaskGroups[0].Tasks[0].SetConfig("args", []string{"3601"}) }, true},
			{"task env", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Env = map[string]string{"A": "1"} }, true},
			{"job meta", func(j *api.Job) { j.Meta = map[string]string{"owner": "x"} }, true},
		} {
			step.change(j)
			c.register(t, j)
			now := cur(uint64(i + 1))
			if replaced := now.ID != prev.ID; replaced != step.destructive {
				t.Errorf("%s changed: allocation replaced %v, want %v", step.what, replaced, step.destructive)
			}
			prev = now
			d := waitLatestDeployment(t, c, id)
			waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		}
	})
}

// An allocation that fails after it turned healthy, while its job's
// deployment still runs (another group is not healthy yet), is not let
// reschedule by the deployment watcher (it lets unhealthy ones only), and
// the evaluation that completes the deployment still sees it running: the
// failed allocation stays failed, desired to run, without a follow-up or a
// replacement, until something else evaluates the job.
func TestFidelityFailedAfterHealthyInDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("healthy-failed")
		j := crashJob(id, 5*time.Second)
		a := j.TaskGroups[0]
		a.Name = new("a")
		a.Tasks[0].SetConfig("args", []string{"-c", "sleep 8; exit 1"})
		a.Update = &api.UpdateStrategy{MinHealthyTime: new(3 * time.Second)}
		b := api.NewTaskGroup("b", 1)
		b.AddTask(api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
			Require(&api.Resources{CPU: new(100), MemoryMB: new(64)}))
		b.Update = &api.UpdateStrategy{MinHealthyTime: new(30 * time.Second)}
		j.AddTaskGroup(b)
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), HealthyDeadline: new(time.Minute), ProgressDeadline: new(2 * time.Minute)}
		c.register(t, j)
		// Group a's allocation turns healthy, then fails (the simulator
		// fails it once it is healthy).
		var failed *api.Allocation
		deadline := time.Now().Add(waitLimit)
		for failed == nil {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range as {
				if s.TaskGroup != "a" {
					continue
				}
				full, _, err := c.client.Allocations().Info(s.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				healthy := full.DeploymentStatus != nil && full.DeploymentStatus.Healthy != nil && *full.DeploymentStatus.Healthy
				switch {
				case full.ClientStatus == api.AllocClientStatusFailed:
					failed = full
				case c.sim != nil && healthy && full.ClientStatus == api.AllocClientStatusRunning:
					if err := c.sim.FailAlloc(full.ID, "exit 1"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: group a's allocation never failed: %s", c.name, describe(as))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if failed.DeploymentStatus == nil || failed.DeploymentStatus.Healthy == nil || !*failed.DeploymentStatus.Healthy {
			t.Fatalf("%s: group a's allocation failed before it was healthy: %+v", c.name, failed.DeploymentStatus)
		}
		d := waitDeployment(t, c, failed.DeploymentID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d.Status != api.DeploymentStatusSuccessful {
			t.Fatalf("deployment %s %q, want successful", d.Status, d.StatusDescription)
		}
		// Three times the delay after the deployment completed.
		wait := 15 * time.Second
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		now, _, err := c.client.Allocations().Info(failed.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if now.DesiredStatus != api.AllocDesiredStatusRun || now.NextAllocation != "" || now.FollowupEvalID != "" ||
			(now.DesiredTransition.Reschedule != nil && *now.DesiredTransition.Reschedule) {
			t.Errorf("failed allocation after the deployment: %s, next %q, follow-up %q, reschedule %v; want run and nothing",
				now.DesiredStatus, now.NextAllocation, now.FollowupEvalID, now.DesiredTransition.Reschedule)
		}
	})
}

// Once a job's deployment has failed, Nomad's reconciler makes no fresh
// placement for that job version (it replaces lost allocations and
// reschedules failed ones of no deployment only): a rolling update stops
// where it failed, and an allocation that did not fit while the
// deployment ran is not placed when room frees up, nor is it queued.
func TestFidelityFailedDeploymentPlacesNothing(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		// A rolling update of three allocations, one at a time, whose
		// first new allocation fails (no reschedule allowed): the other
		// two stay on the old version.
		roll := c.jobID("failed-roll")
		rj := sleepJob(roll, 3, 50, 64, 50)
		c.register(t, rj)
		d0 := waitLatestDeployment(t, c, roll)
		waitDeployment(t, c, d0.ID, func(d *api.Deployment) bool { return d.Status == api.DeploymentStatusSuccessful })
		tg := rj.TaskGroups[0]
		tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
		tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
		tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
		rj.Update.MinHealthyTime, rj.Update.HealthyDeadline = new(50*time.Second), new(time.Minute)
		rj.Update.ProgressDeadline = new(2 * time.Minute)
		c.register(t, rj)
		d1 := c.failVersion(t, roll, 1)
		d1 = waitDeployment(t, c, d1.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d1.Status != api.DeploymentStatusFailed {
			t.Fatalf("deployment of version 1 %s %q, want failed", d1.Status, d1.StatusDescription)
		}
		settle := 5 * time.Second
		if c.sim != nil {
			settle /= simSpeed
		}
		time.Sleep(settle)
		as, _, err := c.client.Jobs().Allocations(roll, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		old := count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == 0 })
		if v1 := count(as, func(a *api.AllocationListStub) bool { return a.JobVersion == 1 }); old != 2 || v1 != 1 {
			t.Errorf("rolling update after its deployment failed: %d running on version 0, %d allocations of version 1; want 2 and the failed one: %s", old, v1, describe(as))
		}

		filler := c.jobID("fill")
		fj := sleepJob(filler, 1, 50, freeMemory(t, c)-1500, 50)
		fj.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, fj)
		c.waitAllocs(t, filler, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		// Group g fits, group big (2000 MB) does not. g's allocation fails
		// before it is healthy and its policy allows no reschedule, so the
		// deployment fails at once.
		id := c.jobID("failed-deploy")
		j := crashJob(id, 5*time.Second)
		j.TaskGroups[0].ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
		j.AddTaskGroup(holdGroup("big", 1, 50, 2000))
		j.Update.MinHealthyTime, j.Update.HealthyDeadline = new(50*time.Second), new(time.Minute)
		j.Update.ProgressDeadline = new(2 * time.Minute)
		c.register(t, j)
		waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["big"].Queued == 1 })
		failed := c.firstFailure(t, id)
		d := waitDeployment(t, c, failed.DeploymentID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d.Status != api.DeploymentStatusFailed {
			t.Fatalf("deployment %s %q, want failed", d.Status, d.StatusDescription)
		}

		// Room for the second allocation.
		if _, _, err := c.client.Jobs().Deregister(filler, true, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, filler, "stopped", func(as []*api.AllocationListStub) bool { return count(as, running) == 0 })
		time.Sleep(settle)
		as, _, err = c.client.Jobs().Allocations(id, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].ID != failed.ID {
			t.Errorf("allocations of the failed deployment's version after room freed: %s, want the failed one alone", describe(as))
		}
		// (Whether the blocked evaluation of group big ends complete or
		// stays blocked, no longer tracked, depends on the order Nomad
		// runs it and the deployment watcher's evaluation in: not checked.)
		if s := waitSummary(t, c, id, func(*api.JobSummary) bool { return true }).Summary["big"]; s.Queued != 0 || s.Running != 0 {
			t.Errorf("summary of group big %+v, want nothing queued or running", s)
		}
	})
}

// An allocation stopped before it turned healthy gets no health: Nomad's
// client stops watching it once it is desired to stop, so its deployment
// does not count it unhealthy and, without a progress deadline, does not
// fail; its replacement joins the deployment and completes it.
func TestFidelityStoppedBeforeHealthy(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("stop-unhealthy")
		j := sleepJob(id, 1, 100, 64, 50)
		// The simulator's clock runs ten times faster: 3 s of wall time
		// to stop the allocation before it is healthy.
		j.Update.MinHealthyTime, j.Update.HealthyDeadline = new(30*time.Second), new(time.Minute)
		j.Update.ProgressDeadline = new(time.Duration(0))
		c.register(t, j)
		as := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		first := as[0]
		// A stop within some 100 ms of the task's start can race Nomad's
		// client into marking the allocation unhealthy: stop a second in.
		settle := time.Second
		if c.sim != nil {
			settle /= simSpeed
		}
		time.Sleep(settle)
		if _, err := c.client.Allocations().Stop(&api.Allocation{ID: first.ID}, nil); err != nil {
			t.Fatal(err)
		}
		stopped := c.waitAlloc(t, first.ID, "stopped", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		if ds := stopped.DeploymentStatus; ds != nil && ds.Healthy != nil {
			if c.sim == nil && !*ds.Healthy {
				// Nomad's client does not always leave such a stop
				// without health: on the real agent a stop a second (or
				// 70 ms) after the task started was marked unhealthy in
				// 2 runs of 9, failing the deployment. The simulator
				// models the usual outcome (no health); both are Nomad's.
				t.Logf("the real client marked the allocation stopped %s after it ran unhealthy (its other outcome); the simulator gives no health", settle)
				return
			}
			t.Errorf("allocation stopped before it was healthy: healthy %v, want no health", *ds.Healthy)
		}
		d, _, err := c.client.Deployments().Info(stopped.DeploymentID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := d.TaskGroups["g"]; d.Status != api.DeploymentStatusRunning || st.UnhealthyAllocs != 0 {
			t.Errorf("deployment after the stop: %s %q, group %+v; want running, none unhealthy", d.Status, d.StatusDescription, st)
		}
		d = waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if st := d.TaskGroups["g"]; d.Status != api.DeploymentStatusSuccessful || st.HealthyAllocs != 1 || st.UnhealthyAllocs != 0 || st.PlacedAllocs != 2 {
			t.Errorf("deployment: %s %q, group %+v; want successful, 2 placed, 1 healthy, none unhealthy", d.Status, d.StatusDescription, st)
		}
	})
}

// A follow-up evaluation (one with WaitUntil) that finds a failed
// allocation to reschedule later stamps the allocation's FollowupEvalID
// but creates no evaluation (Nomad's scheduler creates follow-ups only
// from an evaluation that is not itself one): the allocation names an
// evaluation that does not exist and is not replaced at its time.
// Here the follow-up of version 0's failure runs after version 1's
// deployment completed with an allocation that failed after turning
// healthy (which that deployment left waiting).
func TestFidelityFollowUpCreatesNoFollowUp(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("followup-chain")
		// Version 0's follow-up runs a minute after its failure: well
		// after version 1's deployment completes (in 3 s of wall time on
		// the simulator), before the reschedule time of version 1's
		// failure.
		j := crashJob(id, time.Minute)
		a := j.TaskGroups[0]
		a.Name = new("a")
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)} // no deployment for version 0
		c.register(t, j)
		first := c.firstFailure(t, id)
		first = c.waitAlloc(t, first.ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		f0 := first.FollowupEvalID

		// Version 1 replaces the failed allocation (a new task config)
		// and adds group b, which keeps the deployment running until
		// after a's new allocation has turned healthy and failed.
		a.Tasks[0].SetConfig("args", []string{"-c", "sleep 8; exit 1"})
		a.Update = &api.UpdateStrategy{MinHealthyTime: new(3 * time.Second)}
		b := api.NewTaskGroup("b", 1)
		b.AddTask(api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
			Require(&api.Resources{CPU: new(100), MemoryMB: new(64)}))
		b.Update = &api.UpdateStrategy{MinHealthyTime: new(30 * time.Second)}
		j.AddTaskGroup(b)
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), HealthyDeadline: new(time.Minute), ProgressDeadline: new(2 * time.Minute)}
		c.register(t, j)
		var failed *api.Allocation
		deadline := time.Now().Add(waitLimit)
		for failed == nil {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range as {
				if s.TaskGroup != "a" || s.JobVersion != 1 {
					continue
				}
				full, _, err := c.client.Allocations().Info(s.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				healthy := full.DeploymentStatus != nil && full.DeploymentStatus.Healthy != nil && *full.DeploymentStatus.Healthy
				switch {
				case full.ClientStatus == api.AllocClientStatusFailed:
					failed = full
				case c.sim != nil && healthy && full.ClientStatus == api.AllocClientStatusRunning:
					if err := c.sim.FailAlloc(full.ID, "exit 1"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: group a's allocation of version 1 never failed: %s", c.name, describe(as))
			}
			time.Sleep(100 * time.Millisecond)
		}
		d := waitDeployment(t, c, failed.DeploymentID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d.Status != api.DeploymentStatusSuccessful {
			t.Fatalf("deployment of version 1 %s %q, want successful", d.Status, d.StatusDescription)
		}
		if e := c.waitEval(t, f0, "read", anyEval); e.Status != api.EvalStatusPending {
			t.Fatalf("%s: version 0's follow-up %s ran before version 1's deployment completed", c.name, e.Status)
		}

		// Version 0's follow-up runs and finds the failed allocation.
		ran := c.waitEval(t, f0, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		now := c.waitAlloc(t, failed.ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		if ran.NextEval != "" {
			t.Errorf("the follow-up that ran names a next evaluation %s, want none", ran.NextEval)
		}
		if e, _, err := c.client.Evaluations().Info(now.FollowupEvalID, nil); err == nil {
			t.Errorf("the failed allocation's follow-up evaluation exists: %s %s %s", e.TriggeredBy, e.Status, e.WaitUntil)
		} else if code, _ := response(err); code != http.StatusNotFound {
			t.Errorf("the failed allocation's follow-up evaluation: %v, want 404", err)
		}
		// Its reschedule time (failure + 1 min) passes; nothing replaces it.
		wait := 20 * time.Second
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		now, _, err := c.client.Allocations().Info(failed.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if now.DesiredStatus != api.AllocDesiredStatusRun || now.NextAllocation != "" {
			t.Errorf("failed allocation after its reschedule time: %s, next %q; want run, none", now.DesiredStatus, now.NextAllocation)
		}
	})
}

// A rolling update waits while an allocation of its deployment is
// unhealthy: Nomad's reconciler makes no further destructive update while
// one is (a failed one waiting to reschedule counts), and the reschedule
// of a failed one takes the max_parallel slot of the evaluation that
// places it. So when the first new allocation fails (its policy
// reschedules it after 10 s, the deployment's progress deadline is ten
// minutes away), the other two stay on the old version until its
// replacement is placed, and after.
func TestFidelityRollingUpdateWaitsForUnhealthy(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("roll-unhealthy")
		j := sleepJob(id, 3, 50, 64, 50)
		c.register(t, j)
		d0 := waitLatestDeployment(t, c, id)
		waitDeployment(t, c, d0.ID, func(d *api.Deployment) bool { return d.Status == api.DeploymentStatusSuccessful })
		tg := j.TaskGroups[0]
		tg.Tasks[0].SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 2; exit 1"})
		tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
		tg.ReschedulePolicy = &api.ReschedulePolicy{Unlimited: new(true), Delay: new(10 * time.Second), DelayFunction: new("constant")}
		// The simulator's clock runs ten times faster: 5 s of wall time
		// to fail an allocation before it is healthy.
		j.Update.MinHealthyTime, j.Update.HealthyDeadline = new(50*time.Second), new(time.Minute)
		j.Update.ProgressDeadline = new(10 * time.Minute)
		c.register(t, j)
		d1 := c.failVersion(t, id, 1)
		as, _, err := c.client.Jobs().Allocations(id, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		var failed *api.AllocationListStub
		for _, a := range as {
			if a.JobVersion == 1 && a.ClientStatus == api.AllocClientStatusFailed {
				failed = a
			}
		}
		full := c.waitAlloc(t, failed.ID, "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		settle := time.Second
		if c.sim != nil {
			settle /= simSpeed
		}
		time.Sleep(settle)
		as, _, err = c.client.Jobs().Allocations(id, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		old := count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == 0 })
		v1 := count(as, func(a *api.AllocationListStub) bool { return a.JobVersion == 1 })
		if old != 2 || v1 != 2 {
			t.Errorf("rolling update once the failed allocation's replacement %s was placed: %d running on version 0, %d allocations of version 1; want 2 and 2 (the failed one and its replacement): %s",
				full.NextAllocation[:8], old, v1, describe(as))
		}
		if d, _, err := c.client.Deployments().Info(d1.ID, nil); err != nil || d.Status != api.DeploymentStatusRunning {
			t.Errorf("deployment of version 1: %v %+v, want running", err, d)
		}
	})
}

// Nomad gives every allocation a job places while its deployment is
// active the deployment's ID, those of a group without an update block
// (max_parallel 0) too: such a group's failed allocation waits, as the
// deployment's own do, for a transition Nomad's deployment watcher never
// gives it (its client watches no health for it), and the evaluation
// that completes the deployment still sees the deployment running: it is
// not rescheduled, during the deployment or after.
func TestFidelityGroupWithoutUpdateInDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("noupdate-group")
		j := crashJob(id, 5*time.Second)
		n := j.TaskGroups[0]
		n.Name = new("n")
		n.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		a := holdGroup("a", 1, 50, 64)
		// The simulator's clock runs ten times faster: 3 s of wall time.
		a.Update = &api.UpdateStrategy{MinHealthyTime: new(30 * time.Second)}
		j.AddTaskGroup(a)
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), HealthyDeadline: new(time.Minute), ProgressDeadline: new(2 * time.Minute)}
		c.register(t, j)
		var failed *api.Allocation
		deadline := time.Now().Add(waitLimit)
		for failed == nil {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range as {
				if s.TaskGroup != "n" {
					continue
				}
				switch {
				case s.ClientStatus == api.AllocClientStatusFailed:
					if failed, _, err = c.client.Allocations().Info(s.ID, nil); err != nil {
						t.Fatal(err)
					}
				case c.sim != nil && s.ClientStatus == api.AllocClientStatusRunning:
					if err := c.sim.FailAlloc(s.ID, "exit 1"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: group n's allocation never failed: %s", c.name, describe(as))
			}
			time.Sleep(100 * time.Millisecond)
		}
		d := waitLatestDeployment(t, c, id)
		if failed.DeploymentID != d.ID {
			t.Errorf("group n's allocation: deployment %q, want the job's %s", failed.DeploymentID, d.ID)
		}
		if _, ok := d.TaskGroups["n"]; ok {
			t.Errorf("the deployment tracks group n: %+v", d.TaskGroups)
		}
		d = waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d.Status != api.DeploymentStatusSuccessful {
			t.Fatalf("deployment %s %q, want successful", d.Status, d.StatusDescription)
		}
		wait := 10 * time.Second
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		now, _, err := c.client.Allocations().Info(failed.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if now.DesiredStatus != api.AllocDesiredStatusRun || now.NextAllocation != "" || now.FollowupEvalID != "" {
			t.Errorf("group n's failed allocation after the deployment: %s, next %q, follow-up %q; want run, none, none",
				now.DesiredStatus, now.NextAllocation, now.FollowupEvalID)
		}
	})
}

// A job's blocked evaluation ends when an evaluation of the job completes
// with nothing left to place: run again itself, because capacity freed, it
// completes (no failed placements left); any other evaluation (here the
// one of scaling the group down to what fits) cancels it, saying so and
// keeping the failed placements it recorded.
func TestFidelityBlockedEvalEnds(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		size := freeMemory(t, c)/2 + 500 // one fits, not two
		id := c.jobID("unblocked")
		j := sleepJob(id, 2, 50, size, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		resp := c.register(t, j)
		waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["g"].Queued == 1 })
		reg := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if reg.BlockedEval == "" {
			t.Fatalf("%s: registration left no blocked evaluation", c.name)
		}
		j.TaskGroups[0].Count = new(1)
		scaled := c.register(t, j)
		b := c.waitEval(t, reg.BlockedEval, "ended", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusBlocked })
		if want := fmt.Sprintf("evaluation %q successful", scaled.EvalID); b.Status != api.EvalStatusCancelled || b.StatusDescription != want ||
			b.FailedTGAllocs["g"] == nil || len(b.QueuedAllocations) != 0 {
			t.Errorf("blocked evaluation after the scale-down: %s %q, failed %v, queued %v; want canceled %q, failed g, none queued",
				b.Status, b.StatusDescription, b.FailedTGAllocs, b.QueuedAllocations, want)
		}

		// A second job of the same size waits until the first is gone.
		other := c.jobID("unblocked-2")
		oj := sleepJob(other, 1, 50, size, 50)
		oj.Update = j.Update
		resp = c.register(t, oj)
		reg = c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if reg.BlockedEval == "" {
			t.Fatalf("%s: the second job left no blocked evaluation", c.name)
		}
		if _, _, err := c.client.Jobs().Deregister(id, true, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, other, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		b = c.waitEval(t, reg.BlockedEval, "ended", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusBlocked })
		if b.Status != api.EvalStatusComplete || b.StatusDescription != "" || len(b.FailedTGAllocs) != 0 {
			t.Errorf("blocked evaluation run again once room freed: %s %q, failed %v; want complete, no failed placements",
				b.Status, b.StatusDescription, b.FailedTGAllocs)
		}
	})
}

// replaceIn stops the running allocation of the job's group g and returns
// its replacement, read in full once it runs.
func (c *cluster) replaceIn(t *testing.T, jobID, g string) *api.Allocation {
	t.Helper()
	var old string
	c.waitAllocs(t, jobID, "ran group "+g, func(as []*api.AllocationListStub) bool {
		for _, s := range as {
			if s.TaskGroup == g && running(s) {
				old = s.ID
				return true
			}
		}
		return false
	})
	if _, err := c.client.Allocations().Stop(&api.Allocation{ID: old}, nil); err != nil {
		t.Fatal(err)
	}
	var next string
	c.waitAllocs(t, jobID, "replaced "+old[:8]+" and ran it", func(as []*api.AllocationListStub) bool {
		for _, s := range as {
			if s.ID == old {
				next = s.NextAllocation
			}
		}
		for _, s := range as {
			if next != "" && s.ID == next && running(s) {
				return true
			}
		}
		return false
	})
	a, _, err := c.client.Allocations().Info(next, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func healthOf(a *api.Allocation) string {
	if a.DeploymentStatus == nil || a.DeploymentStatus.Healthy == nil {
		return "none"
	}
	return strconv.FormatBool(*a.DeploymentStatus.Healthy)
}

// Nomad's client watches the health of every allocation of a service job:
// in a deployment with the group's update block, outside one with its
// migrate block (min_healthy_time), so an allocation placed with no
// deployment running, a stopped allocation's replacement too, turns
// healthy (DeploymentStatus.Healthy) without any deployment. An allocation
// that takes the ID of a deployment not tracking its group (no update
// block) gets no health: one updated in place into it loses the health it
// had, and a replacement placed while it runs never gets any, even after
// the deployment ends. (foreshape's follower waits for a replacement's
// health when its group has checks.)
func TestFidelityHealthOutsideDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("migrate-health")
		mh := 3 * time.Second
		scale := time.Duration(1)
		if c.sim != nil {
			scale = simSpeed
		}
		b := holdGroup("b", 1, 50, 32)
		b.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		b.Migrate = &api.MigrateStrategy{MaxParallel: new(1), HealthCheck: new("checks"), MinHealthyTime: new(mh),
			HealthyDeadline: new(time.Minute)}
		j := api.NewServiceJob(id, id, "global", 50)
		j.Datacenters = []string{"dc1"}
		j.AddTaskGroup(b)
		c.register(t, j)
		healthy := func(what string, ok func(*api.Allocation) bool) *api.Allocation {
			t.Helper()
			var got *api.Allocation
			c.waitAllocs(t, id, what, func(as []*api.AllocationListStub) bool {
				for _, s := range as {
					if s.TaskGroup != "b" || !running(s) {
						continue
					}
					a, _, err := c.client.Allocations().Info(s.ID, nil)
					if err != nil {
						t.Fatal(err)
					}
					if ok(a) {
						got = a
						return true
					}
				}
				return false
			})
			return got
		}
		isHealthy := func(a *api.Allocation) bool { return healthOf(a) == "true" }
		first := healthy("turned healthy without a deployment", isHealthy)
		if first.DeploymentID != "" {
			t.Errorf("v0's allocation: deployment %q, want none (its group has no update block)", first.DeploymentID)
		}
		r := c.replaceIn(t, id, "b")
		if r.DeploymentID != "" {
			t.Errorf("replacement with no deployment: deployment %q, want none", r.DeploymentID)
		}
		healthy("turned the replacement healthy", func(a *api.Allocation) bool { return a.ID == r.ID && isHealthy(a) })

		// Version 1 adds group a, whose update block starts a deployment
		// that runs a minute (6 s of wall time on the simulator).
		a := holdGroup("a", 1, 50, 32)
		a.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Minute),
			HealthyDeadline: new(90 * time.Second), ProgressDeadline: new(2 * time.Minute)}
		j.AddTaskGroup(a)
		c.register(t, j)
		d := waitLatestDeployment(t, c, id)
		inPlace := healthy("updated to version 1 in place", func(x *api.Allocation) bool { return x.ID == r.ID && x.Job != nil && *x.Job.Version == 1 })
		if inPlace.DeploymentID != d.ID || healthOf(inPlace) != "none" {
			t.Errorf("b's allocation updated in place: deployment %q, health %s; want %s, none", inPlace.DeploymentID, healthOf(inPlace), d.ID)
		}
		r2 := c.replaceIn(t, id, "b")
		time.Sleep((mh + 5*time.Second) / scale)
		r2, _, err := c.client.Allocations().Info(r2.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		dNow, _, err := c.client.Deployments().Info(d.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if dNow.Status != api.DeploymentStatusRunning {
			t.Fatalf("%s: deployment %s already %s: the check needs it running", c.name, d.ID, dNow.Status)
		}
		if r2.DeploymentID != d.ID || healthOf(r2) != "none" {
			t.Errorf("replacement during the deployment, %s after it ran: deployment %q, health %s; want %s, none",
				mh+5*time.Second, r2.DeploymentID, healthOf(r2), d.ID)
		}
		waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status == api.DeploymentStatusSuccessful })
		time.Sleep((mh + 2*time.Second) / scale)
		if r2, _, err = c.client.Allocations().Info(r2.ID, nil); err != nil {
			t.Fatal(err)
		}
		if healthOf(r2) != "none" {
			t.Errorf("replacement placed during the deployment, after it: health %s, want none", healthOf(r2))
		}
		// Once the deployment is over, a replacement is placed outside it
		// and turns healthy again.
		r3 := c.replaceIn(t, id, "b")
		if r3.DeploymentID != "" {
			t.Errorf("replacement after the deployment: deployment %q, want none", r3.DeploymentID)
		}
		healthy("turned the replacement after the deployment healthy", func(a *api.Allocation) bool { return a.ID == r3.ID && isHealthy(a) })
	})
}

// Outside a deployment Nomad's client gives an allocation until its
// migrate block's healthy_deadline, counted from when the client starts it
// (before its tasks run), to turn healthy, and marks it unhealthy then
// though it runs on. Nomad accepts min_healthy_time equal to
// healthy_deadline, with which an allocation never turns healthy in time;
// with a later deadline the same allocation turns healthy.
func TestFidelityHealthyDeadlineOutsideDeployment(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("migrate-deadline")
		j := api.NewServiceJob(id, id, "global", 50)
		j.Datacenters = []string{"dc1"}
		for _, g := range []struct {
			name         string
			min, healthy time.Duration
		}{{"late", 3 * time.Second, 3 * time.Second}, {"early", time.Second, 20 * time.Second}} {
			tg := holdGroup(g.name, 1, 50, 32)
			tg.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			tg.Migrate = &api.MigrateStrategy{MaxParallel: new(1), HealthCheck: new("checks"), MinHealthyTime: new(g.min),
				HealthyDeadline: new(g.healthy)}
			j.AddTaskGroup(tg)
		}
		c.register(t, j)
		got := map[string]*api.Allocation{}
		c.waitAllocs(t, id, "given health in both groups", func(as []*api.AllocationListStub) bool {
			for _, s := range as {
				if got[s.TaskGroup] != nil {
					continue
				}
				a, _, err := c.client.Allocations().Info(s.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				if healthOf(a) != "none" {
					got[s.TaskGroup] = a
				}
			}
			return len(got) == 2
		})
		for group, want := range map[string]string{"late": "false", "early": "true"} {
			a := got[group]
			if healthOf(a) != want || a.DeploymentID != "" || a.ClientStatus != api.AllocClientStatusRunning {
				t.Errorf("%s: group %s's allocation: health %s, deployment %q, %s; want health %s, no deployment, running",
					c.name, group, healthOf(a), a.DeploymentID, a.ClientStatus, want)
			}
		}
	})
}

// Nomad's drainer marks at most healthy − (count − migrate.max_parallel)
// allocations of a group to migrate, counting as healthy those with health
// set: an allocation without health holds the drain of its group back
// until the deadline. Here group b's allocation, placed into a deployment
// that does not track b (no update block), never gets health, so the drain
// leaves it until its deadline forces it, while the allocation of another
// job's group, healthy outside any deployment, is migrated at once.
func TestFidelityDrainWaitsForHealth(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		scale := time.Duration(1)
		if c.sim != nil {
			scale = simSpeed
		}
		migrate := &api.MigrateStrategy{MaxParallel: new(1), HealthCheck: new("checks"), MinHealthyTime: new(2 * time.Second),
			HealthyDeadline: new(time.Minute)}
		held := c.jobID("drain-held")
		b := holdGroup("b", 1, 50, 32)
		b.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		b.Migrate = migrate
		a := holdGroup("a", 1, 50, 32)
		a.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(3 * time.Minute),
			HealthyDeadline: new(4 * time.Minute), ProgressDeadline: new(5 * time.Minute)}
		j := api.NewServiceJob(held, held, "global", 50)
		j.Datacenters = []string{"dc1"}
		j.AddTaskGroup(b)
		j.AddTaskGroup(a)
		c.register(t, j)
		free := c.jobID("drain-free")
		g := holdGroup("c", 1, 50, 32)
		g.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		g.Migrate = migrate
		k := api.NewServiceJob(free, free, "global", 50)
		k.Datacenters = []string{"dc1"}
		k.AddTaskGroup(g)
		c.register(t, k)
		c.waitAllocs(t, held, "ran both groups", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		c.waitAllocs(t, free, "turned healthy", func(as []*api.AllocationListStub) bool {
			return count(as, func(x *api.AllocationListStub) bool {
				return running(x) && x.DeploymentStatus != nil && x.DeploymentStatus.Healthy != nil && *x.DeploymentStatus.Healthy
			}) == 1
		})
		c.giveBackAtEnd(t)
		const deadline = time.Minute
		start := time.Now()
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: deadline}, false, nil); err != nil {
			t.Fatal(err)
		}
		migrating := map[string]bool{}
		marked := func(x *api.AllocationListStub) bool {
			if x.DesiredStatus != api.AllocDesiredStatusRun {
				return true
			}
			f, _, err := c.client.Allocations().Info(x.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			migrating[x.ID] = f.DesiredTransition.Migrate != nil && *f.DesiredTransition.Migrate
			return migrating[x.ID]
		}
		c.waitAllocs(t, free, "began migrating", func(as []*api.AllocationListStub) bool { return count(as, marked) == 1 })
		now := c.waitAllocs(t, held, "read", func([]*api.AllocationListStub) bool { return true })
		if since := time.Since(start) * scale; since > deadline/2 {
			t.Fatalf("%s: the check came %s after the drain started, too late to tell", c.name, since)
		}
		for _, x := range now {
			if marked(x) {
				t.Errorf("%s %s: desired %s, migrate %v before the drain's deadline; want left running (no health)",
					x.TaskGroup, x.ID[:8], x.DesiredStatus, migrating[x.ID])
			}
		}
		c.waitAllocs(t, held, "marked at the deadline", func(as []*api.AllocationListStub) bool {
			return count(as, func(x *api.AllocationListStub) bool { return x.TaskGroup == "b" && marked(x) }) == 1
		})
		if since := time.Since(start) * scale; since < deadline-2*time.Second {
			t.Errorf("group b's allocation marked %s after the drain started, before its deadline %s", since, deadline)
		}
	})
}

// An evaluation of a job that already has a blocked evaluation, and
// cannot place either, leaves a new blocked evaluation; Nomad cancels the
// older one as a duplicate, saying so and keeping its failed placements.
func TestFidelityBlockedEvalDuplicate(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		size := freeMemory(t, c) + 500 // never fits
		id := c.jobID("blocked-twice")
		j := sleepJob(id, 1, 50, size, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		resp := c.register(t, j)
		reg := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if reg.BlockedEval == "" {
			t.Fatalf("%s: registration left no blocked evaluation", c.name)
		}
		sresp, _, err := c.client.Jobs().Scale(id, "g", new(2), "", false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		scaled := c.waitEval(t, sresp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if scaled.BlockedEval == "" || scaled.BlockedEval == reg.BlockedEval {
			t.Fatalf("%s: the scaling's evaluation names blocked evaluation %q, want a new one (the first was %s)",
				c.name, scaled.BlockedEval, reg.BlockedEval)
		}
		old := c.waitEval(t, reg.BlockedEval, "canceled", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusBlocked })
		if want := fmt.Sprintf("existing blocked evaluation exists for job %q", id); old.Status != api.EvalStatusCancelled ||
			old.StatusDescription != want || old.FailedTGAllocs["g"] == nil {
			t.Errorf("the first blocked evaluation: %s %q, failed %v; want canceled %q, failed g", old.Status, old.StatusDescription,
				old.FailedTGAllocs, want)
		}
		b := c.waitEval(t, scaled.BlockedEval, "read", anyEval)
		if b.Status != api.EvalStatusBlocked || b.PreviousEval != scaled.ID || b.TriggeredBy != "queued-allocs" ||
			b.StatusDescription != "created to place remaining allocations" {
			t.Errorf("the new blocked evaluation: %s %q, triggered by %s, previous %s; want blocked, by queued-allocs, after %s",
				b.Status, b.StatusDescription, b.TriggeredBy, b.PreviousEval, scaled.ID)
		}
	})
}

// A group whose update block sets health_check = "manual" leaves the
// health of its allocations in a deployment to an operator: Nomad's client
// sets none, however long they run, and the deployment waits. (foreshape's
// follower counts such a replacement once it runs.)
func TestFidelityManualHealth(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("manual-health")
		j := sleepJob(id, 1, 50, 32, 50)
		j.Update.HealthCheck = new("manual")
		c.register(t, j)
		as := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		d := waitLatestDeployment(t, c, id)
		const ran = 6 * time.Second // min_healthy_time is 1 s
		wait := ran
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		a, _, err := c.client.Allocations().Info(as[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.DeploymentID != d.ID || healthOf(a) != "none" {
			t.Errorf("allocation %s ran for %s: deployment %q, health %s; want %s, none", a.ID[:8], ran, a.DeploymentID, healthOf(a), d.ID)
		}
		d, _, err = c.client.Deployments().Info(d.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := d.TaskGroups["g"]; d.Status != api.DeploymentStatusRunning || st == nil || st.HealthyAllocs != 0 {
			t.Errorf("deployment %s %q, groups %+v; want running, none healthy", d.Status, d.StatusDescription, d.TaskGroups)
		}
	})
}

// Under health_check = "manual" an operator sets the health of a running
// deployment's allocations (POST /v1/deployment/allocation-health/ID):
// a healthy one counts in its group at once; any unhealthy one fails the
// deployment at once ("Failed due to unhealthy allocations") and runs on;
// a terminal deployment's allocations are refused, as are an empty
// request, an unknown deployment and an unknown allocation (Nomad's 500s).
func TestFidelitySetAllocHealth(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("set-health")
		j := sleepJob(id, 2, 50, 32, 50)
		j.Update.HealthCheck = new("manual")
		j.Update.MaxParallel = new(2)
		j.Update.ProgressDeadline = new(5 * time.Minute)
		c.register(t, j)
		other := c.jobID("set-health-other")
		c.register(t, sleepJob(other, 1, 50, 32, 50))
		as := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		d := waitLatestDeployment(t, c, id)
		elsewhere := c.waitAllocs(t, other, "placed", func(as []*api.AllocationListStub) bool { return len(as) > 0 })[0].ID
		dep := c.client.Deployments()
		const zero = "00000000-0000-0000-0000-000000000000"
		for _, tc := range []struct {
			what               string
			deployment         string
			healthy, unhealthy []string
			want               string
		}{
			{"nothing named", d.ID, nil, nil, "must specify at least one healthy/unhealthy allocation ID"},
			{"an unknown deployment", zero, []string{as[0].ID}, nil, "deployment not found"},
			{"an unknown allocation", d.ID, []string{zero}, nil, `unknown alloc "` + zero + `"`},
			{"another job's allocation", d.ID, nil, []string{elsewhere}, `alloc "` + elsewhere + `" is not part of deployment "` + d.ID + `"`},
		} {
			_, _, err := dep.SetAllocHealth(tc.deployment, tc.healthy, tc.unhealthy, nil)
			if code, body := response(err); code != 500 || body != tc.want {
				t.Errorf("%s: set health: %d %q (%v); want 500 %q", tc.what, code, body, err, tc.want)
			}
		}
		resp, _, err := dep.SetAllocHealth(d.ID, []string{as[0].ID}, nil, nil)
		if err != nil || resp.EvalID == "" || resp.RevertedJobVersion != nil {
			t.Fatalf("set %s healthy: %+v, %v; want an evaluation, no revert", as[0].ID[:8], resp, err)
		}
		if ev, _, err := c.client.Evaluations().Info(resp.EvalID, nil); err != nil || ev.TriggeredBy != "deployment-watcher" {
			t.Errorf("its evaluation: %+v, %v; want one triggered by deployment-watcher", ev, err)
		}
		d1, _, err := dep.Info(d.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := d1.TaskGroups["g"]; d1.Status != api.DeploymentStatusRunning || st.HealthyAllocs != 1 || st.UnhealthyAllocs != 0 {
			t.Errorf("after one healthy: deployment %s %q, group %+v; want running, 1 healthy", d1.Status, d1.StatusDescription, st)
		}
		if _, _, err := dep.SetAllocHealth(d.ID, nil, []string{as[1].ID}, nil); err != nil {
			t.Fatalf("set %s unhealthy: %v", as[1].ID[:8], err)
		}
		d2, _, err := dep.Info(d.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := d2.TaskGroups["g"]; d2.Status != api.DeploymentStatusFailed || d2.StatusDescription != "Failed due to unhealthy allocations" ||
			st.HealthyAllocs != 1 || st.UnhealthyAllocs != 1 {
			t.Errorf("after one unhealthy: deployment %s %q, group %+v; want failed due to unhealthy allocations, 1 and 1", d2.Status, d2.StatusDescription, st)
		}
		for i, want := range []string{"true", "false"} {
			a, _, err := c.client.Allocations().Info(as[i].ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if healthOf(a) != want || a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning {
				t.Errorf("allocation %s: health %s, %s/%s; want %s, run/running", a.ID[:8], healthOf(a), a.DesiredStatus, a.ClientStatus, want)
			}
		}
		_, _, err = dep.SetAllocHealth(d.ID, []string{as[1].ID}, nil, nil)
		if code, body := response(err); code != 500 || body != "can't set health of allocations for a terminal deployment" {
			t.Errorf("set health in the failed deployment: %d %q (%v); want 500 %q", code, body, err, "can't set health of allocations for a terminal deployment")
		}
	})
}

// Setting every allocation of a manual deployment healthy completes it
// (the version turns stable); an allocation set unhealthy in a later
// version's deployment of a group with auto_revert rolls the job back to
// that stable version: the answer names it (RevertedJobVersion), the
// deployment's description says so and the job is registered again as a
// new version.
func TestFidelitySetAllocHealthRollback(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("set-health-revert")
		j := sleepJob(id, 1, 50, 32, 50)
		j.Update.HealthCheck = new("manual")
		j.Update.AutoRevert = new(true)
		j.Update.ProgressDeadline = new(5 * time.Minute)
		c.register(t, j)
		dep := c.client.Deployments()
		healthy := func(version uint64) (*api.Deployment, string) {
			t.Helper()
			as := c.waitAllocs(t, id, fmt.Sprintf("ran version %d", version), func(as []*api.AllocationListStub) bool {
				return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == version }) == 1
			})
			for _, a := range as {
				if running(a) && a.JobVersion == version {
					return waitLatestDeployment(t, c, id), a.ID
				}
			}
			return nil, ""
		}
		d0, a0 := healthy(0)
		if resp, _, err := dep.SetAllocHealth(d0.ID, []string{a0}, nil, nil); err != nil || resp.RevertedJobVersion != nil {
			t.Fatalf("set %s healthy: %+v, %v", a0[:8], resp, err)
		}
		d0 = waitDeployment(t, c, d0.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		if d0.Status != api.DeploymentStatusSuccessful {
			t.Fatalf("version 0's deployment %s %q; want successful once its allocation was set healthy", d0.Status, d0.StatusDescription)
		}
		j.TaskGroups[0].Tasks[0].Env = map[string]string{"V": "1"}
		c.register(t, j)
		var d1 *api.Deployment
		for deadline := time.Now().Add(waitLimit); ; time.Sleep(50 * time.Millisecond) {
			if d1 = waitLatestDeployment(t, c, id); d1.JobVersion == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no deployment of version 1")
			}
		}
		_, a1 := healthy(1)
		resp, _, err := dep.SetAllocHealth(d1.ID, nil, []string{a1}, nil)
		if err != nil || resp.RevertedJobVersion == nil || *resp.RevertedJobVersion != 0 {
			t.Fatalf("set %s unhealthy: %+v, %v; want it to revert to version 0", a1[:8], resp, err)
		}
		d1, _, err = dep.Info(d1.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "Failed due to unhealthy allocations - rolling back to job version 0"; d1.Status != api.DeploymentStatusFailed || d1.StatusDescription != want {
			t.Errorf("version 1's deployment %s %q; want failed %q", d1.Status, d1.StatusDescription, want)
		}
		c.waitJob(t, id, "rolled back as version 2", func(j *api.Job) bool {
			return *j.Version == 2 && j.TaskGroups[0].Tasks[0].Env["V"] == ""
		})
	})
}

// Nomad's client watches an allocation's health with its group's update
// block for as long as it carries the deployment's ID, whatever became of
// the deployment: an allocation still short of its min_healthy_time when
// the deployment fails (here because another group's allocation failed,
// with no reschedule allowed) turns healthy afterwards all the same.
func TestFidelityHealthAfterDeploymentFailed(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("health-after-failure")
		j := crashJob(id, 5*time.Second)
		f := j.TaskGroups[0]
		f.Name = new("f")
		f.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Interval: new(time.Hour), Unlimited: new(false),
			Delay: new(5 * time.Second), DelayFunction: new("constant")}
		f.Update = &api.UpdateStrategy{MinHealthyTime: new(10 * time.Second)} // fails (at 2 s) before it is healthy
		h := holdGroup("h", 1, 50, 32)
		h.Update = &api.UpdateStrategy{MinHealthyTime: new(20 * time.Second)}
		j.AddTaskGroup(h)
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second), HealthyDeadline: new(40 * time.Second),
			ProgressDeadline: new(time.Minute)}
		c.register(t, j)
		var held string
		deadline := time.Now().Add(waitLimit)
		for failed := false; !failed; time.Sleep(100 * time.Millisecond) {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range as {
				switch {
				case s.TaskGroup == "h":
					held = s.ID
				case s.ClientStatus == api.AllocClientStatusFailed:
					failed = true
				case c.sim != nil && running(s):
					if err := c.sim.FailAlloc(s.ID, "exit 1"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: group f's allocation never failed: %s", c.name, describe(as))
			}
		}
		d := waitLatestDeployment(t, c, id)
		d = waitDeployment(t, c, d.ID, func(d *api.Deployment) bool { return d.Status != api.DeploymentStatusRunning })
		a, _, err := c.client.Allocations().Info(held, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != api.DeploymentStatusFailed || a.DeploymentID != d.ID || healthOf(a) != "none" {
			t.Fatalf("%s: deployment %s %q; group h's allocation: deployment %q, health %s; want failed, %s, none yet",
				c.name, d.Status, d.StatusDescription, a.DeploymentID, healthOf(a), d.ID)
		}
		a = c.waitAlloc(t, held, "turned healthy", func(a *api.Allocation) bool { return healthOf(a) != "none" })
		if healthOf(a) != "true" || a.DeploymentID != d.ID {
			t.Errorf("group h's allocation after the deployment failed: health %s, deployment %q; want true, %s", healthOf(a), a.DeploymentID, d.ID)
		}
	})
}

// TestFidelityNodePurge: PUT /v1/node/:id/purge (`nomad node purge`,
// Nomad's Node.Deregister). It asks node write: a token with node read is
// refused, 403 "Permission denied", before the node is looked up; with
// node write an unknown node is a 500 "node not found" and an ID that is
// no UUID a 500 of the lookup. Purging the node a job runs on answers
// Nomad's whole NodeUpdateResponse, its index (X-Nomad-Index and
// NodeModifyIndex) the deletion's, below EvalCreateIndex, with one
// node-update evaluation for the job naming the node; the node is gone
// from the node list and reading it answers 404 "node not found", its
// allocations are still listed under its ID, and the job's allocation is
// stopped as lost ("alloc is lost since its node is down"), its client
// description kept. The node's client still runs, and registers the node
// again at its next heartbeat (a real dev agent's 1.5 to 20 s later; the
// simulator's every Reregister, 15 s by default): the same ID and name, a
// create index above the purge's, ready, without a drain or a last drain,
// its old allocations still listed under it and reported complete by the
// client ("All tasks have completed", still desired stop as lost), the
// system job placed on it again, and the eligibility its client heard at
// its last heartbeat: eligible when it was made ineligible just before
// the purge, ineligible when it had been for a heartbeat.
func TestFidelityNodePurge(t *testing.T) {
	t.Run("refusals", func(t *testing.T) {
		forEachPurgeTokens(t, checkPurgeRefusals)
	})
	t.Run("purge", func(t *testing.T) {
		forEachNomad(t, checkPurge)
	})
}

// forEachPurgeTokens runs check against the simulator with ACLs on and,
// when NOMAD_ADDR is set, against that Nomad if its ACLs are on, with the
// secrets of a token whose policy grants node write and of one granting
// node read.
func forEachPurgeTokens(t *testing.T, check func(t *testing.T, addr, write, read string)) {
	t.Run("sim", func(t *testing.T) {
		write, read := newUUID(), newUUID()
		acl := fmt.Sprintf("acl {\n  tokens = [%q]\n", "fidelity-secret")
		for _, k := range []struct{ secret, node string }{{write, "write"}, {read, "read"}} {
			acl += fmt.Sprintf("  token %q {\n    capabilities = [\"read-job\"]\n    node = %q\n  }\n", k.secret, k.node)
		}
		check(t, startACLSim(t, acl+"}\n"), write, read)
	})
	t.Run("nomad", func(t *testing.T) {
		addr, mgmt := aclNomad(t)
		c := realnomad.Client(t, addr, mgmt)
		secrets := map[string]string{}
		for _, p := range []testPolicy{{"purge-node-write", []string{"read-job"}, "write", ""}, {"purge-node-read", []string{"read-job"}, "read", ""}} {
			name := fmt.Sprintf("fidelity-%s-%d", p.name, os.Getpid())
			if _, err := c.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Description: "foreshape fidelity check", Rules: p.rules()}, nil); err != nil {
				t.Fatalf("policy %s: %v", name, err)
			}
			t.Cleanup(func() { _, _ = c.ACLPolicies().Delete(name, nil) })
			tok, _, err := c.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
			if err != nil {
				t.Fatalf("token of policy %s: %v", name, err)
			}
			t.Cleanup(func() { _, _ = c.ACLTokens().Delete(tok.AccessorID, nil) })
			secrets[p.node] = tok.SecretID
		}
		check(t, addr, secrets["write"], secrets["read"])
	})
}

// checkPurgeRefusals purges nodes that do not exist, and the node of the
// Nomad at addr with a token that may not, which changes nothing.
func checkPurgeRefusals(t *testing.T, addr, write, read string) {
	nodes, _, err := realnomad.Client(t, addr, write).Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes of %s: %v %v", addr, nodes, err)
	}
	node := readyNode(nodes)
	for _, k := range []struct{ what, id, token, want string }{
		{"an unknown node with node write", newUUID(), write, "500 node not found"},
		{"a node name with node write", "not-a-node-id", write, "500 node lookup failed: index error: UUID must be 36 characters"},
		{"an unknown node with node read", newUUID(), read, "403 Permission denied"},
		{"the node with node read", node, read, "403 Permission denied"},
	} {
		_, _, err := realnomad.Client(t, addr, k.token).Nodes().Purge(k.id, nil)
		code, body := response(err)
		if got := fmt.Sprintf("%d %s", code, body); got != k.want {
			t.Errorf("purge %s: %s (%v); want %s", k.what, got, err, k.want)
		}
	}
	if n, _, err := realnomad.Client(t, addr, write).Nodes().Info(node, nil); err != nil || n.ID != node {
		t.Errorf("the node after the refused purge: %v", err)
	}
}

// purgeAnswerFields are the fields of Nomad's answer to a node purge (its
// NodeUpdateResponse with the query meta).
var purgeAnswerFields = []string{"EvalCreateIndex", "EvalIDs", "Features", "HeartbeatTTL", "Index", "KnownLeader", "LastContact",
	"LeaderRPCAddr", "NextToken", "NodeModifyIndex", "NumNodes", "SchedulingEligibility", "Servers", "SignedIdentity"}

// checkPurge purges the node a service job of one allocation, a system
// job and a sysbatch job run on. The sysbatch job is not evaluated: its
// allocation runs on, desired to run, through the purge and after the
// node is registered again (measured on a real Nomad 2.0.6-dev).
func checkPurge(t *testing.T, c *cluster) {
	id, sys, sb := c.jobID("purge"), c.jobID("purge-system"), c.jobID("purge-sysbatch")
	c.register(t, sleepJob(id, 1, 50, 32, 50))
	sj := sleepJob(sys, 1, 50, 32, 50)
	sj.Type, sj.Update = new(api.JobTypeSystem), nil
	c.register(t, sj)
	sbj := sleepJob(sb, 1, 50, 32, 50)
	sbj.Type, sbj.Update = new(api.JobTypeSysbatch), nil
	c.register(t, sbj)
	allocs := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
	allocID := allocs[0].ID
	sysAlloc := c.waitAllocs(t, sys, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID
	sbAlloc := c.waitAllocs(t, sb, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID
	runsOn := func(when string) {
		t.Helper()
		a, _, err := c.client.Allocations().Info(sbAlloc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning || a.NodeID != c.node.ID {
			t.Errorf("%s: %s, the sysbatch allocation: %s (%q) / %s on %s; want run / running on %s", c.name, when,
				a.DesiredStatus, a.DesiredDescription, a.ClientStatus, a.NodeID, c.node.ID)
		}
	}
	desc := map[string]string{} // client descriptions before the purge
	for _, a := range []string{allocID, sysAlloc} {
		before, _, err := c.client.Allocations().Info(a, nil)
		if err != nil {
			t.Fatal(err)
		}
		desc[a] = before.ClientDescription
	}
	// Out of scheduling, as foreshape holds a node it moves work off.
	if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	before, _, err := c.client.Nodes().Info(c.node.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.sim == nil {
		t.Cleanup(func() {
			// The next checks need the dev agent's node back, eligible,
			// whatever this one found.
			n, _, err := c.client.Nodes().Info(c.node.ID, nil)
			if err == nil && n.SchedulingEligibility != api.NodeSchedulingEligible {
				if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, true, nil); err != nil {
					t.Errorf("%s: make the node eligible again: %v", c.name, err)
				}
			}
		})
	}
	resp, raw := putNode(t, c, "purge")
	// Read at once: a real Nomad's client registers its node again at its
	// next heartbeat.
	_, _, infoErr := c.client.Nodes().Info(c.node.ID, nil)
	listed, _, listErr := c.client.Nodes().List(nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: purge: %d %s", c.name, resp.StatusCode, raw)
	}
	t.Logf("%s: purge answered X-Nomad-Index %s: %s", c.name, resp.Header.Get("X-Nomad-Index"), raw)
	fields := nodeUpdateFields(t, c, "purge", raw)
	for _, k := range []string{"HeartbeatTTL", "Features", "NumNodes", "LastContact"} {
		if fields[k] != float64(0) {
			t.Errorf("%s: the purge's answer's %s is %v; want 0", c.name, k, fields[k])
		}
	}
	for _, k := range []string{"Servers", "SignedIdentity"} {
		if fields[k] != nil {
			t.Errorf("%s: the purge's answer's %s is %v; want null", c.name, k, fields[k])
		}
	}
	if fields["LeaderRPCAddr"] != "" || fields["SchedulingEligibility"] != "" || fields["NextToken"] != "" || fields["KnownLeader"] != false {
		t.Errorf("%s: the purge's answer: %s; want LeaderRPCAddr, SchedulingEligibility and NextToken empty, KnownLeader false", c.name, raw)
	}
	var out api.NodePurgeResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Nomad-Index"), 10, 64)
	if out.NodeModifyIndex == 0 || out.NodeModifyIndex != index || uint64(fields["Index"].(float64)) != index {
		t.Errorf("%s: NodeModifyIndex %d, Index %v, X-Nomad-Index %d; want the same, not 0", c.name, out.NodeModifyIndex, fields["Index"], index)
	}
	if out.EvalCreateIndex <= out.NodeModifyIndex {
		t.Errorf("%s: EvalCreateIndex %d; want above NodeModifyIndex %d", c.name, out.EvalCreateIndex, out.NodeModifyIndex)
	}
	if code, body := response(infoErr); code != http.StatusNotFound || body != "node not found" {
		t.Errorf("%s: read the purged node: %d %q (%v); want 404 node not found", c.name, code, body, infoErr)
	}
	if listErr != nil {
		t.Fatal(listErr)
	}
	for _, n := range listed {
		if n.ID == c.node.ID {
			t.Errorf("%s: the purged node is listed: %s %s", c.name, n.Name, n.Status)
		}
	}
	var jobs []string
	for _, e := range out.EvalIDs {
		ev := c.waitEval(t, e, "read", anyEval)
		if ev.TriggeredBy != "node-update" || ev.NodeID != c.node.ID || ev.NodeModifyIndex != out.NodeModifyIndex {
			t.Errorf("%s: the purge's evaluation of %s: triggered by %s, node %s at %d; want node-update, %s at %d",
				c.name, ev.JobID, ev.TriggeredBy, ev.NodeID, ev.NodeModifyIndex, c.node.ID, out.NodeModifyIndex)
		}
		jobs = append(jobs, ev.JobID)
	}
	sort.Strings(jobs)
	if want := []string{id, sys}; strings.Join(jobs, " ") != strings.Join(want, " ") {
		t.Errorf("%s: the purge evaluated %v; want %v, one evaluation each", c.name, jobs, want)
	}
	for _, k := range []struct{ job, alloc string }{{id, allocID}, {sys, sysAlloc}} {
		a := c.waitAlloc(t, k.alloc, "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" ||
			a.ClientDescription != desc[k.alloc] || a.NodeID != c.node.ID {
			t.Errorf("%s: the purged node's allocation of %s: %s (%q) / %s (%q) on %s; want stop (alloc is lost since its node is down) / lost (%q) on %s",
				c.name, k.job, a.DesiredStatus, a.DesiredDescription, a.ClientStatus, a.ClientDescription, a.NodeID, desc[k.alloc], c.node.ID)
		}
	}
	onNode, _, err := c.client.Nodes().Allocations(c.node.ID, nil)
	if err != nil || allocsWithID(onNode, allocID) != 1 {
		t.Errorf("%s: the purged node's allocations: %d listed, %v; want its allocation listed", c.name, len(onNode), err)
	}
	runsOn("after the purge")
	checkRegisteredAgain(t, c, before, out.NodeModifyIndex, allocID, sys, sysAlloc)
	runsOn("once the node is registered again")
	checkPurgedAfterAHeartbeat(t, c, before.ID)
}

// checkPurgedAfterAHeartbeat takes the node out of scheduling, waits for
// its client's next heartbeat (Nomad's answer tells the client the
// node's eligibility, and the client keeps it), purges it, and checks it
// registers again with that eligibility: ineligible, without a drain.
// (Purged right after it was made ineligible, as checkPurge does, it
// comes back eligible: its client had not heard.)
func checkPurgedAfterAHeartbeat(t *testing.T, c *cluster, id string) {
	if _, err := c.client.Nodes().ToggleEligibility(id, false, nil); err != nil {
		t.Fatal(err)
	}
	if c.sim != nil {
		// Two heartbeats of simulated time.
		until := c.sim.Now().Add(2 * sim.DefaultReregister)
		for c.sim.Now().Before(until) {
			time.Sleep(50 * time.Millisecond)
		}
	} else {
		// A dev agent's one node heartbeats every 10 to 20 s.
		time.Sleep(25 * time.Second)
	}
	before, _, err := c.client.Nodes().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.client.Nodes().Purge(id, nil); err != nil {
		t.Fatalf("%s: purge: %v", c.name, err)
	}
	start := time.Now()
	deadline := start.Add(waitLimit)
	for {
		n, _, err := c.client.Nodes().Info(id, nil)
		if err == nil {
			t.Logf("%s: purged a heartbeat after it was made ineligible, the node registered again after %v (wall): create index %d (%d before), %s, drain %v",
				c.name, time.Since(start).Round(100*time.Millisecond), n.CreateIndex, before.CreateIndex, n.SchedulingEligibility, n.DrainStrategy)
			if n.CreateIndex <= before.CreateIndex || n.SchedulingEligibility != api.NodeSchedulingIneligible || n.DrainStrategy != nil {
				t.Errorf("%s: registered again with create index %d (%d before), %s, drain %v; want a later one, ineligible as its client last heard, no drain",
					c.name, n.CreateIndex, before.CreateIndex, n.SchedulingEligibility, n.DrainStrategy)
			}
			return
		}
		if code, _ := response(err); code != http.StatusNotFound {
			t.Fatalf("%s: read the purged node: %v", c.name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the purged node did not register again within %v", c.name, waitLimit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkRegisteredAgain waits for the purged node (before: as it was just
// before the purge, ineligible) to register again, its client still
// running, and checks what it is then.
func checkRegisteredAgain(t *testing.T, c *cluster, before *api.Node, purged uint64, allocID, sys, sysAlloc string) {
	start := time.Now()
	deadline := start.Add(waitLimit)
	n := registeredAgain(t, c, before.ID, deadline)
	t.Logf("%s: the node registered again after %v (wall): create index %d (%d before, purged at %d), modify index %d, %s, %s, drain %v, last drain %v, events %d",
		c.name, time.Since(start).Round(100*time.Millisecond), n.CreateIndex, before.CreateIndex, purged, n.ModifyIndex, n.Status,
		n.SchedulingEligibility, n.DrainStrategy, n.LastDrain, len(n.Events))
	for _, e := range n.Events {
		t.Logf("%s: node event: %s %s %q %v", c.name, e.Timestamp.UTC().Format(time.RFC3339), e.Subsystem, e.Message, e.Details)
	}
	if n.ID != before.ID || n.Name != before.Name || n.Datacenter != before.Datacenter {
		t.Errorf("%s: registered again as %s %s in %s; want %s %s in %s", c.name, n.ID, n.Name, n.Datacenter, before.ID, before.Name, before.Datacenter)
	}
	if n.CreateIndex <= purged || n.ModifyIndex < n.CreateIndex {
		t.Errorf("%s: registered again with create index %d, modify index %d; want a create index above the purge's %d", c.name, n.CreateIndex, n.ModifyIndex, purged)
	}
	if n.SchedulingEligibility != api.NodeSchedulingEligible || n.Drain || n.DrainStrategy != nil || n.LastDrain != nil {
		t.Errorf("%s: registered again %s, drain %v %v, last drain %v; want eligible (it was %s), no drain", c.name, n.SchedulingEligibility, n.Drain, n.DrainStrategy, n.LastDrain, before.SchedulingEligibility)
	}
	// The status turns ready once the client's first heartbeat after its
	// registration lands.
	for n.Status != api.NodeStatusReady && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if x, _, err := c.client.Nodes().Info(before.ID, nil); err == nil {
			n = x
		}
	}
	if n.Status != api.NodeStatusReady {
		t.Errorf("%s: registered again %s; want ready", c.name, n.Status)
	}
	listed, _, err := c.client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(listed, func(s *api.NodeListStub) bool { return s.ID == before.ID && s.CreateIndex == n.CreateIndex }) {
		t.Errorf("%s: the node registered again is not listed with create index %d", c.name, n.CreateIndex)
	}
	// Its client, which still ran the allocations the purge stopped as
	// lost, stops them and reports them complete (a real client within
	// 1.5 s of the registration, though one first reported an allocation
	// still running, as it last knew it, before it had the servers'
	// stop); the servers' side stays the purge's.
	for _, id := range []string{allocID, sysAlloc} {
		a := c.waitAlloc(t, id, "reported stopped by the client that came back", func(a *api.Allocation) bool {
			return a.ClientStatus != api.AllocClientStatusLost && a.ClientStatus != api.AllocClientStatusRunning
		})
		if a.ClientStatus != api.AllocClientStatusComplete || a.ClientDescription != "All tasks have completed" ||
			a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" || a.NodeID != before.ID {
			t.Errorf("%s: the purged node's old allocation %s after it registered again: %s (%q) / %s (%q) on %s; want stop (alloc is lost since its node is down) / complete (All tasks have completed) on %s",
				c.name, id[:8], a.DesiredStatus, a.DesiredDescription, a.ClientStatus, a.ClientDescription, a.NodeID, before.ID)
		}
	}
	// The system job runs on it again, in a new allocation.
	c.waitAllocs(t, sys, "ran on the node registered again", func(as []*api.AllocationListStub) bool {
		return slices.ContainsFunc(as, func(x *api.AllocationListStub) bool { return x.ID != sysAlloc && x.NodeID == before.ID && running(x) })
	})
}

// allocsWithID counts the allocations of allocs with ID id.
func allocsWithID(allocs []*api.Allocation, id string) int {
	n := 0
	for _, a := range allocs {
		if a.ID == id {
			n++
		}
	}
	return n
}

// putNode sends PUT /v1/node/:id/ACTION for c's node with c's token, as
// the api client cannot (it drops the answer's fields), and returns the
// answer and its body.
func putNode(t *testing.T, c *cluster, action string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.client.Address()+"/v1/node/"+c.node.ID+"/"+action, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("X-Nomad-Token", c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, raw
}

// registeredAgain waits until the purged node id is registered again (a
// real Nomad's client does so at its next heartbeat), failing the test at
// deadline, and returns it.
func registeredAgain(t *testing.T, c *cluster, id string, deadline time.Time) *api.Node {
	t.Helper()
	for {
		n, _, err := c.client.Nodes().Info(id, nil)
		if err == nil {
			return n
		}
		if code, _ := response(err); code != http.StatusNotFound {
			t.Fatalf("%s: read the purged node: %v", c.name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the purged node did not register again within %v", c.name, waitLimit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// nodeUpdateFields decodes raw, a NodeUpdateResponse (the answer of a
// node's purge or evaluate), and checks it has Nomad's fields
// (purgeAnswerFields).
func nodeUpdateFields(t *testing.T, c *cluster, what string, raw []byte) map[string]any {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, " ") != strings.Join(purgeAnswerFields, " ") {
		t.Errorf("%s: %s: the answer has fields %v; want %v", c.name, what, keys, purgeAnswerFields)
	}
	return fields
}
