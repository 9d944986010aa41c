package sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// The task states of an allocation whose tasks run on any driver but
// mock_driver (mock.go), as Nomad's client reports them. The simulator
// runs no command: such a task runs from the scenario's startup until it
// is stopped, its batch work is done (sim.run_for) or FailAlloc fails it.
// Its events are the ones Nomad's task runner
// (client/allocrunner/taskrunner/task_runner.go) and allocation runner
// emit for every driver, with the fields a real client gives them
// (measured with raw_exec tasks on Nomad 2.0.6-dev,
// TestFidelityRawExecTaskEvents):
//
//   - placed: Received, Task Setup ("Building Task Directory"), both at
//     the placement (a real client's 5 to 83 ms after it);
//   - started: Started ("Task started by client"), the task running;
//   - its batch work done: Terminated ("Exit Code: 0"), the task dead;
//   - stopped (its job stopped, the allocation stopped or migrated, its
//     node drained, evicted): Killing when its client hears of the stop
//     ("Sent interrupt. Waiting 5s before force killing": the task's
//     kill_timeout, at most the client's max_kill_timeout, 30 s), then,
//     when the stop ends (the kill timeout later for a plain stop, at the
//     migration's end for a migration, at once for an eviction, where a
//     real client's come the kill timeout later), Terminated and Killed ("Task
//     successfully killed"). The task is taken to wait out its kill
//     timeout and be killed (killedExit): a raw_exec /bin/sh -c "sleep N"
//     ignores the interrupt and shows "Exit Code: 137, Signal: 9" after
//     its kill_timeout, as the simulator; a /bin/sleep exits on the
//     interrupt at once ("Exit Code: 130, Signal: 2"), which the
//     simulator does not model. A task stopped before it started gets
//     nothing more;
//   - failed (FailAlloc): the restarts its restart policy allows, each
//     Terminated, Restarting ("Task restarting in 15s", the policy's
//     delay; a real client adds up to a quarter more) and Started, then
//     Terminated and Not Restarting ("Policy allows no restarts", or
//     `Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"`,
//     fails_task), all at the failure where a real client's come a delay
//     apart. A task not started yet fails its start instead (Driver
//     Failure, then Not Restarting "Error was unrecoverable"). Nomad's
//     client never fails a task of a delay-mode policy on its exit: the
//     simulator does, naming the mode. The other tasks of the group are
//     killed: Sibling Task Failed, Terminated, Killed;
//   - its client back after a disconnect: Reconnected; a failure in a
//     deployment that tracks its group: Alloc Unhealthy (notes).
//
// Lost or unknown, its tasks stay as their client last reported them. At
// most the last 10 events are kept, as a client keeps them.
//
// Not modelled: a driver's own events (docker's "Downloading image" and
// its pull progress, between Task Setup and Started, from its image
// download: Nomad's drivers/docker/driver.go pullImage; artifact and
// template events), shutdown_delay's waits, lifecycle hooks (prestart and
// poststop tasks, leaders), and a restart after an exit, which only
// FailAlloc's failure shows. docker, which does not run here, is
// given what is driver-independent in Nomad's source; its killed
// container's exit (drivers/docker/handle.go: no signal, the exit code's
// error as its Exit Message) is read from that source, not measured.

// killedExit is how a task killed when its kill timeout ran out exits,
// by its driver: docker's reports the container's exit code 137 with no
// signal and its error as the exit message; the executor's (raw_exec,
// exec and the others) exit code 137 and signal 9 (measured: raw_exec
// running /bin/sh -c "sleep 3600").
func killedExit(driver string) (code, signal int, msg string) {
	if driver == "docker" {
		return 137, 0, dockerExitMessage(137)
	}
	return 137, 9, ""
}

// dockerExitMessage is the error Nomad's docker driver gives a container
// that exited with a non-zero code (drivers/docker/handle.go), which its
// client shows as the Terminated event's exit message.
func dockerExitMessage(code int) string {
	return fmt.Sprintf("Docker container exited with non-zero exit code: %d", code)
}

