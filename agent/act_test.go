package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/policies"
)

// TestAPIRequestScoreRounded: the queue's answer carries the planner's
// score to the two decimals its reasons and the CLI show ("score 3.55"),
// not the float arithmetic's 3.5500000000000003; the state keeps the
// planner's value.
func TestAPIRequestScoreRounded(t *testing.T) {
	for _, tc := range []struct {
		score float64
		json  string
	}{
		{3.5500000000000003, `"score":3.55,`},
		{-0.001, `"score":0,`},
		{2.41, `"score":2.41,`},
		{2.4149, `"score":2.41,`},
		{2.415001, `"score":2.42,`},
		{-1.0000000000000002, `"score":-1,`},
		{0, `"score":0,`},
	} {
		r := state.MigrationRequest{ID: "mr-1", Score: tc.score}
		b, err := json.Marshal(apiRequest(r))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.json) {
			t.Errorf("score %v: %s; want %s", tc.score, b, tc.json)
		}
	}
}

// TestShapeForecastsCarryTheDemand: the planner gets the planning quantile
// of a CPU or memory forecast and of the absolute demand behind it.
func TestShapeForecastsCarryTheDemand(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	fc := predict.Forecast{Policy: "web", Locality: policies.Locality{Datacenter: "dc1"}, Metric: "cpu",
		Times: []time.Time{t0, t0.Add(time.Minute)}, Mean: []float64{50, 55}, Quantiles: []float64{0.5, 0.9},
		Bands: [][]float64{{50, 55}, {60, 66}}, PlanningQuantile: 0.9, Line: 80, HasLine: true,
		Demand: &predict.Demand{Metric: "cpu_mhz", Mean: []float64{5000, 5500}, Bands: [][]float64{{5000, 5500}, {6000, 6600}}}}
	iops := predict.Forecast{Policy: "web", Locality: fc.Locality, Metric: "iops", Times: fc.Times, Mean: []float64{1, 1},
		Quantiles: fc.Quantiles, Bands: [][]float64{{1, 1}, {2, 2}}, PlanningQuantile: 0.9}
	out := ShapeForecasts(predict.Result{Forecasts: []predict.Forecast{fc, iops}}, nil)
	if len(out) != 1 {
		t.Fatalf("%d forecasts; want cpu alone", len(out))
	}
	if got := out[0]; got.Planning[1] != 66 || len(got.Demand) != 2 || got.Demand[1] != 6600 || got.Locality != "dc1" {
		t.Errorf("%+v", got)
	}
	fc.Demand = nil
	if got := ShapeForecasts(predict.Result{Forecasts: []predict.Forecast{fc}}, nil); got[0].Demand != nil {
		t.Errorf("demand %v from a forecast without one", got[0].Demand)
	}
}

// TestShapeForecastsCarryWhatDrainsAdded: the planner gets, with the
// planning quantile and the demand, what drains of other localities
// added to each (predict's DrainAdded), which it reads them less; nothing
// where they added nothing.
func TestShapeForecastsCarryWhatDrainsAdded(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	fc := predict.Forecast{Policy: "ops", Locality: policies.Locality{Datacenter: "dc3"}, Metric: "cpu",
		Times: []time.Time{t0, t0.Add(time.Minute)}, Mean: []float64{50, 65}, Quantiles: []float64{0.5, 0.9},
		Bands: [][]float64{{50, 65}, {60, 75}}, PlanningQuantile: 0.9, Line: 80, HasLine: true, DrainAdded: []float64{0, 15},
		Demand: &predict.Demand{Metric: "cpu_mhz", Mean: []float64{5000, 6500}, Bands: [][]float64{{5000, 6500}, {6000, 7500}}, DrainAdded: []float64{0, 1500}}}
	got := ShapeForecasts(predict.Result{Forecasts: []predict.Forecast{fc}}, nil)[0]
	if !slices.Equal(got.DrainAdded, []float64{0, 15}) || !slices.Equal(got.DemandDrainAdded, []float64{0, 1500}) {
		t.Errorf("DrainAdded %v, DemandDrainAdded %v; want [0 15], [0 1500]", got.DrainAdded, got.DemandDrainAdded)
	}
	fc.DrainAdded, fc.Demand = nil, nil
	if got := ShapeForecasts(predict.Result{Forecasts: []predict.Forecast{fc}}, nil)[0]; got.DrainAdded != nil || got.DemandDrainAdded != nil {
		t.Errorf("DrainAdded %v, DemandDrainAdded %v from a forecast drains added nothing to", got.DrainAdded, got.DemandDrainAdded)
	}
}

