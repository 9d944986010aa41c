package sim

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Nomad's mock_driver (drivers/mock), which every dev agent runs: a task
// that starts, runs and exits as its config says. The simulator honours the
// part of its config that decides whether and when a task starts, how long
// it runs and how it ends, with the client's restart policy
// (client/allocrunner/taskrunner/restarts) between attempts:
//
//   - start_block_for: each start blocks that long (the task pending, the
//     allocation pending on its node, "No tasks have started");
//   - start_error: each start fails with that error (a Driver Failure
//     event), not restarted ("Error was unrecoverable": the task fails, and
//     so does the allocation) unless start_error_recoverable, when the
//     restart policy restarts it. Its ${node.*}, ${attr.*} and ${meta.*}
//     references are the node's, as the client interpolates a task's
//     config, so a start fails on some nodes only (an empty error is
//     none); one its node does not have fails the task's validation
//     ("Unsupported attribute"). References in the other keys, and to
//     what the simulator does not model (NOMAD_* variables), are refused
//     at registration;
//   - run_for (0 when unset, as in the driver: the task exits at once) and
//     exit_code: a started task exits after run_for with that code
//     (Terminated), restarted as the policy says (a batch or sysbatch task
//     that exits 0 is done);
//   - a stop kills the task at once (mockKill).
//
// Nomad's servers take any config: the client decodes it with the driver's
// schema when it starts the task. A key the driver does not have, or a value
// that does not convert to the key's type, fails the task there ("Failed
// Validation", not restarted), and a duration that does not parse fails its
// start (a Driver Failure, not restarted): the simulator fails it alike,
// with Nomad's messages (measured on a Nomad 2.0.6-dev agent). The driver's
// keys the simulator does not model (kill_after, exec_command, stdout_*,
// exit_signal, …) are refused at registration, as is a mock_driver task
// in a group of more than one task, with a lifecycle block or with a
// shutdown_delay (whose wait before the kill is not modelled).

// mockKeys are the keys of the mock driver's task config schema
// (drivers/mock/driver.go taskConfigSpec) and their types; modelled says
// which the simulator honours.
var mockKeys = map[string]struct {
	typ      string // string, bool, number, block
	modelled bool
}{
	"start_error": {"string", true}, "start_error_recoverable": {"bool", true}, "start_block_for": {"string", true},
	"run_for": {"string", true}, "exit_code": {"number", true},
	"kill_after": {"string", false}, "plugin_exit_after": {"string", false}, "driver_ip": {"string", false},
	"driver_advertise": {"bool", false}, "driver_port_map": {"string", false}, "exit_signal": {"number", false},
	"exit_err_msg": {"string", false}, "signal_error": {"string", false}, "stdout_string": {"string", false},
	"stdout_repeat": {"number", false}, "stdout_repeat_duration": {"string", false}, "stderr_string": {"string", false},
	"stderr_repeat": {"number", false}, "stderr_repeat_duration": {"string", false}, "exec_command": {"block", false},
}

// mockDriver is the name of Nomad's mock task driver.
const mockDriver = "mock_driver"

// mockTask is a mock_driver task as its client runs it.
type mockTask struct {
	// invalid is the task's Failed Validation error (its config does not
	// decode with the driver's schema), driverErr the Driver Failure its
	// start returns for a config that decodes but does not parse: either
	// fails the task at its first start, not restarted.
	invalid, driverErr string
	blockFor           time.Duration
	startErr           string
	recoverable        bool
	runFor             time.Duration
	exitCode           int
	// The task's restart policy, and whether a successful exit restarts
	// it (a service or system job's task; not a batch or sysbatch one's).
	attempts        int
	interval, delay time.Duration
	delayMode       bool
	onSuccess       bool
	// killTimeout is the task's kill_timeout as its client names it in
	// the Killing event: at most the client's max_kill_timeout.
	killTimeout time.Duration
}

// Nomad's default kill_timeout (the API's canonical task) and a client's
// default max_kill_timeout, which caps it.
const (
	defaultKillTimeout = 5 * time.Second
	maxKillTimeout     = 30 * time.Second
)

