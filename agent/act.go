package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/policies"
)

// actor wires the act half into the agent: the coordinator (agent/migrate)
// that carries out the planner's plans on the leader, the API's queue,
// reservation and decision endpoints, and the act metrics. It holds no
// logic of its own beyond translating between the packages.
type actor struct {
	a     *Agent
	coord *migrate.Coordinator // nil when the agent has no Nomad (replay)
	// metrics are the act metrics, which the coordinator counts in.
	metrics *migrate.Metrics
	// notActing is why the term's act half carries out no plan, and
	// since when; nil while it acts, and between terms.
	notActing atomic.Pointer[notActing]
}

// notActing is why the act half does not act (status), and since when.
type notActing struct {
	why   string
	since time.Time
}

// setNotActing records why the act half does not act now, keeping the
// time it first failed while it goes on failing.
func (x *actor) setNotActing(why string, now time.Time) {
	since := now
	if prev := x.notActing.Load(); prev != nil {
		since = prev.since
	}
	x.notActing.Store(&notActing{why: why, since: since})
}

// NotActing returns why the act half does not act and since when; "" while
// it acts.
func (x *actor) NotActing() (string, time.Time) {
	if n := x.notActing.Load(); n != nil {
		return n.why, n.since
	}
	return "", time.Time{}
}

var _ api.ActBackend = (*actor)(nil)

// newActor builds the coordinator over the agent's shared Nomad client.
func (a *Agent) newActor(cfg *config.Config, client *nomadapi.Client, node string) (*actor, error) {
	x := &actor{a: a}
	metrics, err := migrate.NewMetrics(a.registry, a.fsm)
	if err != nil {
		return nil, fmt.Errorf("agent: act metrics: %w", err)
	}
	x.metrics = metrics
	metrics.KnowPolicies(a.pols)
	if client == nil {
		return x, nil
	}
	x.coord, err = migrate.New(migrate.Config{
		Nomad: client, Namespace: cfg.Nomad.Namespace, Apply: applier{a.node}, State: a.fsm, Leader: a.node, Node: node,
		Placeholder:  migrate.Placeholder{Driver: cfg.Reserve.Driver, Config: cfg.Reserve.Config},
		Limits:       shape.Limits{MaxParallel: cfg.Queue.MaxParallel},
		MaxQueue:     cfg.Queue.MaxRequests,
		KeepFinished: cfg.Queue.KeepFinished,
		ForecastOnly: cfg.ForecastOnly,
		Clock:        a.clock.Now,
		Metrics:      metrics,
		Logger:       a.log,
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

var _ migrate.Leader = (cluster.Leadership)(nil)

// actInput is what a cycle hands the act half: its data time, its
// policies and its forecasts.
type actInput struct {
	now  time.Time
	pols []*policies.Policy
	res  predict.Result
}

// actTerm is what the act half keeps for one leadership term.
type actTerm struct {
	// begun is set once the start of the term's reconciliation succeeded
	// and the allocation watch runs: no plan is carried out before.
	begun bool
	// beginFails and fails are the reconciliation's and the act pass's
	// failures, logged as a streak rather than a line a cycle.
	beginFails, fails failing.Streak
	// next holds the last cycle's input the act half has not taken yet
	// (offer): a pass that outlasts cycles acts next on the newest
	// forecasts, not on each it missed in turn.
	next chan actInput
	// running are the term's act goroutine and its allocation watch.
	running sync.WaitGroup
}

// start runs the act half of the term ctx in a goroutine of its own: the
// plan and act pass waits on Nomad's answers to its writes (30 s each at
// most), and run inside the cycle, between the forecast and its
// publication, it held the cycle: a Nomad that took the placeholders'
// registrations and did not answer kept the leader from publishing any
// forecast for minutes. stop waits for it.
func (x *actor) start(ctx context.Context, t *actTerm) {
	t.next = make(chan actInput, 1)
	if x.coord == nil {
		return
	}
	t.running.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case in := <-t.next:
				x.cycle(ctx, in, t)
			}
		}
	})
}

// offer hands a cycle's input to the act half, in place of one it has
// not taken yet; it never waits. Only the leader loop offers.
func (t *actTerm) offer(in actInput) {
	select {
	case <-t.next:
	default:
	}
	t.next <- in
}

