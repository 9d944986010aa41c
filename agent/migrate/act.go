package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// RunOnce runs one plan-and-act pass at now: it reads the cluster, settles
// the moves that ended since the last pass, plans with the forecasts
// given, carries the plan out (dry-run actions only recorded), then
// advances the move follower once. It is the proof
// harness's synchronous entry point as much as the leader loop's step.
func (c *Coordinator) RunOnce(ctx context.Context, now time.Time, pols []*policies.Policy, forecasts []shape.Forecast) (shape.Plan, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now = now.UTC()
	c.pols, c.planned = pols, true
	if err := c.ensureCluster(ctx); err != nil {
		return shape.Plan{}, err
	}
	// An intent this leader could not close is closed before anything
	// reads it as under way.
	c.closeLeftOpen(ctx, now)
	cluster, err := c.refresh(ctx)
	if err != nil {
		return shape.Plan{}, err
	}
	// Moves that ended since the last pass are settled before the plan:
	// settled only after it, each held its max_parallel place a pass
	// longer than it ran, and a capped locality started half the moves a
	// pass it could.
	ds := c.settleMoves(ctx, c.stamp(ctx, now))
	// A reservation one of place's state updates left planned is held or
	// released now, not at the next term's start or its reserve.ttl.
	c.settlePlanned(ctx, now, false, &ds)
	c.settleUnreadScales(ctx, now, pols, &ds)
	c.notePlacement(ctx)
	view := c.cfg.State.Act()
	// A placeholder placed whose task does not run holds its room: the
	// planner counts it held (shapeAlloc); the operator is told.
	c.notRunning(ctx, now, view, &ds)
	// Why Nomad has not placed a placeholder past its grace: where no
	// node could take it, whatever its size, or Nomad places anew one
	// that failed on one node only, the planner does not scale for it.
	unplaceable, rescheduling := c.readUnplaceable(ctx, now, view, &ds)
	atMax, maxAsked := c.readAtMax(ctx, now, view, pols)
	requeue := c.requeued(now, view)
	plan := shape.Run(shape.Input{Now: now, Policies: pols, Forecasts: forecasts, Cluster: cluster, State: view,
		Limits: c.cfg.Limits, ForecastOnly: c.cfg.ForecastOnly, Unplaceable: unplaceable, Rescheduling: rescheduling, AtMax: atMax, MaxAsked: maxAsked,
		Requeue: requeue})
	c.last = plan
	// What the pass does happens now, not at the data time the plan was
	// made for: a follower pass may have settled moves at a later clock
	// reading in between, and a start stamped earlier than that would
	// seem to overlap them.
	ds = append(ds, c.carryOut(ctx, c.stamp(ctx, now), plan, view, pols)...)
	if len(plan.Submit) > 0 && ctx.Err() == nil {
		// New requests (a drain window's, a rebalance's) are planned in
		// the same pass: their reservations need not wait a cycle.
		view = c.cfg.State.Act()
		again := shape.Run(shape.Input{Now: now, Policies: pols, Forecasts: forecasts, Cluster: cluster, State: view,
			Limits: c.cfg.Limits, ForecastOnly: c.cfg.ForecastOnly, Unplaceable: unplaceable, Rescheduling: rescheduling, AtMax: atMax, MaxAsked: maxAsked,
			Requeue: requeue})
		again.Submit, again.Decisions = nil, withoutSubmits(again.Decisions)
		ds = append(ds, c.carryOut(ctx, c.stamp(ctx, now), again, view, pols)...)
		plan = mergePlans(plan, again)
		c.last = plan
	}
	ds = append(ds, c.follow(ctx, c.stamp(ctx, now), false)...)
	c.record(ctx, ds)
	if ctx.Err() == nil {
		c.forget(ctx, now, c.cfg.State.Act())
	}
	return plan, nil
}

// withoutSubmits drops submit decisions (the first plan recorded them).
func withoutSubmits(ds []state.Decision) []state.Decision {
	return slices.DeleteFunc(ds, func(d state.Decision) bool { return d.Kind == shape.KindSubmit })
}

// mergePlans is what two plans of one pass decided together.
func mergePlans(a, b shape.Plan) shape.Plan {
	a.Cancel = append(a.Cancel, b.Cancel...)
	a.Release = append(a.Release, b.Release...)
	a.Rescore = append(a.Rescore, b.Rescore...)
	a.Reserve = append(a.Reserve, b.Reserve...)
	a.Scale = append(a.Scale, b.Scale...)
	a.Start = append(a.Start, b.Start...)
	a.Decisions = append(a.Decisions, b.Decisions...)
	return a
}

// stamp is the data time to record an action at: the clock's reading when
// the coordinator has one and it is later than now, else now.
func (c *Coordinator) stamp(ctx context.Context, now time.Time) time.Time {
	if c.cfg.Clock != nil {
		if t, err := c.cfg.Clock(ctx); err == nil && t.After(now) {
			return t.UTC()
		}
	}
	return now
}

// ensureCluster gives the foreshape cluster its identity once: the owner
// written into every placeholder's meta.
func (c *Coordinator) ensureCluster(ctx context.Context) error {
	if c.cfg.State.ClusterID() != "" {
		return nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("migrate: cluster id: %w", err)
	}
	if _, err := c.apply(ctx, state.InitCluster{ID: "fs-" + hex.EncodeToString(b[:])}); err != nil {
		return fmt.Errorf("migrate: record the cluster id: %w", err)
	}
	return nil
}

// errCalledOff refuses the planner's new request of a drain window an
// operator called off (operatorCancelled).
var errCalledOff = errors.New("an operator cancelled every request of its drain window before any started; none is queued again until the window's end")

// calledOff reports whether r, a new request of the planner's, belongs to
// a drain window an operator called off (operatorCancelled): work Nomad
// placed on its nodes since they were given back, or a request in place of
// a cancelled one, is not queued again in that window.
func (c *Coordinator) calledOff(view state.ActView, r state.MigrationRequest) bool {
	return r.Origin == "schedule" && c.windowCalledOff(view, windowKey(r))
}

// windowCalledOff reports whether an operator called off the drain window
// keyed key (windowKey; operatorCancelled).
func (c *Coordinator) windowCalledOff(view state.ActView, key string) bool {
	w := c.calledOffWindows(view)[key]
	return w.off && w.firstDue
}