// parseMockTask reads a mock_driver task's config as the driver's schema
// and the client's decoding take it. Its error is a refusal: what the
// simulator does not model.
func parseMockTask(jobType string, tg *api.TaskGroup, t *api.Task) (*mockTask, error) {
	if len(tg.Tasks) > 1 {
		return nil, fmt.Errorf("a mock_driver task in a group of more than one task is not supported by the simulator")
	}
	if t.Lifecycle != nil {
		return nil, fmt.Errorf("a mock_driver task with a lifecycle block is not supported by the simulator")
	}
	if t.ShutdownDelay > 0 {
		return nil, fmt.Errorf("a mock_driver task with a shutdown_delay is not supported by the simulator")
	}
	m := &mockTask{onSuccess: jobType != api.JobTypeBatch && jobType != api.JobTypeSysbatch, killTimeout: defaultKillTimeout}
	if t.KillTimeout != nil {
		m.killTimeout = max(*t.KillTimeout, 0)
	}
	m.killTimeout = min(m.killTimeout, maxKillTimeout)
	rp := t.RestartPolicy
	if rp == nil {
		rp = tg.RestartPolicy
	}
	if rp != nil {
		if rp.Attempts != nil {
			m.attempts = *rp.Attempts
		}
		if rp.Interval != nil {
			m.interval = *rp.Interval
		}
		if rp.Delay != nil {
			m.delay = *rp.Delay
		}
		m.delayMode = rp.Mode != nil && *rp.Mode == api.RestartPolicyModeDelay
	}
	var errs []string
	vals := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(t.Config)) {
		v := t.Config[k]
		spec, ok := mockKeys[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("Invalid label: No argument or block type is named %q.", k))
			continue
		}
		if v == nil {
			continue // null: unset
		}
		if !spec.modelled {
			return nil, fmt.Errorf("mock_driver config %q is not supported by the simulator", k)
		}
		cv, msg := ctyConvert(v, spec.typ)
		if str, ok := cv.(string); ok && msg == "" && strings.Contains(str, "${") {
			if k != "start_error" {
				return nil, fmt.Errorf("mock_driver config %q with an interpolation is not supported by the simulator (only start_error's are)", k)
			}
			for _, ref := range mockRefs(str) {
				if !knownTarget("${" + ref + "}") {
					return nil, fmt.Errorf("mock_driver config \"start_error\" interpolation ${%s} is not supported by the simulator (${node.*}, ${attr.*} and ${meta.*} it models are)", ref)
				}
			}
		}
		if msg != "" {
			errs = append(errs, fmt.Sprintf("Incorrect attribute value type: Inappropriate value for attribute %q: %s.", k, msg))
			continue
		}
		vals[k] = cv
	}
	if len(errs) > 0 {
		// hashicorp/go-multierror's format, the decoder's errors after
		// the client's own.
		m.invalid = multiError(append([]string{"failed to parse config: "}, errs...)...)
		return m, nil
	}
	str := func(k string) string { s, _ := vals[k].(string); return s }
	if n, ok := vals["exit_code"].(*big.Float); ok {
		i, acc := n.Int64()
		if acc != big.Exact || !n.IsInt() {
			// Nomad's msgpack decoding fails naming a byte position.
			return nil, fmt.Errorf("mock_driver config \"exit_code\" that is not a whole number is not supported by the simulator")
		}
		m.exitCode = int(i)
	}
	m.startErr = str("start_error")
	m.recoverable, _ = vals["start_error_recoverable"].(bool)
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{"start_block_for", &m.blockFor}, {"run_for", &m.runFor}} {
		s := str(d.key)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			m.driverErr = fmt.Sprintf("%s %v not a valid duration: %v", d.key, s, err)
			return m, nil
		}
		*d.to = max(v, 0)
	}
	return m, nil
}