// stop waits, once the term's context is done, for what the term started:
// its act goroutine, its allocation watch, and the scale actions running
// (whose outcome each writes as it ends), so that none of them outlives
// the term, nor the agent's stop: the stop closes Raft after.
func (x *actor) stop(t *actTerm) {
	t.running.Wait()
	if x.coord != nil {
		x.coord.Wait()
	}
	x.notActing.Store(nil) // a follower says nothing of acting
}

// begin reconciles what an earlier leader left open, once a term, and
// then follows moves on Nomad's allocation events for the rest of the
// term. It reports whether the act half may act: until the
// reconciliation succeeds (Nomad unreachable, an intent whose effect
// cannot be read), it is tried again each cycle while the cycle goes on
// collecting and forecasting without acting. Waiting here before the
// first cycle, as it did, kept a leader from publishing any forecast for
// as long as Nomad did not answer, however much history the store held.
func (x *actor) begin(ctx context.Context, now time.Time, t *actTerm) bool {
	if t.begun {
		return true
	}
	if err := x.coord.Begin(ctx, now); err != nil {
		if ctx.Err() == nil {
			t.beginFails.Fail(x.a.log, time.Now(), "act: reconciliation at the start of the term failed; not acting until it succeeds (tried again each cycle; forecasting goes on)", err)
			x.setNotActing("the start of the term's reconciliation fails (tried again each cycle): "+err.Error(), time.Now())
		}
		return false
	}
	t.beginFails.OK(x.a.log, time.Now(), "act: reconciliation at the start of the term done; acting")
	t.begun = true
	t.running.Go(func() { x.coord.Watch(ctx, x.a.clock.Now, time.Minute) })
	return true
}

// cycle plans and acts on a cycle's forecasts, once the term's
// reconciliation is done (begin).
func (x *actor) cycle(ctx context.Context, in actInput, t *actTerm) {
	x.metrics.KnowPolicies(in.pols) // a reload may have brought new scale blocks
	if x.coord == nil || !x.begin(ctx, in.now, t) {
		return
	}
	// The policies' schedule windows are safe to read beside the
	// forecast's (policies.Schedule.Windows).
	fcs := append(ShapeForecasts(in.res, in.pols), GroupForecasts(x.a.fsm, in.now, in.pols)...)
	_, err := x.coord.RunOnce(ctx, in.now, in.pols, fcs)
	switch {
	case err == nil:
		t.fails.OK(x.a.log, time.Now(), "act: plan and act pass works again")
		x.notActing.Store(nil)
	case ctx.Err() == nil:
		t.fails.Fail(x.a.log, time.Now(), "act: plan and act pass failed", err)
		x.setNotActing("the plan and act pass fails (tried again each cycle): "+err.Error(), time.Now())
	}
}

// ShapeForecasts turns the forecast loop's domain output into the
// planner's input: the planning-quantile band of every CPU and memory
// forecast, with the part of it and of its demand that drains of other
// localities added (the planner reads the forecast less it).
func ShapeForecasts(res predict.Result, pols []*policies.Policy) []shape.Forecast {
	var out []shape.Forecast
	for _, f := range res.Forecasts {
		if f.Metric != "cpu" && f.Metric != "memory" {
			continue
		}
		band := f.Band(f.PlanningQuantile)
		if band == nil {
			band = f.Mean
		}
		demand := f.DemandBand(f.PlanningQuantile)
		var demandAdded []float64
		if demand != nil {
			demandAdded = f.Demand.DrainAdded
		}
		out = append(out, shape.Forecast{Policy: f.Policy, Locality: f.Locality.String(), Metric: f.Metric, Times: f.Times,
			Planning: band, Demand: demand, DrainAdded: f.DrainAdded, DemandDrainAdded: demandAdded,
			Quantile: f.PlanningQuantile, Line: f.Line, HasLine: f.HasLine})
	}
	return out
}

// ---- api.ActBackend ----

func apiRequest(r state.MigrationRequest) api.MigrationRequest {
	out := api.MigrationRequest{ID: r.ID, Source: r.Source, Target: r.Target, State: string(r.State), Priority: r.Priority,
		Score: twoDecimals(r.Score), Reason: r.Reason, EstimatedDurationS: r.Estimated.Seconds(), Created: r.Created}
	switch r.Resource.Kind {
	case state.ResourceAllocation:
		out.Resource = api.AllocResource(r.Resource.ID)
	case state.ResourceGroup:
		out.Resource = api.JobResource(r.Resource.Job, r.Resource.Group)
	case state.ResourceNode:
		name := r.Resource.Name
		if name == "" {
			name = r.Resource.ID
		}
		out.Resource = api.NodeResource(name)
	}
	if !r.Started.IsZero() {
		t := r.Started
		out.Started = &t
	}
	if !r.Finished.IsZero() {
		t := r.Finished
		out.Finished = &t
	}
	return out
}