// carryOut does what a plan says, in its order, and returns the decisions
// to record.
func (c *Coordinator) carryOut(ctx context.Context, now time.Time, plan shape.Plan, view state.ActView, pols []*policies.Policy) []state.Decision {
	var ds []state.Decision
	// The planner's new requests first: the state machine gives them
	// their IDs, which their submit decisions then carry (the planner
	// appends a request and its decision together, so the k-th submit
	// decision is the k-th submission's).
	ids := make([]string, len(plan.Submit))
	refused := make([]error, len(plan.Submit))
	for i, s := range plan.Submit {
		r := s.Request
		r.Created = r.Created.UTC()
		if c.calledOff(view, r) {
			refused[i] = fmt.Errorf("%w (%s)", errCalledOff, windowName(r))
			continue
		}
		res, err := c.apply(ctx, state.SubmitRequest{Request: r, Limit: c.cfg.MaxQueue})
		if err != nil {
			c.log.Debug("planner request not queued", "resource", r.Resource.String(), logKeyError, err)
			refused[i] = err
			continue
		}
		ids[i] = res.ID
	}
	// Requests whose placeholders Nomad refused: forgotten once they no
	// longer wait for one; those still in their backoff place none.
	backoff := map[string]bool{}
	for id, f := range c.refused {
		if r, ok := view.Request(id); !ok || !r.State.Queued() {
			delete(c.refused, id)
		} else if now.Before(f.next()) {
			backoff[id] = true
		}
	}
	k := 0
	for _, d := range plan.Decisions {
		if d.Kind == shape.KindReserve && backoff[d.Request] {
			continue // not placed this pass: the request's reason says why
		}
		if d.Kind == shape.KindSubmit && d.Request == "" && k < len(ids) {
			d.Request = ids[k]
			err := refused[k]
			k++
			if err != nil {
				// Not a submission: a wait that says why, recorded (and
				// warned of) once per ten minutes, not a submit decision
				// without a request every pass.
				why := "not queued: " + err.Error()
				if errors.Is(err, state.ErrQueueFull) {
					why = fmt.Sprintf("not queued: the migration queue holds queue.max_requests = %d unfinished requests", c.cfg.MaxQueue)
				}
				key := "refused/" + d.Policy + "/" + d.Locality + "/" + d.Reason
				d.Kind, d.Reason = shape.KindWait, why+"; it would "+d.Reason
				before := len(ds)
				c.note(&ds, now, key, d)
				if len(ds) > before && !errors.Is(err, errCalledOff) {
					c.log.Warn("the planner's request was not queued", logKeyPolicy, d.Policy, "locality", d.Locality, "reason", d.Reason)
				}
				continue
			}
		}
		if d.Kind == shape.KindWait && d.Request == "" && !d.DryRun {
			// A window's request that cannot be made, a drain that
			// matches no node: the planner says so every pass while it
			// holds; the decision log (a ring) keeps it once per ten
			// minutes rather than lose the rest to it.
			c.note(&ds, now, "wait/"+d.Policy+"/"+d.Locality+"/"+d.Reason, d)
			continue
		}
		if d.DryRun {
			key := "dry/" + d.Kind + "/" + d.Policy + "/" + d.Locality + "/" + d.Request + "/" + d.Reservation
			if d.Kind == shape.KindWait || d.Request == "" {
				key += "/" + d.Reason
			}
			c.note(&ds, now, key, d)
			continue
		}
		ds = append(ds, d)
	}
	for _, x := range plan.Cancel {
		if x.DryRun {
			// A dry request (queued under forecast_only, never started)
			// ends as any request queued through its window does: its
			// cancel changes nothing in Nomad. Left pending, it held its
			// allocations from the next window's requests and filled the
			// queue day after day. One that holds a reservation (queued
			// before its policy became forecast_only) is left alone: its
			// cancel would release its placeholder in Nomad.
			if _, held := view.ReservationFor(x.Request); !held {
				if _, err := c.apply(ctx, state.CancelRequest{ID: x.Request, At: now, Reason: x.Reason}); err != nil {
					c.log.Debug("could not end a dry request", logKeyRequest, x.Request, logKeyError, err)
				}
			}
			continue
		}
		if _, err := c.apply(ctx, state.CancelRequest{ID: x.Request, At: now, Reason: x.Reason}); err != nil {
			// The cancel did not happen (an operator cancelled the
			// request in between, it finished, or the state machine
			// could not be reached): the decision log says only what
			// did, so the planner's cancel decision is dropped. What
			// ended the request records its own decision; a request
			// still queued is cancelled by a later pass.
			ds = slices.DeleteFunc(ds, func(d state.Decision) bool {
				return d.Kind == shape.KindCancel && d.Request == x.Request && !d.DryRun
			})
			c.log.Warn("could not cancel a request; its cancel decision is not recorded", logKeyRequest, x.Request,
				"reason", x.Reason, logKeyError, err)
		}
	}
	for _, rl := range plan.Release {
		if rl.DryRun {
			continue
		}
		for _, res := range view.Reservations {
			if res.ID == rl.Reservation {
				if err := c.release(ctx, now, res, rl.Reason); err != nil {
					c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
				}
			}
		}
	}
	for i, it := range plan.Rescore {
		if f, ok := c.refused[it.ID]; ok && it.State == state.RequestReserving {
			plan.Rescore[i].Reason = it.Reason + "; " + f.note()
		}
	}
	if len(plan.Rescore) > 0 {
		if _, err := c.apply(ctx, state.RescoreRequests{At: now, Items: plan.Rescore}); err != nil {
			c.log.Warn("could not record scores", logKeyError, err)
		}
	}
	for _, rs := range plan.Reserve {
		if rs.DryRun {
			continue
		}
		if backoff[rs.Request] {
			continue
		}
		id, err := c.place(ctx, now, rs, view.ClusterID)
		if err != nil {
			f := c.refused[rs.Request]
			f.n, f.at, f.err = f.n+1, now, err.Error()
			c.refused[rs.Request] = f
			c.log.Warn("placeholder not placed", logKeyReservation, id, logKeyRequest, rs.Request, logKeyError, err, "next_try", f.next().UTC())
			ds = append(ds, state.Decision{Time: now, Kind: "reserve", Policy: rs.Policy, Locality: rs.Locality, Request: rs.Request,
				Reservation: id, Reason: "placeholder not placed: " + err.Error()})
			continue
		}
		delete(c.refused, rs.Request)
	}
	for _, sc := range plan.Scale {
		if sc.DryRun {
			continue
		}
		if !c.scale(ctx, now, sc, pols, &ds) {
			// Not issued (the block is at its max): its decision is noted
			// once, not every pass.
			ds = slices.DeleteFunc(ds, func(d state.Decision) bool {
				return d.Kind == shape.KindScale && d.Policy == sc.Policy && d.Reason == sc.Reason
			})
		}
	}
	c.holdNodes(ctx, now, pols, &ds)
	c.holdWindows(ctx, now, pols, &ds)
	c.holdJoined(ctx, now, &ds)
	c.holdAgainAll(ctx, now, c.cfg.State.Act(), &ds)
	notStarted := func(id string) {
		ds = slices.DeleteFunc(ds, func(x state.Decision) bool { return x.Kind == shape.KindStart && x.Request == id })
	}
	for _, st := range plan.Start {
		if st.DryRun {
			continue
		}
		// The pause is read before each start, not once a pass: one
		// applied while an earlier start called Nomad holds the rest
		// (and start reads it again as it marks the request running).
		if c.paused() {
			notStarted(st.Request)
			continue
		}
		d, err := c.start(ctx, now, st.Request)
		switch {
		case errors.Is(err, errWithheld):
			c.log.Info("move not started: the queue was paused as it was to start", logKeyRequest, st.Request)
			notStarted(st.Request)
			continue
		case err != nil:
			c.log.Warn("move did not start", logKeyRequest, st.Request, logKeyError, err)
		}
		if slices.ContainsFunc(d, func(x state.Decision) bool { return x.Kind == shape.KindCancel && x.Request == st.Request }) {
			// Cancelled as it was to start (its job ended, its node
			// was purged): the planner's start decision did not happen.
			notStarted(st.Request)
		}
		ds = append(ds, d...)
	}
	return ds
}

// errPausedStart is why start marks no request running: the queue was paused
// while it read Nomad.
var errPausedStart = fmt.Errorf("%w: the queue was paused before the start", errWithheld)

// start starts a request's move: the request turns running, then for each
// allocation the hand-over and the stop (or the node's drain), each an
// intent.
func (c *Coordinator) start(ctx context.Context, now time.Time, id string) ([]state.Decision, error) {
	view := c.cfg.State.Act()
	r, ok := view.Request(id)
	if !ok || !r.State.Queued() {
		return nil, nil
	}
	cancel := func(why string) ([]state.Decision, error) {
		if _, err := c.apply(ctx, state.CancelRequest{ID: id, At: now, Reason: why}); err != nil {
			return nil, fmt.Errorf("migrate: cancel %s: %w", id, err)
		}
		c.log.Info("request cancelled before it started", logKeyRequest, id, "reason", why)
		return []state.Decision{{Time: now, Kind: "cancel", Policy: r.Policy, Locality: r.Source, Request: id, Reason: why}}, nil
	}
	if r.Resource.Kind == state.ResourceNode && c.view.nodes[r.Resource.ID] == nil {
		// Nomad lists the node no more: purged since it was queued.
		// What it ran Nomad has stopped as lost and replaced; there is
		// nothing to drain or take out of scheduling, and each attempt
		// would fail on the missing node.
		return cancel(fmt.Sprintf("nothing to move: %s was purged from Nomad since the request was queued", r.Resource))
	}
	if shape.WindowHold(&r) {
		return c.startHold(ctx, now, r)
	}
	// The moves an earlier attempt finished stay the request's, so that
	// its count and its size cover them when it is done: read anew, a
	// node no longer holds their allocations (and Nomad may have
	// collected an allocation's since).
	var done []state.Move
	for _, m := range r.Moves {
		if m.Done {
			done = append(done, m)
		}
	}
	moves, err := c.currentMoves(ctx, &r)
	if err != nil {
		return nil, err
	}
	moves = slices.DeleteFunc(slices.Clone(moves), func(m state.Move) bool {
		return m.Done || slices.ContainsFunc(done, func(d state.Move) bool { return d.Alloc == m.Alloc })
	})
	if r.Resource.Kind != state.ResourceNode {
		ended, err := c.endedJobs(ctx, moves)
		if err != nil {
			return nil, err
		}
		if ended != "" {
			// Nothing of it runs to move: the request ends here rather
			// than time out waiting for a replacement that never comes.
			return cancel("nothing to move: " + ended)
		}
		live, gone, err := c.collected(ctx, moves)
		if err != nil {
			return nil, err
		}
		if len(gone) > 0 {
			why := fmt.Sprintf("%s %s gone from Nomad since the request was queued (Nomad collects an allocation once it has ended: something else stopped or replaced it)",
				pick(len(gone), "allocation", "allocations"), strings.Join(gone, ", "))
			if len(live) == 0 {
				// Each start failed reading it, and the request failed
				// after three attempts on a 404.
				return cancel("nothing to move: " + why)
			}
			c.log.Info("moves left out of a request as it starts: their allocations are gone from Nomad", logKeyRequest, id, "reason", why)
			moves = live
		}
	}
	if c.paused() {
		// Paused while it read Nomad: it stays queued, and takes
		// nothing out (paused).
		return nil, errPausedStart
	}
	r.Moves = append(done, moves...)
	r.Moved = state.Resources{}
	var moving state.Resources
	for _, m := range moves {
		moving = moving.Add(m.Size)
	}
	for _, m := range r.Moves {
		r.Moved = r.Moved.Add(m.Size)
	}
	v := r.Version
	r.State, r.Started, r.Finished, r.OutWait = state.RequestRunning, now, time.Time{}, time.Time{}
	r.Reason = fmt.Sprintf("moving %d %s (%s) to %s by %s", len(moves), allocations(len(moves)), moving, r.Target, r.Strategy)
	if len(done) > 0 {
		r.Reason += fmt.Sprintf("; %d moved by an earlier attempt", len(done))
	}
	if _, err := c.apply(ctx, state.UpdateRequest{Request: r, IfVersion: v}); err != nil {
		return nil, fmt.Errorf("migrate: mark %s running: %w", id, err)
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.started.Inc()
	}
	var ds []state.Decision
	fail := func(err error) ([]state.Decision, error) {
		c.retry(ctx, now, id, err.Error(), &ds)
		return ds, err
	}
	if r.Resource.Kind == state.ResourceNode && r.Strategy == string(policies.StrategyDrain) {
		if err := c.drainNode(ctx, now, r); err != nil {
			return fail(err)
		}
		return ds, nil
	}
	// A whole node's allocations must not land back on it, nor a drain
	// window's on the window's nodes: they go out of scheduling first (as
	// the window's requests are queued, holdWindows, or at the window's
	// first move, once). stopMoves checks it again before each stop.
	if err := c.keepOut(ctx, now, r, moves, &ds); err != nil && !errors.Is(err, errNotOut) {
		return fail(err)
	}
	if shape.Within(&r) {
		c.cordon(ctx, now, r, moves, view, &ds)
	}
	if r.Strategy == string(policies.StrategyAffinity) {
		if err := c.addAffinity(ctx, now, &r); err != nil {
			return fail(err)
		}
	}
	if err := c.stopMoves(ctx, now, r, moves, c.transferSlots(r, c.cfg.State.Act()), &ds); errors.Is(err, errNotOut) {
		c.waitOut(ctx, now, r, err, &ds)
	} else if err != nil {
		return fail(err)
	}
	return ds, nil
}

