package sim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Checks of tasks on Nomad's mock_driver (the simulator's mock.go), which
// every Nomad dev agent runs: a task whose start blocks, fails for good, or
// fails and is restarted, one that exits, and configs its client refuses.

// mockScenario is fidelityScenario with the mock driver on its node, as a
// Nomad dev agent has it.
var mockScenario = strings.Replace(fidelityScenario, "  cores      = 2\n",
	"  cores      = 2\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n", 1)

// forEachMockNomad runs check where the node in dc1 runs mock_driver.
func forEachMockNomad(t *testing.T, check func(t *testing.T, c *cluster)) {
	forEachNomadIn(t, mockScenario, func(nodes []*api.NodeListStub) string {
		for _, n := range nodes {
			if d := n.Drivers["mock_driver"]; n.Datacenter == "dc1" && n.Status == api.NodeStatusReady && d != nil && d.Healthy {
				return ""
			}
		}
		return "has no ready node in dc1 with mock_driver (a dev agent enables it)"
	}, check)
}

// mockJob is a service job of one group "g" whose one task "t" runs on the
// mock driver with config, outside any deployment.
func mockJob(id string, config map[string]any) *api.Job {
	j := api.NewServiceJob(id, id, "global", 50)
	j.Datacenters = []string{"dc1"}
	tg := api.NewTaskGroup("g", 1)
	task := api.NewTask("t", "mock_driver").Require(&api.Resources{CPU: new(50), MemoryMB: new(32)})
	task.Config = config
	tg.AddTask(task)
	j.AddTaskGroup(tg)
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	return j
}

// taskEvents is the allocation's one task's events as "Type: message".
func taskEvents(a *api.Allocation) []string {
	var out []string
	for _, ts := range a.TaskStates {
		for _, e := range ts.Events {
			out = append(out, e.Type+": "+e.DisplayMessage)
		}
	}
	return out
}

func oneTask(a *api.Allocation) *api.TaskState {
	for _, ts := range a.TaskStates {
		return ts
	}
	return &api.TaskState{}
}

// firstAlloc waits for the job's first allocation and returns it read in
// full once ok holds.
func (c *cluster) firstAlloc(t *testing.T, id, what string, ok func(*api.Allocation) bool) *api.Allocation {
	t.Helper()
	as := c.waitAllocs(t, id, "placed", func(as []*api.AllocationListStub) bool { return len(as) > 0 })
	first := as[len(as)-1]
	for _, a := range as {
		if a.CreateIndex < first.CreateIndex {
			first = a
		}
	}
	return c.waitAlloc(t, first.ID, what, ok)
}

func sameEvents(got []string, want ...string) bool {
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

// TestFidelityMockStartBlocked: start_block_for keeps the task starting:
// the allocation is pending on its node ("No tasks have started"), still
// desired to run, its task pending with Received and Task Setup alone, and
// it holds its room there (the node's allocated memory counts it); once the
// block ends the task starts and the allocation runs. The simulator ran
// every task from its startup on.
func TestFidelityMockStartBlocked(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("mock-block")
		c.register(t, mockJob(id, map[string]any{"start_block_for": "20s", "run_for": "1h"}))
		a := c.firstAlloc(t, id, "set up", func(a *api.Allocation) bool { return len(taskEvents(a)) >= 2 })
		if a.ClientStatus != api.AllocClientStatusPending || a.ClientDescription != "No tasks have started" || a.DesiredStatus != api.AllocDesiredStatusRun ||
			oneTask(a).State != "pending" || !sameEvents(taskEvents(a), "Received: Task received by client", "Task Setup: Building Task Directory") {
			t.Errorf("%s: allocation while its start blocks: %s/%s %q, task %s, events %q; want pending, No tasks have started, desired run, the task pending, received and set up",
				c.name, a.DesiredStatus, a.ClientStatus, a.ClientDescription, oneTask(a).State, taskEvents(a))
		}
		ja, _, err := c.client.Jobs().Allocations(id, false, nil)
		if err != nil || len(ja) != 1 || ja[0].ClientStatus != api.AllocClientStatusPending {
			t.Errorf("%s: the job's allocations while the start blocks: %s (%v); want the one pending", c.name, describe(ja), err)
		}
		created := time.Unix(0, a.CreateTime)
		a = c.waitAlloc(t, a.ID, "running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		ev := oneTask(a).Events
		if !sameEvents(taskEvents(a), "Received: Task received by client", "Task Setup: Building Task Directory", "Started: Task started by client") ||
			a.ClientDescription != "Tasks are running" || oneTask(a).State != "running" {
			t.Errorf("%s: allocation once started: %s %q, task %s, events %q; want running, started", c.name, a.ClientStatus, a.ClientDescription, oneTask(a).State, taskEvents(a))
		}
		if len(ev) == 3 {
			if d := time.Unix(0, ev[2].Time).Sub(created); d < 20*time.Second || d > 25*time.Second {
				t.Errorf("%s: the task started %v after the placement; want start_block_for's 20s, and little more", c.name, d)
			}
		}
	})
}