// ctyConvert converts a JSON value of a task's config to an attribute's
// type as the client's HCL decoding (go-cty's convert) does: a string
// (numbers and bools become their text), a bool (from "true", "false",
// "1", "0"), a number (from its text). Its message says why it does not
// convert, as go-cty says it.
func ctyConvert(v any, typ string) (any, string) {
	kind := "dynamic"
	switch v.(type) {
	case string:
		kind = "string"
	case float64, int, int64:
		kind = "number"
	case bool:
		kind = "bool"
	case []any:
		kind = "tuple"
	case map[string]any:
		kind = "object"
	}
	switch typ {
	case "string":
		switch x := v.(type) {
		case string:
			return x, ""
		case bool:
			return strconv.FormatBool(x), ""
		case float64:
			return big.NewFloat(x).Text('f', -1), ""
		case int:
			return strconv.Itoa(x), ""
		case int64:
			return strconv.FormatInt(x, 10), ""
		}
	case "bool":
		switch x := v.(type) {
		case bool:
			return x, ""
		case string:
			switch x {
			case "true", "1":
				return true, ""
			case "false", "0":
				return false, ""
			}
			return nil, "a bool is required"
		}
	case "number":
		switch x := v.(type) {
		case float64:
			return big.NewFloat(x), ""
		case int:
			return new(big.Float).SetInt64(int64(x)), ""
		case int64:
			return new(big.Float).SetInt64(x), ""
		case string:
			f, _, err := big.ParseFloat(strings.TrimSpace(x), 10, 512, big.ToNearestEven)
			if err != nil || x != strings.TrimSpace(x) {
				return nil, "a number is required"
			}
			return f, ""
		}
	}
	return nil, fmt.Sprintf("%s required, but have %s", typ, kind)
}

// maxTaskEvents is how many events a Nomad client keeps per task (the
// oldest dropped).
const maxTaskEvents = 10

// Task event types and reasons, as Nomad's client sets them.
const (
	mockReasonUnrecoverable = "Error was unrecoverable"
	mockReasonNoRestarts    = "Policy allows no restarts"
	mockReasonWithin        = "Restart within policy"
	mockReasonDelay         = "Exceeded allowed attempts, applying a delay"
)

// mockRun is the client's run of a mock_driver allocation's task: its
// state, its events after Received and Task Setup, its restart tracker.
type mockRun struct {
	state       string // pending, running, dead
	failed      bool
	events      []*api.TaskEvent
	restarts    int
	lastRestart time.Time
	finished    time.Time
	// blocked marks a start inside start_block_for; at is when the
	// start (or the block's end) is due: earlier timers are stale.
	blocked bool
	at      time.Time
	// The restart tracker: failures counted in the interval from since.
	count int
	since time.Time
	// killing marks a task its client was told to stop (its Killing
	// event added).
	killing bool
}

func (r *mockRun) event(e *api.TaskEvent) {
	r.events = append(r.events, e)
	if over := len(r.events) - maxTaskEvents; over > 0 {
		r.events = append(r.events[:0:0], r.events[over:]...)
	}
}

// mockStarts runs a mock_driver allocation's start that is due: it reports
// whether the task started now (the caller sets it running); otherwise it
// is still blocked, waits to restart, or failed.
func (c *Cluster) mockStarts(a *alloc) bool {
	m, r := a.grp.mock, a.mock
	if c.now.Before(r.at) {
		return false // a stale timer
	}
	now := c.now.UnixNano()
	if !r.blocked {
		switch {
		case m.invalid != "":
			r.event(&api.TaskEvent{Type: api.TaskFailedValidation, Time: now, DisplayMessage: m.invalid, ValidationError: m.invalid,
				Details: map[string]string{"validation_error": m.invalid}})
			c.mockNotRestarting(a, mockReasonUnrecoverable)
			return false
		case m.driverErr != "":
			c.mockDriverFailure(a, m.driverErr)
			c.mockNotRestarting(a, mockReasonUnrecoverable)
			return false
		case m.blockFor > 0:
			r.blocked, r.at = true, c.now.Add(m.blockFor)
			c.arm(a, r.at)
			return false
		}
	}
	r.blocked = false
	startErr, invalid := mockInterpolate(m.startErr, a.node)
	if invalid != "" {
		r.event(&api.TaskEvent{Type: api.TaskFailedValidation, Time: now, DisplayMessage: invalid, ValidationError: invalid,
			Details: map[string]string{"validation_error": invalid}})
		c.mockNotRestarting(a, mockReasonUnrecoverable)
		return false
	}
	if startErr != "" {
		c.mockDriverFailure(a, startErr)
		c.mockRestart(a, true, !m.recoverable, false)
		return false
	}
	r.event(&api.TaskEvent{Type: api.TaskStarted, Time: now, DisplayMessage: "Task started by client"})
	r.state = "running"
	a.finishAt = c.now.Add(m.runFor)
	c.arm(a, a.finishAt)
	return true
}