// failExit is the exit of a task FailAlloc fails with reason: "exit N"
// is an exit with code N (a command's `exit N`, no message); any other
// reason an exit with code 1 with the reason as its exit message, as a
// driver's exit error shows.
func failExit(driver, reason string) (code int, msg string) {
	if n, ok := strings.CutPrefix(reason, "exit "); ok {
		if code, err := strconv.Atoi(n); err == nil {
			if driver == "docker" && code != 0 {
				return code, dockerExitMessage(code)
			}
			return code, ""
		}
	}
	return 1, reason
}

// killedTerminated is the Terminated event of a task of driver killed at
// at when its kill timeout ran out.
func killedTerminated(at time.Time, driver string) *api.TaskEvent {
	code, signal, msg := killedExit(driver)
	return terminated(at, code, signal, msg)
}

func terminated(at time.Time, code, signal int, msg string) *api.TaskEvent {
	parts := []string{fmt.Sprintf("Exit Code: %d", code)}
	if signal != 0 {
		parts = append(parts, fmt.Sprintf("Signal: %d", signal))
	}
	details := map[string]string{"exit_code": strconv.Itoa(code), "signal": strconv.Itoa(signal), "oom_killed": "false"}
	if msg != "" {
		parts = append(parts, fmt.Sprintf("Exit Message: %q", msg))
		details["exit_message"] = msg
	}
	return &api.TaskEvent{Type: api.TaskTerminated, Time: at.UnixNano(), DisplayMessage: strings.Join(parts, ", "), Message: msg,
		ExitCode: code, Signal: signal, Details: details}
}

func started(at time.Time) *api.TaskEvent {
	return &api.TaskEvent{Type: api.TaskStarted, Time: at.UnixNano(), DisplayMessage: "Task started by client"}
}

func killed(at time.Time) *api.TaskEvent {
	return &api.TaskEvent{Type: api.TaskKilled, Time: at.UnixNano(), DisplayMessage: "Task successfully killed", Details: map[string]string{}}
}

func notRestarting(at time.Time, reason string) *api.TaskEvent {
	return &api.TaskEvent{Type: api.TaskNotRestarting, Time: at.UnixNano(), DisplayMessage: reason, RestartReason: reason, FailsTask: true,
		Details: map[string]string{"restart_reason": reason, "fails_task": "true"}}
}

// failRestarts is how many times the restart policy p restarts a failing
// task before its client gives up, and why it gives up then.
func failRestarts(p api.RestartPolicy) (int, string) {
	n := 0
	if p.Attempts != nil {
		n = max(*p.Attempts, 0)
	}
	if n == 0 {
		return 0, mockReasonNoRestarts
	}
	var interval time.Duration
	if p.Interval != nil {
		interval = *p.Interval
	}
	mode := api.RestartPolicyModeFail
	if p.Mode != nil {
		mode = *p.Mode
	}
	return n, fmt.Sprintf("Exceeded allowed attempts %d in interval %v and mode is %q", n, interval, mode)
}