// TestActBackendOnAFollower: the act backend's writes made in-process on a
// follower (as the dashboard makes them) reach the leader, and its typed
// errors come back as such; the paused queue says, on every server, that
// an operator paused it, and when.
func TestActBackendOnAFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	t.Parallel()
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	follower := tc.servers[(l+1)%3].a
	ctx := context.Background()
	eventually(t, 30*time.Second, "the follower knows the leader's API", func() bool {
		_, err := follower.leaderHTTP(ctx)
		return err == nil
	})
	if err := follower.act.SetPaused(ctx, true); err != nil {
		t.Fatalf("pause on a follower: %v", err)
	}
	eventually(t, 10*time.Second, "the pause replicated to every server", func() bool {
		for _, s := range tc.servers {
			if !s.a.fsm.Act().Paused {
				return false
			}
		}
		return true
	})
	// The queue says who paused it and when, on every server.
	for i, s := range tc.servers {
		if q, err := s.a.act.Queue(ctx); err != nil || !q.Paused || q.PausedBy != "operator" || q.PausedAt == nil {
			t.Errorf("server %d's queue: %+v, %v; want paused by operator, with when", i, q, err)
		}
	}
	if err := follower.act.Cancel(ctx, "mr-404"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("cancel of an unknown request on a follower: %v; want ErrNotFound", err)
	}
	// A priority set through a follower's API, and in-process on it (the
	// dashboard's way), is written by the leader and reaches every server.
	submitMarker(t, tc.servers[l].a, "alloc-prio")
	var id string
	for _, r := range tc.servers[l].a.fsm.Act().Requests {
		if r.Resource.ID == "alloc-prio" {
			id = r.ID
		}
	}
	viaFollower := tc.servers[(l+1)%3].api
	if mr, err := viaFollower.SetPriority(ctx, id, 77); err != nil || mr.Priority != 77 {
		t.Errorf("priority through a follower's API: %+v, %v; want 77", mr, err)
	}
	eventually(t, 10*time.Second, "the follower's copy holds the change", func() bool {
		r, ok := follower.fsm.Act().Request(id)
		return ok && r.Priority == 77
	})
	if err := follower.act.SetPriority(ctx, id, 33); err != nil {
		t.Errorf("priority on a follower: %v", err)
	}
	eventually(t, 10*time.Second, "the priority on every server", func() bool {
		for _, s := range tc.servers {
			if r, ok := s.a.fsm.Act().Request(id); !ok || r.Priority != 33 {
				return false
			}
		}
		return true
	})
	if err := follower.act.SetPriority(ctx, "mr-404", 10); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("priority of an unknown request on a follower: %v; want ErrNotFound", err)
	}
	if _, err := follower.act.Submit(ctx, api.Submission{Node: "no-such-node", Target: "dc2"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a bad submission on a follower: %v; want ErrInvalid from the leader", err)
	}
	if err := follower.act.SetPaused(ctx, false); err != nil || tc.servers[l].a.fsm.Act().Paused && !eventuallyResumed(tc) {
		t.Errorf("resume on a follower: %v", err)
	}
}

func eventuallyResumed(tc *testCluster) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !tc.servers[tc.leader()].a.fsm.Act().Paused {
			return true
		}
	}
	return false
}

// TestActAPIRefusals: submissions through the HTTP API get the status
// their refusal calls for and change nothing; a conflict names the request
// that holds the resource.
func TestActAPIRefusals(t *testing.T) {
	t.Parallel()
	_, d, c := startDevAgent(t, 60, Options{})
	ctx := context.Background()
	eventually(t, 30*time.Second, "the agent leads", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.IsLeader
	})
	code := func(err error) int {
		var se *api.StatusError
		if errors.As(err, &se) {
			return se.Code
		}
		return 0
	}
	nc, _ := nomadapi.NewClient(&nomadapi.Config{Address: d.URL})
	alloc := runningAlloc(t, nc, "web")
	for _, tc := range []struct {
		name string
		sub  api.Submission
		want int
	}{
		{"unknown allocation", api.Submission{Allocation: "0000", Target: "dc2"}, 400},
		{"unknown target", api.Submission{Allocation: alloc, Target: "dc9"}, 400},
		{"constraints forbid", api.Submission{Allocation: alloc, Target: "dc3"}, 400},
		{"unknown job", api.Submission{Job: "nope", Group: "g", Target: "dc2"}, 400},
	} {
		if _, err := c.Submit(ctx, tc.sub); code(err) != tc.want {
			t.Errorf("%s: %v; want %d", tc.name, err, tc.want)
		}
	}
	if q, _ := c.Queue(ctx, nil); len(q.Requests) != 0 {
		t.Fatalf("refused submissions queued %+v", q.Requests)
	}
	// A paused queue starts nothing: a move started between the submission
	// and the resubmission would stop the allocation, and a stopped
	// allocation is refused as unknown (400) before the conflict (409).
	if _, err := c.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	id, err := c.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc1/*/web", Reason: "test"})
	if err != nil {
		// web may already run in dc1/*/web: then move it to dc2.
		if id, err = c.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc2", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc2"})
	// The 409 names the resource and the request holding it, once, with
	// its state: pending, or, once an act pass ran between the two
	// submissions, waiting (the queue is paused) or reserving (a paused
	// queue still places reservations).
	queuedAs := regexp.MustCompile(`is already queued as ` + regexp.QuoteMeta(id) + ` \((pending|waiting|reserving)\)`)
	if code(err) != 409 || !queuedAs.MatchString(err.Error()) || strings.Count(err.Error(), id) != 1 {
		t.Errorf("resubmission: %v; want 409 naming %s once, in a queued state", err, id)
	}
	mr, err := c.Request(ctx, id)
	if err != nil || mr.Resource != api.AllocResource(alloc) || mr.Reason == "" {
		t.Errorf("request %+v, %v", mr, err)
	}
}

