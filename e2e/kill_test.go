package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/sim"
)

// killPoint is a call the coordinator makes inside an intent: the test
// catches it in flight and kills the agent there.
type killPoint struct {
	name string
	// intent is the kind of the intent the call belongs to, as the
	// restarted agent's reconcile decision names it.
	intent string
	hold   sim.Hold
}

// The dangerous moments, in the order a maintenance run meets them: the
// placeholder's registration (06:40, the requests' lead), a move's
// hand-over (the placeholder shrinks by the moved allocation) and its stop,
// and a finished move's release of its placeholder.
var killPoints = []killPoint{
	{"register", "register_placeholder", sim.Hold{Method: "PUT", Path: "/v1/jobs"}},
	{"hand-over", "scale_placeholder", sim.Hold{Path: "/v1/job/*/scale"}},
	{"stop", "stop_alloc", sim.Hold{Path: "/v1/allocation/*/stop"}},
	{"deregister", "deregister_placeholder", sim.Hold{Method: "DELETE", Path: "/v1/job/*"}},
}

// setHolds replaces the simulator's faults with holds.
func (r *actRun) setHolds(holds ...sim.Hold) { setHolds(r.t, r.simURL, holds...) }

// caught is how many calls the simulator's first hold has caught.
func (r *actRun) caught() int { return caught(r.t, r.simURL) }

// setHolds replaces the faults of the simulator at simURL with holds.
func setHolds(t *testing.T, simURL string, holds ...sim.Hold) {
	t.Helper()
	body, _ := json.Marshal(sim.Faults{Holds: holds})
	req, _ := http.NewRequest(http.MethodPut, simURL+"/v1/sim/faults", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/sim/faults: %s", resp.Status)
	}
}

// caught is how many calls the first hold of the simulator at simURL has
// caught.
func caught(t *testing.T, simURL string) int {
	t.Helper()
	var f sim.Faults
	getJSON(t, simURL+"/v1/sim/faults", &f)
	if len(f.Holds) == 0 {
		return 0
	}
	return f.Holds[0].Caught
}

// TestActKillMidMove kills the agent (SIGKILL) inside each kind of intent a
// maintenance run opens — a placeholder's registration, a move's hand-over,
// its stop, a placeholder's release — and starts it again on the same
// data_dir each time, in two ways: the call hangs and never takes effect;
// the call takes effect in Nomad and the agent dies before its answer comes
// back, so the outcome is never written (to the intents, the same as dying
// right after the answer). Each restart must find exactly the
// intent it was killed in still open, reconcile it against Nomad (its effect
// there or not), and carry on: no allocation is stopped twice, no request's
// placeholder is registered twice, every stop is preceded by its hand-over,
// the orphaned placeholder the test leaves behind is reaped, and the queue
// finishes.
func TestActKillMidMove(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	for _, mode := range []struct {
		name  string
		apply bool // the held call takes effect
	}{
		{name: "call hangs, never takes effect"},
		{name: "call takes effect, outcome not written", apply: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			r := startAct(t, "testdata/act/scenario.hcl", "testdata/act/policies.hcl", 120, "")
			r.explain = r.logAct
			window := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
			effect := mode.apply
			var figures []string
			var orphan string
			seen := map[string]bool{} // reconcile decisions of earlier restarts
			for _, kp := range killPoints {
				// Catch the call in flight.
				h := kp.hold
				h.Apply, h.Count = mode.apply, 1
				r.setHolds(h)
				for deadline := time.Now().Add(2 * time.Minute); r.caught() == 0; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the agent made no %s call within 2m (data time %s)", kp.name, kp.hold.Path, r.now().Format("15:04:05"))
					}
				}
				r.kill()
				killedAt := r.now()
				r.setHolds() // the held call ended with its caller
				if kp.name == "stop" {
					orphan = r.leaveOrphan()
				}
				r.startAgent()
				// The new term reconciles the one intent the kill left open.
				var got []api.Decision
				r.until(killedAt.Add(30*time.Minute), kp.name+": reconciliation after the restart", func() bool {
					got = got[:0]
					for _, d := range r.reconciled() {
						if key := d.Time.String() + d.Reason; !seen[key] {
							got = append(got, d)
						}
					}
					return len(got) > 0
				})
				for _, d := range got {
					seen[d.Time.String()+d.Reason] = true
				}
				want := "no sign of its effect"
				if effect {
					want = "its effect is there"
				}
				if len(got) != 1 || !strings.Contains(got[0].Reason, "intent "+kp.intent+"/") || !strings.Contains(got[0].Reason, want) {
					t.Errorf("%s: after the restart reconciled %s; want the one %s intent, %q", kp.name, reasons(got), kp.intent, want)
				}
				figures = append(figures, fmt.Sprintf("%s killed at %s: %s", kp.name, killedAt.Format("15:04:05"), reasons(got)))
			}
			r.until(window.Add(2*time.Hour), "every request done after the restarts", func() bool {
				q := r.queue()
				for _, mr := range q.Requests {
					if !api.Finished(mr.State) {
						return false
					}
				}
				return len(q.Requests) == 8
			})
			for _, mr := range r.queue().Requests {
				if mr.State != api.StateDone {
					t.Errorf("%s %s: %s", mr.ID, mr.State, mr.Reason)
				}
			}
			r.until(window.Add(3*time.Hour), "placeholders (the orphan included) gone", func() bool { return len(r.placeholders()) == 0 })
			r.checkOnce(orphan)
			t.Logf("figures: %s", strings.Join(figures, "; "))
		})
	}
}