// drainNode is a drain request's action once it runs: it hands its
// reservation over, has Nomad drain the node (the intent records what the
// node was before) and marks every move stopped. start does it, and
// continueMoves again for a running request a leader stopped before it had
// (an intent made already is not made twice).
func (c *Coordinator) drainNode(ctx context.Context, now time.Time, r state.MigrationRequest) error {
	id := r.ID
	if res, hasRes := c.cfg.State.Act().ReservationFor(id); hasRes {
		if err := c.release(ctx, now, res, fmt.Sprintf("handed over to the drain of %s", r.Resource)); err != nil {
			return err
		}
	}
	deadline := time.Hour
	if !r.Deadline.IsZero() && r.Deadline.After(now) {
		deadline = r.Deadline.Sub(now)
	}
	// What the node was before the drain is recorded with it: a
	// window's end gives back only what foreshape changed, and a node
	// an operator had cordoned (or was draining) stays so.
	before, created, err := c.scheduling(ctx, r.Resource.ID)
	if err != nil {
		return fmt.Errorf("read node %s before draining it: %w", r.Resource.ID, err)
	}
	in := state.Intent{ID: intentID(state.IntentDrainNode, r.Resource.ID, id, r.Attempts), Kind: state.IntentDrainNode,
		Request: id, Object: r.Resource.ID, Detail: fmt.Sprintf("deadline %s", deadline.Round(time.Second)), Before: before, NodeCreated: created}
	err = c.do(ctx, now, in, func(ctx context.Context) error {
		_, err := c.nomad.Nodes().UpdateDrainOpts(r.Resource.ID, &nomadapi.DrainOptions{
			DrainSpec: &nomadapi.DrainSpec{Deadline: deadline},
			Meta:      map[string]string{"foreshape.request": id, "message": "foreshape: " + r.Reason},
		}, c.wq(ctx))
		return err
	})
	if err != nil && !errors.Is(err, errAnnounced) {
		return err
	}
	c.updateMoves(ctx, id, func(m *state.Move) {
		if m.Stopped.IsZero() {
			m.Stopped = now
		}
	})
	return nil
}

// errNotOut says a node a move must not land back on is not out of
// scheduling in Nomad yet: the move waits (its request stays running, no
// allocation stopped, no attempt used up) and the follower tries again,
// until the wait passes the move's settle timeout (see waitOut).
var errNotOut = errors.New("not out of scheduling yet")

// notOutError is errNotOut for one node, with why.
type notOutError struct {
	node string
	why  string
}

func (e *notOutError) Error() string {
	return fmt.Sprintf("node %s: %s (%s)", e.node, errNotOut, e.why)
}
func (e *notOutError) Is(target error) bool { return target == errNotOut }

// outNode is a node a request takes out of scheduling before it stops
// anything, and the intent that does it.
type outNode struct {
	node string
	in   state.Intent
}

// outNodes are the nodes r's replacements must not land on: a whole
// node's (unless Nomad drains it), or a drain window's (its moves' nodes
// and the ones it excludes).
func outNodes(r state.MigrationRequest, moves []state.Move) []outNode {
	switch {
	case r.Resource.Kind == state.ResourceNode && r.Strategy == string(policies.StrategyDrain):
		return nil
	case r.Resource.Kind == state.ResourceNode && !shape.WindowHold(&r):
		return []outNode{{r.Resource.ID, state.Intent{ID: intentID(state.IntentNodeEligibility, r.Resource.ID, r.ID, r.Attempts),
			Kind: state.IntentNodeEligibility, Request: r.ID, Object: r.Resource.ID, Detail: "ineligible"}}}
	case r.Origin == "schedule":
		var out []outNode
		seen := map[string]bool{}
		drained := append([]string(nil), r.Exclude...)
		for _, m := range moves {
			drained = append(drained, m.Node)
		}
		for _, node := range drained {
			if seen[node] || node == "" {
				continue
			}
			seen[node] = true
			out = append(out, outNode{node, state.Intent{ID: intentID(state.IntentNodeEligibility, node, windowKey(r), 0),
				Kind: state.IntentNodeEligibility, Request: r.ID, Object: node, Detail: "ineligible for " + windowKey(r)}})
		}
		return out
	}
	return nil
}

// keepOut takes r's outNodes out of scheduling and returns nil only once
// Nomad, read afresh, shows each ineligible (or gone). A node whose intent
// a killed leader left without its effect is taken out under the intent's
// next redo ID; one foreshape took out that is eligible again (an
// operator's choice) is left so, unless Nomad registered it again since
// (purged, its client came back: holdAgain). errNotOut when a node is not
// out yet (it cannot be read, or its intent was announced and not done);
// the call's error when Nomad refused it.
func (c *Coordinator) keepOut(ctx context.Context, now time.Time, r state.MigrationRequest, moves []state.Move, ds *[]state.Decision) error {
	for _, o := range outNodes(r, moves) {
		n, _, err := c.nomad.Nodes().Info(o.node, c.qo(ctx))
		switch {
		case isNotFound(err):
			continue
		case err != nil:
			return &notOutError{o.node, "reading it: " + err.Error()}
		case schedulingOf(n) != state.NodeWasEligible:
			continue
		}
		node, created := o.node, n.CreateIndex
		o.in.NodeCreated = created
		err = c.do(ctx, now, o.in, func(ctx context.Context) error {
			_, err := c.nomad.Nodes().ToggleEligibility(node, false, c.wq(ctx))
			return err
		})
		switch {
		case errors.Is(err, errAnnounced):
			in, ok := c.latestIntent(o.in.ID)
			if base, took := c.takenWith(r, node); ok && in.Outcome == state.OutcomeDone && took != 0 && created > took &&
				!c.announced(againID(base, created)) && asRegistered(n, created, nomadapi.NodeSchedulingEligible) {
				// Taken out, then purged from Nomad and registered again
				// by its client, eligible: no one gave it back.
				err := c.holdAgain(ctx, now, node, base, took, created, r, windowOr(r), ds)
				if err != nil && !errors.Is(err, errAnnounced) {
					return err
				}
				if out, _, err := c.ineligible(ctx, node); err != nil || !out {
					return &notOutError{node, "registered again after a purge, and Nomad does not show it ineligible after taking it out again"}
				}
				continue
			}
			if ok && in.Outcome == state.OutcomeDone {
				// Taken out once, eligible again since. Nomad answers an
				// eligibility change once its leader has applied it, reads
				// go to that leader, and a node registering again keeps its
				// eligibility (unless purged and registered anew, above):
				// someone made the node eligible (an operator, another
				// tool; Nomad's node events show it), and that choice
				// stands. The move goes ahead; a decision says its
				// replacements may land back on the node.
				c.note(ds, now, "back/"+r.ID+"/"+o.node, state.Decision{Kind: shape.KindStart, Policy: r.Policy, Locality: r.Source, Request: r.ID,
					Reason: fmt.Sprintf("%s goes ahead although node %s is in scheduling again: foreshape took it out at %s and it was made eligible in Nomad since (an operator's choice stands), so replacements may land back on it",
						r.ID, c.nodeName(o.node), in.Closed.UTC().Format("15:04:05"))})
				continue
			}
			return &notOutError{o.node, fmt.Sprintf("its intent %s is announced and not done", o.in.ID)}
		case err != nil:
			return err
		}
		if out, _, err := c.ineligible(ctx, o.node); err != nil || !out {
			return &notOutError{o.node, "Nomad does not show it ineligible after the call"}
		}
	}
	return nil
}

// startHold starts a drain window's hold request (shape.WindowHold): it
// moves nothing, and its start takes the window's nodes out of scheduling
// (outNodes, from Exclude), as a window's first move does, each through
// the window's intent; a node already out (an operator's cordon) is left
// as it is and never given back. It is done once Nomad shows each out
// (settleHold); the window's end gives them back (restoreWindows).
func (c *Coordinator) startHold(ctx context.Context, now time.Time, r state.MigrationRequest) ([]state.Decision, error) {
	if c.paused() {
		return nil, errPausedStart
	}
	v := r.Version
	r.Moves, r.Moved = nil, state.Resources{}
	r.State, r.Started, r.Finished, r.OutWait = state.RequestRunning, now, time.Time{}, time.Time{}
	if _, err := c.apply(ctx, state.UpdateRequest{Request: r, IfVersion: v}); err != nil {
		return nil, fmt.Errorf("migrate: mark %s running: %w", r.ID, err)
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.started.Inc()
	}
	var ds []state.Decision
	return ds, c.settleHold(ctx, now, r, c.cfg.State.Act(), &ds)
}

