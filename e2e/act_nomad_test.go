package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/policies"
)

// TestActAgainstRealNomad makes the act half's calls against a real Nomad
// (NOMAD_ADDR, raw_exec enabled): the coordinator reserves room for an
// allocation's move with a raw_exec /bin/sleep placeholder, hands the
// placeholder over as it stops the allocation, follows the replacement
// until it runs, deregisters the placeholder, reaps an orphaned one, and in
// a dry run changes nothing. A Nomad dev agent has a single node, so the
// move's target is that node's pool (another locality path over the same
// node) and the replacement lands back on it; the drain and eligibility
// calls, which would take the only node out of service, run against the
// simulator only (TestActMaintenanceDrain, TestActKillMidMove).
func TestActAgainstRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	node := rawExecNode(t, nodes)
	job := fmt.Sprintf("fs-e2e-act-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	registerSleeper(t, client, job, node.Datacenter)
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
	alloc := waitRunning(t, client, job, "")

	local := newLocal(t)
	pols := realPolicies(t, `
shaping "source" {
  locality {
    datacenter = %q
  }
}
shaping "target" {
  locality {
    node_pool = %q
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 1000
    max_memory = 1024
  }
}
`, node.Datacenter, node.NodePool)
	coord := realCoordinator(t, addr, local)
	ctx := context.Background()
	t.Cleanup(func() { reapAll(t, client, local.FSM.Act().ClusterID) })
	id := submitMove(t, local, alloc, "source", "operator",
		policies.Locality{Datacenter: node.Datacenter}.String(), policies.Locality{NodePool: node.NodePool}.String())
	// Until done: the reservation first, then (its placeholder running) the
	// hand-over and the stop, then the follower.
	deadline := time.Now().Add(2 * time.Minute)
	var placeholder string
	for {
		if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		if rs, ok := local.FSM.Act().ReservationFor(id); ok && placeholder == "" {
			placeholder = rs.Job
			pj, _, err := client.Jobs().Info(rs.Job, nil)
			if err != nil {
				t.Fatalf("placeholder %s: %v", rs.Job, err)
			}
			if *pj.Priority != 10 || pj.TaskGroups[0].Tasks[0].Driver != "raw_exec" || *pj.TaskGroups[0].Update.MaxParallel != 0 ||
				pj.Meta[migrate.MetaRequest] != id {
				t.Errorf("placeholder as Nomad holds it: %+v", pj)
			}
		}
		r, _ := local.FSM.Act().Request(id)
		if r.State.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still %s after 2 minutes: %s", id, r.State, r.Reason)
		}
		time.Sleep(time.Second)
	}
	r, _ := local.FSM.Act().Request(id)
	if r.State != state.RequestDone || r.Moves[0].Replacement == "" {
		t.Fatalf("request %+v", r)
	}
	if placeholder == "" {
		t.Fatal("no reservation was placed")
	}
	old, _, err := client.Allocations().Info(alloc.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.DesiredStatus != "stop" || old.NextAllocation != r.Moves[0].Replacement {
		t.Errorf("the moved allocation: desired %s, next %s; want stopped and replaced by %s", old.DesiredStatus, old.NextAllocation, r.Moves[0].Replacement)
	}
	if next, _, err := client.Allocations().Info(r.Moves[0].Replacement, nil); err != nil || next.NextAllocation != "" || next.ClientStatus != "running" {
		t.Errorf("the replacement %s: %+v %v (stopped twice?)", r.Moves[0].Replacement, next, err)
	}
	if j, _, err := client.Jobs().Info(placeholder, nil); err == nil && !*j.Stop {
		t.Errorf("placeholder %s outlived its move", placeholder)
	}
	for _, in := range local.FSM.Intents() {
		if in.Outcome != state.OutcomeDone {
			t.Errorf("intent %+v", in)
		}
	}

	// An orphaned placeholder of this cluster is reaped.
	orphan := state.PlaceholderPrefix + fmt.Sprintf("orphan-%d", os.Getpid())
	registerSleeper(t, client, orphan, node.Datacenter, func(j *nomadapi.Job) {
		j.Meta = map[string]string{migrate.MetaOwner: local.FSM.Act().ClusterID}
		p := 10
		j.Priority = &p
	})
	if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
		t.Fatal(err)
	}
	if j, _, err := client.Jobs().Info(orphan, nil); err == nil && !*j.Stop {
		t.Errorf("orphan %s not reaped", orphan)
	}

	// A dry run plans the same move and changes nothing.
	alloc2 := waitRunning(t, client, job, "")
	dryState, _ := state.NewLocal(state.Config{})
	dry, err := migrate.New(migrate.Config{Nomad: realnomad.Client(t, addr, realnomad.Token()), Apply: dryState, State: dryState.FSM, Node: "e2e-dry", ForecastOnly: true,
		Placeholder: migrate.Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep"}}})
	if err != nil {
		t.Fatal(err)
	}
	submitMove(t, dryState, alloc2, "source", "operator",
		policies.Locality{Datacenter: node.Datacenter}.String(), policies.Locality{NodePool: node.NodePool}.String())
	before := alloc2.ModifyIndex
	for range 3 {
		if _, err := dry.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	after, _, err := client.Allocations().Info(alloc2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.ModifyIndex != before || after.DesiredStatus != "run" {
		t.Errorf("dry run touched %s (modify index %d → %d, desired %s)", alloc2.ID, before, after.ModifyIndex, after.DesiredStatus)
	}
	held, err := placeholders(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range held {
		if j.Meta[migrate.MetaOwner] == dryState.FSM.Act().ClusterID && !j.Stop {
			t.Errorf("dry run registered %s", j.ID)
		}
	}
	t.Logf("figures: real Nomad %s: reserved, handed over, moved and released %s (%s); orphan reaped; dry run changed nothing", addr, alloc.ID[:8], r.Reason)
}

// realNomadNodes returns NOMAD_ADDR (or skips), a client for the test's
// own set-up there (realnomad.SetupToken) and its nodes.
func realNomadNodes(t *testing.T) (string, *nomadapi.Client, []*nomadapi.NodeListStub) {
	t.Helper()
	addr := realNomad(t)
	client := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	return addr, client, nodes
}

// realCoordinator is a coordinator on local's state that acts on the real
// Nomad at addr with foreshape's token (NOMAD_TOKEN), with raw_exec
// /bin/sleep placeholders.
func realCoordinator(t *testing.T, addr string, local *state.Local) *migrate.Coordinator {
	t.Helper()
	coord, err := migrate.New(migrate.Config{Nomad: realnomad.Client(t, addr, realnomad.Token()), Apply: local, State: local.FSM, Node: "e2e", SyncScale: true,
		Placeholder: migrate.Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}}},
		Logger:      hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})})
	if err != nil {
		t.Fatal(err)
	}
	return coord
}

