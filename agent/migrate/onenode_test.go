package migrate

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// oneNodeScenario is mockScenario with dc2's nodes "b" too small for the
// moved allocation (and so for its placeholder), beside one node "bad"
// whose own failure its meta says, and a group "good" a scale action
// brings. Their mock_driver's start_error is the node's ph_err meta: a
// start fails on "bad" only (or on "good" too, when goodErr is set).
func oneNodeScenario(goodErr string) string {
	s := strings.Replace(mockScenario, "nodes \"b\" {\n  datacenter = \"dc2\"\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n  count      = 0\n  node_class = \"web\"\n  cpu        = 4000\n",
		"nodes \"b\" {\n  datacenter = \"dc2\"\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n  count      = 0\n  node_class = \"web\"\n  cpu        = 500\n  meta       = { ph_err = \"\" }\n", 1)
	group := func(name, count, err string) string {
		return "\nnodes \"" + name + "\" {\n  datacenter = \"dc2\"\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n  count      = " + count +
			"\n  node_class = \"web\"\n  cpu        = 4000\n  memory     = 8192\n  iops       = 1000\n  meta       = { ph_err = \"" + err + "\" }\n}\n"
	}
	return s + group("bad", "1", "mkdir /var/lib/nomad/alloc: read-only file system") + group("good", "0", goodErr)
}

// failsOnItsNode is a placeholder whose task fails at its start where the
// node's ph_err meta is set, as a node's own fault (a read-only disk)
// fails it there only.
var failsOnItsNode = Placeholder{Driver: "mock_driver", Config: map[string]any{"start_error": "${meta.ph_err}"}}

// oneNodeHarness submits a move of a web allocation into dc2, whose
// placeholder Nomad can place only on "bad", where it fails; each scale
// action brings a node of "good".
func oneNodeHarness(t *testing.T, goodErr string) (h *harness, request, moved string, logs *syncbuf.Buffer) {
	t.Helper()
	return oneNodeHarnessOf(t, goodErr, nil)
}

// oneNodeHarnessOf is oneNodeHarness of the submission sub makes of the
// first web allocation (nil: its move alone).
func oneNodeHarnessOf(t *testing.T, goodErr string, sub func(alloc string) Submission) (h *harness, request, moved string, logs *syncbuf.Buffer) {
	t.Helper()
	logs = &syncbuf.Buffer{}
	h = newHarness(t, oneNodeScenario(goodErr), actPolicies, func(c *Config) {
		c.Placeholder = failsOnItsNode
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, logs), Level: hclog.Debug})
	})
	h.fake.wait = func() {
		if _, err := h.sim.AddNodes("good", 1); err != nil {
			t.Error(err)
		}
	}
	a := h.allocs("web")[0]
	if sub == nil {
		sub = func(alloc string) Submission { return Submission{Allocation: alloc, Target: "dc2"} }
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, sub(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	return h, id, a.ID, logs
}

// TestPlaceholderFailingOnItsOneNodeScales: the placeholder of a move into
// dc2 fits on one node only, "bad", whose own fault (a read-only disk)
// fails its task; Nomad places it on "bad" again, the other nodes having
// no room, and it fails again. That may be the node's failure, not the
// task's, so the reservation counts as one that does not fit, and
// foreshape scales once (before: taken as a task that fails on every
// node, never scaled for, the request waiting for room and the operator
// told to change reserve.config, which was not at fault). A decision and
// one WARN line say so. While Nomad's next reschedule is due, foreshape
// waits for it, saying so; it places the placeholder on the node the
// scale brought, where the task runs, and the move is done without a
// second scale.
func TestPlaceholderFailingOnItsOneNodeScales(t *testing.T) {
	h, id, _, logs := oneNodeHarness(t, "")
	var waited string
	onGood := false // a placeholder allocation on the node the scale brought, not failed
	h.passUntil(h.now().Add(shape.PlaceholderGrace+20*time.Minute), func() {
		if r := h.request(id); waited == "" && strings.Contains(r.Reason, "placeholder placing anew") {
			waited = r.Reason
		}
		onGood = onGood || slices.ContainsFunc(h.allocs(state.PlaceholderPrefix+"rs-1"), func(a *nomadapi.AllocationListStub) bool {
			return strings.HasPrefix(a.NodeName, "good-") && a.ClientStatus != nomadapi.AllocClientStatusFailed
		})
	})
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale actions; want one, for the room the other nodes lack; actions %+v", n, h.local.FSM.Act().ScaleActions)
	}
	said := slices.DeleteFunc(h.decisionsSaying(id, "'s task failed on node bad-1 only"), func(d string) bool { return !strings.HasPrefix(d, "reserve: ") })
	if len(said) != 1 {
		t.Fatalf("decisions that the placeholder failed on one node only: %q; want one", said)
	}
	for _, want := range []string{"read-only file system", "Nomad placed it there again, the other nodes of dc2 having no room for it",
		"counts as a reservation that does not fit", "nomad alloc status "} {
		if !strings.Contains(said[0], want) {
			t.Errorf("the decision %q lacks %q", said[0], want)
		}
	}
	if n := strings.Count(logs.String(), "[WARN]  migrate: a placeholder's task fails on one node only"); n != 1 {
		t.Errorf("the agent's log says %d times at WARN that the placeholder fails on one node only; want once", n)
	}
	for _, want := range []string{"failed on node bad-1 only, ", "Nomad places it anew, on another node of dc2 should one have room (scale \"workers\" was asked for at ",
		"does not move without its room"} {
		if !strings.Contains(waited, want) {
			t.Errorf("the request's reason while Nomad placed the placeholder anew %q lacks %q", waited, want)
		}
	}
	if got := h.decisionsSaying(id, "placeholder cannot run: "); len(got) != 0 {
		t.Errorf("decisions %q; want none saying the placeholder cannot run", got)
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s); want done, on the room of the node the scale brought", id, r.State, r.Reason)
	}
	if !onGood {
		t.Errorf("no placeholder allocation on the node the scale brought; want Nomad's reschedule to place it there")
	}
}

