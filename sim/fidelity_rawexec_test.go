package sim_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// shJob is a job of one group "g" whose one task "t" runs raw_exec
// /bin/sh -c script, outside any deployment.
func shJob(id, typ, script string) *api.Job {
	j := api.NewServiceJob(id, id, "global", 50)
	if typ == api.JobTypeBatch {
		j = api.NewBatchJob(id, id, "global", 50)
	}
	j.Datacenters = []string{"dc1"}
	tg := api.NewTaskGroup("g", 1)
	tg.AddTask(api.NewTask("t", "raw_exec").SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", script}).
		Require(&api.Resources{CPU: new(50), MemoryMB: new(32)}))
	j.AddTaskGroup(tg)
	if typ == api.JobTypeService {
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	}
	return j
}

// eventLines is the allocation's one task's events as "Type: message", a
// Restarting event's as "Restarting: its reason" (its message names its
// delay, which a real client draws).
func eventLines(a *api.Allocation) []string {
	var out []string
	for _, e := range oneTask(a).Events {
		msg := e.DisplayMessage
		if e.Type == api.TaskRestarting {
			msg = e.RestartReason
		}
		out = append(out, e.Type+": "+msg)
	}
	return out
}

// checkEventFields checks the fields of each of a's task events beside
// its type and message, as Nomad's client sets them for a task whose
// restart policy's delay is delay and kill timeout kill.
func checkEventFields(t *testing.T, c *cluster, what string, a *api.Allocation, delay, kill time.Duration) {
	t.Helper()
	for _, e := range oneTask(a).Events {
		bad := func(want string) {
			t.Helper()
			t.Errorf("%s: %s: %s event: message %q, %q, details %v, exit %d signal %d, kill %v, delay %d, fails task %v; want %s",
				c.name, what, e.Type, e.DisplayMessage, e.Message, e.Details, e.ExitCode, e.Signal, e.KillTimeout, e.StartDelay, e.FailsTask, want)
		}
		if e.FailsTask != (e.Type == api.TaskNotRestarting) {
			bad("only Not Restarting failing the task")
		}
		switch e.Type {
		case api.TaskReceived, api.TaskStarted, api.TaskKilled:
			if len(e.Details) != 0 || e.Message != "" {
				bad("no details")
			}
		case api.TaskSetup:
			if e.Message != api.TaskBuildingTaskDir || len(e.Details) != 1 || e.Details["message"] != api.TaskBuildingTaskDir {
				bad("its message in Message and details")
			}
		case api.TaskKilling:
			if e.KillTimeout != kill || len(e.Details) != 1 || e.Details["kill_timeout"] != kill.String() {
				bad("the kill timeout " + kill.String())
			}
		case api.TaskTerminated:
			if len(e.Details) != 3 || e.Details["exit_code"] != strconv.Itoa(e.ExitCode) || e.Details["signal"] != strconv.Itoa(e.Signal) ||
				e.Details["oom_killed"] != "false" || e.Message != "" {
				bad("its exit code and signal in its details, no exit message")
			}
		case api.TaskRestarting:
			d := time.Duration(e.StartDelay)
			if e.DisplayMessage != "Task restarting in "+d.String() || d < delay || d > delay+delay/4 || len(e.Details) != 2 ||
				e.Details["start_delay"] != strconv.FormatInt(e.StartDelay, 10) || e.Details["restart_reason"] != e.RestartReason {
				bad("a delay of the policy's " + delay.String() + " and up to a quarter more, in its message and details")
			}
		case api.TaskNotRestarting:
			if e.RestartReason != e.DisplayMessage || len(e.Details) != 2 || e.Details["restart_reason"] != e.RestartReason || e.Details["fails_task"] != "true" {
				bad("its reason in its message and details")
			}
		}
	}
}