// rawExecReady reports whether n can take a raw_exec allocation now.
func rawExecReady(n *nomadapi.NodeListStub) bool {
	d := n.Drivers["raw_exec"]
	return n.Status == "ready" && n.SchedulingEligibility == "eligible" && d != nil && d.Detected && d.Healthy
}

// rawExecNode is the first of nodes that is rawExecReady; the test is
// skipped when there is none.
func rawExecNode(t *testing.T, nodes []*nomadapi.NodeListStub) *nomadapi.NodeListStub {
	t.Helper()
	for _, n := range nodes {
		if rawExecReady(n) {
			return n
		}
	}
	t.Skip("NOMAD_ADDR has no ready, eligible node with raw_exec enabled: this test needs one")
	return nil
}

// registerSleeper registers a one-allocation raw_exec /bin/sleep job.
func registerSleeper(t *testing.T, client *nomadapi.Client, id, dc string, tweak ...func(*nomadapi.Job)) {
	t.Helper()
	name, typ, prio, count, cpu, mem, group := id, "service", 50, 1, 100, 64, "sleep"
	zero := 0
	job := &nomadapi.Job{ID: &id, Name: &name, Type: &typ, Priority: &prio, Datacenters: []string{dc},
		TaskGroups: []*nomadapi.TaskGroup{{Name: &group, Count: &count, Update: &nomadapi.UpdateStrategy{MaxParallel: &zero},
			Tasks: []*nomadapi.Task{{Name: "sleep", Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}},
				Resources: &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}}}}}}
	for _, f := range tweak {
		f(job)
	}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