// taskState is task i of a (not of a mock_driver group) as its client
// reports it.
func (a *alloc) taskState(i int) *api.TaskState {
	g := a.grp
	driver := g.drivers[i]
	created := a.created.UnixNano()
	ts := &api.TaskState{State: "pending", Events: []*api.TaskEvent{
		{Type: api.TaskReceived, Time: created, DisplayMessage: "Task received by client"},
		{Type: api.TaskSetup, Time: created, DisplayMessage: api.TaskBuildingTaskDir, Message: api.TaskBuildingTaskDir,
			Details: map[string]string{"message": api.TaskBuildingTaskDir}},
	}}
	add := func(e ...*api.TaskEvent) { ts.Events = append(ts.Events, e...) }
	run := !a.runningSince.IsZero()
	if run {
		ts.State, ts.StartedAt = "running", a.runningSince
		add(started(a.runningSince))
	}
	switch a.client {
	case allocFailed:
		fin := a.failedAt
		ts.State, ts.FinishedAt = "dead", fin
		code, msg := failExit(driver, a.failReason)
		switch {
		case i > 0:
			first := g.tasks[0]
			add(&api.TaskEvent{Type: api.TaskSiblingFailed, Time: fin.UnixNano(), DisplayMessage: fmt.Sprintf("Task's sibling %q failed", first),
				FailedSibling: first, Details: map[string]string{"failed_sibling": first}})
			if run {
				add(killedTerminated(fin, driver), killed(fin))
			}
		case !run:
			add(&api.TaskEvent{Type: api.TaskDriverFailure, Time: fin.UnixNano(), DisplayMessage: a.failReason, DriverError: a.failReason,
				Details: map[string]string{"driver_error": a.failReason}},
				notRestarting(fin, mockReasonUnrecoverable))
			ts.Failed = true
		default:
			n, reason := failRestarts(g.restart)
			delay := time.Duration(0)
			if g.restart.Delay != nil {
				delay = *g.restart.Delay
			}
			for range n {
				add(terminated(fin, code, 0, msg),
					&api.TaskEvent{Type: api.TaskRestarting, Time: fin.UnixNano(), DisplayMessage: "Task restarting in " + delay.String(),
						RestartReason: mockReasonWithin, StartDelay: int64(delay),
						Details: map[string]string{"restart_reason": mockReasonWithin, "start_delay": strconv.FormatInt(int64(delay), 10)}},
					started(fin))
			}
			if n > 0 {
				ts.Restarts, ts.LastRestart, ts.StartedAt = uint64(n), fin, fin
			}
			add(terminated(fin, code, 0, msg), notRestarting(fin, reason))
			ts.Failed = true
		}
	case allocComplete:
		fin := a.stopAt
		if fin.IsZero() {
			fin = a.modified
		}
		ts.State, ts.FinishedAt = "dead", fin
		switch {
		case run && !a.killAt.IsZero():
			add(killing(a.killAt, g.kills[i]), killedTerminated(fin, driver), killed(fin))
		case run:
			add(terminated(fin, 0, 0, "")) // its work done
		}
	default:
		if run && !a.killAt.IsZero() {
			add(killing(a.killAt, g.kills[i]))
		}
	}
	for _, e := range a.notes {
		cp := *e
		cp.Details = maps.Clone(e.Details)
		add(&cp)
	}
	slices.SortStableFunc(ts.Events, func(x, y *api.TaskEvent) int { return int(min(max(x.Time-y.Time, -1), 1)) })
	if over := len(ts.Events) - maxTaskEvents; over > 0 {
		ts.Events = ts.Events[over:]
	}
	return ts
}

// killing is the Killing event of a task whose kill timeout is kill, as
// Nomad's allocation runner sets it (SetKillTimeout, its message built
// from it).
func killing(at time.Time, kill time.Duration) *api.TaskEvent {
	msg := "Sent interrupt"
	if kill != 0 {
		msg = fmt.Sprintf("Sent interrupt. Waiting %v before force killing", kill)
	}
	return &api.TaskEvent{Type: api.TaskKilling, Time: at.UnixNano(), DisplayMessage: msg, KillTimeout: kill,
		Details: map[string]string{"kill_timeout": kill.String()}}
}

// note adds e, an event its client gives every task of a beside their run
// (tasks.go's notes; a mock_driver task's own events for one of its).
func (a *alloc) note(e *api.TaskEvent) {
	if a.mock != nil {
		a.mock.event(e)
		return
	}
	a.notes = append(a.notes, e)
	if over := len(a.notes) - maxTaskEvents; over > 0 {
		a.notes = append(a.notes[:0:0], a.notes[over:]...)
	}
}
