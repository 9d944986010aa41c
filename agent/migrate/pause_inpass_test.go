package migrate

import (
	"context"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// twoNodeScenario is actScenario with two dc1 nodes, a-1 and a-2.
var twoNodeScenario = strings.Replace(actScenario, "count      = 1", "count      = 2", 1)

// pauseApplier applies the commands it is given to local, and runs pause
// right before the first command before accepts, once.
type pauseApplier struct {
	local  *state.Local
	before func(state.Command) bool
	pause  func()
	done   bool
}

func (a *pauseApplier) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	if !a.done && a.before(cmd) {
		a.done = true
		a.pause()
	}
	return a.local.Apply(ctx, cmd)
}

// TestPauseDuringAPassHoldsTheTakeOutsAfterIt: two whole-node requests
// wait queued, for a-1 and a-2, and one pass takes their nodes out of
// scheduling (holdNodes), one after the other. The queue is paused
// during that pass, after the first node's take-out and before the
// second's: the second node stays in scheduling, though the pass read
// the queue running at its start (before, it read the pause once, there,
// and took a-2 out after the pause). After the resume the next pass takes
// it out.
//   - while Nomad takes the first node out: the pass reads the pause
//     before the next node;
//   - in the log just before the second take-out's intent (after the pass
//     read the queue running for that node): the last check, right before
//     the call, reads it, and the intent closes not done.
func TestPauseDuringAPassHoldsTheTakeOutsAfterIt(t *testing.T) {
	for _, tc := range pauseDuringTakeOuts(t) {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			var h *harness
			h = newHarness(t, twoNodeScenario, actPolicies, tc.during(&armed, &h))
			nodes := []string{h.nodeID("a-1"), h.nodeID("a-2")}
			for _, n := range nodes {
				if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: n, Target: "dc2", Reason: "maintenance"}); err != nil {
					t.Fatal(err)
				}
			}
			armed.Store(true)
			h.run(h.flatForecasts(30))
			if !h.local.FSM.QueuePaused() {
				t.Fatal("the queue was not paused during the pass; the test needs it")
			}
			out := 0
			for _, n := range nodes {
				if h.eligibility(n) == nomadapi.NodeSchedulingIneligible {
					out++
				}
			}
			if out != 1 {
				t.Errorf("%d of a-1 and a-2 out of scheduling after a pass paused after the first take-out; want 1; decisions %+v", out, h.local.FSM.Decisions())
			}
			for _, in := range h.local.FSM.Act().OpenIntents {
				t.Errorf("intent %s left open", in.ID)
			}
			mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
			h.run(h.flatForecasts(30))
			for _, n := range nodes {
				if got := h.eligibility(n); got != nomadapi.NodeSchedulingIneligible {
					t.Errorf("%s %s after the resume; want it out, held for its request", n, got)
				}
			}
		})
	}
}

// TestPauseAsAMoveStartsHoldsIt: a whole-node request of a-1 is to start
// in a pass that read the queue running; the queue is paused while its
// start reads a-1's allocations from Nomad, before it marks the request
// running. It does not start: it stays queued, with no start decision,
// and stops nothing (before, the pass read the pause once, before its
// starts, and the move stopped a-1's allocations after the pause). It
// starts after the resume.
func TestPauseAsAMoveStartsHoldsIt(t *testing.T) {
	var armed atomic.Bool
	var h *harness
	var node string
	h = newHarness(t, actScenario, actPolicies, func(cfg *Config) {
		interpose(t, cfg, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v1/node/"+node+"/allocations" && armed.CompareAndSwap(true, false) {
				mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
			}
			rp.ServeHTTP(w, r)
		})
	})
	node = h.nodeID("a-1")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	// Its reservation is placed first; the move starts once the
	// placeholder runs.
	armed.Store(true)
	for n := 0; n < 20 && !h.local.FSM.QueuePaused(); n++ {
		h.quarterPass()
	}
	if !h.local.FSM.QueuePaused() {
		t.Fatalf("the start never read a-1's allocations: the queue was not paused; the test needs it; decisions %+v", h.local.FSM.Decisions())
	}
	if got := h.request(id); !got.State.Queued() {
		t.Errorf("%s %s after a pass paused as it started; want it queued", id, got.State)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "start" && d.Request == id {
			t.Errorf("a start decision for %s, which did not start: %+v", id, d)
		}
	}
	for _, m := range h.mutating() {
		if strings.Contains(m, "/stop") {
			t.Errorf("%s after the pause", m)
		}
	}
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.quarterPass()
	if got := h.request(id).State; got != state.RequestRunning {
		t.Errorf("%s %s after the resume; want it running", id, got)
	}
}

// pauseCase pauses the queue during a pass, once armed is set: during
// returns the tweak that does it, given where the harness will be.
type pauseCase struct {
	name   string
	during func(armed *atomic.Bool, hp **harness) func(*Config)
}

// pauseDuringTakeOuts are the two places a pause lands in a pass that
// takes nodes out: while Nomad takes the first node out, and in the log
// just before the second take-out's intent.
func pauseDuringTakeOuts(t *testing.T) []pauseCase {
	return []pauseCase{
		{"during the first take-out's call", func(armed *atomic.Bool, hp **harness) func(*Config) {
			return func(cfg *Config) {
				interpose(t, cfg, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
					rp.ServeHTTP(w, r)
					if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/eligibility") && armed.CompareAndSwap(true, false) {
						mustApply(t, *hp, state.SetQueuePaused{Paused: true, At: (*hp).now(), By: "test"})
					}
				})
			}
		}},
		{"in the log before the second take-out's intent", func(armed *atomic.Bool, hp **harness) func(*Config) {
			return func(cfg *Config) {
				local := cfg.Apply.(*state.Local)
				opened := 0
				cfg.Apply = &pauseApplier{local: local, before: func(cmd state.Command) bool {
					o, ok := cmd.(state.OpenIntent)
					if !ok || o.Intent.Kind != state.IntentNodeEligibility || !armed.Load() {
						return false
					}
					opened++
					return opened == 2
				}, pause: func() { mustApply(t, *hp, state.SetQueuePaused{Paused: true, At: (*hp).now(), By: "test"}) }}
			}
		}},
	}
}