// settleHold takes a running hold request's nodes out of scheduling (again
// after a leader change: each take-out is an intent) and finishes it once
// Nomad shows them all out; until then it waits as a move waits for its
// nodes (waitOut), and fails after its settle timeout.
func (c *Coordinator) settleHold(ctx context.Context, now time.Time, r state.MigrationRequest, view state.ActView, ds *[]state.Decision) error {
	err := c.keepOut(ctx, now, r, nil, ds)
	switch {
	case errors.Is(err, errNotOut):
		c.waitOut(ctx, now, r, err, ds)
		return nil
	case err != nil:
		c.retry(ctx, now, r.ID, err.Error(), ds)
		return err
	}
	c.finish(ctx, now, r, view, "", ds)
	return nil
}

// nodeName is a node's name and short ID from the view, else its ID.
func (c *Coordinator) nodeName(id string) string {
	if n := c.view.nodes[id]; n != nil {
		return fmt.Sprintf("%s (%s)", n.Name, shortID(id))
	}
	return id
}

// decisionName is how hold and restore decisions name a node: its name
// from the view, else (a node the view no longer holds: purged) the name
// it had when the view last held it, else its ID.
func (c *Coordinator) decisionName(id string) string {
	if n := c.view.nodes[id]; n != nil && n.Name != "" {
		return n.Name
	}
	if name := c.view.gone[id]; name != "" {
		return name
	}
	return id
}

// ineligible reads a node from Nomad (not the view, which may be a pass
// old) and reports whether nothing can be placed on it: ineligible (a
// draining node is, in Nomad), or gone; and the node's CreateIndex (0
// when gone).
func (c *Coordinator) ineligible(ctx context.Context, node string) (bool, uint64, error) {
	s, created, err := c.scheduling(ctx, node)
	switch {
	case isNotFound(err):
		return true, 0, nil
	case err != nil:
		return false, 0, err
	}
	return s != state.NodeWasEligible, created, nil
}

// scheduling reads a node from Nomad (afresh) and says how it stands for
// scheduling: state.NodeWasDraining, NodeWasIneligible or NodeWasEligible,
// with its CreateIndex (a take-out's intent records it: holdAgain).
// ineligible is made from it.
func (c *Coordinator) scheduling(ctx context.Context, node string) (string, uint64, error) {
	n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
	if err != nil {
		return "", 0, err
	}
	return schedulingOf(n), n.CreateIndex, nil
}

// schedulingOf is how n stands for scheduling (scheduling).
func schedulingOf(n *nomadapi.Node) string {
	switch {
	case n.DrainStrategy != nil:
		return state.NodeWasDraining
	case n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible:
		return state.NodeWasIneligible
	}
	return state.NodeWasEligible
}

// waitOut records that r's moves wait for a node to leave scheduling
// (OutWait, from the first pass that found one not out), logs and notes
// it (once per ten minutes), and fails the attempt once the wait has
// lasted longer than the move's settle timeout: a node that stays in
// scheduling that long (its eligibility call answered but not in effect,
// Nomad's node unreadable, an intent no leader gets done) would otherwise
// hold the request running, and its reservation, for good.
func (c *Coordinator) waitOut(ctx context.Context, now time.Time, r state.MigrationRequest, err error, ds *[]state.Decision) {
	since := r.OutWait
	if cur, ok := c.cfg.State.Request(r.ID); ok && !cur.OutWait.IsZero() {
		since = cur.OutWait
	}
	if since.IsZero() {
		since = now
		c.updateRequest(ctx, r.ID, func(x *state.MigrationRequest) bool {
			if x.State != state.RequestRunning || !x.OutWait.IsZero() {
				return false
			}
			x.OutWait = now
			return true
		})
	}
	if timeout := settleTimeout(r); now.Sub(since) > timeout {
		waited := now.Sub(since).Round(time.Second)
		why := fmt.Sprintf("no allocation stopped: waited %s for its nodes to leave scheduling, longer than the move's settle timeout %s: %s", waited, timeout, err)
		var no *notOutError
		if errors.As(err, &no) {
			name := no.node
			if n := c.view.nodes[no.node]; n != nil {
				name = fmt.Sprintf("%s (%s)", n.Name, shortID(n.ID))
			}
			why = fmt.Sprintf("no allocation stopped: node %s not seen out of scheduling for %s, longer than the move's settle timeout %s (%s)", name, waited, timeout, no.why)
		}
		c.retry(ctx, now, r.ID, why, ds)
		return
	}
	c.log.Info("move waits: a node it leaves is not out of scheduling yet", logKeyRequest, r.ID, logKeyError, err, "waiting_since", since.UTC().Format(time.RFC3339))
	c.note(ds, now, "notout/"+r.ID, state.Decision{Kind: shape.KindWait, Policy: r.Policy, Locality: r.Source, Request: r.ID,
		Reason: "wait: no allocation stopped: " + err.Error()})
}

// settleTimeout is how long a move may take from its first stop until its
// replacements run: three times its estimate, at least MinMoveTimeout. A
// move waiting for its nodes to leave scheduling gets as long.
func settleTimeout(r state.MigrationRequest) time.Duration {
	return max(3*r.Estimated, MinMoveTimeout)
}

// stopMoves hands over and stops up to n of the request's allocations not
// stopped yet, in order.
func (c *Coordinator) stopMoves(ctx context.Context, now time.Time, r state.MigrationRequest, moves []state.Move, n int, ds *[]state.Decision) error {
	res, hasRes := c.cfg.State.ReservationFor(r.ID)
	checked := false
	for _, m := range moves {
		if n <= 0 {
			return nil
		}
		if !m.Stopped.IsZero() || m.Done {
			continue
		}
		if !checked {
			// Nothing is stopped while a node its replacement must not
			// land on can still take it.
			if err := c.keepOut(ctx, now, r, moves, ds); err != nil {
				return err
			}
			checked = true
			if !r.OutWait.IsZero() {
				c.updateRequest(ctx, r.ID, func(x *state.MigrationRequest) bool {
					if x.OutWait.IsZero() {
						return false
					}
					x.OutWait = time.Time{}
					return true
				})
			}
		}
		if hasRes {
			if err := c.handOver(ctx, now, res, m.Size, m.Alloc, r.ID, r.Attempts); err != nil {
				return fmt.Errorf("hand-over of %s: %w", res.ID, err)
			}
		}
		if err := c.stopAlloc(ctx, now, m, r.ID, r.Attempts); err != nil {
			return err
		}
		alloc := m.Alloc
		c.updateMoves(ctx, r.ID, func(x *state.Move) {
			if x.Alloc == alloc && x.Stopped.IsZero() {
				x.Stopped = now
			}
		})
		n--
	}
	return nil
}

// transferSlots is how many more of r's allocations may start moving now:
// its source's and target's migrate.max_parallel less the transfers in
// flight through each (moves stopped and not done, r's own included), as
// the throttle of network localities counts them. A request moving a
// whole node's allocations thus moves them max_parallel at a time, and a
// request whose localities' slots other moves hold waits for them: the
// follower stops the next allocations as transfers end (max_parallel is
// at least 1, so nothing waits forever).
func (c *Coordinator) transferSlots(r state.MigrationRequest, view state.ActView) int {
	if r.Strategy == string(policies.StrategyDrain) {
		return len(r.Moves) // Nomad paces a drain by the jobs' migrate blocks
	}
	inflight := map[string]int{}
	own := 0
	for _, x := range view.Requests {
		if x.State != state.RequestRunning {
			continue
		}
		for _, m := range x.Moves {
			if m.Stopped.IsZero() || m.Done {
				continue
			}
			inflight[x.Source]++
			if x.Target != x.Source {
				inflight[x.Target]++
			}
			if x.ID == r.ID {
				own++
			}
		}
	}
	slots := len(r.Moves) - own
	for _, loc := range []string{r.Source, r.Target} {
		slots = min(slots, c.maxParallel(loc)-inflight[loc])
	}
	return max(slots, 0)
}

// maxParallel is the migrate.max_parallel of the policy of a locality
// path, or the default.
func (c *Coordinator) maxParallel(loc string) int {
	for _, p := range c.pols {
		if p.Locality.String() == loc && p.Migrate.MaxParallel > 0 {
			return p.Migrate.MaxParallel
		}
	}
	return policies.DefaultMaxParallel
}

