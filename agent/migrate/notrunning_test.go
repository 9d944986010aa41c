package migrate

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// mockScenario is actScenario with Nomad's mock_driver on the nodes of
// dc2 (a Nomad dev agent runs it), where the placeholders go: the
// simulator starts, fails and restarts a mock_driver task as its config
// says, as a real client does.
var mockScenario = strings.Replace(actScenario, "nodes \"b\" {\n  datacenter = \"dc2\"\n",
	"nodes \"b\" {\n  datacenter = \"dc2\"\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n", 1)

// pullFailing is a placeholder whose task never starts, as an image that
// cannot be pulled leaves it: each start fails with an error its client
// restarts after, and the placeholder's restart policy (delay mode)
// restarts it for good, so its allocation stays pending on its node.
var pullFailing = Placeholder{Driver: "mock_driver", Config: map[string]any{
	"start_error": "Failed to pull `registry.example/pause:3.10`: not found", "start_error_recoverable": true}}

// commandMissingMock is a placeholder whose task fails at its start for
// good, as commandMissing shows one: the driver's error is not one its
// client restarts after, so the allocation fails, and Nomad reschedules
// it (30 s later, doubling) to fail alike.
var commandMissingMock = Placeholder{Driver: "mock_driver", Config: map[string]any{
	"start_error": `failed to launch command with executor: rpc error: code = Unknown desc = binary "/nonexistent/hold" could not be found`}}

// commandMissing is how a real Nomad 2.0.6 showed an allocation placed on
// its node whose raw_exec command does not exist: the driver's error is
// not one it restarts after, so the task is dead, failed, and the
// allocation failed (desired still to run: Nomad reschedules it, 30 s
// later, doubling, and it fails alike).
var commandMissing = placeholderAs{status: map[string]any{
	"ClientStatus":      nomadapi.AllocClientStatusFailed,
	"ClientDescription": "Failed tasks",
}, task: func() *nomadapi.TaskState {
	return &nomadapi.TaskState{State: "dead", Failed: true, Events: []*nomadapi.TaskEvent{
		{Type: nomadapi.TaskReceived, DisplayMessage: "Task received by client"},
		{Type: nomadapi.TaskSetup, DisplayMessage: "Building Task Directory"},
		{Type: nomadapi.TaskDriverFailure, DisplayMessage: `failed to launch command with executor: rpc error: code = Unknown desc = binary "/nonexistent/hold" could not be found`},
		{Type: nomadapi.TaskNotRestarting, DisplayMessage: "Error was unrecoverable"},
	}}
}}

// placeholderAs is how Nomad's allocation reads show a placeholder's
// allocations: the fields of the list's and the read's allocation, and
// the task's state in the read.
type placeholderAs struct {
	status map[string]any
	task   func() *nomadapi.TaskState
}

// rewrite rewrites the answers of Nomad's allocation reads (the list, a
// job's, one allocation) so that every allocation running of a
// placeholder job that job says shows as p says.
func (p placeholderAs) rewrite(t *testing.T, job func(string) bool, rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	one := strings.HasPrefix(r.URL.Path, "/v1/allocation/") && strings.Count(r.URL.Path, "/") == 3
	list := r.URL.Path == "/v1/allocations" || strings.HasPrefix(r.URL.Path, "/v1/job/"+state.PlaceholderPrefix) && strings.HasSuffix(r.URL.Path, "/allocations")
	if r.Method != http.MethodGet || !one && !list {
		rp.ServeHTTP(w, r)
		return
	}
	r.Header.Del("Accept-Encoding")
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		answerJSON(t, w, rec, json.RawMessage(rec.Body.Bytes()))
		return
	}
	rewrite := func(a map[string]any) {
		if id, _ := a["JobID"].(string); shape.Placeholder(id) && job(id) && a["ClientStatus"] == nomadapi.AllocClientStatusRunning {
			maps.Copy(a, p.status)
			if one {
				a["TaskStates"] = map[string]*nomadapi.TaskState{"hold": p.task()}
			}
		}
	}
	if one {
		var a map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Errorf("allocation: %v", err)
		}
		rewrite(a)
		answerJSON(t, w, rec, a)
		return
	}
	var as []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &as); err != nil {
		t.Errorf("allocations: %v", err)
	}
	for _, a := range as {
		rewrite(a)
	}
	answerJSON(t, w, rec, as)
}