// twoDecimals rounds a request's score for the API to the two decimals
// the planner's reasons and the CLI show; the planner and the state keep
// the exact value (the queue is ordered by it).
func twoDecimals(v float64) float64 {
	r := math.Round(v*100) / 100
	if r == 0 {
		return 0 // not -0
	}
	return r
}

// Queue implements api.ActBackend: the requests in the order the agent
// runs them (sortQueue).
func (x *actor) Queue(context.Context) (api.Queue, error) {
	v := x.a.fsm.Act()
	rs := v.Requests
	sortQueue(rs)
	q := api.Queue{Paused: v.Paused, Index: v.Modified, Requests: make([]api.MigrationRequest, 0, len(rs))}
	if v.Paused {
		q.PausedBy = v.PausedBy
		if !v.PausedAt.IsZero() {
			at := v.PausedAt
			q.PausedAt = &at
		}
	}
	for _, r := range rs {
		q.Requests = append(q.Requests, apiRequest(r))
	}
	return q, nil
}

// QueueIndex is the queue's index (Queue's), read without building the
// queue: the dashboard's event streams ask it every poll
// (BenchmarkDashboardQueueIndex).
func (x *actor) QueueIndex(context.Context) (uint64, error) { return x.a.fsm.ActModified(), nil }

// sortQueue orders requests as the queue lists them: running first, then
// queued by score, highest first, then finished, newest first.
func sortQueue(rs []state.MigrationRequest) {
	rank := func(s state.RequestState) int {
		switch {
		case s == state.RequestRunning:
			return 0
		case s.Queued():
			return 1
		}
		return 2
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if rank(a.State) != rank(b.State) {
			return rank(a.State) < rank(b.State)
		}
		if rank(a.State) == 2 {
			return a.Finished.After(b.Finished)
		}
		return a.Score > b.Score
	})
}

// Request implements api.ActBackend.
func (x *actor) Request(_ context.Context, id string) (api.MigrationRequest, error) {
	r, ok := x.a.fsm.Act().Request(id)
	if !ok {
		return api.MigrationRequest{}, unknownRequest(id)
	}
	return apiRequest(r), nil
}

// unknownRequest is the 404 for an ID the queue does not hold: never
// given, or a finished request the leader has forgotten (migrate's forget,
// queue.keep_finished).
func unknownRequest(id string) error {
	return fmt.Errorf("no migration request %q in the queue: none had this ID, or it finished at least queue.keep_finished ago and the leader has forgotten it: %w", id, api.ErrNotFound)
}

// leader returns a client of the leader's API when this agent does not
// lead, so that writes made through the backend in-process (the
// dashboard's) reach the leader as the HTTP API's forwarding makes them;
// nil when this agent leads.
func (x *actor) leader(ctx context.Context) (*api.Client, error) {
	if _, ok := x.a.node.LeaderContext(); ok {
		return nil, nil
	}
	if x.a.peers == nil {
		return nil, fmt.Errorf("this agent does not lead: %w", api.ErrUnavailable)
	}
	addr, err := x.a.leaderHTTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("this agent does not lead and cannot reach the leader (%v): %w", err, api.ErrUnavailable)
	}
	c := &api.Client{Address: x.a.peers.url(addr), HTTP: x.a.peers.http}
	if toks := x.a.currentTokens(); len(toks) > 0 {
		c.Token = toks[0]
	}
	return c, nil
}

// fromLeader turns the leader's answer back into the backend's typed
// errors.
func fromLeader(err error) error {
	var se *api.StatusError
	if !errors.As(err, &se) {
		if err != nil {
			return fmt.Errorf("forwarding to the leader: %v: %w", err, api.ErrUnavailable)
		}
		return nil
	}
	switch se.Code {
	case 400:
		return fmt.Errorf("%s: %w", se.Message, api.ErrInvalid)
	case 404:
		return fmt.Errorf("%s: %w", se.Message, api.ErrNotFound)
	case 409:
		return fmt.Errorf("%s: %w", se.Message, api.ErrConflict)
	case 429:
		return fmt.Errorf("%s: %w", se.Message, api.ErrQueueFull)
	case 502:
		return fmt.Errorf("%s: %w", se.Message, api.ErrNomadRefused)
	}
	return fmt.Errorf("the leader answered %d: %s: %w", se.Code, se.Message, api.ErrUnavailable)
}