// holdNodes takes the node of every queued whole-node request out of
// scheduling at once, as a drain does, so that the replacements of moves
// that start earlier do not land on a node that waits its turn. A node
// out of scheduling already, in the view or read afresh from Nomad just
// before, is left as it is (an operator's cordon is not foreshape's).
// A paused queue takes nothing out (paused, as holdWindows): the
// requests' nodes go out at the first pass after the resume. The pause is
// read before each node and again right before its call (pausedNote), so
// one applied during the pass holds the take-outs that follow it.
func (c *Coordinator) holdNodes(ctx context.Context, now time.Time, pols []*policies.Policy, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	dry := plannedDry(pols)
	for _, r := range c.cfg.State.Act().Requests {
		if c.paused() {
			return
		}
		if r.Resource.Kind != state.ResourceNode || shape.WindowHold(&r) || !r.State.Queued() || dry(r) {
			continue
		}
		if n, ok := c.view.nodes[r.Resource.ID]; ok && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible {
			continue
		}
		// The view may be a pass old: an operator's cordon since then is
		// not foreshape's to give back (as for the spread's cordon).
		var created uint64
		if !c.announced(intentID(state.IntentNodeEligibility, r.Resource.ID, r.ID, r.Attempts)) {
			out, cr, err := c.ineligible(ctx, r.Resource.ID)
			if err != nil || out {
				if err != nil {
					c.log.Warn("could not read a queued node to take it out of scheduling", logKeyRequest, r.ID, logKeyError, err)
				}
				continue
			}
			created = cr
		}
		err := c.takeOutUnless(ctx, now, r.Resource.ID, r, "ineligible", created, c.pausedNote)
		switch {
		case errors.Is(err, errAnnounced):
		case errors.Is(err, errWithheld):
			c.log.Info("queued node not taken out of scheduling: the queue was paused", logKeyRequest, r.ID)
			return
		case err != nil:
			c.log.Warn("could not take a queued node out of scheduling", logKeyRequest, r.ID, logKeyError, err)
		default:
			*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
				Reason: fmt.Sprintf("%s out of scheduling while %s waits to move its work to %s", r.Resource, r.ID, r.Target)})
		}
	}
}

// plannedDry reports, under pols, whether the planner plans a request
// dry: its own policy or its target's is forecast_only (the first policy
// shaping a locality governs it; a request without a policy, an
// operator's, goes by its source's). Such a request never starts, so it
// takes nothing out of scheduling either. A drain window's hold request
// (shape.WindowHold) moves nothing into its target, its own locality:
// only its own policy's forecast_only makes it dry, as in the planner.
func plannedDry(pols []*policies.Policy) func(r state.MigrationRequest) bool {
	dry, dryLoc := map[string]bool{}, map[string]bool{}
	for _, p := range pols {
		if p == nil {
			continue
		}
		dry[p.Name] = p.ForecastOnly
		if _, ok := dryLoc[p.Locality.String()]; !ok {
			dryLoc[p.Locality.String()] = p.ForecastOnly
		}
	}
	return func(r state.MigrationRequest) bool {
		if shape.WindowHold(&r) {
			return dry[r.Policy]
		}
		return dry[r.Policy] || dryLoc[r.Target] || r.Policy == "" && dryLoc[r.Source]
	}
}

// plannedDryNow is plannedDry of the current policies (c.pols), kept
// while they stay the same.
func (c *Coordinator) plannedDryNow() func(state.MigrationRequest) bool {
	if c.dry == nil || !slices.Equal(c.dryPols, c.pols) {
		c.dry, c.dryPols = plannedDry(c.pols), c.pols
	}
	return c.dry
}

// holdWindows takes the nodes of each drain window with a move queued out
// of scheduling at once, through the window's intents (outNodes), as the
// window's first move does at its start: from the window's lead time,
// when its requests are queued, whether or not their moves can start yet
// (max_parallel full, a reservation to wait for), Nomad places no new work
// on nodes about to go down. A paused queue takes nothing out (paused),
// as a window's hold request (shape.WindowHold: a window without a move
// queued) waits then: the window's nodes go out at the first pass after
// the resume. A node out of scheduling
// already, in the view or read afresh from Nomad just before, is left as
// it is (an operator's cordon is not foreshape's, and is never given
// back); one the window took out once is not taken again (eligible since,
// an operator's choice stands: keepOut says so when a move starts). The
// window's end gives back what it took (restoreWindows); a queued request
// of a forecast_only policy's window, planned dry, takes nothing out.
//
// As in holdNodes, the pause is read before each node and right before its
// call (pausedNote): one applied during the pass holds what follows it.
func (c *Coordinator) holdWindows(ctx context.Context, now time.Time, pols []*policies.Policy, ds *[]state.Decision) {
	if c.cfg.ForecastOnly {
		return
	}
	dry := plannedDry(pols)
	// Every request of a window's locality lists all its nodes
	// (Exclude): one of them a pass does for all.
	seen := map[string]bool{}
	for _, r := range c.cfg.State.Act().Requests {
		// A drain strategy's request of a node holds its node (holdNodes);
		// a hold request takes the window's out as it starts.
		if r.Origin != "schedule" || r.Deadline.IsZero() || !r.State.Queued() || r.Resource.Kind == state.ResourceNode ||
			seen[windowKey(r)+" "+r.Source] || dry(r) {
			continue
		}
		seen[windowKey(r)+" "+r.Source] = true
		if end, ok := c.windowEnd(r); !ok || !now.Before(end) {
			continue // its cancel comes with the planner's next pass
		}
		var took []string
		paused := false
		for _, o := range outNodes(r, r.Moves) {
			if paused = c.paused(); paused {
				break
			}
			if c.announced(o.in.ID) {
				continue
			}
			if n, ok := c.view.nodes[o.node]; !ok || n.Drain || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
				continue
			}
			out, created, err := c.ineligible(ctx, o.node)
			if err != nil || out {
				if err != nil {
					c.log.Warn("could not read a drain window's node to take it out of scheduling", logKeyRequest, r.ID, logKeyError, err)
				}
				continue
			}
			in := o.in
			in.NodeCreated = created
			err = c.doUnless(ctx, now, in, c.pausedNote, func(ctx context.Context) error {
				_, err := c.nomad.Nodes().ToggleEligibility(o.node, false, c.wq(ctx))
				return err
			})
			switch {
			case errors.Is(err, errAnnounced):
			case errors.Is(err, errWithheld):
				c.log.Info("drain window's node not taken out of scheduling: the queue was paused", logKeyRequest, r.ID)
				paused = true
			case err != nil:
				c.log.Warn("could not take a drain window's node out of scheduling", logKeyRequest, r.ID, logKeyError, err)
			default:
				took = append(took, c.decisionName(o.node))
			}
		}
		if len(took) > 0 {
			// One decision for the window's nodes taken out in this pass,
			// not one per node: a rack's would crowd the decision log.
			names := namedFew(took)
			*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
				Reason: fmt.Sprintf("%s %s out of scheduling for drain window %s as its requests are queued (%s), whether or not their moves can start yet; the window's end gives %s back",
					pick(len(took), "node", "nodes"), names, windowName(r), r.ID, pick(len(took), "it", "them"))})
		}
		if paused {
			return
		}
	}
}

// paused reports whether the queue is paused. A paused queue makes no
// new change that takes a node out of scheduling for a request that has
// not started: holdNodes and holdWindows take nothing out, and a window's
// hold request, a start, waits. What a request took out before the
// pause stays out. Give-backs, which return nodes to how they were, go
// on; only something that has started holds them back (held): a running
// move, a drain window begun, a started hold request. A queued request,
// which takes nothing out while the queue is paused, holds back no
// give-back then; it takes its nodes out at the first pass after the
// resume (docs/api.md, pause).
func (c *Coordinator) paused() bool { return c.cfg.State.QueuePaused() }

// pausedNote is why a take-out for a request that has not started is
// withheld right before its call (doUnless): the queue is paused on the
// state as of its intent, so a pause the log holds before the intent is
// never followed by the take-out; "" while the queue runs.
func (c *Coordinator) pausedNote() string {
	if c.paused() {
		return "not made: the queue was paused before the call"
	}
	return ""
}

// maxNamed is how many nodes a hold decision of holdWindows names; it
// counts the rest.
const maxNamed = 5

// cordon takes the nodes a spread moves work off out of scheduling while
// it runs (restoreSpreads gives them back). Nomad places a stopped
// allocation's replacement by its own scoring and gives the node a stopped
// (not failed) allocation left no penalty; with the job's anti-affinity
// that node, now holding one fewer of the group, often scores best, so a
// spread would land back where it started and leave the node as hot as
// before. A node already out of scheduling or draining (an operator's
// choice, a drain's), in the view or read afresh from Nomad just before,
// is left as it is and never given back; a node another running spread
// took out already is not taken twice. The intent records that the node
// was eligible before. A node that cannot be taken out is only logged:
// the move goes on.
func (c *Coordinator) cordon(ctx context.Context, now time.Time, r state.MigrationRequest, moves []state.Move, view state.ActView, ds *[]state.Decision) {
	var done []string
	for _, m := range moves {
		node := m.Node
		if slices.Contains(done, node) {
			continue
		}
		done = append(done, node)
		n, ok := c.view.nodes[node]
		if !ok || n.Drain || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || c.spreadHolds(view, node, r.ID) {
			continue
		}
		// The view may be a pass old: an operator's cordon since then is
		// not this spread's to give back.
		out, created, err := c.ineligible(ctx, node)
		if err != nil || out {
			if err != nil {
				c.log.Warn("could not read a node to take it out of scheduling while work spreads off it", "node", n.Name, logKeyRequest, r.ID, logKeyError, err)
			}
			continue
		}
		err = c.takeOut(ctx, now, node, r, spreadCordon+" (was eligible)", created)
		switch {
		case errors.Is(err, errAnnounced):
		case err != nil:
			c.log.Warn("could not take a node out of scheduling while work spreads off it", "node", n.Name, logKeyRequest, r.ID, logKeyError, err)
		default:
			*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
				Reason: fmt.Sprintf("cordoned %s while its spread runs (%s), so that Nomad places the replacement elsewhere", n.Name, r.ID)})
		}
	}
}

// spreadCordon begins the detail of a spread's cordon intent.
const spreadCordon = "ineligible while its work spreads"

