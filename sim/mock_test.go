package sim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// mockGroup is a group of one mock_driver task with config, canonical as
// Nomad's API client sends it.
func mockGroup(jobType string, config map[string]any) (*api.Job, *api.TaskGroup, *api.Task) {
	j := api.NewServiceJob("j", "j", "global", 50)
	j.Type = new(jobType)
	tg := api.NewTaskGroup("g", 1)
	task := api.NewTask("t", mockDriver).Require(&api.Resources{CPU: new(50), MemoryMB: new(32)})
	task.Config = config
	tg.AddTask(task)
	j.AddTaskGroup(tg)
	j.Canonicalize()
	return j, tg, task
}

// TestParseMockTask: how a mock_driver task's config is read. Nomad's
// servers take any config, and its client decodes it with the driver's
// schema at the task's start: what does not decode fails the task with the
// decoder's message (measured on a Nomad 2.0.6-dev agent:
// TestFidelityMockConfigRefusedByClient), values convert as go-cty
// converts them, and what the simulator does not model is refused.
func TestParseMockTask(t *testing.T) {
	validation := func(msgs ...string) string {
		return multiError(append([]string{"failed to parse config: "}, msgs...)...)
	}
	for _, tc := range []struct {
		name    string
		typ     string
		config  map[string]any
		want    mockTask // its restart policy, onSuccess and killTimeout are not compared
		refused string
	}{
		{name: "empty: runs for 0, exits 0 at once", config: nil, want: mockTask{}},
		{name: "modelled keys", config: map[string]any{"start_block_for": "1h", "run_for": "2h", "start_error": "e", "start_error_recoverable": true, "exit_code": 3.0},
			want: mockTask{blockFor: time.Hour, runFor: 2 * time.Hour, startErr: "e", recoverable: true, exitCode: 3}},
		{name: "null is unset", config: map[string]any{"start_error": nil}, want: mockTask{}},
		{name: "number as a duration's text", config: map[string]any{"start_block_for": 5.0},
			want: mockTask{driverErr: `start_block_for 5 not a valid duration: time: missing unit in duration "5"`}},
		{name: "bad run_for", config: map[string]any{"run_for": "xyz"},
			want: mockTask{driverErr: `run_for xyz not a valid duration: time: invalid duration "xyz"`}},
		{name: "negative durations", config: map[string]any{"start_block_for": "-1s", "run_for": "-1s"}, want: mockTask{}},
		{name: "bool and number as text", config: map[string]any{"start_error": true, "run_for": 1.5},
			want: mockTask{startErr: "true", driverErr: `run_for 1.5 not a valid duration: time: missing unit in duration "1.5"`}},
		{name: "bool from 1", config: map[string]any{"start_error_recoverable": "1"}, want: mockTask{recoverable: true}},
		{name: "bool from false", config: map[string]any{"start_error_recoverable": "false"}, want: mockTask{}},
		{name: "number from text", config: map[string]any{"exit_code": "7"}, want: mockTask{exitCode: 7}},
		{name: "unknown keys", config: map[string]any{"zz": 1.0, "aa": "x"}, want: mockTask{invalid: validation(
			`Invalid label: No argument or block type is named "aa".`, `Invalid label: No argument or block type is named "zz".`)}},
		{name: "bool from a word", config: map[string]any{"start_error_recoverable": "yes"}, want: mockTask{invalid: validation(
			`Incorrect attribute value type: Inappropriate value for attribute "start_error_recoverable": a bool is required.`)}},
		{name: "bool from a number", config: map[string]any{"start_error_recoverable": 1.0}, want: mockTask{invalid: validation(
			`Incorrect attribute value type: Inappropriate value for attribute "start_error_recoverable": bool required, but have number.`)}},
		{name: "number from a word", config: map[string]any{"exit_code": "abc"}, want: mockTask{invalid: validation(
			`Incorrect attribute value type: Inappropriate value for attribute "exit_code": a number is required.`)}},
		{name: "string from a list", config: map[string]any{"start_error": []any{"a"}}, want: mockTask{invalid: validation(
			`Incorrect attribute value type: Inappropriate value for attribute "start_error": string required, but have tuple.`)}},
		{name: "string from an object", config: map[string]any{"run_for": map[string]any{"a": 1.0}}, want: mockTask{invalid: validation(
			`Incorrect attribute value type: Inappropriate value for attribute "run_for": string required, but have object.`)}},
		{name: "a key not modelled", config: map[string]any{"kill_after": "1s"}, refused: `mock_driver config "kill_after" is not supported by the simulator`},
		{name: "a block not modelled", config: map[string]any{"exec_command": map[string]any{"run_for": "1s"}}, refused: `"exec_command" is not supported`},
		{name: "exit code not whole", config: map[string]any{"exit_code": 1.5}, refused: `"exit_code" that is not a whole number is not supported`},
		{name: "start_error of its node", config: map[string]any{"start_error": "${node.unique.name}: ${meta.disk}"},
			want: mockTask{startErr: "${node.unique.name}: ${meta.disk}"}},
		{name: "an interpolation not modelled", config: map[string]any{"start_error": "${NOMAD_ALLOC_INDEX}"},
			refused: `mock_driver config "start_error" interpolation ${NOMAD_ALLOC_INDEX} is not supported by the simulator`},
		{name: "an interpolation in another key", config: map[string]any{"run_for": "${meta.run_for}"},
			refused: `mock_driver config "run_for" with an interpolation is not supported by the simulator`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			if typ == "" {
				typ = api.JobTypeService
			}
			_, tg, task := mockGroup(typ, tc.config)
			m, err := parseMockTask(typ, tg, task)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v; want a refusal saying %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *m
			got.attempts, got.interval, got.delay, got.delayMode, got.onSuccess, got.killTimeout = 0, 0, 0, false, false, 0
			if got != tc.want {
				t.Errorf("parsed %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestParseMockTaskRestartPolicy: the task's restart policy is the
// group's, Nomad's defaults for the job type filled in, and a successful
// exit restarts a service task, not a batch one.
func TestParseMockTaskRestartPolicy(t *testing.T) {
	_, tg, task := mockGroup(api.JobTypeService, nil)
	m, err := parseMockTask(api.JobTypeService, tg, task)
	if err != nil {
		t.Fatal(err)
	}
	if m.attempts != 2 || m.interval != 30*time.Minute || m.delay != 15*time.Second || m.delayMode || !m.onSuccess {
		t.Errorf("service: %+v; want Nomad's service defaults (2 in 30m, 15s, fail), restarting on success", m)
	}
	j, tg, task := mockGroup(api.JobTypeBatch, nil)
	tg.RestartPolicy = &api.RestartPolicy{Mode: new(api.RestartPolicyModeDelay), Attempts: new(5)}
	task.RestartPolicy = nil
	j.Canonicalize()
	m, err = parseMockTask(api.JobTypeBatch, tg, task)
	if err != nil {
		t.Fatal(err)
	}
	if m.attempts != 5 || m.interval != 24*time.Hour || m.delay != 15*time.Second || !m.delayMode || m.onSuccess {
		t.Errorf("batch: %+v; want 5 in Nomad's batch 24h, 15s, delay mode, done on success", m)
	}
}

// TestParseMockTaskKillTimeout: the kill timeout a task's Killing event
// names is its kill_timeout (Nomad's 5 s when unset), at most the
// client's max_kill_timeout, 30 s (measured on Nomad 2.0.6-dev:
// TestFidelityMockKilled).
func TestParseMockTaskKillTimeout(t *testing.T) {
	for _, tc := range []struct {
		set  *time.Duration
		want time.Duration
	}{{nil, 5 * time.Second}, {new(3 * time.Second), 3 * time.Second}, {new(2 * time.Minute), 30 * time.Second}, {new(time.Duration(0)), 0}} {
		_, tg, task := mockGroup(api.JobTypeService, nil)
		task.KillTimeout = tc.set
		m, err := parseMockTask(api.JobTypeService, tg, task)
		if err != nil {
			t.Fatal(err)
		}
		if m.killTimeout != tc.want {
			t.Errorf("kill_timeout %v: %v; want %v", tc.set, m.killTimeout, tc.want)
		}
	}
}

// TestMockTaskRefusedAtRegistration: what the simulator does not model of
// a mock_driver task is a 400 saying so, never ignored; what Nomad's
// client refuses is registered, as Nomad registers it.
func TestMockTaskRefusedAtRegistration(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*api.Job)
		want string
	}{
		{"key not modelled", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Config = map[string]any{"stdout_string": "hi"} },
			`Task group g: mock_driver config "stdout_string" is not supported by the simulator`},
		{"two tasks", func(j *api.Job) {
			j.TaskGroups[0].AddTask(api.NewTask("u", "raw_exec").SetConfig("command", "/bin/sleep").Require(&api.Resources{CPU: new(50), MemoryMB: new(32)}))
		}, "a mock_driver task in a group of more than one task is not supported by the simulator"},
		{"lifecycle", func(j *api.Job) {
			j.TaskGroups[0].Tasks[0].Lifecycle = &api.TaskLifecycle{Hook: api.TaskLifecycleHookPrestart}
		}, "a mock_driver task with a lifecycle block is not supported by the simulator"},
		{"shutdown_delay", func(j *api.Job) { j.TaskGroups[0].Tasks[0].ShutdownDelay = time.Second },
			"a mock_driver task with a shutdown_delay is not supported by the simulator"},
		{"unknown key", func(j *api.Job) { j.TaskGroups[0].Tasks[0].Config = map[string]any{"bogus": "x"} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			j, _, _ := mockGroup(api.JobTypeService, nil)
			tc.edit(j)
			var err error
			do(c, func() { _, err = c.register(j, nil, triggerRegister) })
			if tc.want == "" {
				if err != nil {
					t.Errorf("err = %v; want it registered, as Nomad registers it", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "1 error occurred") {
				t.Errorf("err = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestMockDelayModeRestartsForGood: a task whose start keeps failing
// under a delay-mode restart policy (as foreshape's placeholders have) is
// restarted for good: past its attempts it waits for the interval's end,
// then starts a new interval, its allocation pending all along, never
// failed. (A restart due at the interval's end looped at that instant
// before.)
func TestMockDelayModeRestartsForGood(t *testing.T) {
	c := newTestCluster(t, "")
	do(c, func() {
		for _, n := range c.nodes {
			n.drivers = append(n.drivers, mockDriver)
		}
	})
	j, tg, _ := mockGroup(api.JobTypeService, map[string]any{"start_error": "not yet", "start_error_recoverable": true})
	j.Datacenters = []string{"*"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	tg.RestartPolicy = &api.RestartPolicy{Attempts: new(2), Interval: new(time.Minute), Delay: new(5 * time.Second), Mode: new(api.RestartPolicyModeDelay)}
	tg.Tasks[0].RestartPolicy = nil
	j.Canonicalize()
	var err error
	do(c, func() { _, err = c.register(j, nil, triggerRegister) })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		js := c.jobs["j"]
		if len(js.allocs) != 1 {
			t.Fatalf("%d allocations; want the one", len(js.allocs))
		}
		a := js.allocs[0]
		ts := a.mockTaskState()
		// Two restarts in each minute (5 s apart and some), the third
		// at the minute's end: about 3 a minute.
		if a.client != allocPending || ts.State != "pending" || ts.Failed || ts.Restarts < 25 || ts.Restarts > 31 {
			t.Errorf("after 10 minutes: %s, task %s failed %v, %d restarts; want pending, restarting about 3 times a minute", a.client, ts.State, ts.Failed, ts.Restarts)
		}
		if n := len(ts.Events); n != maxTaskEvents {
			t.Errorf("%d task events; want Nomad's last %d", n, maxTaskEvents)
		}
		var delayed int
		for _, e := range ts.Events {
			if e.Type == api.TaskRestarting && e.RestartReason == mockReasonDelay {
				delayed++
			}
		}
		if delayed == 0 {
			t.Errorf("task events %v; want restarts delayed to the interval's end among them", ts.Events)
		}
	})
}

// TestMockExitsAfterReconnect: a mock_driver task whose run_for ends
// while its node is disconnected exits once its client is back (its
// timer, passed unseen meanwhile, is due again), and is restarted as its
// policy says: the simulator left it running for good.
func TestMockExitsAfterReconnect(t *testing.T) {
	c := newTestCluster(t, "")
	do(c, func() {
		for _, n := range c.nodes {
			n.drivers = append(n.drivers, mockDriver)
		}
	})
	j, tg, _ := mockGroup(api.JobTypeService, map[string]any{"run_for": "2m"})
	j.Datacenters = []string{"*"}
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	tg.Disconnect = &api.DisconnectStrategy{LostAfter: new(time.Hour)}
	var err error
	do(c, func() { _, err = c.register(j, nil, triggerRegister) })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	var a *alloc
	do(c, func() { a = c.jobs["j"].allocs[0] })
	if err := c.SetFaults(Faults{NodesDown: []string{a.node.id}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		if a.client != allocUnknown {
			t.Fatalf("while its node is disconnected: %s; want unknown", a.client)
		}
	})
	if err := c.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	do(c, func() {
		var types []string
		for _, e := range a.mockTaskState().Events {
			types = append(types, e.Type)
		}
		want := []string{api.TaskReceived, api.TaskSetup, api.TaskStarted, api.TaskClientReconnected, api.TaskTerminated, api.TaskRestarting}
		if len(types) < len(want) || !slices.Equal(types[:len(want)], want) {
			t.Errorf("task events %v; want %v first: exited once back, and restarted", types, want)
		}
	})
}