// Submit implements api.ActBackend.
func (x *actor) Submit(ctx context.Context, s api.Submission) (string, error) {
	if x.coord == nil {
		return "", fmt.Errorf("this agent talks to no Nomad (replay): %w", api.ErrUnavailable)
	}
	if lc, err := x.leader(ctx); err != nil || lc != nil {
		if err != nil {
			return "", err
		}
		id, err := lc.Submit(ctx, s)
		return id, fromLeader(err)
	}
	now, err := x.a.clock.Now(ctx)
	if err != nil {
		return "", fmt.Errorf("no data time: %w", api.ErrUnavailable)
	}
	x.a.cfgMu.RLock()
	pols := x.a.pols
	x.a.cfgMu.RUnlock()
	id, err := x.coord.Submit(ctx, now, pols, migrate.Submission{Allocation: s.Allocation, Job: s.Job, Group: s.Group,
		Node: s.Node, Target: s.Target, Priority: s.Priority, Reason: s.Reason})
	return id, apiError(err)
}

// apiError maps the act half's typed errors to the API's.
func apiError(err error) error {
	var ie *migrate.InvalidError
	var ce *state.ConflictError
	var pa *state.PausedAgainError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return &api.InvalidError{Field: ie.Field, Reason: ie.Reason}
	case errors.As(err, &pa):
		return fmt.Errorf("%s: %w", pa, api.ErrConflict)
	case errors.As(err, &ce):
		return &api.ConflictError{Existing: ce.Existing, Resource: ce.Resource, State: string(ce.State), Alloc: ce.Alloc, Holds: ce.Holds}
	case errors.Is(err, state.ErrQueueFull):
		// "cluster: apply: state: apply index 17: state: migration queue
		// is full: 1 unfinished requests (limit 1)" says the count; the
		// rest is the path it took.
		_, count, _ := strings.Cut(err.Error(), state.ErrQueueFull.Error()+": ")
		return fmt.Errorf("the migration queue is full (queue.max_requests): %s; wait for requests to finish, or cancel some: %w", cmp.Or(count, "at its limit"), api.ErrQueueFull)
	case errors.Is(err, state.ErrUnknownRequest):
		return fmt.Errorf("%s: %w", err, api.ErrNotFound)
	case errors.Is(err, state.ErrBadTransition):
		return fmt.Errorf("%s: %w", err, api.ErrConflict)
	case errors.Is(err, cluster.ErrNotLeader):
		return fmt.Errorf("%s: %w", err, api.ErrUnavailable)
	case preflight.NomadRefused(err):
		return fmt.Errorf("%s: %w", err, api.ErrNomadRefused)
	}
	return err
}

// Cancel implements api.ActBackend.
func (x *actor) Cancel(ctx context.Context, id string) error {
	r, ok := x.a.fsm.Act().Request(id)
	if !ok {
		return unknownRequest(id)
	}
	if !r.State.Queued() {
		return fmt.Errorf("request %s is %s; only a request that has not started can be cancelled: %w", id, r.State, api.ErrConflict)
	}
	if lc, err := x.leader(ctx); err != nil || lc != nil {
		if err != nil {
			return err
		}
		_, err := lc.Cancel(ctx, id)
		return fromLeader(err)
	}
	now, err := x.a.clock.Now(ctx)
	if err != nil {
		return fmt.Errorf("no data time: %w", api.ErrUnavailable)
	}
	_, err = applier{x.a.node}.Apply(ctx, state.CancelRequest{ID: id, At: now.UTC(), Reason: migrate.OperatorCancel})
	if err == nil {
		_, _ = applier{x.a.node}.Apply(ctx, state.AppendDecisions{Decisions: []state.Decision{{Time: now.UTC(), Kind: "cancel",
			Policy: r.Policy, Locality: r.Source, Request: id, Reason: migrate.OperatorCancel}}})
	}
	return apiError(err)
}