// takeOut makes node ineligible for scheduling on behalf of request r
// (its current attempt) through a durable intent, which records created,
// the node's CreateIndex read just before (0: not read); errAnnounced
// when another leader or an earlier attempt opened that intent already.
func (c *Coordinator) takeOut(ctx context.Context, now time.Time, node string, r state.MigrationRequest, detail string, created uint64) error {
	return c.takeOutUnless(ctx, now, node, r, detail, created, nil)
}

// takeOutUnless is takeOut with doUnless's last check, stop.
func (c *Coordinator) takeOutUnless(ctx context.Context, now time.Time, node string, r state.MigrationRequest, detail string, created uint64, stop func() string) error {
	in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, r.ID, r.Attempts), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: node, Detail: detail, NodeCreated: created}
	return c.doUnless(ctx, now, in, stop, func(ctx context.Context) error {
		_, err := c.nomad.Nodes().ToggleEligibility(node, false, c.wq(ctx))
		return err
	})
}

// cordoned reports whether the spread r took node out of scheduling (in
// any attempt): a leader made the call and saw it answered. A cordon a
// later leader found in effect after its leader stopped (reconciled) does
// not count: an operator may have made the node ineligible after the
// intent and before a call that never came, and foreshape gives back only
// what it knows it took.
func (c *Coordinator) cordoned(r state.MigrationRequest, node string) bool {
	took, _ := c.tookOut(attemptIntents(node, r)...)
	return took
}

// attemptIntents are the IDs of the intents taking node out of scheduling
// for request r, one per attempt so far.
func attemptIntents(node string, r state.MigrationRequest) []string {
	return perAttempt(state.IntentNodeEligibility, node, r)
}

// perAttempt are the IDs of request r's intents of kind on node, one per
// attempt so far.
func perAttempt(kind state.IntentKind, node string, r state.MigrationRequest) []string {
	ids := make([]string, 0, r.Attempts+1)
	for a := 0; a <= r.Attempts; a++ {
		ids = append(ids, intentID(kind, node, r.ID, a))
	}
	return ids
}

// tookOut reads the intents ids (each through its redos) that take a node
// out of scheduling: took when a leader made one's call and saw it
// answered; unconfirmed when the only sign is one a later leader found in
// effect after its leader stopped (reconciled). Such a cordon is not
// foreshape's to give back: an operator may have made the node ineligible
// after the intent and before a call that never came, and Nomad cannot
// tell the two apart.
func (c *Coordinator) tookOut(ids ...string) (took, unconfirmed bool) {
	for _, id := range ids {
		in, ok := c.latestIntent(id)
		if !ok || in.Outcome != state.OutcomeDone {
			continue
		}
		if reconciled(in) {
			unconfirmed = true
		} else {
			took = true
		}
	}
	return took, unconfirmed && !took
}

// spreadHolds reports whether a spread other than except, not yet ended,
// moves work off node and took it out of scheduling.
func (c *Coordinator) spreadHolds(view state.ActView, node, except string) bool {
	for _, r := range view.Requests {
		if r.ID != except && !r.State.Terminal() && shape.Within(&r) && c.cordoned(r, node) {
			return true
		}
	}
	return false
}

// currentMoves reads what the request moves now: a node's live allocations
// at this moment; an allocation (or group) as queued, still live.
func (c *Coordinator) currentMoves(ctx context.Context, r *state.MigrationRequest) ([]state.Move, error) {
	if r.Resource.Kind == state.ResourceNode {
		allocs, _, err := c.nomad.Nodes().Allocations(r.Resource.ID, c.qo(ctx))
		if err != nil {
			return nil, fmt.Errorf("migrate: allocations of node %s: %w", r.Resource.ID, err)
		}
		var out []state.Move
		for _, a := range allocs {
			if a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.ClientStatus == nomadapi.AllocClientStatusComplete ||
				a.ClientStatus == nomadapi.AllocClientStatusFailed || a.ClientStatus == nomadapi.AllocClientStatusLost {
				continue
			}
			if shape.Placeholder(a.JobID) || (a.Job != nil && (deref(a.Job.Type) == nomadapi.JobTypeSystem || deref(a.Job.Type) == nomadapi.JobTypeSysbatch)) {
				continue
			}
			out = append(out, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.JobID, Group: a.TaskGroup,
				Node: a.NodeID, Size: allocSize(a.AllocatedResources)})
		}
		return out, nil
	}
	return r.Moves, nil
}

// endedJobs says why moves' jobs no longer run, when one was stopped or
// purged since the request was queued (by someone else: nothing would
// replace its allocations); "" when all run.
func (c *Coordinator) endedJobs(ctx context.Context, moves []state.Move) (string, error) {
	seen := map[string]bool{}
	for _, m := range moves {
		key := m.Namespace + "/" + m.Job
		if m.Job == "" || seen[key] {
			continue
		}
		seen[key] = true
		how, err := c.jobEnded(ctx, m)
		if err != nil {
			return "", err
		}
		if how != "" {
			return fmt.Sprintf("job %s was %s since the request was queued", m.Job, how), nil
		}
	}
	return "", nil
}

// collected splits moves into those whose allocation Nomad still holds
// and the names of those it no longer does: collected, once ended (a
// running allocation is never collected). An allocation the view does
// not list is read to tell.
func (c *Coordinator) collected(ctx context.Context, moves []state.Move) (live []state.Move, gone []string, err error) {
	for _, m := range moves {
		if c.view.allocs[m.Alloc] == nil {
			q := c.qo(ctx)
			if m.Namespace != "" {
				q.Namespace = m.Namespace
			}
			_, _, err := c.nomad.Allocations().Info(m.Alloc, q)
			switch {
			case isNotFound(err):
				name := shortID(m.Alloc)
				if m.Name != "" {
					name = fmt.Sprintf("%s (%s)", m.Name, shortID(m.Alloc))
				}
				gone = append(gone, name)
				continue
			case err != nil:
				return nil, nil, fmt.Errorf("migrate: read allocation %s: %w", m.Alloc, err)
			}
		}
		live = append(live, m)
	}
	return live, gone, nil
}

// jobEnded reads m's job from Nomad and says how it ended: "stopped",
// "purged", or "" while it runs.
func (c *Coordinator) jobEnded(ctx context.Context, m state.Move) (string, error) {
	q := c.qo(ctx)
	if m.Namespace != "" {
		q.Namespace = m.Namespace
	}
	j, _, err := c.nomad.Jobs().Info(m.Job, q)
	switch {
	case isNotFound(err):
		return "purged", nil
	case err != nil:
		return "", fmt.Errorf("migrate: read job %s: %w", m.Job, err)
	case deref(j.Stop):
		return "stopped", nil
	}
	return "", nil
}

// stopAlloc stops one allocation so that Nomad reschedules it, unless Nomad
// already stops it.
func (c *Coordinator) stopAlloc(ctx context.Context, now time.Time, m state.Move, request string, attempt int) error {
	a, _, err := c.nomad.Allocations().Info(m.Alloc, c.qo(ctx))
	if err != nil {
		return fmt.Errorf("read allocation %s: %w", m.Alloc, err)
	}
	if alreadyMoving(a.DesiredStatus, a.ClientStatus, a.NextAllocation, a.DesiredTransition.ShouldMigrate()) {
		return nil // already stopping, migrating or replaced: never stop twice
	}
	in := state.Intent{ID: intentID(state.IntentStopAlloc, m.Alloc, request, attempt), Kind: state.IntentStopAlloc,
		Request: request, Object: m.Alloc, Detail: m.Name}
	err = c.do(ctx, now, in, func(ctx context.Context) error {
		_, err := c.nomad.Allocations().Stop(a, c.qo(ctx))
		return err
	})
	if errors.Is(err, errAnnounced) {
		return nil
	}
	return err
}

// alreadyMoving reports whether Nomad already stops, migrates or has
// replaced an allocation, from its desired and client status, its
// NextAllocation and DesiredTransition.Migrate, so that it is never
// stopped twice. Not one Nomad replaced while its node was disconnected
// (client status unknown): when the node comes back, Nomad runs the
// original again and stops that replacement, unless the original was
// stopped (marked to migrate), so it is stopped all the same; nor one that
// came back so (running again, its NextAllocation still naming the
// replacement Nomad stopped).
func alreadyMoving(desired, client, next string, migrate bool) bool {
	if desired != nomadapi.AllocDesiredStatusRun || migrate {
		return true
	}
	if next == "" {
		return false
	}
	switch client {
	case nomadapi.AllocClientStatusUnknown, nomadapi.AllocClientStatusRunning, nomadapi.AllocClientStatusPending:
		return false
	}
	return true
}