// TestFidelityMockStartError: a start_error that is not recoverable fails
// the task at its start, not restarted ("Error was unrecoverable"): the
// allocation fails on its node ("Failed tasks"), still desired to run, and
// Nomad reschedules it as the group's policy says (a service job's default:
// 30 s after the failure, through a pending alloc-reschedule evaluation
// that the alloc-failure one creates), the replacement failing alike. The
// simulator ran the task.
func TestFidelityMockStartError(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("mock-error")
		c.register(t, mockJob(id, map[string]any{"start_error": "no start today", "start_error_recoverable": false, "run_for": "1h"}))
		a := c.firstAlloc(t, id, "failed", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
		ts := oneTask(a)
		if a.ClientDescription != "Failed tasks" || a.DesiredStatus != api.AllocDesiredStatusRun || ts.State != "dead" || !ts.Failed || ts.Restarts != 0 ||
			!sameEvents(taskEvents(a), "Received: Task received by client", "Task Setup: Building Task Directory",
				"Driver Failure: no start today", "Not Restarting: Error was unrecoverable") {
			t.Errorf("%s: allocation whose start fails: %s/%s %q, task %s failed %v restarts %d, events %q; want failed, Failed tasks, desired run, the task dead and failed, never restarted",
				c.name, a.DesiredStatus, a.ClientStatus, a.ClientDescription, ts.State, ts.Failed, ts.Restarts, taskEvents(a))
		}
		a = c.waitAlloc(t, a.ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		failedAt := ts.FinishedAt
		fu, _, err := c.client.Evaluations().Info(a.FollowupEvalID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fu.TriggeredBy != "alloc-reschedule" || fu.StatusDescription != "created for delayed rescheduling" ||
			fu.WaitUntil.Sub(failedAt) < 29*time.Second || fu.WaitUntil.Sub(failedAt) > 31*time.Second {
			t.Errorf("%s: follow-up evaluation %s %s %q, waiting until %v after the failure; want alloc-reschedule, created for delayed rescheduling, 30s",
				c.name, fu.TriggeredBy, fu.Status, fu.StatusDescription, fu.WaitUntil.Sub(failedAt))
		}
		evals, _, err := c.client.Jobs().Evaluations(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := countEvals(evals, func(e *api.Evaluation) bool {
			return e.TriggeredBy == "alloc-failure" && e.Status == api.EvalStatusComplete
		}); n != 1 {
			t.Errorf("%s: evaluations %s; want one alloc-failure evaluation, complete", c.name, describeEvals(evals))
		}
		a = c.waitAlloc(t, a.ID, "rescheduled", func(a *api.Allocation) bool {
			return a.NextAllocation != "" && a.DesiredStatus == api.AllocDesiredStatusStop
		})
		next := c.waitAlloc(t, a.NextAllocation, "failed alike", func(n *api.Allocation) bool { return n.ClientStatus == api.AllocClientStatusFailed })
		rt := next.RescheduleTracker
		if next.PreviousAllocation != a.ID || rt == nil || len(rt.Events) != 1 || rt.Events[0].PrevAllocID != a.ID || rt.Events[0].PrevNodeID != a.NodeID ||
			!sameEvents(taskEvents(next), "Received: Task received by client", "Task Setup: Building Task Directory",
				"Driver Failure: no start today", "Not Restarting: Error was unrecoverable") {
			t.Errorf("%s: the replacement: previous %q, tracker %+v, events %q; want the failed one's, one reschedule, failed alike", c.name, next.PreviousAllocation, rt, taskEvents(next))
		}
	})
}

// TestFidelityMockRestarts: a recoverable start_error and a task that exits
// are restarted as the group's restart policy says (here once in a minute,
// 2 s later plus up to a quarter of that, then "fail"), the allocation
// pending again while the task waits; past its attempts the task fails
// ("Exceeded allowed attempts"), and so does the allocation. A batch task
// that exits 0 is done: the allocation is complete. The simulator ran the
// tasks.
func TestFidelityMockRestarts(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		policy := &api.RestartPolicy{Attempts: new(1), Interval: new(time.Minute), Delay: new(2 * time.Second), Mode: new(api.RestartPolicyModeFail)}
		exceeded := `Not Restarting: Exceeded allowed attempts 1 in interval 1m0s and mode is "fail"`
		delays := func(a *api.Allocation) {
			t.Helper()
			for _, e := range oneTask(a).Events {
				if e.Type == api.TaskRestarting && (e.StartDelay < int64(2*time.Second) || e.StartDelay > int64(2500*time.Millisecond) ||
					e.Details["restart_reason"] != "Restart within policy") {
					t.Errorf("%s: %s's restart in %v (%q); want 2s to 2.5s, within policy", c.name, a.JobID, time.Duration(e.StartDelay), e.Details["restart_reason"])
				}
			}
		}
		restarting := func(s string) bool { return strings.HasPrefix(s, "Restarting: Task restarting in ") }

		id := c.jobID("mock-recoverable")
		j := mockJob(id, map[string]any{"start_error": "try again", "start_error_recoverable": true})
		j.TaskGroups[0].RestartPolicy = policy
		c.register(t, j)
		a := c.firstAlloc(t, id, "failed", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
		ev := taskEvents(a)
		if len(ev) != 6 || !sameEvents(append(ev[:3:3], ev[4:]...), "Received: Task received by client", "Task Setup: Building Task Directory",
			"Driver Failure: try again", "Driver Failure: try again", exceeded) || !restarting(ev[3]) || oneTask(a).Restarts != 1 || !oneTask(a).Failed {
			t.Errorf("%s: a recoverable start error: events %q, restarts %d; want it failed, restarted once, then not", c.name, ev, oneTask(a).Restarts)
		}
		delays(a)

		id = c.jobID("mock-exits")
		j = mockJob(id, map[string]any{"run_for": "3s", "exit_code": 3})
		j.TaskGroups[0].RestartPolicy = policy
		c.register(t, j)
		a = c.firstAlloc(t, id, "pending again", func(a *api.Allocation) bool { return oneTask(a).Restarts == 1 })
		if a.ClientStatus != api.AllocClientStatusPending || a.ClientDescription != "No tasks have started" {
			t.Errorf("%s: an allocation whose task waits to restart: %s %q; want pending, No tasks have started", c.name, a.ClientStatus, a.ClientDescription)
		}
		a = c.waitAlloc(t, a.ID, "failed", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
		ev = taskEvents(a)
		if len(ev) != 8 || !sameEvents(append(ev[:4:4], ev[5:]...), "Received: Task received by client", "Task Setup: Building Task Directory",
			"Started: Task started by client", "Terminated: Exit Code: 3", "Started: Task started by client", "Terminated: Exit Code: 3", exceeded) ||
			!restarting(ev[4]) || oneTask(a).Restarts != 1 {
			t.Errorf("%s: a task that exits 3: events %q, restarts %d; want it run, restarted once, run, failed", c.name, ev, oneTask(a).Restarts)
		}
		delays(a)
		if ts := oneTask(a); ts.StartedAt.IsZero() || ts.FinishedAt.Sub(ts.StartedAt) < 3*time.Second || ts.FinishedAt.Sub(ts.StartedAt) > 4*time.Second {
			t.Errorf("%s: the task's last run from %v to %v; want run_for's 3s", c.name, ts.StartedAt, ts.FinishedAt)
		}

		id = c.jobID("mock-batch")
		j = mockJob(id, map[string]any{"run_for": "2s"})
		j.Type = new(api.JobTypeBatch)
		j.Update = nil
		c.register(t, j)
		a = c.firstAlloc(t, id, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		if a.ClientDescription != "All tasks have completed" || oneTask(a).Failed || !sameEvents(taskEvents(a), "Received: Task received by client",
			"Task Setup: Building Task Directory", "Started: Task started by client", "Terminated: Exit Code: 0") {
			t.Errorf("%s: a batch task that exits 0: %q, failed %v, events %q; want complete, run once", c.name, a.ClientDescription, oneTask(a).Failed, taskEvents(a))
		}
	})
}

// TestFidelityMockConfigRefusedByClient: Nomad's servers take any task
// config; the client decodes it with the driver's schema when it starts
// the task. A key the mock driver does not have, or a value of the wrong
// type, fails the task there ("Failed Validation", with the decoder's
// message), a duration that does not parse fails its start (a Driver
// Failure), both not restarted; a value that converts (a number where a
// duration's text is wanted, "1" for a bool) is taken as converted. The
// simulator ran the task, whatever its config.
func TestFidelityMockConfigRefusedByClient(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		validation := func(msgs ...string) string {
			return "Failed Validation: " + fmt.Sprintf("%d errors occurred:\n\t* failed to parse config: \n\t* %s\n\n", len(msgs)+1, strings.Join(msgs, "\n\t* "))
		}
		for _, tc := range []struct {
			what   string
			config map[string]any
			want   string
		}{
			{"unknown key", map[string]any{"bogus_key": "x", "run_for": "1h"}, validation(`Invalid label: No argument or block type is named "bogus_key".`)},
			{"bool from a word", map[string]any{"start_error": "e", "start_error_recoverable": "yes"},
				validation(`Incorrect attribute value type: Inappropriate value for attribute "start_error_recoverable": a bool is required.`)},
			{"bool from a number", map[string]any{"start_error": "e", "start_error_recoverable": 1},
				validation(`Incorrect attribute value type: Inappropriate value for attribute "start_error_recoverable": bool required, but have number.`)},
			{"number from a word", map[string]any{"exit_code": "abc", "run_for": "1h"},
				validation(`Incorrect attribute value type: Inappropriate value for attribute "exit_code": a number is required.`)},
			{"string from a list", map[string]any{"start_error": []string{"a"}},
				validation(`Incorrect attribute value type: Inappropriate value for attribute "start_error": string required, but have tuple.`)},
			{"duration without a unit", map[string]any{"start_block_for": 5, "run_for": "1h"},
				`Driver Failure: start_block_for 5 not a valid duration: time: missing unit in duration "5"`},
			{"bad duration", map[string]any{"run_for": "xyz"}, `Driver Failure: run_for xyz not a valid duration: time: invalid duration "xyz"`},
			{"string from a bool", map[string]any{"start_error": true}, "Driver Failure: true"},
		} {
			id := c.jobID("mock-config")
			c.register(t, mockJob(id, tc.config))
			a := c.firstAlloc(t, id, "failed ("+tc.what+")", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
			if !sameEvents(taskEvents(a), "Received: Task received by client", "Task Setup: Building Task Directory", tc.want, "Not Restarting: Error was unrecoverable") {
				t.Errorf("%s: %s: events %q; want %q, not restarted", c.name, tc.what, taskEvents(a), tc.want)
			}
			_, _, _ = c.client.Jobs().Deregister(id, true, nil)
		}
		// "1" is a bool: the error is recoverable, and the task restarts.
		id := c.jobID("mock-config")
		c.register(t, mockJob(id, map[string]any{"start_error": "e", "start_error_recoverable": "1"}))
		a := c.firstAlloc(t, id, "restarting", func(a *api.Allocation) bool { return len(taskEvents(a)) >= 4 })
		if ev := taskEvents(a); !strings.HasPrefix(ev[3], "Restarting: ") {
			t.Errorf("%s: a recoverable error given as \"1\": events %q; want it restarting", c.name, ev)
		}
	})
}

// TestFidelityMockStartErrorOfItsNode: a start_error's ${node.*} and
// ${meta.*} are its node's, as the client interpolates a task's config: a
// start fails with the node's own text, and where they make it empty (the
// node has no class) the task starts; a meta key the node does not have
// fails the task's validation. The failed allocation's follow-up
// evaluation is its reschedule, which places the replacement on the same
// node when no other can take it, its reschedule tracker naming that node.
// The simulator ran the tasks.
func TestFidelityMockStartErrorOfItsNode(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("mock-node")
		c.register(t, mockJob(id, map[string]any{"start_error": "no start on ${node.unique.name} in ${node.datacenter}", "run_for": "1h"}))
		a := c.firstAlloc(t, id, "failed", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
		if want := "Driver Failure: no start on " + c.node.Name + " in dc1"; !sameEvents(taskEvents(a), "Received: Task received by client",
			"Task Setup: Building Task Directory", want, "Not Restarting: Error was unrecoverable") {
			t.Errorf("%s: events %q; want %q, not restarted", c.name, taskEvents(a), want)
		}
		a = c.waitAlloc(t, a.ID, "given a follow-up evaluation", func(a *api.Allocation) bool { return a.FollowupEvalID != "" })
		stubs, _, err := c.client.Jobs().Allocations(id, true, nil)
		if err != nil || len(stubs) != 1 || stubs[0].FollowupEvalID != a.FollowupEvalID {
			t.Errorf("%s: the job's allocations %s (%v); want the failed one, listed with its follow-up evaluation %s", c.name, describe(stubs), err, a.FollowupEvalID)
		}
		a = c.waitAlloc(t, a.ID, "rescheduled", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		next := c.waitAlloc(t, a.NextAllocation, "failed alike", func(n *api.Allocation) bool { return n.ClientStatus == api.AllocClientStatusFailed })
		if rt := next.RescheduleTracker; next.NodeID != a.NodeID || rt == nil || len(rt.Events) != 1 || rt.Events[0].PrevNodeID != a.NodeID {
			t.Errorf("%s: the replacement on node %s, tracker %+v; want it on the failed one's node %s, its tracker naming that node", c.name, next.NodeID, rt, a.NodeID)
		}
		_, _, _ = c.client.Jobs().Deregister(id, true, nil)

		id = c.jobID("mock-node")
		c.register(t, mockJob(id, map[string]any{"start_error": "${node.class}", "run_for": "1h"}))
		if a := c.firstAlloc(t, id, "running", func(a *api.Allocation) bool { return a.ClientStatus != api.AllocClientStatusPending }); a.ClientStatus != api.AllocClientStatusRunning {
			t.Errorf("%s: a start_error empty on a node of no class: %s, events %q; want it running", c.name, a.ClientStatus, taskEvents(a))
		}
		_, _, _ = c.client.Jobs().Deregister(id, true, nil)

		id = c.jobID("mock-node")
		c.register(t, mockJob(id, map[string]any{"start_error": "${meta.foreshape_no_such_key}", "run_for": "1h"}))
		a = c.firstAlloc(t, id, "failed", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusFailed })
		if want := "Failed Validation: 2 errors occurred:\n\t* failed to parse config: \n\t* Unsupported attribute: This object does not have an attribute named \"foreshape_no_such_key\".\n\n"; !sameEvents(taskEvents(a),
			"Received: Task received by client", "Task Setup: Building Task Directory", want, "Not Restarting: Error was unrecoverable") {
			t.Errorf("%s: a meta key the node lacks: events %q; want %q, not restarted", c.name, taskEvents(a), want)
		}
		_, _, _ = c.client.Jobs().Deregister(id, true, nil)
	})
}