// SetPriority implements api.ActBackend: it sets the request's own
// priority, written with the version it was read at, and records the
// change as a decision. A request another change (the planner's) moved
// on since it was read is read again, a few times.
func (x *actor) SetPriority(ctx context.Context, id string, priority int) error {
	for try := 0; ; try++ {
		r, ok := x.a.fsm.Act().Request(id)
		if !ok {
			return unknownRequest(id)
		}
		if !r.State.Queued() {
			return fmt.Errorf("request %s is %s; only the priority of a request that has not started can be set: %w", id, r.State, api.ErrConflict)
		}
		if lc, err := x.leader(ctx); err != nil || lc != nil {
			if err != nil {
				return err
			}
			_, err := lc.SetPriority(ctx, id, priority)
			return fromLeader(err)
		}
		if r.Priority == priority {
			return nil
		}
		now, err := x.a.clock.Now(ctx)
		if err != nil {
			return fmt.Errorf("no data time: %w", api.ErrUnavailable)
		}
		was := r.Priority
		r.Priority = priority
		_, err = applier{x.a.node}.Apply(ctx, state.UpdateRequest{Request: r, IfVersion: r.Version})
		if errors.Is(err, state.ErrStaleVersion) && try < 3 {
			continue
		}
		if err == nil {
			why := fmt.Sprintf("priority set to %d by an operator (was %d)", priority, was)
			_, _ = applier{x.a.node}.Apply(ctx, state.AppendDecisions{Decisions: []state.Decision{{Time: now.UTC(), Kind: api.DecisionPriority,
				Policy: r.Policy, Locality: r.Source, Request: id, Reason: why}}})
		}
		return apiError(err)
	}
}

// SetPaused implements api.ActBackend.
func (x *actor) SetPaused(ctx context.Context, paused bool) error {
	if x.coord == nil {
		return fmt.Errorf("this agent talks to no Nomad (replay): it has no queue to pause or resume: %w", api.ErrUnavailable)
	}
	v := x.a.fsm.Act()
	if v.Paused == paused {
		return nil
	}
	if lc, err := x.leader(ctx); err != nil || lc != nil {
		if err != nil {
			return err
		}
		_, err := lc.Pause(ctx, paused)
		return fromLeader(err)
	}
	now, err := x.a.clock.Now(ctx)
	if err != nil {
		return fmt.Errorf("no data time: %w", api.ErrUnavailable)
	}
	cmd := state.SetQueuePaused{Paused: paused, At: now.UTC(), By: "operator"}
	if !paused {
		// The resume lifts the pause it was sent for, no other: one a
		// restore of a backup sets while it waits (the restored queue,
		// paused for review) stays.
		cmd.IfPausedAt, cmd.IfPausedBy = v.PausedAt, v.PausedBy
	}
	_, err = applier{x.a.node}.Apply(ctx, cmd)
	return apiError(err)
}

// Reservations implements api.ActBackend.
func (x *actor) Reservations(context.Context) ([]api.Reservation, error) {
	v := x.a.fsm.Act()
	running := map[string]bool{}
	for _, r := range v.Requests {
		if r.State == state.RequestRunning {
			running[r.ID] = true
		}
	}
	out := make([]api.Reservation, 0, len(v.Reservations))
	for i := len(v.Reservations) - 1; i >= 0; i-- {
		r := v.Reservations[i]
		t := r.Size
		if t.IsZero() {
			t = r.Total()
		}
		st := reservationState(r, running[r.Request])
		out = append(out, api.Reservation{ID: r.ID, Request: r.Request, Policy: r.Policy, Locality: r.Locality,
			CPU: int(t.CPU), Memory: int(t.MemoryMB), IOPS: float64(t.IOPS), From: r.From, Until: reservationUntil(r), Job: r.Job, State: st})
	}
	return out, nil
}

// reservationUntil is the API's end of a reservation: for one not
// released, its expiry, the end no placeholder outlives (the planner
// releases a reservation when its request ends or at its expiry, and the
// reaper removes a placeholder whose reservation expired), not its
// planned end (state Until), which releases nothing; for a released one,
// when it was released (state Until, which every release sets).
func reservationUntil(r state.Reservation) time.Time {
	if r.State == state.ReservationReleased || r.Expires.IsZero() {
		return r.Until
	}
	return r.Expires
}

// reservationState is the API's state of a reservation: planned until its
// placeholder job is registered, then placed while some of its
// allocations are not placed on a node (as the leader last saw them),
// held once every one is, handing_over while its request's move runs, and
// released.
func reservationState(r state.Reservation, moving bool) string {
	switch {
	case r.State == state.ReservationReleased:
		return api.ReservationReleased
	case r.State == state.ReservationHeld && moving:
		return api.ReservationHandingOver
	case r.State == state.ReservationHeld && r.Unplaced > 0:
		return api.ReservationPlaced
	case r.State == state.ReservationHeld:
		return api.ReservationHeld
	}
	return api.ReservationPlanned
}