// addAffinity steers the group's replacements to the target's datacenter
// with a job update.
func (c *Coordinator) addAffinity(ctx context.Context, now time.Time, r *state.MigrationRequest) error {
	loc, err := policies.ParseLocality(r.Target)
	if err != nil {
		return err
	}
	groups := map[string]bool{}
	job := ""
	for _, m := range r.Moves {
		groups[m.Group], job = true, m.Job
	}
	if job == "" {
		return nil
	}
	j, _, err := c.nomad.Jobs().Info(job, c.qo(ctx))
	if err != nil {
		return fmt.Errorf("read job %s: %w", job, err)
	}
	changed := false
	var weight int8 = 100
	for _, tg := range j.TaskGroups {
		if !groups[deref(tg.Name)] {
			continue
		}
		for _, want := range []struct{ attr, value string }{{"${node.datacenter}", loc.Datacenter}, {"${node.class}", loc.NodeClass}, {"${node.pool}", loc.NodePool}} {
			if want.value == "" {
				continue
			}
			have := false
			for _, a := range tg.Affinities {
				if a != nil && a.LTarget == want.attr && a.RTarget == want.value {
					have = true
				}
			}
			if !have {
				tg.Affinities = append(tg.Affinities, &nomadapi.Affinity{LTarget: want.attr, RTarget: want.value, Operand: "=", Weight: &weight})
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	in := state.Intent{ID: intentID(state.IntentUpdateJob, job, r.ID, r.Attempts), Kind: state.IntentUpdateJob, Request: r.ID,
		Object: job, Detail: "affinity to " + r.Target}
	err = c.do(ctx, now, in, func(ctx context.Context) error {
		_, _, err := c.nomad.Jobs().Register(j, c.wq(ctx))
		return err
	})
	if errors.Is(err, errAnnounced) {
		return nil
	}
	return err
}

// updateMoves changes a request's moves, compare-and-set.
func (c *Coordinator) updateMoves(ctx context.Context, id string, change func(m *state.Move)) {
	c.updateRequest(ctx, id, func(r *state.MigrationRequest) bool {
		for i := range r.Moves {
			change(&r.Moves[i])
		}
		return true
	})
}

// updateRequest applies change to a request, compare-and-set, retrying a
// few times when it lost a race; change returns false to skip.
func (c *Coordinator) updateRequest(ctx context.Context, id string, change func(r *state.MigrationRequest) bool) {
	for range 3 {
		r, ok := c.cfg.State.Request(id)
		if !ok {
			return
		}
		v := r.Version
		if !change(&r) {
			return
		}
		_, err := c.apply(ctx, state.UpdateRequest{Request: r, IfVersion: v})
		if err == nil {
			return
		}
		if !errors.Is(err, state.ErrStaleVersion) {
			c.log.Warn("could not update a request", logKeyRequest, id, logKeyError, err)
			return
		}
	}
}

// pend puts r back in the queue: pending, not started, and its moves not
// done yet not stopped either.
func pend(r *state.MigrationRequest) {
	r.State, r.Started, r.OutWait = state.RequestPending, time.Time{}, time.Time{}
	for i := range r.Moves {
		if !r.Moves[i].Done {
			r.Moves[i].Stopped = time.Time{}
		}
	}
}

// retry puts a request whose move failed back in the queue under its next
// attempt, or fails it after MaxAttempts.
func (c *Coordinator) retry(ctx context.Context, now time.Time, id, why string, ds *[]state.Decision) {
	var final state.MigrationRequest
	c.updateRequest(ctx, id, func(r *state.MigrationRequest) bool {
		if r.State.Terminal() {
			return false
		}
		r.Attempts++
		if r.Attempts >= MaxAttempts {
			r.State, r.Finished = state.RequestFailed, now
			r.Reason = fmt.Sprintf("failed after %d attempts: %s", r.Attempts, why)
		} else {
			pend(r)
			r.Reason = fmt.Sprintf("attempt %d of %d failed, retrying: %s", r.Attempts, MaxAttempts, why)
		}
		final = *r
		return true
	})
	if final.ID == "" {
		return
	}
	kind := "retry"
	if final.State == state.RequestFailed {
		kind = "fail"
		if c.cfg.Metrics != nil {
			c.cfg.Metrics.finished.WithLabelValues("failed").Inc()
		}
		if res, ok := c.cfg.State.ReservationFor(id); ok {
			if err := c.release(ctx, now, res, "its move failed: "+why); err != nil {
				c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
			}
		}
	}
	*ds = append(*ds, state.Decision{Time: now, Kind: kind, Policy: final.Policy, Locality: final.Source, Request: id, Reason: final.Reason})
}

// readAtMax reads again the targets of the scale blocks last found at
// their max (atMax) and returns those still there, for the planner to pass
// over (shape.Input.AtMax): a block whose target has come below its max
// (an operator scaled it in, a scale-down), or whose count cannot be read,
// or which the policies no longer have, is tried again. It returns too
// the blocks whose latest action asked their max, within its hold
// (shape.AskedMax), and whose target cannot tell its count (webhook,
// exec: their status answers without I/O), with that action
// (shape.Input.MaxAsked): foreshape's own record is all it knows of
// them, and it is in the replicated state, so a new leader passes them
// over as the last did. A target that tells its count is passed over
// only once a read showed it at its max (the one before an action, then
// these), whatever its last action asked, and is not read for it once a
// status told its count (tellsCount). One read per such block a pass.
func (c *Coordinator) readAtMax(ctx context.Context, now time.Time, view state.ActView, pols []*policies.Policy) (map[string]int, map[string]state.ScaleAction) {
	out, maxAsked := map[string]int{}, map[string]state.ScaleAction{}
	for _, p := range pols {
		for i := range p.Scales {
			block := &p.Scales[i]
			key := state.CooldownKey(p.Name, block.Name)
			_, was := c.atMax[key]
			a, _, asked := shape.AskedMax(view.ScaleActions, p.Name, block, now)
			if !was && (!asked || c.tellsCount[key] == block.Target.Plugin) {
				continue
			}
			t, err := c.target(p, block)
			if err != nil {
				continue
			}
			st, err := t.Status(ctx)
			if err == nil {
				c.toldCount(key, block, st)
			}
			switch {
			case err != nil:
			case st.CountKnown && was && st.Count >= block.Max:
				out[key] = st.Count
			case !st.CountKnown && asked:
				maxAsked[key] = a
			}
		}
	}
	c.atMax = out
	return maps.Clone(out), maxAsked
}

// toldCount records whether the status of block's target told its count.
func (c *Coordinator) toldCount(key string, block *policies.Scale, st target.Status) {
	if st.CountKnown {
		c.tellsCount[key] = block.Target.Plugin
	} else {
		delete(c.tellsCount, key)
	}
}

// scale issues a scale action: its record, then its intent and the call,
// in the background unless SyncScale.
func (c *Coordinator) scale(ctx context.Context, now time.Time, sc shape.Scale, pols []*policies.Policy, ds *[]state.Decision) bool {
	var pol *policies.Policy
	var block *policies.Scale
	for _, p := range pols {
		if p.Name == sc.Policy {
			pol = p
			for i := range p.Scales {
				if p.Scales[i].Name == sc.Scale {
					block = &p.Scales[i]
				}
			}
		}
	}
	if block == nil {
		return false
	}
	t, err := c.target(pol, block)
	if err != nil {
		c.log.Warn("scale target unavailable", logKeyPolicy, sc.Policy, "scale", sc.Scale, logKeyError, err)
		return true
	}
	var count int
	before := -1 // the target's count before the action; -1: unknown
	st, err := t.Status(ctx)
	if err == nil {
		c.toldCount(state.CooldownKey(sc.Policy, sc.Scale), block, st)
	}
	if err == nil && st.CountKnown {
		before = st.Count
		if c.lostAnswerFound(ctx, now, sc, block, st.Count, ds) {
			return false
		}
		if st.Count >= block.Max {
			c.atMax[state.CooldownKey(sc.Policy, sc.Scale)] = st.Count
			c.note(ds, now, "max/"+sc.Policy+"/"+sc.Scale, state.Decision{Kind: "scale", Policy: sc.Policy, Locality: sc.Locality, Request: sc.Request,
				Reason: fmt.Sprintf("scale %q is at its max %d: no more capacity from it; %s", sc.Scale, block.Max, sc.Reason)})
			return false
		}
		delete(c.atMax, state.CooldownKey(sc.Policy, sc.Scale))
		count = st.Count + sc.Amount
	} else {
		// Targets that cannot tell their count start from the last count
		// foreshape set, else from min.
		count = block.Min + sc.Amount
		last := -1
		for _, a := range c.cfg.State.Act().ScaleActions {
			if a.Policy == sc.Policy && a.Scale == sc.Scale && a.Outcome == state.OutcomeDone && a.Count > 0 {
				count, last = a.Count+sc.Amount, a.Count
			}
		}
		if err != nil && last >= 0 {
			// A target that reads its count (nomad-job) could not: the
			// count foreshape last set may be long out of date (the
			// cluster's autoscaler or an operator scaled in since), and
			// the target, reading a count below it, set that count (3 →
			// 9 for a need of one). The next pass reads again.
			n := len(*ds)
			c.note(ds, now, "unread/"+sc.Policy+"/"+sc.Scale, state.Decision{Kind: "scale", Policy: sc.Policy, Locality: sc.Locality, Request: sc.Request,
				Reason: fmt.Sprintf("scale %q not issued: its count could not be read (%v), and the count foreshape last set it to (%d) may be out of date; "+
					"tried again at the next pass; %s", sc.Scale, err, last, sc.Reason)})
			if len(*ds) > n {
				c.log.Warn("a scale target's count could not be read: no action until it can be", logKeyPolicy, sc.Policy, "scale", sc.Scale, logKeyError, err)
			}
			return false
		}
	}
	count = min(max(count, block.Min), block.Max)
	rec := state.ScaleAction{Policy: sc.Policy, Scale: sc.Scale, Plugin: sc.Plugin, Locality: sc.Locality, Direction: sc.Direction,
		Amount: sc.Amount, Count: count, Reason: sc.Reason, Request: sc.Request, At: now, NeededBy: sc.NeededBy.UTC()}
	r, err := c.apply(ctx, state.RecordScaleAction{Action: rec})
	if err != nil {
		c.log.Warn("could not record a scale action", logKeyError, err)
		return true
	}
	rec.ID = r.ID
	act := target.Action{ID: rec.ID, Policy: sc.Policy, Scale: sc.Scale, Locality: sc.Locality, Direction: target.Up,
		Amount: sc.Amount, Count: count, Min: block.Min, Max: block.Max, Reason: sc.Reason, Time: now}
	run := func(ctx context.Context) {
		var res target.Result
		in := state.Intent{ID: scaleIntentID(rec), Kind: state.IntentScaleTarget,
			Object: state.CooldownKey(sc.Policy, sc.Scale), Request: sc.Request, Detail: fmt.Sprintf("%s to %d", sc.Plugin, count)}
		err := c.do(ctx, now, in, func(ctx context.Context) error {
			var err error
			res, err = t.Scale(ctx, act)
			if err != nil && !errors.Is(err, target.ErrRefused) && before >= 0 && before != count && ctx.Err() == nil {
				// No answer in time, or a failure the target's own
				// call may have outlived (Nomad made the change and
				// lost its answer): read the target back. Showing the
				// count asked for, where it showed another before, the
				// action took effect; recorded failed, no cooldown ran
				// and the next action scaled on top of it.
				if st, serr := t.Status(ctx); serr == nil && st.CountKnown && st.Count == count {
					c.log.Warn("a scale target answered with an error, yet shows the count asked for: recorded as done",
						logKeyPolicy, sc.Policy, "scale", sc.Scale, "count", count, logKeyError, err)
					res.Count = count
					res.Notes = append(res.Notes, fmt.Sprintf("the target answered %q, yet shows count %d, the count asked for: the action took effect", err, count))
					return nil
				}
			}
			return err
		})
		// The target answers when the scale took effect, which may be
		// long after now (a nomad-job target refused during a deployment
		// tries again once it ends): the cooldown runs from then.
		rec.Finished, rec.Attempts = c.stamp(ctx, now), res.Attempts
		if res.Count > 0 {
			rec.Count = res.Count
		}
		switch {
		case err == nil:
			rec.Outcome, rec.TookEffect = state.OutcomeDone, rec.Finished
			c.mu2(func() { c.leads[rec.ID] = leadWatch{pol: sc.Policy, scale: sc.Scale, at: now} })
		case errors.Is(err, errAnnounced):
			return
		default:
			rec.Outcome, rec.Error = state.OutcomeFailed, err.Error()
		}
		if len(res.Notes) > 0 {
			rec.Reason = sc.Reason + " — " + fmt.Sprint(res.Notes)
		}
		if _, err := c.apply(context.WithoutCancel(ctx), state.RecordScaleAction{Action: rec}); err != nil {
			c.log.Warn("could not record a scale outcome", logKeyError, err)
		}
		if c.cfg.Metrics != nil {
			c.cfg.Metrics.scales.WithLabelValues(sc.Policy, sc.Scale, string(rec.Outcome)).Inc()
		}
		c.log.Info("scale action", logKeyPolicy, sc.Policy, "scale", sc.Scale, "count", count, "outcome", rec.Outcome, logKeyError, rec.Error)
		if rec.Outcome == state.OutcomeFailed && !c.failedAlike(rec) {
			// The decision log said the scale was decided; it says it
			// failed too, where only the agent's log and a metric did:
			// once while it fails alike (a cloud out of capacity for
			// hours is tried again every back-off), not at each try.
			c.record(context.WithoutCancel(ctx), []state.Decision{{Time: rec.Finished, Kind: "scale", Policy: sc.Policy, Locality: sc.Locality, Request: sc.Request,
				Reason: fmt.Sprintf("scale %q up by %d to %d failed (%s): %s; no cooldown starts, and it is planned again after a back-off while the need lasts "+
					"(while it fails alike, the agent's log alone says so)", sc.Scale, sc.Amount, count, rec.ID, rec.Error)}})
		}
	}
	if c.cfg.SyncScale {
		run(ctx)
		return true
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		run(ctx)
	}()
	return true
}

// lostAnswerFound reports whether the latest action of sc's block failed
// (timed out, or failed, not refused: the target was called and may have
// acted) asking the count its target shows now, and if so records it done:
// its answer was lost, and the read back right after it failed too.
// Its cooldown runs from now, the latest it can have taken effect, and
// no new action is issued for the need it was for. Recorded failed, the
// next action scaled on top of the count it had set. Only an action that
// answered within the block's cooldown (at least its back-off) is read
// so: a count shown long after may be anyone's.
func (c *Coordinator) lostAnswerFound(ctx context.Context, now time.Time, sc shape.Scale, block *policies.Scale, count int, ds *[]state.Decision) bool {
	acts := c.cfg.State.Act().ScaleActions
	var last *state.ScaleAction
	for i := len(acts) - 1; i >= 0 && last == nil; i-- {
		if acts[i].Policy == sc.Policy && acts[i].Scale == sc.Scale {
			last = &acts[i]
		}
	}
	if last == nil || last.Outcome != state.OutcomeFailed || last.Count <= 0 || last.Count != count ||
		now.Sub(last.Finished) > max(block.Cooldown, shape.FailedScaleBackoff(block.Cooldown)) {
		return false
	}
	if e := targetError(*last); !strings.Contains(e, " target: "+target.Timeout.String()+": ") && !strings.Contains(e, " target: "+target.Failed.String()+": ") {
		return false
	}
	a := *last
	note := fmt.Sprintf("the target answered %q, yet showed count %d, the count asked for, when read at %s: the action took effect", targetError(a), count, now.Format(time.RFC3339))
	a.Outcome, a.TookEffect, a.Error = state.OutcomeDone, now, ""
	a.Reason += " — " + note
	if _, err := c.apply(ctx, state.RecordScaleAction{Action: a}); err != nil {
		c.log.Warn("could not record a scale action found done", logKeyError, err)
		return false
	}
	c.log.Warn("a scale target that answered with an error shows the count asked for: recorded as done",
		logKeyPolicy, sc.Policy, "scale", sc.Scale, "action", a.ID, "count", count)
	*ds = append(*ds, state.Decision{Time: now, Kind: "scale", Policy: sc.Policy, Locality: a.Locality, Request: a.Request,
		Reason: fmt.Sprintf("scale %q up by %d to %d (%s), recorded failed, took effect after all: its target answered %q, yet shows count %d now; "+
			"its cooldown runs from now, and no new action is issued for %s", sc.Scale, a.Amount, a.Count, a.ID, targetError(*last), count, sc.Locality)})
	return true
}

// failedAlike reports whether the scale block's action before rec, which
// failed, failed too, with the same error from its target.
func (c *Coordinator) failedAlike(rec state.ScaleAction) bool {
	var prev *state.ScaleAction
	acts := c.cfg.State.Act().ScaleActions
	for i := range acts {
		if a := &acts[i]; a.Policy == rec.Policy && a.Scale == rec.Scale && a.ID != rec.ID && a.Outcome != "" {
			prev = a
		}
	}
	return prev != nil && prev.Outcome == state.OutcomeFailed && targetError(*prev) == targetError(rec)
}

// scaleIntentID names the intent a scale action's target call is made
// under.
func scaleIntentID(a state.ScaleAction) string {
	return intentID(state.IntentScaleTarget, state.CooldownKey(a.Policy, a.Scale), a.ID, 0)
}

// targetError is a failed scale action's error without the prefix do
// wraps it in ("migrate: INTENT: "), which names the action.
func targetError(a state.ScaleAction) string {
	return strings.TrimPrefix(a.Error, "migrate: "+scaleIntentID(a)+": ")
}

// mu2 runs f under the lock of what scale goroutines share.
func (c *Coordinator) mu2(f func()) {
	c.smu.Lock()
	defer c.smu.Unlock()
	f()
}

// sameTarget reports whether two target blocks configure the same
// target: the same plugin and equal settings, by the settings' own Equal
// when they have one (a webhook's parsed body template holds functions,
// which no two parses share), else field by field.
func sameTarget(a, b policies.Target) bool {
	if a.Plugin != b.Plugin {
		return false
	}
	if e, ok := a.Config.(interface{ Equal(any) bool }); ok {
		return e.Equal(b.Config)
	}
	return reflect.DeepEqual(a.Config, b.Config)
}

// builtTarget is a scale block's runtime and the target block it was
// built from.
type builtTarget struct {
	target.Target
	spec policies.Target
}

// target returns a scale block's runtime, built once for each target
// block: a reload that changes the block under the same policy and scale
// names (a webhook's url, a nomad-job's job or group, an exec's command)
// builds it again. Kept by names alone, the agent logged "reloaded" and
// scaled through the old target until a restart.
func (c *Coordinator) target(pol *policies.Policy, sc *policies.Scale) (target.Target, error) {
	key := state.CooldownKey(pol.Name, sc.Name)
	c.smu.Lock()
	defer c.smu.Unlock()
	if t, ok := c.targets[key]; ok && sameTarget(t.spec, sc.Target) {
		return t.Target, nil
	}
	var t target.Target
	var err error
	if c.cfg.Targets != nil {
		t, err = c.cfg.Targets(pol, sc)
	} else {
		env := c.cfg.TargetEnv
		if env.Nomad == nil {
			env.Nomad = c.nomad
		}
		if env.Logger == nil {
			env.Logger = c.log.Named("target")
		}
		t, err = target.New(sc.Target.Plugin, sc.Target.Config, env)
	}
	if err != nil {
		return nil, err
	}
	c.targets[key] = builtTarget{Target: t, spec: sc.Target}
	return t, nil
}