// TestQueueMaxRequests: queue.max_requests bounds the unfinished requests
// the agent takes: with one queued, the next submission is refused with
// 429 naming the bound, and the queue keeps only the first. (Speed 60:
// the dev policies' rack maintenance queues its requests 100 minutes of
// virtual time in, 100 s away, and nothing meanwhile; at speed 1 the web
// allocations took 8 s to run.)
func TestQueueMaxRequests(t *testing.T) {
	t.Parallel()
	_, d, c := startDevAgentWith(t, 60, Options{}, func(cfg *config.Config) { cfg.Queue.MaxRequests = 1 })
	ctx := context.Background()
	allocs := pausedWithTwoWebAllocs(t, c, d.URL)
	first, err := submitAway(ctx, c, allocs[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = submitAway(ctx, c, allocs[1])
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !strings.Contains(err.Error(), "the migration queue is full (queue.max_requests): 1 unfinished requests (limit 1)") ||
		strings.Contains(err.Error(), "apply index") {
		t.Fatalf("a second request with queue.max_requests = 1: %v; want 429 naming the limit", err)
	}
	if q, err := c.Queue(ctx, nil); err != nil || len(q.Requests) != 1 || q.Requests[0].ID != first {
		t.Errorf("queue %+v, %v; want only %s", q, err, first)
	}

	// docs/api.md on the real agent: pausing a paused queue is no error;
	// an unknown request is a 404 saying it may have been forgotten
	// (queue.keep_finished); cancelling one that has not started
	// cancels it, and cancelling it again (finished) is a 409.
	if q, err := c.Pause(ctx, true); err != nil || !q.Paused {
		t.Errorf("pausing a paused queue: %+v, %v", q, err)
	}
	for what, err := range map[string]error{
		"GET":    func() error { _, err := c.Request(ctx, "mr-999"); return err }(),
		"DELETE": func() error { _, err := c.Cancel(ctx, "mr-999"); return err }(),
	} {
		if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Message, `"mr-999"`) ||
			!strings.Contains(se.Message, "queue.keep_finished") || !saysStatusOnce(se.Message) {
			t.Errorf("%s of an unknown request: %v; want 404 naming it and saying a finished one is forgotten after queue.keep_finished (the status once)", what, err)
		}
	}
	if mr, err := c.Cancel(ctx, first); err != nil || mr.State != api.StateCancelled {
		t.Errorf("cancelling %s: %+v, %v", first, mr, err)
	}
	if _, err := c.Cancel(ctx, first); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Errorf("cancelling a cancelled request: %v; want 409", err)
	}
}

