package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// tasksJob is a service job "j" of one group "g" whose tasks, named
// names, run on driver (a sleep or a pause container), not restarted.
func tasksJob(driver string, names ...string) *api.Job {
	j := api.NewServiceJob("j", "j", "global", 50)
	j.Datacenters = []string{"*"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	tg := api.NewTaskGroup("g", 1)
	tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new(api.RestartPolicyModeFail)}
	for _, n := range names {
		task := api.NewTask(n, driver).Require(&api.Resources{CPU: new(50), MemoryMB: new(32)})
		if driver == "docker" {
			task.SetConfig("image", "registry.k8s.io/pause:3.10")
		} else {
			task.SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "sleep 3600"})
		}
		tg.AddTask(task)
	}
	j.AddTaskGroup(tg)
	return j
}

// lines is a task's events as "Type: message".
func lines(ts *api.TaskState) []string {
	var out []string
	for _, e := range ts.Events {
		out = append(out, e.Type+": "+e.DisplayMessage)
	}
	return out
}

// TestDockerTaskKilled: a docker task gets the events Nomad's task runner
// gives every driver, and, killed once its kill timeout has passed, the
// docker driver's exit (drivers/docker/handle.go): exit code 137, no
// signal, the driver's error as the exit message. Not measured: no
// docker daemon ran where the raw_exec ones were.
func TestDockerTaskKilled(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	mustRegister(t, c, tasksJob("docker", "t"))
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Jobs().Deregister("j", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	as, _, err := client.Jobs().Allocations("j", true, nil)
	if err != nil || len(as) != 1 {
		t.Fatalf("allocations %v, %v; want one", as, err)
	}
	a, _, err := client.Allocations().Info(as[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := a.TaskStates["t"]
	const exit = `Exit Code: 137, Exit Message: "Docker container exited with non-zero exit code: 137"`
	want := []string{"Received: Task received by client", "Task Setup: Building Task Directory", "Started: Task started by client",
		"Killing: Sent interrupt. Waiting 5s before force killing", "Terminated: " + exit, "Killed: Task successfully killed"}
	if a.ClientStatus != api.AllocClientStatusComplete || ts.State != "dead" || ts.Failed || !slices.Equal(lines(ts), want) {
		t.Fatalf("%s, task %s failed %v, events %q; want complete, dead, not failed, %q", a.ClientStatus, ts.State, ts.Failed, lines(ts), want)
	}
	term, kill := ts.Events[4], ts.Events[3]
	if term.ExitCode != 137 || term.Signal != 0 || term.Details["signal"] != "0" || term.Details["exit_message"] != term.Message ||
		term.Message != "Docker container exited with non-zero exit code: 137" {
		t.Errorf("Terminated: %+v", term)
	}
	if d := time.Duration(term.Time - kill.Time); d != 5*time.Second || !ts.FinishedAt.Equal(time.Unix(0, term.Time)) {
		t.Errorf("terminated %v after its Killing, finished at %v; want 5s, then", d, ts.FinishedAt)
	}
}

// TestFailedTaskAndItsSibling: FailAlloc fails a group's first task as
// an exit its policy does not restart (its reason, not "exit N", the exit
// message of an exit code 1), and Nomad's allocation runner kills the
// others (Sibling Task Failed, not failed themselves); an allocation not
// started yet fails its start (Driver Failure, unrecoverable).
func TestFailedTaskAndItsSibling(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	mustRegister(t, c, tasksJob("raw_exec", "a", "b"))
	info := func() *api.Allocation {
		t.Helper()
		as, _, err := client.Jobs().Allocations("j", true, nil)
		if err != nil || len(as) == 0 {
			t.Fatalf("allocations %v, %v", as, err)
		}
		a, _, err := client.Allocations().Info(as[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.FailAlloc(info().ID, "oom"); err != nil {
		t.Fatal(err)
	}
	a := info()
	setup := []string{"Received: Task received by client", "Task Setup: Building Task Directory", "Started: Task started by client"}
	if want := append(setup[:3:3], `Terminated: Exit Code: 1, Exit Message: "oom"`, "Not Restarting: Policy allows no restarts"); !a.TaskStates["a"].Failed ||
		!slices.Equal(lines(a.TaskStates["a"]), want) {
		t.Errorf("the failed task: failed %v, events %q; want failed, %q", a.TaskStates["a"].Failed, lines(a.TaskStates["a"]), want)
	}
	if want := append(setup[:3:3], `Sibling Task Failed: Task's sibling "a" failed`, "Terminated: Exit Code: 137, Signal: 9", "Killed: Task successfully killed"); a.TaskStates["b"].Failed ||
		a.TaskStates["b"].State != "dead" || !slices.Equal(lines(a.TaskStates["b"]), want) {
		t.Errorf("its sibling: %s, failed %v, events %q; want dead, not failed, %q", a.TaskStates["b"].State, a.TaskStates["b"].Failed, lines(a.TaskStates["b"]), want)
	}
	if e := a.TaskStates["b"].Events[3]; e.FailedSibling != "a" || e.Details["failed_sibling"] != "a" {
		t.Errorf("Sibling Task Failed: %+v", e)
	}

	// Another, failed before its task starts.
	c = newTestCluster(t, "")
	client = newTestAPI(t, c, "")
	mustRegister(t, c, tasksJob("raw_exec", "a"))
	if a := info(); a.ClientStatus != api.AllocClientStatusPending {
		t.Fatalf("just placed: %s; want pending", a.ClientStatus)
	}
	if err := c.FailAlloc(info().ID, "no such file"); err != nil {
		t.Fatal(err)
	}
	if want := append(setup[:2:2], "Driver Failure: no such file", "Not Restarting: Error was unrecoverable"); !slices.Equal(lines(info().TaskStates["a"]), want) {
		t.Errorf("a task failed before it started: events %q; want %q", lines(info().TaskStates["a"]), want)
	}
}

// TestLostTaskAsLastReported: a raw_exec allocation lost with its node
// keeps its task as its client last reported it (running: the servers
// change the allocation's status alone, as TestFidelityMockDisconnected
// measured), and once its client is back the task is killed (Killing,
// Terminated, Killed) and the allocation complete.
func TestLostTaskAsLastReported(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	mustRegister(t, c, tasksJob("raw_exec", "t"))
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	as, _, err := client.Jobs().Allocations("j", true, nil)
	if err != nil || len(as) != 1 {
		t.Fatalf("allocations %v, %v; want one", as, err)
	}
	id := as[0].ID
	if err := c.SetFaults(Faults{NodesDown: []string{as[0].NodeID}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	a, _, err := client.Allocations().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	running := []string{"Received: Task received by client", "Task Setup: Building Task Directory", "Started: Task started by client"}
	if ts := a.TaskStates["t"]; a.ClientStatus != api.AllocClientStatusLost || ts.State != "running" || !ts.FinishedAt.IsZero() || !slices.Equal(lines(ts), running) {
		t.Fatalf("lost: %s, task %s finished %v, events %q; want lost, the task running, %q", a.ClientStatus, ts.State, ts.FinishedAt, lines(ts), running)
	}
	if err := c.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if a, _, err = client.Allocations().Info(id, nil); err != nil {
		t.Fatal(err)
	}
	want := append(running, "Killing: Sent interrupt. Waiting 5s before force killing", "Terminated: Exit Code: 137, Signal: 9", "Killed: Task successfully killed")
	if ts := a.TaskStates["t"]; a.ClientStatus != api.AllocClientStatusComplete || ts.State != "dead" || !slices.Equal(lines(ts), want) {
		t.Errorf("its client back: %s, task %s, events %q; want complete, dead, %q", a.ClientStatus, ts.State, lines(ts), want)
	}
}

// TestStopTakesTheTasksKillTimeout: a stopped task is killed once its
// kill_timeout has passed, at most the client's max_kill_timeout (30 s),
// as Nomad's client kills one that ignores the interrupt; the simulator
// took 5 s whatever the task said.
func TestStopTakesTheTasksKillTimeout(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	j := tasksJob("raw_exec", "t")
	j.TaskGroups[0].Tasks[0].KillTimeout = new(45 * time.Second)
	mustRegister(t, c, j)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Jobs().Deregister("j", false, nil); err != nil {
		t.Fatal(err)
	}
	as, _, err := client.Jobs().Allocations("j", true, nil)
	if err != nil || len(as) != 1 {
		t.Fatalf("allocations %v, %v; want one", as, err)
	}
	if err := c.Step(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	a, _, err := client.Allocations().Info(as[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts := a.TaskStates["t"]; a.ClientStatus != api.AllocClientStatusRunning || ts.State != "running" || len(ts.Events) != 4 ||
		ts.Events[3].DisplayMessage != "Sent interrupt. Waiting 30s before force killing" {
		t.Fatalf("20 s after the stop: %s, task %s, events %q; want running, being killed in 30s", a.ClientStatus, ts.State, lines(ts))
	}
	if err := c.Step(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if a, _, err = client.Allocations().Info(as[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	ts := a.TaskStates["t"]
	if a.ClientStatus != api.AllocClientStatusComplete || len(ts.Events) != 6 || ts.FinishedAt.Sub(time.Unix(0, ts.Events[3].Time)) != 30*time.Second {
		t.Errorf("40 s after the stop: %s, finished %v, events %q; want complete, killed 30 s after its Killing", a.ClientStatus, ts.FinishedAt, lines(ts))
	}
}