// TestPlaceholderFailingEverywhereScalesOnce is
// TestPlaceholderFailingOnItsOneNodeScales with the task failing on the
// node the scale brings too, and the queue paused (the move is not handed
// a replacement pending there): the placeholder has then failed on two
// nodes, and is taken as failing on every node: no second scale action,
// the request waits for its room, and the operator is told, as for a task
// that fails everywhere.
func TestPlaceholderFailingEverywhereScalesOnce(t *testing.T) {
	h, id, moved, _ := oneNodeHarness(t, "exec format error")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	h.passUntil(h.now().Add(shape.PlaceholderGrace+40*time.Minute), nil)
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale actions; want one: the node it brought fails the task too; actions %+v", n, h.local.FSM.Act().ScaleActions)
	}
	said := h.decisionsSaying(id, "placeholder cannot run: ")
	if len(said) == 0 {
		t.Fatalf("no decision that the placeholder cannot run; decisions %q", h.decisionsSaying(id, ""))
	}
	if last := said[len(said)-1]; !strings.Contains(last, "exec format error") || !strings.Contains(last, "on node good-1") {
		t.Errorf("the last decision %q; want the task's failure on the node the scale brought", last)
	}
	r := h.request(id)
	if r.State == state.RequestRunning || r.State.Terminal() || countStops(h, moved) != 0 || !strings.Contains(r.Reason, "placeholder cannot be placed") {
		t.Errorf("%s %s (%s); want waiting for its room, the placeholder taken as one that cannot run", id, r.State, r.Reason)
	}
}

// TestPlaceholderOfTwoFailingOnItsOneNodeScales is
// TestPlaceholderFailingOnItsOneNodeScales for the move of web's whole
// group: its placeholder's two allocations both fit on "bad" only, and
// both fail there, each placed there again. That counts as a reservation
// that does not fit (before: as a task failing on every node, not scaled
// for); the scale brings a node the task runs on, where Nomad's
// reschedules place them.
func TestPlaceholderOfTwoFailingOnItsOneNodeScales(t *testing.T) {
	h, id, _, _ := oneNodeHarnessOf(t, "", func(string) Submission { return Submission{Job: "web", Group: "frontend", Target: "dc2"} })
	placed := map[string]bool{} // placeholder allocations seen on the node the scale brought, not failed
	h.passUntil(h.now().Add(shape.PlaceholderGrace+20*time.Minute), func() {
		for _, a := range h.allocs(state.PlaceholderPrefix + "rs-1") {
			if strings.HasPrefix(a.NodeName, "good-") && a.ClientStatus != nomadapi.AllocClientStatusFailed {
				placed[a.ID] = true
			}
		}
	})
	var res state.Reservation
	for _, r := range h.local.FSM.Act().Reservations {
		if r.Request == id {
			res = r
		}
	}
	if res.Size.CPU != 2000 || len(res.Chunks) != 1 {
		t.Fatalf("reservation %+v; the test needs one placeholder group of two allocations", res)
	}
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale actions; want one, for the room the other nodes lack; actions %+v", n, h.local.FSM.Act().ScaleActions)
	}
	if said := h.decisionsSaying(id, "'s task failed on node bad-1 only"); len(said) == 0 {
		t.Errorf("no decision that the placeholder failed on one node only; decisions %q", h.decisionsSaying(id, ""))
	}
	if got := h.decisionsSaying(id, "placeholder cannot run: "); len(got) != 0 {
		t.Errorf("decisions %q; want none saying the placeholder cannot run", got)
	}
	if len(placed) != 2 {
		t.Errorf("%d placeholder allocations on the node the scale brought; want both", len(placed))
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s); want done, on the room of the node the scale brought", id, r.State, r.Reason)
	}
}