// TestPlacedPlaceholderNotRunningDoesNotScale: Nomad placed a
// reservation's placeholder on a node of dc2, but its task never starts
// (its image cannot be pulled: the simulator's mock_driver fails each
// start, and the client restarts it for good): the allocation stays
// pending on the node, and Nomad holds its room there all the same. The queue is paused, so the
// placeholder waits past shape.PlaceholderGrace. foreshape does not scale
// for room the reservation holds (before: it counted as a reservation that
// does not fit, and the target was scaled); a decision says, once per ten
// minutes, that the placeholder is placed but its task is not running,
// naming the node and the task's last event, and the agent's log says so
// at WARN once. Once the queue is resumed the move hands the room over and
// is done, still without a scale action.
func TestPlacedPlaceholderNotRunningDoesNotScale(t *testing.T) {
	var logs syncbuf.Buffer
	h := newHarness(t, mockScenario, actPolicies, func(c *Config) {
		c.Placeholder = pullFailing
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, &logs), Level: hclog.Debug})
	})
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(shape.PlaceholderGrace+13*time.Minute), nil)
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || len(h.allocs(res.Job)) == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a placeholder Nomad placed", res, ok)
	}
	if res.Unplaced != 0 {
		t.Errorf("reservation %s counts %d placeholder allocations unplaced; want none: Nomad placed them", res.ID, res.Unplaced)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale actions for a reservation whose placeholder Nomad placed; actions %+v", n, h.local.FSM.Act().ScaleActions)
	}
	if r := h.request(id); strings.Contains(r.Reason, "does not fit") {
		t.Errorf("%s's reason %q; want no reservation that does not fit", id, r.Reason)
	}
	said := h.decisionsSaying(id, "is placed but its task is not running")
	if len(said) != 2 {
		t.Errorf("decisions that the placeholder's task is not running: %q; want two, one per ten minutes", said)
	}
	for _, d := range said {
		for _, want := range []string{"reserve: ", res.Job, "on node b-", "pending", "Driver Failure: Failed to pull", "Restarting: Task restarting in ",
			"reserve.driver", "does not scale"} {
			if !strings.Contains(d, want) {
				t.Errorf("decision %q lacks %q", d, want)
			}
		}
	}
	if n := strings.Count(logs.String(), "[WARN]  migrate: a placeholder is placed but its task is not running"); n != 1 {
		t.Errorf("the agent's log says %d times at WARN that the placeholder's task is not running; want once", n)
	}

	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.passUntil(h.now().Add(5*time.Minute), nil)
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s) after the queue was resumed; want done", id, r.State, r.Reason)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale actions; want none", n)
	}
}

// TestPlaceholderWhoseTaskFailsDoesNotScale: Nomad placed a reservation's
// placeholder on a node of dc2, but its task fails there for good (its
// raw_exec command is missing: not restarted), so the allocation is
// failed, holds no room, and Nomad reschedules it to fail alike. Nodes a
// scale action adds would fail it alike: foreshape does not scale for it
// (before: it counted as a reservation that does not fit, and the target
// was scaled), the request waits for its room, its reason saying the
// placeholder cannot run and why, a decision says so every ten minutes
// with the task's last events, and the agent's log once at ERROR. Once
// the operator fixes reserve.config (a restart), the placeholder
// registered with the old command is released and placed anew, and the
// move is done, still without a scale action.
func TestPlaceholderWhoseTaskFailsDoesNotScale(t *testing.T) {
	var logs syncbuf.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Placeholder = Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/nonexistent/hold"}}
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, &logs), Level: hclog.Debug})
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			commandMissing.rewrite(t, func(job string) bool { return job == state.PlaceholderPrefix+"rs-1" }, rp, w, r)
		})
	})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(shape.PlaceholderGrace+13*time.Minute), nil)
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a held placeholder whose allocation failed", res, ok)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale actions for a placeholder whose task fails; actions %+v", n, h.local.FSM.Act().ScaleActions)
	}
	r := h.request(id)
	if r.State == state.RequestRunning || r.State.Terminal() || countStops(h, a.ID) != 0 {
		t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
	}
	for _, want := range []string{"placeholder cannot be placed", res.Job + "'s task fails on the nodes Nomad places it on", "on node b-",
		`binary "/nonexistent/hold" could not be found`, "Not Restarting: Error was unrecoverable", "reserve.config", "not scaled for"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("%s's reason %q lacks %q", id, r.Reason, want)
		}
	}
	if strings.Contains(r.Reason, "does not fit") {
		t.Errorf("%s's reason %q; want no reservation that does not fit", id, r.Reason)
	}
	said := h.decisionsSaying(id, "placeholder cannot run: ")
	if len(said) != 2 {
		t.Errorf("decisions that the placeholder cannot run: %q; want two, one per ten minutes", said)
	}
	if n := strings.Count(logs.String(), "[ERROR] migrate: a placeholder's task fails on the nodes Nomad places it on"); n != 1 {
		t.Errorf("the agent's log says %d times at ERROR that the placeholder's task fails; want once", n)
	}

	h.c.cfg.Placeholder = Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}}}
	h.passUntil(h.now().Add(10*time.Minute), nil)
	for _, x := range h.local.FSM.Act().Reservations {
		if x.ID == res.ID && (x.State != state.ReservationReleased || !strings.Contains(x.Reason, "reserve.driver and reserve.config")) {
			t.Errorf("reservation %s %s (%s); want released, saying reserve.config changed", x.ID, x.State, x.Reason)
		}
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s) after reserve.config was fixed; want done", id, r.State, r.Reason)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale actions; want none", n)
	}
}