func (c *Cluster) mockDriverFailure(a *alloc, msg string) {
	a.mock.event(&api.TaskEvent{Type: api.TaskDriverFailure, Time: c.now.UnixNano(), DisplayMessage: msg, DriverError: msg,
		Details: map[string]string{"driver_error": msg}})
}

// mockExits ends a mock_driver allocation's task whose run_for has passed.
func (c *Cluster) mockExits(a *alloc) {
	code := a.grp.mock.exitCode
	msg := fmt.Sprintf("Exit Code: %d", code)
	a.mock.event(&api.TaskEvent{Type: api.TaskTerminated, Time: c.now.UnixNano(), DisplayMessage: msg, ExitCode: code,
		Details: map[string]string{"exit_code": strconv.Itoa(code), "signal": "0", "oom_killed": "false"}})
	a.finishAt = time.Time{}
	c.mockRestart(a, false, false, code == 0)
}

// mockRestart is the client's restart tracker after a failed start
// (unrecoverable or not) or an exit (successful or not), as Nomad's
// RestartTracker.GetState decides.
func (c *Cluster) mockRestart(a *alloc, startErr, unrecoverable, success bool) {
	m, r := a.grp.mock, a.mock
	if m.attempts == 0 {
		if !m.onSuccess && success {
			c.mockTerminated(a)
			return
		}
		c.mockNotRestarting(a, mockReasonNoRestarts)
		return
	}
	if !c.now.Before(r.since.Add(m.interval)) {
		// Nomad's tracker starts a new interval once now is after
		// its end; a restart delayed to the end comes a little after
		// it on a real client, at it here.
		r.count, r.since = 0, c.now
	}
	r.count++
	switch {
	case startErr && unrecoverable:
		c.mockNotRestarting(a, mockReasonUnrecoverable)
		return
	case success && !m.onSuccess:
		c.mockTerminated(a)
		return
	case r.count > m.attempts && !m.delayMode:
		c.mockNotRestarting(a, fmt.Sprintf("Exceeded allowed attempts %d in interval %v and mode is \"fail\"", m.attempts, m.interval))
		return
	case r.count > m.attempts:
		c.mockRestarting(a, r.since.Add(m.interval).Sub(c.now), mockReasonDelay)
		return
	}
	d := max(int64(m.delay), 1)
	c.mockRestarting(a, time.Duration(d+int64(float64(c.rng.Int64N(d))*0.25)), mockReasonWithin)
}

func (c *Cluster) mockRestarting(a *alloc, delay time.Duration, reason string) {
	r := a.mock
	r.event(&api.TaskEvent{Type: api.TaskRestarting, Time: c.now.UnixNano(), DisplayMessage: "Task restarting in " + delay.String(),
		RestartReason: reason, StartDelay: int64(delay),
		Details: map[string]string{"restart_reason": reason, "start_delay": strconv.FormatInt(int64(delay), 10)}})
	r.state, r.restarts, r.lastRestart = "pending", r.restarts+1, c.now
	r.at = c.now.Add(delay)
	c.arm(a, r.at)
	if a.client != allocPending {
		a.client, a.clientDesc = allocPending, "No tasks have started"
		c.touchByClient(a)
	}
}