// waitRunning waits for a running allocation of job other than not.
func waitRunning(t *testing.T, client *nomadapi.Client, job, not string) *nomadapi.AllocationListStub {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		allocs, _, err := client.Jobs().Allocations(job, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range allocs {
			if a.ID != not && a.ClientStatus == "running" && a.DesiredStatus == "run" {
				return a
			}
		}
	}
	t.Fatalf("no running allocation of %s within a minute", job)
	return nil
}

// submitMove queues the move of one running allocation of a sleeper job
// (100 MHz / 64 MiB, registerSleeper) off its node, by rescheduling, from
// source to target under policy, as origin ("operator", or "planner" for
// a spread) would, and returns the request's ID.
func submitMove(t *testing.T, local *state.Local, alloc *nomadapi.AllocationListStub, policy, origin, source, target string) string {
	t.Helper()
	size := state.Resources{CPU: 100, MemoryMB: 64}
	res, err := local.Apply(context.Background(), state.SubmitRequest{Request: state.MigrationRequest{
		Resource: state.Resource{Kind: state.ResourceAllocation, ID: alloc.ID, Name: alloc.Name, Namespace: alloc.Namespace,
			Job: alloc.JobID, Group: alloc.TaskGroup},
		Source: source, Target: target, Policy: policy, Strategy: "reschedule", Origin: origin, Moved: size,
		Created: time.Now().UTC(), State: state.RequestPending,
		Moves: []state.Move{{Alloc: alloc.ID, Name: alloc.Name, Namespace: alloc.Namespace, Job: alloc.JobID, Group: alloc.TaskGroup,
			Node: alloc.NodeID, Size: size}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// placeholders lists the placeholder jobs with their meta, which Nomad
// lists only when asked (meta=true): without it every job's Meta is nil.
func placeholders(client *nomadapi.Client) ([]*nomadapi.JobListStub, error) {
	jobs, _, err := client.Jobs().List(&nomadapi.QueryOptions{Prefix: state.PlaceholderPrefix, Params: map[string]string{"meta": "true"}})
	return jobs, err
}

// reapAll deregisters every placeholder this test's cluster owns.
func reapAll(t *testing.T, client *nomadapi.Client, owner string) {
	jobs, err := placeholders(client)
	if err != nil {
		return
	}
	for _, j := range jobs {
		if strings.HasPrefix(j.ID, state.PlaceholderPrefix) && (j.Meta[migrate.MetaOwner] == owner || strings.Contains(j.ID, "orphan")) {
			_, _, _ = client.Jobs().Deregister(j.ID, true, nil)
		}
	}
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestActMaintenanceDrainOnRealNomad is TestActMaintenanceDrain against a
// real Nomad (NOMAD_ADDR) with at least two datacenters that each have a
// ready node with raw_exec: the agent process, on the wall clock, drains
// datacenter A at the next window (cron, a few minutes ahead) into B with
// raw_exec /bin/sleep placeholders. It checks the reservations came before
// the window, at most two moves ran at once, every allocation was replaced
// once and runs in B, no placeholder is left, and A's nodes are eligible
// again after the window. About nine minutes of wall time.
func TestActMaintenanceDrainOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	byDC := map[string][]*nomadapi.NodeListStub{}
	var dcs []string
	for _, n := range nodes {
		if d := n.Drivers["raw_exec"]; n.Status == "ready" && d != nil && d.Detected && d.Healthy {
			if len(byDC[n.Datacenter]) == 0 {
				dcs = append(dcs, n.Datacenter)
			}
			byDC[n.Datacenter] = append(byDC[n.Datacenter], n)
		}
	}
	if len(dcs) < 2 {
		t.Skipf("NOMAD_ADDR has ready raw_exec nodes in %d datacenter(s) %v; this test drains one into another and needs two "+
			"(a second client in another datacenter joined to a dev agent will do)", len(dcs), dcs)
	}
	sort.Strings(dcs)
	a, b := dcs[0], dcs[1]
	t.Cleanup(func() {
		for _, n := range byDC[a] {
			_, _ = client.Nodes().UpdateDrainOpts(n.ID, &nomadapi.DrainOptions{DrainSpec: nil, MarkEligible: true}, nil)
			_, _ = client.Nodes().ToggleEligibility(n.ID, true, nil)
		}
	})
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	jobs := map[string]int{"fs-e2e-app-" + suffix: 60, "fs-e2e-db-" + suffix: 80}
	for job, prio := range jobs {
		count := 3
		if prio == 80 {
			count = 1
		}
		registerSleeper(t, client, job, a, func(j *nomadapi.Job) {
			p, c := prio, count
			j.Priority, j.TaskGroups[0].Count = &p, &c
			j.Datacenters = []string{a, b}
			w := int8(100)
			j.Affinities = []*nomadapi.Affinity{{LTarget: "${node.datacenter}", RTarget: a, Operand: "=", Weight: &w}}
		})
		job := job
		t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
	}
	var originals []string
	for job := range jobs {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			allocs, _, err := client.Jobs().Allocations(job, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			running := 0
			for _, al := range allocs {
				if al.ClientStatus == "running" {
					running++
				}
			}
			if running == len(allocs) && running > 0 {
				for _, al := range allocs {
					originals = append(originals, al.ID)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not running within a minute", job)
			}
		}
	}
	// The window opens at the first whole minute six minutes from now.
	window := time.Now().UTC().Add(6 * time.Minute).Truncate(time.Minute).Add(time.Minute)
	pols := fmt.Sprintf(`
shaping "a" {
  locality {
    datacenter = %q
  }
  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    lead_time    = "5m"
    targets      = [%q]
  }
  schedule "maintenance" {
    cron     = "%d %d * * *"
    duration = "2m"
    action   = "drain"
  }
}

shaping "b" {
  locality {
    datacenter = %q
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "4m"
    ttl        = "30m"
    max_cpu    = 4000
    max_memory = 4096
  }
}
`, a, b, window.Minute(), window.Hour(), b)
	dir := t.TempDir()
	polFile := filepath.Join(dir, "policies.hcl")
	if err := os.WriteFile(polFile, []byte(pols), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startActOn(t, addr, polFile)
	t.Cleanup(func() { reapAll(t, client, "") })
	deadline := window.Add(3 * time.Minute)
	r.untilWall(deadline, "every request done and A eligible again after the window", func() bool {
		q := r.queue()
		done := len(q.Requests) == len(originals)
		for _, mr := range q.Requests {
			done = done && mr.State == api.StateDone
		}
		if !done || time.Now().Before(window.Add(2*time.Minute)) {
			return false
		}
		for _, n := range byDC[a] {
			node, _, err := client.Nodes().Info(n.ID, nil)
			if err != nil || node.SchedulingEligibility != "eligible" {
				return false
			}
		}
		return true
	})
	q := r.queue()
	for _, loc := range []string{a, b} {
		if n := maxOverlap(q.Requests, loc); n > 2 {
			t.Errorf("%d moves at once in %s; max_parallel is 2", n, loc)
		}
	}
	for _, mr := range q.Requests {
		if mr.Finished == nil || !mr.Finished.Before(window) {
			t.Errorf("%s finished at %v, not before the window at %s", mr.ID, mr.Finished, window.Format("15:04"))
		}
	}
	reservedBy := window.Add(-4 * time.Minute)
	for _, d := range r.decisions() {
		if d.Kind == "reserve" && sizeRE.MatchString(d.Reason) && d.Time.After(reservedBy) {
			t.Errorf("reservation at %s, after %s: %s", d.Time.Format("15:04:05"), reservedBy.Format("15:04:05"), d.Reason)
		}
	}
	for _, id := range originals {
		old, _, err := client.Allocations().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := client.Allocations().Info(old.NextAllocation, nil)
		if err != nil {
			t.Errorf("%s has no replacement (%v)", id, err)
			continue
		}
		node, _, _ := client.Nodes().Info(next.NodeID, nil)
		if next.NextAllocation != "" || next.ClientStatus != "running" || node == nil || node.Datacenter != b {
			t.Errorf("replacement of %s: %s on %v, next %q; want one running replacement in %s", id, next.ClientStatus, node, next.NextAllocation, b)
		}
	}
	if left := r.placeholders(); len(left) != 0 {
		t.Errorf("placeholders left: %v", left)
	}
	t.Logf("figures: real Nomad %s: %d allocations moved from %s to %s before the window at %s; placeholders gone; %s eligible again",
		addr, len(originals), a, b, window.Format("15:04"), a)
}

// startActOn starts an agent process against a real Nomad on the wall
// clock with the policies in file.
func startActOn(t *testing.T, nomadAddr, policyFile string) *actRun {
	t.Helper()
	httpPort, raftPort := freePort(t), freePort(t)
	r := &actRun{t: t, agentURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	dir := t.TempDir()
	polDir := writePolicies(t, dir, policyFile)
	cfg := actConfig("act-e2e-real", dir, polDir, nomadAddr, httpPort, raftPort, "")
	r.cfgPath = filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.client = &api.Client{Address: r.agentURL}
	r.nomad = realnomad.Client(t, nomadAddr, realnomad.SetupToken(t, nomadAddr))
	r.agentLog = &syncbuf.Buffer{}
	cmd := exec.Command(binary, "agent", "-config", r.cfgPath)
	// The agent takes foreshape's token from NOMAD_TOKEN, as an operator
	// would give it.
	cmd.Env = childEnv()
	if tok := realnomad.Token(); tok != "" {
		cmd.Env = append(cmd.Env, "NOMAD_TOKEN="+tok)
	}
	cmd.Env = append(cmd.Env, realnomad.TLSEnv(nomadAddr)...)
	cmd.Stdout, cmd.Stderr = r.agentLog, r.agentLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.agent = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", tail(r.agentLog.String(), 80))
		}
	})
	waitHTTP(t, r.agentURL+"/v1/health", 30*time.Second)
	return r
}

// untilWall polls until cond holds or the wall clock passes limit.
func (r *actRun) untilWall(limit time.Time, what string, cond func() bool) {
	r.t.Helper()
	for !cond() {
		if time.Now().After(limit) {
			r.t.Fatalf("%s: not by %s", what, limit.Format("15:04:05"))
		}
		time.Sleep(time.Second)
	}
}

// TestActSpreadOnRealNomad moves an allocation between two nodes of one
// datacenter the way a spread does, against a real Nomad (NOMAD_ADDR) with
// at least two ready, eligible raw_exec nodes in one datacenter: the
// coordinator takes the node the work leaves out of scheduling while the
// spread runs (Nomad gives the node a stopped allocation left no penalty,
// so its replacement could land back), the replacement runs on the other
// node, and the node is eligible again once the spread is done.
func TestActSpreadOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	byDC := make(map[string][]*nomadapi.NodeListStub)
	var dc string
	for _, n := range nodes {
		if rawExecReady(n) {
			byDC[n.Datacenter] = append(byDC[n.Datacenter], n)
			if len(byDC[n.Datacenter]) == 2 {
				dc = n.Datacenter
			}
		}
	}
	if dc == "" {
		t.Skip("NOMAD_ADDR has no datacenter with two ready, eligible nodes with raw_exec: a spread needs two " +
			"(join a second client to the dev agent with the same datacenter)")
	}
	job := fmt.Sprintf("fs-e2e-spread-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	registerSleeper(t, client, job, dc)
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
	alloc := waitRunning(t, client, job, "")
	t.Cleanup(func() { _, _ = client.Nodes().ToggleEligibility(alloc.NodeID, true, nil) })

	local := newLocal(t)
	pols := realPolicies(t, `
shaping "dc" {
  locality {
    datacenter = %q
  }
  migrate {
    max_parallel = 1
    spread       = true
  }
}
`, dc)
	coord := realCoordinator(t, addr, local)
	ctx := context.Background()
	t.Cleanup(func() { reapAll(t, client, local.FSM.Act().ClusterID) })
	loc := policies.Locality{Datacenter: dc}.String()
	id := submitMove(t, local, alloc, "dc", "planner", loc, loc)
	eligibility := func() string {
		n, _, err := client.Nodes().Info(alloc.NodeID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.SchedulingEligibility
	}
	deadline := time.Now().Add(2 * time.Minute)
	cordoned := false
	for {
		if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		r, _ := local.FSM.Act().Request(id)
		if r.State == state.RequestRunning {
			if got := eligibility(); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("%s is %s while work spreads off it", alloc.NodeName, got)
			}
			cordoned = true
		}
		if r.State.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still %s after 2 minutes: %s", id, r.State, r.Reason)
		}
		time.Sleep(time.Second)
	}
	// The node comes back on the pass after the spread ends.
	if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := local.FSM.Act().Request(id)
	if r.State != state.RequestDone || r.Moves[0].Replacement == "" || !cordoned {
		t.Fatalf("request %+v (seen running with its node cordoned: %v)", r, cordoned)
	}
	next, _, err := client.Allocations().Info(r.Moves[0].Replacement, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.NodeID == alloc.NodeID || next.ClientStatus != "running" {
		t.Errorf("replacement %s on %s (%s); want running on another node than %s", next.ID[:8], next.NodeName, next.ClientStatus, alloc.NodeName)
	}
	if got := eligibility(); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("%s is %s after the spread; want eligible", alloc.NodeName, got)
	}
	for _, in := range local.FSM.Intents() {
		if in.Outcome != state.OutcomeDone {
			t.Errorf("intent %+v", in)
		}
	}
	t.Logf("figures: real Nomad %s: spread %s from %s to %s with %s out of scheduling meanwhile, eligible again after",
		addr, alloc.ID[:8], alloc.NodeName, next.NodeName, alloc.NodeName)
}

// TestSubmitRefusesSystemJobOnRealNomad: a real Nomad's system job, which
// it runs on every eligible node, is refused as a move, by allocation and
// by task group, naming the field; nothing is queued.
func TestSubmitRefusesSystemJobOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	node := rawExecNode(t, nodes)
	job := fmt.Sprintf("fs-e2e-system-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	registerSleeper(t, client, job, node.Datacenter, func(j *nomadapi.Job) {
		typ := "system"
		j.Type = &typ
		j.TaskGroups[0].Count = nil
	})
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
	alloc := waitRunning(t, client, job, "")
	local := newLocal(t)
	coord := realCoordinator(t, addr, local)
	target := policies.Locality{NodePool: node.NodePool}.String()
	for _, tc := range []struct {
		sub   migrate.Submission
		field string
	}{
		{migrate.Submission{Allocation: alloc.ID, Target: target}, "allocation"},
		{migrate.Submission{Job: job, Group: "sleep", Target: target}, "job"},
	} {
		_, err := coord.Submit(context.Background(), time.Now(), nil, tc.sub)
		var ie *migrate.InvalidError
		if !errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(err.Error(), "system job") {
			t.Errorf("submit %+v: %v; want it refused on %s as a system job's", tc.sub, err, tc.field)
		}
	}
	if n := len(local.FSM.Act().Requests); n != 0 {
		t.Errorf("%d requests queued", n)
	}
}

// newLocal is an in-memory state, as a single server's.
func newLocal(t *testing.T) *state.Local {
	t.Helper()
	local, err := state.NewLocal(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return local
}

// realPolicies parses the policies format and args spell, as the agent
// parses a policy file.
func realPolicies(t *testing.T, format string, args ...any) []*policies.Policy {
	t.Helper()
	pols, diags := policies.Parse("real.hcl", []byte(fmt.Sprintf(format, args...)))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return pols
}

// betweenDatacenters are a policy "source" of datacenter src, moving with
// strategy (the default when empty), and a policy "target" of dst.
func betweenDatacenters(t *testing.T, src, dst, strategy string) []*policies.Policy {
	t.Helper()
	migrate := ""
	if strategy != "" {
		migrate = fmt.Sprintf("\n  migrate {\n    strategy = %q\n  }", strategy)
	}
	return realPolicies(t, `
shaping "source" {
  locality {
    datacenter = %q
  }%s
}
shaping "target" {
  locality {
    datacenter = %q
  }
}
`, src, migrate, dst)
}