// TestPlaceholderWhoseTaskFailsOnMockDriverDoesNotScale is
// TestPlaceholderWhoseTaskFailsDoesNotScale with the placeholder's task
// failing on the simulator's mock_driver instead of Nomad's answers
// rewritten: the simulator then fails it as Nomad does, and Nomad's
// reschedules (30 s after the failure, doubling) place a replacement
// that is pending on its node until its start fails, which the rewritten
// answers never showed. While every placed allocation has failed, no
// scale is issued and the operator is told, as there; once a pass finds
// a replacement pending on its node, Nomad holds the room (placedHold)
// and the move is handed it: its replacement needs the room, not the
// placeholder's task. No scale action at any time.
func TestPlaceholderWhoseTaskFailsOnMockDriverDoesNotScale(t *testing.T) {
	placeholderTaskFailsOnMockDriver(t, nil)
}

// TestEarlierPlaceholderOfTheSameIDIsNotRead: Nomad keeps a purged job's
// evaluations, under its ID, until its garbage collection. A placeholder
// of an ID used before (here a job of that ID no node could run, "missing
// drivers", purged) is read by its own evaluations only: its task fails,
// and it is not scaled for, as in
// TestPlaceholderWhoseTaskFailsOnMockDriverDoesNotScale. The earlier
// job's hopeless evaluation was read as the new placeholder's, whose
// driver the nodes now run, and it was scaled for (found against a real
// Nomad whose last test had left the ID's evaluations).
func TestEarlierPlaceholderOfTheSameIDIsNotRead(t *testing.T) {
	placeholderTaskFailsOnMockDriver(t, func(h *harness) {
		id := state.PlaceholderPrefix + "rs-1"
		job := &nomadapi.Job{ID: &id, Name: &id, Type: new("service"), Datacenters: []string{"dc2"}, TaskGroups: []*nomadapi.TaskGroup{{
			Name: new("hold"), Count: new(1), Tasks: []*nomadapi.Task{{Name: "hold", Driver: "podman", Config: map[string]any{"image": "pause"},
				Resources: &nomadapi.Resources{CPU: new(100), MemoryMB: new(64)}}}}}}
		reg, _, err := h.client.Jobs().Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.step(time.Minute)
		ev, _, err := h.client.Evaluations().Info(reg.EvalID, nil)
		if err != nil || len(ev.FailedTGAllocs) == 0 || ev.FailedTGAllocs["hold"].ConstraintFiltered["missing drivers"] == 0 {
			t.Fatalf("the earlier job's evaluation: %+v, %v; the test needs one that failed for a missing driver", ev, err)
		}
		if _, _, err := h.client.Jobs().Deregister(id, true, nil); err != nil {
			t.Fatal(err)
		}
		h.step(time.Minute)
	})
}

// placeholderTaskFailsOnMockDriver is the body of the tests above; before,
// when set, runs before the move is submitted.
func placeholderTaskFailsOnMockDriver(t *testing.T, before func(*harness)) {
	var logs syncbuf.Buffer
	h := newHarness(t, mockScenario, actPolicies, func(c *Config) {
		c.Placeholder = commandMissingMock
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, &logs), Level: hclog.Debug})
	})
	if before != nil {
		before(h)
	}
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(shape.PlaceholderGrace+13*time.Minute), func() {
		if n := h.fake.calls(); n != 0 {
			t.Fatalf("%d scale actions at %s for a placeholder whose task fails; actions %+v", n, h.now().Format("15:04:05"), h.local.FSM.Act().ScaleActions)
		}
	})
	said := h.decisionsSaying(id, "placeholder cannot run: ")
	if len(said) == 0 {
		t.Fatalf("no decision that the placeholder cannot run")
	}
	for _, want := range []string{"'s task fails on the nodes Nomad places it on", "on node b-",
		`binary "/nonexistent/hold" could not be found`, "Not Restarting: Error was unrecoverable", "reserve.config", "not scale"} {
		if !strings.Contains(said[0], want) {
			t.Errorf("the decision %q lacks %q", said[0], want)
		}
	}
	if n := strings.Count(logs.String(), "[ERROR] migrate: a placeholder's task fails on the nodes Nomad places it on"); n != 1 {
		t.Errorf("the agent's log says %d times at ERROR that the placeholder's task fails; want once", n)
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s); want done, handed the room a pending replacement held", id, r.State, r.Reason)
	}
	if strings.Contains(h.request(id).Reason, "does not fit") {
		t.Errorf("%s's reason %q; want no reservation that does not fit", id, h.request(id).Reason)
	}
}