// mockNotRestarting fails the task for good, and its allocation with it.
func (c *Cluster) mockNotRestarting(a *alloc, reason string) {
	r := a.mock
	r.event(&api.TaskEvent{Type: api.TaskNotRestarting, Time: c.now.UnixNano(), DisplayMessage: reason, RestartReason: reason, FailsTask: true,
		Details: map[string]string{"restart_reason": reason, "fails_task": "true"}})
	r.state, r.failed, r.finished = "dead", true, c.now
	_ = c.failAlloc(a.id, reason)
}

// mockTerminated ends a batch task that exited successfully: its
// allocation is complete.
func (c *Cluster) mockTerminated(a *alloc) {
	r := a.mock
	r.state, r.finished = "dead", c.now
	a.client, a.clientDesc = allocComplete, "All tasks have completed"
	c.touchByClient(a)
	c.markDirty(a.job, triggerQueued)
}

// mockKill has the client kill a mock_driver allocation's task, its
// allocation stopped (its job stopped, the allocation stopped or
// migrated, its node drained), and reports whether the task is dead, so
// that the allocation is complete. The driver has no kill_after here
// (mockKeys): the task exits as soon as it is told, with its exit_code,
// as a killed task, not restarted and not failed, as Nomad's task runner
// does (measured on Nomad 2.0.6-dev, TestFidelityMockKilled):
//
//   - a running task: Killing (the kill timeout it would wait),
//     Terminated, Killed;
//   - a task waiting to restart: Killing alone;
//   - a start blocking (start_block_for) is not cut short: Killing now,
//     and once the block ends the task starts and is killed at once
//     (Started, Terminated, Killed). Until then it is not dead, and the
//     allocation stays pending; the block's timer calls mockKill again.
//
// The client has the task from its placement on (its Received and Task
// Setup events say so; a real client's first start follows within a
// second): one not started yet is in its first start, which blocks if
// the config says so, its block ending when it would have.
func (c *Cluster) mockKill(a *alloc) bool {
	m, r := a.grp.mock, a.mock
	if r.state == "dead" {
		return true
	}
	now := c.now.UnixNano()
	if r.state == "pending" && !r.blocked && len(r.events) == 0 && m.invalid == "" && m.driverErr == "" && m.blockFor > 0 && !a.startAt.IsZero() {
		r.blocked, r.at = true, a.startAt.Add(m.blockFor)
		c.arm(a, r.at)
	}
	told := !r.killing
	if told {
		r.killing = true
		msg := "Sent interrupt"
		if m.killTimeout != 0 {
			msg = fmt.Sprintf("Sent interrupt. Waiting %v before force killing", m.killTimeout)
		}
		r.event(&api.TaskEvent{Type: api.TaskKilling, Time: now, DisplayMessage: msg, KillTimeout: m.killTimeout,
			Details: map[string]string{"kill_timeout": m.killTimeout.String()}})
	}
	if r.blocked && c.now.Before(r.at) {
		if told {
			c.touchByClient(a) // its client reports the Killing
		}
		return false
	}
	if r.blocked {
		r.event(&api.TaskEvent{Type: api.TaskStarted, Time: now, DisplayMessage: "Task started by client"})
		r.state, r.blocked = "running", false
		a.runningSince = c.now
	}
	if r.state == "running" {
		code := m.exitCode
		r.event(&api.TaskEvent{Type: api.TaskTerminated, Time: now, DisplayMessage: fmt.Sprintf("Exit Code: %d", code), ExitCode: code,
			Details: map[string]string{"exit_code": strconv.Itoa(code), "signal": "0", "oom_killed": "false"}})
		r.event(&api.TaskEvent{Type: api.TaskKilled, Time: now, DisplayMessage: "Task successfully killed", Details: map[string]string{}})
	}
	r.state, r.finished = "dead", c.now
	a.finishAt = time.Time{}
	return true
}