// Decisions implements api.ActBackend.
func (x *actor) Decisions(_ context.Context, f api.DecisionFilter) ([]api.Decision, error) {
	ds := x.a.fsm.Decisions()
	var out []api.Decision
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		reason := d.Reason
		if d.DryRun {
			reason = "dry run (forecast_only): " + reason
		}
		ad := api.Decision{Time: d.Time, Policy: d.Policy, Kind: d.Kind, Locality: d.Locality, Request: d.Request, Reason: reason}
		if !f.Match(ad) {
			continue
		}
		out = append(out, ad)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	if out == nil {
		out = []api.Decision{}
	}
	return out, nil
}

// WaitIndex implements api.ActBackend: it looks at the act state's index
// every 100 ms until blockingLook.answer says the query is answered, or
// ctx ends.
func (x *actor) WaitIndex(ctx context.Context, index uint64) (uint64, error) {
	restores := x.a.node.Restores()
	b := blockingLook{asked: index, start: x.a.fsm.ActModified()}
	behind := time.NewTimer(x.a.catchUpWait())
	defer behind.Stop()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		b.act = x.a.fsm.ActModified()
		if b.act < b.asked {
			// How far the state holds the log is read before the act
			// index it is compared with, so that an entry applied in
			// between is not taken for a state that never held it.
			b.held = max(x.a.fsm.AppliedIndex(), x.a.node.SnapshotIndex())
			b.last, b.leader = x.a.node.LastIndex(), x.a.node.IsLeader()
			b.act = x.a.fsm.ActModified()
		}
		b.replaced = x.a.node.Restores() != restores
		if b.answer() {
			return b.act, nil
		}
		select {
		case <-ctx.Done():
			return b.act, nil
		case <-behind.C:
			b.behindTooLong = true
		case <-t.C:
		}
	}
}

// blockingLook is what a blocking query on /v1/queue (WaitIndex) looks at
// each time it looks.
type blockingLook struct {
	asked uint64 // the index the client holds
	start uint64 // the act state's index when the query came
	act   uint64 // the act state's index now
	// held is how far this server's state holds the Raft log: the last
	// entry it applied, or the last snapshot (taken, installed or
	// restored) when that is past it, which after a restore it is
	// (cluster.Node.SnapshotIndex). Read only when act < asked, as are
	// last and leader.
	held uint64
	// last is the last entry of this server's Raft log.
	last   uint64
	leader bool
	// replaced: a snapshot replaced the state since the query came.
	replaced bool
	// behindTooLong: forwardWait has passed since the query came.
	behindTooLong bool
}

// answer says whether the query is answered now, with the state as it is.
//
// It is, at once, when the state changed past the index asked, or was
// replaced while the query waited (a restore sets the index to its own
// Raft index, past any the client held, f7a4721; a state restored by an
// earlier release took it back to the backup's, or left it where it was
// with the queue paused: a change either way).
//
// An index past the state's is one the client read from a server ahead
// of this one, or from another state. When this state holds the log as
// far as that index or past it, the entry that changed the act state
// there is none of its history (a snapshot an earlier release restored
// replaced the state since the client read it): answered at once, with
// an index lower than the one asked, which the client follows. On the leader, an index past
// its Raft log is none of the cluster's (its log holds every committed
// entry: an agent since restarted from nothing, another agent at the
// address): answered at once too. Otherwise the server is behind (a
// follower the entry has not reached yet, a state still applying its
// log) and waits to catch up, forwardWait at most, as a follower holds a
// forwarded answer, after which it answers from its older state; once
// caught up it waits for a change past the index, as for any other.
//
// Before, a query sent after a restore, and one waiting across a restore
// that left the index where it was, waited their whole wait (five
// minutes by default); a follower answered an index past its log at
// once, from an older state than the one the client had shown.
func (b blockingLook) answer() bool {
	switch {
	case b.act > b.asked || b.act < b.start || b.replaced:
		return true
	case b.act == b.asked:
		return false
	case b.held >= b.asked:
		return true
	case b.leader && b.asked > b.last:
		return true
	}
	return b.behindTooLong
}