// TestQueueSetPriorityOnTheAgent: on the dev agent, a queued request's
// priority set by an operator is written to the replicated state, scored
// at the next act pass (raised above its job's, it goes first in a paused
// queue) and recorded as a decision of kind priority; the request of a
// cancelled move, and an unknown one, are refused (409, 404) without a
// decision.
func TestQueueSetPriorityOnTheAgent(t *testing.T) {
	t.Parallel()
	a, d, c := startDevAgent(t, 60, Options{})
	ctx := context.Background()
	allocs := pausedWithTwoWebAllocs(t, c, d.URL)
	first, err := submitAway(ctx, c, allocs[0])
	if err != nil {
		t.Fatal(err)
	}
	second, err := submitAway(ctx, c, allocs[1])
	if err != nil {
		t.Fatal(err)
	}
	// Both scored once, at their job's priority.
	var was int
	eventually(t, 60*time.Second, "both requests scored", func() bool {
		mr, err1 := c.Request(ctx, first)
		mr2, err2 := c.Request(ctx, second)
		was = mr.Priority
		return err1 == nil && err2 == nil && mr.Score != 0 && mr2.Score != 0
	})
	if was >= 100 {
		t.Fatalf("the web job's priority is %d: no room to raise it", was)
	}
	lowest := first
	if q, _ := c.Queue(ctx, nil); len(q.Requests) == 2 && q.Requests[0].ID == first {
		lowest = second
	}
	mr, err := c.SetPriority(ctx, lowest, 100)
	if err != nil || mr.Priority != 100 {
		t.Fatalf("setting %s's priority: %+v, %v", lowest, mr, err)
	}
	if r, ok := a.fsm.Act().Request(lowest); !ok || r.Priority != 100 {
		t.Errorf("the state holds %s at priority %d, want 100", lowest, r.Priority)
	}
	eventually(t, 60*time.Second, "the raised request first in the queue", func() bool {
		q, err := c.Queue(ctx, nil)
		return err == nil && len(q.Requests) == 2 && q.Requests[0].ID == lowest
	})
	ds, err := c.Decisions(ctx, api.DecisionFilter{Kind: api.DecisionPriority})
	want := fmt.Sprintf("priority set to 100 by an operator (was %d)", was)
	if err != nil || len(ds) != 1 || ds[0].Request != lowest || ds[0].Reason != want {
		t.Errorf("priority decisions: %+v, %v; want one for %s saying %q", ds, err, lowest, want)
	}

	if _, err := c.Cancel(ctx, first); err != nil {
		t.Fatal(err)
	}
	var se *api.StatusError
	if _, err := c.SetPriority(ctx, first, 10); !errors.As(err, &se) || se.Code != http.StatusConflict ||
		!strings.Contains(se.Message, "is cancelled; only the priority of a request that has not started can be set") || !saysStatusOnce(se.Message) {
		t.Errorf("the priority of a cancelled request: %v; want 409 saying why", err)
	}
	if _, err := c.SetPriority(ctx, "mr-999", 10); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("the priority of an unknown request: %v; want 404", err)
	}
	if ds, _ := c.Decisions(ctx, api.DecisionFilter{Kind: api.DecisionPriority}); len(ds) != 1 {
		t.Errorf("%d priority decisions after the refusals, want the 1", len(ds))
	}
}

// pausedWithTwoWebAllocs waits for the dev agent c to lead, pauses its
// queue and returns the web job's running allocations in the simulator
// at simURL, once there are two.
func pausedWithTwoWebAllocs(t *testing.T, c *api.Client, simURL string) []string {
	t.Helper()
	ctx := context.Background()
	eventually(t, 30*time.Second, "the agent leads", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.IsLeader
	})
	if _, err := c.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	nc, _ := nomadapi.NewClient(&nomadapi.Config{Address: simURL})
	var allocs []string
	eventually(t, 30*time.Second, "two running web allocations", func() bool {
		as, _, err := nc.Jobs().Allocations("web", false, nil)
		allocs = allocs[:0]
		for _, a := range as {
			if err == nil && a.ClientStatus == "running" {
				allocs = append(allocs, a.ID)
			}
		}
		return len(allocs) >= 2
	})
	return allocs
}

// saysStatusOnce reports whether an error body leaves the status to the
// status line: it neither starts nor ends with the word of the API's
// sentinel that chose it ("agent answered 404 Not Found: not found: no
// server x" said it twice).
func saysStatusOnce(msg string) bool {
	for _, kind := range []error{api.ErrInvalid, api.ErrNotFound, api.ErrConflict, api.ErrQueueFull, api.ErrUnavailable} {
		if strings.HasPrefix(msg, kind.Error()+": ") || strings.HasSuffix(msg, ": "+kind.Error()) {
			return false
		}
	}
	return true
}