// TestFidelityRawExecTaskEvents: the task events of raw_exec tasks
// through their life, as Nomad's client gives them for every driver:
// Received, Task Setup and Started once placed and started; an exit
// (Terminated, "Exit Code: N"), restarted as the restart policy allows
// (Restarting, "Restart within policy") until it does not (Not
// Restarting, failing the task and the allocation), its replacement
// started anew; a batch task's exit 0 ending it (complete); a stop — its
// job stopped, the allocation stopped, its node drained — with Killing
// (the task's kill_timeout) when its client hears of it and, a shell
// ignoring the interrupt, Terminated ("Exit Code: 137, Signal: 9") and
// Killed once its kill timeout has passed. The simulator, which runs no
// command, fails a task through FailAlloc, its restarts shown at the
// failure, and ends a migrated allocation's task when the migration
// ends. Measured on Nomad 2.0.6-dev; the simulator gave such tasks no
// event but a failure's Terminated naming FailAlloc's reason.
func TestFidelityRawExecTaskEvents(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		const (
			received = "Received: Task received by client"
			setup    = "Task Setup: Building Task Directory"
			start    = "Started: Task started by client"
			sigkill  = "Terminated: Exit Code: 137, Signal: 9"
			killedOK = "Killed: Task successfully killed"
		)
		killing := func(kill time.Duration) string {
			return "Killing: Sent interrupt. Waiting " + kill.String() + " before force killing"
		}
		runs := func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning }
		complete := func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete }
		// stopped checks an allocation stopped while its task ran.
		stopped := func(what string, a *api.Allocation, desc string, kill time.Duration) {
			t.Helper()
			ts := oneTask(a)
			if want := []string{received, setup, start, killing(kill), sigkill, killedOK}; a.DesiredDescription != desc ||
				a.ClientDescription != "All tasks have completed" || ts.State != "dead" || ts.Failed || !sameEvents(eventLines(a), want...) {
				t.Errorf("%s: %s: %q / %q, task %s failed %v, events %q; want %q / All tasks have completed, dead, not failed, events %q",
					c.name, what, a.DesiredDescription, a.ClientDescription, ts.State, ts.Failed, eventLines(a), desc, want)
			}
			checkEventFields(t, c, what, a, 0, kill)
		}

		// Placed and started, then its job stopped: killed once its
		// kill_timeout of 2s has passed.
		id := c.jobID("rawexec-events")
		j := shJob(id, api.JobTypeService, "sleep 3600")
		j.TaskGroups[0].Tasks[0].KillTimeout = new(2 * time.Second)
		c.register(t, j)
		a := c.firstAlloc(t, id, "running", runs)
		if ts := oneTask(a); ts.State != "running" || ts.StartedAt.IsZero() || !ts.FinishedAt.IsZero() || !sameEvents(eventLines(a), received, setup, start) {
			t.Errorf("%s: running: task %s, started %v, finished %v, events %q; want running, started, %q",
				c.name, ts.State, ts.StartedAt, ts.FinishedAt, eventLines(a), []string{received, setup, start})
		}
		checkEventFields(t, c, "running", a, 0, 0)
		if _, _, err := c.client.Jobs().Deregister(id, false, nil); err != nil {
			t.Fatal(err)
		}
		a = c.waitAlloc(t, a.ID, "complete", complete)
		stopped("its job stopped", a, "alloc not needed due to job update", 2*time.Second)
		if ev := oneTask(a).Events; len(ev) == 6 {
			if d := oneTask(a).FinishedAt.Sub(time.Unix(0, ev[3].Time)); d < 2*time.Second || d > 4*time.Second {
				t.Errorf("%s: its job stopped: the task finished %v after its Killing; want its kill_timeout, 2s, after", c.name, d)
			}
		}

		// An allocation stopped: migrated, Nomad's kill_timeout of 5s.
		id = c.jobID("rawexec-events")
		c.register(t, shJob(id, api.JobTypeService, "sleep 3600"))
		a = c.firstAlloc(t, id, "running", runs)
		if _, err := c.client.Allocations().Stop(a, nil); err != nil {
			t.Fatal(err)
		}
		a = c.waitAlloc(t, a.ID, "complete", complete)
		stopped("the allocation stopped", a, "alloc is being migrated", 5*time.Second)
		if _, _, err := c.client.Jobs().Deregister(id, false, nil); err != nil {
			t.Fatal(err)
		}

		// A batch task that exits 0 (the simulator's sim.run_for).
		id = c.jobID("rawexec-events")
		j = shJob(id, api.JobTypeBatch, "sleep 2; exit 0")
		j.TaskGroups[0].Meta = map[string]string{"sim.run_for": "2s"}
		c.register(t, j)
		a = c.firstAlloc(t, id, "complete", complete)
		if ts := oneTask(a); ts.State != "dead" || ts.Failed || a.ClientDescription != "All tasks have completed" ||
			!sameEvents(eventLines(a), received, setup, start, "Terminated: Exit Code: 0") {
			t.Errorf("%s: a batch task that exits 0: %q, task %s failed %v, events %q", c.name, a.ClientDescription, ts.State, ts.Failed, eventLines(a))
		}
		checkEventFields(t, c, "a batch task that exits 0", a, 0, 0)

		// Exits 1 with a policy of no restarts, and with two restarts
		// in 10m, 2s apart, rescheduled after 5s.
		for _, tc := range []struct {
			what     string
			attempts int
			want     []string
		}{
			{"a task that exits 1, not restarted", 0,
				[]string{received, setup, start, "Terminated: Exit Code: 1", "Not Restarting: Policy allows no restarts"}},
			{"a task that exits 1, restarted twice", 2,
				// Ten events: Received is dropped.
				[]string{setup, start, "Terminated: Exit Code: 1", "Restarting: Restart within policy", start, "Terminated: Exit Code: 1",
					"Restarting: Restart within policy", start, "Terminated: Exit Code: 1",
					`Not Restarting: Exceeded allowed attempts 2 in interval 10m0s and mode is "fail"`}},
		} {
			id = c.jobID("rawexec-events")
			j = shJob(id, api.JobTypeService, "sleep 1; exit 1")
			tg := j.TaskGroups[0]
			tg.RestartPolicy = &api.RestartPolicy{Attempts: new(tc.attempts), Interval: new(10 * time.Minute), Delay: new(2 * time.Second), Mode: new(api.RestartPolicyModeFail)}
			tg.ReschedulePolicy = &api.ReschedulePolicy{Delay: new(5 * time.Second), DelayFunction: new("constant"), Unlimited: new(true)}
			c.register(t, j)
			a = c.firstAlloc(t, id, "failed", func(a *api.Allocation) bool {
				if c.sim != nil && a.ClientStatus == api.AllocClientStatusRunning {
					if err := c.sim.FailAlloc(a.ID, "exit 1"); err != nil {
						t.Fatal(err)
					}
				}
				return a.ClientStatus == api.AllocClientStatusFailed
			})
			if ts := oneTask(a); ts.State != "dead" || !ts.Failed || ts.Restarts != uint64(tc.attempts) || a.ClientDescription != "Failed tasks" ||
				!sameEvents(eventLines(a), tc.want...) {
				t.Errorf("%s: %s: %q, task %s failed %v, %d restarts, events %q; want Failed tasks, dead, failed, %d restarts, events %q",
					c.name, tc.what, a.ClientDescription, ts.State, ts.Failed, ts.Restarts, eventLines(a), tc.attempts, tc.want)
			}
			checkEventFields(t, c, tc.what, a, 2*time.Second, 0)
			a = c.waitAlloc(t, a.ID, "rescheduled", func(a *api.Allocation) bool { return a.NextAllocation != "" })
			next := c.waitAlloc(t, a.NextAllocation, "running", runs)
			if !sameEvents(eventLines(next), received, setup, start) || next.RescheduleTracker == nil || len(next.RescheduleTracker.Events) != 1 {
				t.Errorf("%s: %s: its replacement's events %q, reschedule tracker %+v; want %q, one reschedule",
					c.name, tc.what, eventLines(next), next.RescheduleTracker, []string{received, setup, start})
			}
			if _, _, err := c.client.Jobs().Deregister(id, false, nil); err != nil {
				t.Fatal(err)
			}
		}

		// Its node drained: migrated, killed alike.
		id = c.jobID("rawexec-events")
		j = shJob(id, api.JobTypeService, "sleep 3600")
		j.TaskGroups[0].Migrate = &api.MigrateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second), HealthyDeadline: new(20 * time.Second)}
		c.register(t, j)
		a = c.firstAlloc(t, id, "running", runs)
		c.giveBackAtEnd(t)
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: time.Hour}, false, nil); err != nil {
			t.Fatal(err)
		}
		a = c.waitAlloc(t, a.ID, "complete", complete)
		stopped("its node drained", a, "alloc is being migrated", 5*time.Second)
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, nil, true, nil); err != nil {
			t.Fatal(err)
		}
	})
}