// leaveOrphan registers a placeholder of the agent's cluster that no
// reservation knows, as an agent that died at the wrong moment of an older
// design left behind, and returns its job ID.
func (r *actRun) leaveOrphan() string {
	r.t.Helper()
	held := r.placeholders()
	if len(held) == 0 {
		r.t.Fatal("no placeholder while moves run")
	}
	job, _, err := r.nomad.Jobs().Info(held[0], nil)
	if err != nil {
		r.t.Fatal(err)
	}
	orphan := "foreshape-reserve-orphan"
	job.ID, job.Name = &orphan, &orphan
	job.Meta = map[string]string{"foreshape.owner": job.Meta["foreshape.owner"], "foreshape.reservation": "rs-999"}
	if _, _, err := r.nomad.Jobs().Register(job, nil); err != nil {
		r.t.Fatal(err)
	}
	return orphan
}

// reconciled lists the reconcile decisions, oldest first.
func (r *actRun) reconciled() []api.Decision {
	r.t.Helper()
	ds, err := r.client.Decisions(context.Background(), api.DecisionFilter{Kind: "reconcile"})
	if err != nil {
		r.t.Fatal(err)
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Time.Before(ds[j].Time) })
	return ds
}

func reasons(ds []api.Decision) string {
	if len(ds) == 0 {
		return "nothing"
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Reason)
	}
	return strings.Join(out, " | ")
}

var handOverRE = regexp.MustCompile(`over to allocation ([0-9a-f-]{36}) of (mr-\d+)`)

// checkOnce checks the simulator's request log after a run with kills:
// every allocation stopped once, each stop preceded by one hand-over of its
// reservation's placeholder, no placeholder job registered twice and no
// request given two placeholders that took effect, and the orphan reaped.
func (r *actRun) checkOnce(orphan string) {
	r.t.Helper()
	checkExactlyOnce(r.t, r.truth(), r.reservations())
	reaped := false
	for _, d := range r.decisions() {
		if d.Kind == "reap" && orphan != "" && strings.Contains(d.Reason, orphan) {
			reaped = true
		}
	}
	if !reaped {
		r.t.Errorf("no decision records the reaping of %s", orphan)
	}
}

// checkExactlyOnce checks the simulator's request log after the act
// scenario's maintenance run with kills: the 8 allocations stopped, each
// once, each stop preceded by one hand-over of its reservation's
// placeholder, no placeholder job registered twice and no request given
// two placeholders that took effect.
func checkExactlyOnce(t *testing.T, tr sim.Truth, reservations []api.Reservation) {
	t.Helper()
	stops := stopsPerAlloc(tr)
	for alloc, n := range stops {
		if n > 1 {
			t.Errorf("allocation %s stopped %d times", alloc, n)
		}
	}
	if len(stops) != 8 {
		t.Errorf("%d allocations stopped; want the 8 of the maintenance", len(stops))
	}
	handOvers := map[string]int{}
	stopAt := map[string]time.Time{}
	registered := map[string]int{}
	jobRE := regexp.MustCompile(`"ID":"(foreshape-reserve-rs-\d+)"`)
	for _, q := range mutating(tr) {
		if !q.Succeeded() {
			continue
		}
		switch {
		case strings.HasSuffix(q.Path, "/scale") || strings.Contains(q.Path, "/scale?"):
			if m := handOverRE.FindStringSubmatch(q.Body); m != nil {
				handOvers[m[1]]++
				if _, stopped := stopAt[m[1]]; stopped {
					t.Errorf("allocation %s handed over after its stop", m[1])
				}
			}
		case strings.HasPrefix(q.Path, "/v1/allocation/"):
			stopAt[strings.Split(q.Path, "/")[3]] = q.Time
		case strings.HasPrefix(q.Path, "/v1/jobs") && q.Method == http.MethodPut:
			if m := jobRE.FindStringSubmatch(q.Body); m != nil {
				registered[m[1]]++
			}
		}
	}
	for alloc := range stops {
		if handOvers[alloc] != 1 {
			t.Errorf("allocation %s: %d hand-overs of its placeholder; want 1", alloc, handOvers[alloc])
		}
	}
	perRequest := map[string][]string{}
	for _, res := range reservations {
		if registered[res.Job] > 0 {
			perRequest[res.Request] = append(perRequest[res.Request], res.Job)
		}
	}
	for job, n := range registered {
		if n > 1 {
			t.Errorf("placeholder %s registered %d times", job, n)
		}
	}
	for req, jobs := range perRequest {
		if len(jobs) > 1 {
			t.Errorf("%s was given %d placeholders: %v", req, len(jobs), jobs)
		}
	}
	if len(perRequest) != 8 {
		t.Errorf("%d requests had a placeholder; want all 8", len(perRequest))
	}
}