// TestRemovePeerRefusals: as docs/api.md and remove-peer -help say, a
// removal that names no server or names the leader answering it is a 400,
// and an unknown server a 404, each saying why without repeating its
// status ("not found: no server ..." before); the configuration is unchanged.
func TestRemovePeerRefusals(t *testing.T) {
	t.Parallel()
	a, _, c := startDevAgent(t, 1, Options{})
	ctx := context.Background()
	eventually(t, 30*time.Second, "the agent leads", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.IsLeader
	})
	self := a.node.Info()
	for _, tc := range []struct {
		name, id, address string
		code              int
		want              string
	}{
		{"no server named", "", "", http.StatusBadRequest, "name the server"},
		{"the leader by id", self.ID, "", http.StatusBadRequest, "is the leader answering this request"},
		{"an unknown server", "no-such-server", "", http.StatusNotFound, "no server no-such-server"},
	} {
		err := c.RemovePeer(ctx, tc.id, tc.address)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(err.Error(), tc.want) || !saysStatusOnce(se.Message) {
			t.Errorf("%s: %v; want %d saying %q (the status once)", tc.name, err, tc.code, tc.want)
		}
	}
	if rc, err := c.RaftConfiguration(ctx); err != nil || len(rc.Servers) != 1 {
		t.Errorf("configuration after the refusals: %+v, %v", rc, err)
	}
}

// submitAway queues alloc to dc2 or, where it already runs in dc2, to
// dc1/*/web.
func submitAway(ctx context.Context, c *api.Client, alloc string) (string, error) {
	id, err := c.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc2"})
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusBadRequest {
		id, err = c.Submit(ctx, api.Submission{Allocation: alloc, Target: "dc1/*/web"})
	}
	return id, err
}

// The queue lists running requests first, then queued ones by score,
// highest first, then finished ones, newest first (docs/api.md).
func TestQueueOrder(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := []state.MigrationRequest{
		{ID: "done-old", State: state.RequestDone, Finished: at},
		{ID: "pending-low", State: state.RequestPending, Score: 1},
		{ID: "running-low", State: state.RequestRunning, Score: 0.5},
		{ID: "failed-new", State: state.RequestFailed, Finished: at.Add(time.Hour)},
		{ID: "reserving-high", State: state.RequestReserving, Score: 3},
		{ID: "running-high", State: state.RequestRunning, Score: 4},
	}
	sortQueue(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.ID)
	}
	want := []string{"running-high", "running-low", "reserving-high", "pending-low", "failed-new", "done-old"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v; want %v", got, want)
	}
}

// A blocking query for an index past the leader's Raft log (one a client
// held from an agent since restarted from nothing) is answered at once
// with the state's index, lower than the one asked for, so the client
// follows it; it waited its whole wait, and queue watch showed nothing of
// the new agent's queue for five minutes. An index it holds still blocks.
func TestBlockingQueryPastTheLogAnswersAtOnce(t *testing.T) {
	t.Parallel()
	a, _, c := startDevAgent(t, 1, Options{})
	ctx := context.Background()
	eventually(t, 30*time.Second, "the agent leads", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.IsLeader
	})
	// Index 0 asks no block: wait for the leader's first change to the
	// act state (under load it came after the read of the queue).
	var q api.Queue
	eventually(t, 30*time.Second, "the act state's first change", func() bool {
		var err error
		q, err = c.Queue(ctx, nil)
		return err == nil && q.Index > 0
	})
	began := time.Now()
	got, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: a.node.LastIndex() + 1000, WaitTime: 20 * time.Second})
	if took := time.Since(began); err != nil || took > 5*time.Second || got.Index > q.Index+1000 {
		t.Errorf("an index past the log: index %d after %s, %v; want the state's (%d) at once", got.Index, took, err, q.Index)
	}
	began = time.Now()
	got, err = c.Queue(ctx, &api.QueueOptions{WaitIndex: q.Index, WaitTime: 2 * time.Second})
	if took := time.Since(began); err != nil || (got.Index == q.Index && took < 2*time.Second) {
		t.Errorf("the state's own index: index %d after %s, %v; want a block until a change or the wait", got.Index, took, err)
	}
}

// TestReservationState: the API's state of a reservation, from the state
// machine's and whether its placeholder allocations are all placed
// (Reservation.Unplaced, which the leader records each cycle): placed,
// not held, while some are not (Nomad found no room for them yet).
func TestReservationState(t *testing.T) {
	for _, tc := range []struct {
		st       state.ReservationState
		unplaced int
		moving   bool
		want     string
	}{
		{state.ReservationPlanned, 0, false, api.ReservationPlanned},
		{state.ReservationHeld, 2, false, api.ReservationPlaced},
		{state.ReservationHeld, 0, false, api.ReservationHeld},
		{state.ReservationHeld, 1, true, api.ReservationHandingOver},
		{state.ReservationHeld, 0, true, api.ReservationHandingOver},
		{state.ReservationReleased, 1, false, api.ReservationReleased},
	} {
		if got := reservationState(state.Reservation{State: tc.st, Unplaced: tc.unplaced}, tc.moving); got != tc.want {
			t.Errorf("%s, %d unplaced, moving %v: %s; want %s", tc.st, tc.unplaced, tc.moving, got, tc.want)
		}
	}
}