// mockKillNow is mockKill for a client heard again (its node back from
// disconnected or down, or registered again), which kills what the
// servers stopped meanwhile and reports it complete: a start blocking
// then is taken as ended without starting (Killing alone), where a real
// client would wait for its block.
func (c *Cluster) mockKillNow(a *alloc) {
	if !c.mockKill(a) {
		a.mock.blocked = false
		c.mockKill(a)
	}
}

// mockReconnected is a mock_driver allocation its client, heard again,
// reports running (it was unknown): the client adds Reconnected to its
// task, and the task's exit, whose timer passed unseen while the node
// was disconnected (lifecycle), is due again, now if its time has
// passed (a real client's runs on, or, stopped, fires the timer as
// soon as it continues).
func (c *Cluster) mockReconnected(a *alloc) {
	a.mock.event(&api.TaskEvent{Type: api.TaskClientReconnected, Time: c.now.UnixNano(), DisplayMessage: "Client reconnected", Details: map[string]string{}})
	if !a.finishAt.IsZero() {
		at := a.finishAt
		if at.Before(c.now) {
			at = c.now
		}
		c.arm(a, at)
	}
}

// mockTaskState is a mock_driver allocation's task as its client reports
// it.
func (a *alloc) mockTaskState() *api.TaskState {
	r := a.mock
	created := a.created.UnixNano()
	ts := &api.TaskState{State: r.state, Failed: r.failed, Restarts: uint64(r.restarts), LastRestart: r.lastRestart, StartedAt: a.runningSince,
		Events: []*api.TaskEvent{
			{Type: api.TaskReceived, Time: created, DisplayMessage: "Task received by client"},
			{Type: api.TaskSetup, Time: created, DisplayMessage: api.TaskBuildingTaskDir, Message: api.TaskBuildingTaskDir,
				Details: map[string]string{"message": api.TaskBuildingTaskDir}},
		}}
	for _, e := range r.events {
		cp := *e
		cp.Details = maps.Clone(e.Details)
		ts.Events = append(ts.Events, &cp)
	}
	if over := len(ts.Events) - maxTaskEvents; over > 0 {
		ts.Events = ts.Events[over:]
	}
	if a.clientTerminal() && a.client != allocLost {
		// A lost one's task is as its client last reported it: the
		// servers change its allocation's status alone
		// (TestFidelityMockDisconnected).
		ts.State = "dead"
		ts.FinishedAt = r.finished
		if ts.FinishedAt.IsZero() {
			ts.FinishedAt = a.stopAt
		}
		if ts.FinishedAt.IsZero() {
			ts.FinishedAt = a.modified
		}
	}
	return ts
}

// mockRefs are the references (between "${" and "}") in a config string.
func mockRefs(s string) []string {
	var refs []string
	for {
		_, rest, ok := strings.Cut(s, "${")
		if !ok {
			return refs
		}
		ref, after, ok := strings.Cut(rest, "}")
		if !ok {
			return refs
		}
		refs = append(refs, ref)
		s = after
	}
}

// mockInterpolate is a config string as the client of node n interpolates
// it, or its Failed Validation error when n lacks a reference (a meta key
// it does not have, say: measured on Nomad 2.0.6-dev, where an empty class
// is an empty string).
func mockInterpolate(s string, n *node) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	var errs []string
	for {
		before, rest, ok := strings.Cut(s, "${")
		b.WriteString(before)
		if !ok {
			break
		}
		ref, after, ok := strings.Cut(rest, "}")
		if !ok {
			b.WriteString("${" + rest)
			break
		}
		v, set := resolve(n, "${"+ref+"}")
		if key, meta := strings.CutPrefix(ref, "meta."); meta && !set {
			errs = append(errs, fmt.Sprintf("Unsupported attribute: This object does not have an attribute named %q.", key))
		}
		b.WriteString(v)
		s = after
	}
	if len(errs) > 0 {
		return "", multiError(append([]string{"failed to parse config: "}, errs...)...)
	}
	return b.String(), ""
}
