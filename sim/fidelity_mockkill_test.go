package sim_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityMockKilled: a mock_driver task told to stop — its job
// stopped, its allocation stopped, its node drained — is killed at once
// (the driver waits for no kill_after): its client adds Killing, naming
// the task's kill_timeout (at most the client's max_kill_timeout, 30 s)
// in KillTimeout, its kill_timeout detail and its message, then
// Terminated with the config's exit_code (3 is no failure: a killed task
// is dead, not failed) and Killed; the allocation is complete, "All
// tasks have completed", as soon as its client hears of the stop. A task
// waiting to restart, after an exit or a recoverable start error, gets
// Killing alone: nothing runs to terminate. A start blocking
// (start_block_for) is not cut short: the allocation stays pending,
// desired to stop, with Killing, until the block ends, when the task
// starts, terminates and is killed at once. Measured on Nomad 2.0.6-dev
// (Killing, Terminated and Killed within a millisecond, 0.2 s after the
// stop). The simulator added no event, stopped the task 5 s after the
// stop, and a stopped task that had not run ("alloc was stopped before
// it started", a Nomad never says) at once.
func TestFidelityMockKilled(t *testing.T) {
	forEachMockNomad(t, func(t *testing.T, c *cluster) {
		stopJob := func(id string) {
			t.Helper()
			if _, _, err := c.client.Jobs().Deregister(id, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		// killed checks a stopped allocation, complete: its events are
		// before's, then want (each "Type: message"), the Killing one
		// naming kill, and its task ended within 2 s of the Killing.
		killed := func(what string, a *api.Allocation, before []string, kill time.Duration, want ...string) {
			t.Helper()
			ts := oneTask(a)
			ev := taskEvents(a)
			if a.ClientStatus != api.AllocClientStatusComplete || a.ClientDescription != "All tasks have completed" || ts.State != "dead" || ts.Failed ||
				!sameEvents(ev, append(append([]string(nil), before...), want...)...) {
				t.Errorf("%s: %s: %s %q, task %s failed %v, events %q; want complete, All tasks have completed, the task dead, not failed, events %q then %q",
					c.name, what, a.ClientStatus, a.ClientDescription, ts.State, ts.Failed, ev, before, want)
				return
			}
			for _, e := range ts.Events[len(before):] {
				switch e.Type {
				case api.TaskKilling:
					if e.KillTimeout != kill || e.Details["kill_timeout"] != kill.String() || len(e.Details) != 1 {
						t.Errorf("%s: %s: Killing's KillTimeout %v, details %v; want %v", c.name, what, e.KillTimeout, e.Details, kill)
					}
					if d := ts.FinishedAt.Sub(time.Unix(0, e.Time)); d < 0 || d > 2*time.Second {
						t.Errorf("%s: %s: the task finished %v after its Killing; want at once", c.name, what, d)
					}
				case api.TaskTerminated:
					if e.Details["exit_code"] != strconv.Itoa(e.ExitCode) || e.Details["signal"] != "0" || e.Details["oom_killed"] != "false" {
						t.Errorf("%s: %s: Terminated's exit code %d, details %v", c.name, what, e.ExitCode, e.Details)
					}
				case api.TaskKilled:
					if len(e.Details) != 0 || e.FailsTask {
						t.Errorf("%s: %s: Killed's details %v, fails task %v; want none", c.name, what, e.Details, e.FailsTask)
					}
				}
			}
		}
		started := []string{"Received: Task received by client", "Task Setup: Building Task Directory", "Started: Task started by client"}
		killing := func(kill time.Duration) string {
			return "Killing: Sent interrupt. Waiting " + kill.String() + " before force killing"
		}
		const killedMsg = "Killed: Task successfully killed"

		// A job stopped: its kill_timeout of 2m is the client's 30s.
		id := c.jobID("mock-kill")
		j := mockJob(id, map[string]any{"run_for": "1h", "exit_code": 3})
		j.TaskGroups[0].Tasks[0].KillTimeout = new(2 * time.Minute)
		c.register(t, j)
		a := c.firstAlloc(t, id, "running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		stopJob(id)
		a = c.waitAlloc(t, a.ID, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		killed("a job stopped", a, started, 30*time.Second, killing(30*time.Second), "Terminated: Exit Code: 3", killedMsg)
		if a.DesiredDescription != "alloc not needed due to job update" {
			t.Errorf("%s: a job stopped: desired description %q", c.name, a.DesiredDescription)
		}

		// An allocation stopped: migrated, its kill_timeout Nomad's 5s.
		id = c.jobID("mock-kill")
		c.register(t, mockJob(id, map[string]any{"run_for": "1h"}))
		a = c.firstAlloc(t, id, "running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		if _, err := c.client.Allocations().Stop(a, nil); err != nil {
			t.Fatal(err)
		}
		a = c.waitAlloc(t, a.ID, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		killed("an allocation stopped", a, started, 5*time.Second, killing(5*time.Second), "Terminated: Exit Code: 0", killedMsg)
		if a.DesiredDescription != "alloc is being migrated" {
			t.Errorf("%s: an allocation stopped: desired description %q", c.name, a.DesiredDescription)
		}
		stopJob(id)

		// A task waiting a minute to restart after its exit, and one
		// after a recoverable start error: Killing alone.
		policy := &api.RestartPolicy{Attempts: new(3), Interval: new(10 * time.Minute), Delay: new(time.Minute), Mode: new(api.RestartPolicyModeFail)}
		for _, tc := range []struct {
			what   string
			config map[string]any
			before []string
		}{
			{"a task waiting to restart after its exit", map[string]any{"run_for": "1s", "exit_code": 2},
				append(started[:3:3], "Terminated: Exit Code: 2")},
			{"a task waiting to restart after its start failed", map[string]any{"start_error": "not yet", "start_error_recoverable": true},
				append(started[:2:2], "Driver Failure: not yet")},
		} {
			id = c.jobID("mock-kill")
			j = mockJob(id, tc.config)
			j.TaskGroups[0].RestartPolicy = policy
			c.register(t, j)
			a = c.firstAlloc(t, id, "waiting to restart", func(a *api.Allocation) bool { return oneTask(a).Restarts == 1 })
			before := taskEvents(a)
			if len(before) != len(tc.before)+1 || !sameEvents(before[:len(tc.before)], tc.before...) || !strings.HasPrefix(before[len(tc.before)], "Restarting: ") {
				t.Errorf("%s: %s: events %q; want %q, then restarting", c.name, tc.what, before, tc.before)
			}
			stopJob(id)
			a = c.waitAlloc(t, a.ID, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
			killed(tc.what, a, before, 5*time.Second, killing(5*time.Second))
			if oneTask(a).Restarts != 1 {
				t.Errorf("%s: %s: restarts %d once killed; want 1", c.name, tc.what, oneTask(a).Restarts)
			}
		}

		// A start blocking for 20s, its job stopped at once: pending,
		// killing, until the block ends.
		id = c.jobID("mock-kill")
		c.register(t, mockJob(id, map[string]any{"start_block_for": "20s", "run_for": "1h"}))
		a = c.firstAlloc(t, id, "set up", func(a *api.Allocation) bool { return len(taskEvents(a)) >= 2 })
		created := time.Unix(0, a.CreateTime)
		stopJob(id)
		a = c.waitAlloc(t, a.ID, "killing", func(a *api.Allocation) bool {
			return len(taskEvents(a)) >= 3 || a.ClientStatus != api.AllocClientStatusPending
		})
		if ts := oneTask(a); a.ClientStatus != api.AllocClientStatusPending || a.DesiredStatus != api.AllocDesiredStatusStop || ts.State != "pending" ||
			!sameEvents(taskEvents(a), started[0], started[1], killing(5*time.Second)) {
			t.Errorf("%s: a blocked start stopped: %s/%s, task %s, events %q; want pending while its start blocks, desired to stop, killing",
				c.name, a.DesiredStatus, a.ClientStatus, ts.State, taskEvents(a))
		}
		a = c.waitAlloc(t, a.ID, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		ts := oneTask(a)
		ev := taskEvents(a)
		if want := append(started[:2:2], killing(5*time.Second), started[2], "Terminated: Exit Code: 0", killedMsg); a.ClientDescription != "All tasks have completed" ||
			ts.State != "dead" || ts.Failed || !sameEvents(ev, want...) {
			t.Errorf("%s: a blocked start stopped, once complete: %q, task %s failed %v, events %q; want %q",
				c.name, a.ClientDescription, ts.State, ts.Failed, ev, want)
		} else if s, f := ts.StartedAt.Sub(created), ts.FinishedAt.Sub(created); s < 20*time.Second || s > 25*time.Second || f < s || f > s+2*time.Second {
			t.Errorf("%s: a blocked start stopped: started %v, finished %v after the placement; want both when its 20s block ends", c.name, s, f)
		}

		// A node drained: its allocation migrated, killed alike.
		id = c.jobID("mock-kill")
		j = mockJob(id, map[string]any{"run_for": "1h"})
		j.TaskGroups[0].Migrate = &api.MigrateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Second), HealthyDeadline: new(20 * time.Second)}
		c.register(t, j)
		a = c.firstAlloc(t, id, "running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		c.giveBackAtEnd(t)
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: time.Hour}, false, nil); err != nil {
			t.Fatal(err)
		}
		a = c.waitAlloc(t, a.ID, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		killed("a node drained", a, started, 5*time.Second, killing(5*time.Second), "Terminated: Exit Code: 0", killedMsg)
		if a.DesiredDescription != "alloc is being migrated" {
			t.Errorf("%s: a node drained: desired description %q", c.name, a.DesiredDescription)
		}
	})
}
