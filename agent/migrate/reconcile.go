package migrate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Begin starts a leadership term: before anything new, every intent a
// previous leader left open is checked against Nomad and closed as done
// (its effect is there) or not done, and the requests and reservations it
// belongs to are put right: a move whose stop happened is followed, one
// whose stop did not is queued again under its next attempt. A scale
// target's call is read back at the term's first pass instead, which
// knows the policies and so the target (settleUnreadScales); its block
// takes no action until then.
func (c *Coordinator) Begin(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now = now.UTC()
	// The policies of this process's last pass may be a term old (a
	// reload since, while another server led): the follower waits for
	// the term's first plan (planned).
	c.planned = false
	if err := c.ensureCluster(ctx); err != nil {
		return err
	}
	open := c.cfg.State.Act().OpenIntents
	var ds []state.Decision
	clear(c.unreadScales)
	for _, in := range open {
		if in.Kind == state.IntentScaleTarget {
			c.unreadScales[in.ID] = true
			continue
		}
		happened, err := c.happened(ctx, in)
		if err != nil {
			return fmt.Errorf("migrate: reconcile intent %s: %w", in.ID, err)
		}
		outcome := state.OutcomeNotDone
		if happened {
			outcome = state.OutcomeDone
		}
		if _, err := c.apply(ctx, state.CloseIntent{ID: in.ID, Outcome: outcome, At: now,
			Error: reconciledNote}); err != nil {
			return fmt.Errorf("migrate: close intent %s: %w", in.ID, err)
		}
		c.log.Info("reconciled an open intent", logKeyIntent, in.ID, "outcome", outcome)
		ds = append(ds, state.Decision{Time: now, Kind: "reconcile", Request: in.Request, Reservation: in.Reservation,
			Reason: fmt.Sprintf("intent %s left open by leader %s: %s in Nomad", in.ID, in.Leader, map[bool]string{true: "its effect is there", false: "no sign of its effect"}[happened])})
		c.settle(ctx, now, in, happened, &ds)
	}
	c.settlePlanned(ctx, now, true, &ds)
	c.record(ctx, ds)
	return nil
}

// settleUnreadScales closes the scale calls a previous leader left open
// (Begin), at the term's first pass, whose policies tell each block's
// target. A target that tells its count (nomad-job) is read: showing the
// count the action asked for or more, the action is done, its cooldown
// running from now (when it took effect is unknown, now is the latest it
// can have); showing less, the call never took effect (its leader
// stopped before it made it, or while it waited a deployment out), and
// the action is recorded not done: no cooldown, and the planner decides
// again in this very pass. Counted done, as it was, the block stayed
// quiet for a whole cooldown with the capacity never asked for. A target
// that cannot tell its count (webhook, exec), or whose read fails or
// whose block is gone, is counted done as before: no second action
// follows inside the cooldown.
func (c *Coordinator) settleUnreadScales(ctx context.Context, now time.Time, pols []*policies.Policy, ds *[]state.Decision) {
	if len(c.unreadScales) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(c.unreadScales))
	clear(c.unreadScales)
	for _, id := range ids {
		in, ok := c.cfg.State.Intent(id)
		if !ok || !in.Open() {
			continue
		}
		happened, note := c.scaleHappened(ctx, in, pols)
		outcome := state.OutcomeNotDone
		if happened {
			outcome = state.OutcomeDone
		}
		if _, err := c.apply(ctx, state.CloseIntent{ID: in.ID, Outcome: outcome, At: now, Error: reconciledNote}); err != nil {
			c.log.Warn("could not close a scale call left open by the previous leader; tried again at the next pass", logKeyIntent, in.ID, logKeyError, err)
			c.unreadScales[id] = true
			continue
		}
		c.log.Info("reconciled an open intent", logKeyIntent, in.ID, "outcome", outcome)
		*ds = append(*ds, state.Decision{Time: now, Kind: "reconcile", Request: in.Request,
			Reason: fmt.Sprintf("intent %s left open by leader %s: %s", in.ID, in.Leader, note)})
		c.settleScale(ctx, now, in, happened, note)
	}
}

// ofAction reports whether in is a's target call (scaleIntentID, or a
// redo of it).
func ofAction(in state.Intent, a state.ScaleAction) bool {
	return strings.Contains(in.ID, "/"+a.ID+"#")
}

// scaleHappened reads a scale call's target back (settleUnreadScales):
// whether it took effect, and what says so.
func (c *Coordinator) scaleHappened(ctx context.Context, in state.Intent, pols []*policies.Policy) (bool, string) {
	const unknown = "outcome unknown: the previous leader stopped while it ran; counted as done"
	var asked int
	for _, a := range c.cfg.State.Act().ScaleActions {
		if a.Outcome == "" && ofAction(in, a) {
			asked = a.Count
		}
	}
	var pol *policies.Policy
	var block *policies.Scale
	for _, p := range pols {
		for i := range p.Scales {
			if state.CooldownKey(p.Name, p.Scales[i].Name) == in.Object {
				pol, block = p, &p.Scales[i]
			}
		}
	}
	if asked <= 0 || block == nil {
		return true, unknown
	}
	t, err := c.target(pol, block)
	if err != nil {
		return true, unknown
	}
	st, err := t.Status(ctx)
	if err != nil || !st.CountKnown {
		return true, unknown
	}
	if st.Count >= asked {
		return true, fmt.Sprintf("its target shows count %d, the count %d asked for or more: counted as done", st.Count, asked)
	}
	return false, fmt.Sprintf("its target shows count %d, below the count %d asked for: the previous leader stopped before the call took effect; not done, planned again", st.Count, asked)
}

// settlePlanned puts right the reservations left planned. Planned lasts
// only within place, which announces the placeholder's registration right
// after recording it and marks the reservation held (or released) right
// after the call, so no reservation is planned when a term begins unless
// its leader stopped in between, nor at the start of a pass unless one of
// place's state updates failed: the pass that placed it has ended (RunOnce,
// Follow and Begin serialise on c.mu, and only place, inside RunOnce,
// records a reservation planned), so none is half placed.
// One whose registration is done (its leader stopped, or its update
// failed, before marking it) is held, from the registration on. One with
// no registration announced (its leader stopped, or recording the intent
// failed, before it) has nothing in Nomad, nor, as far as can be told, one
// whose registration ended without its effect (should a placeholder
// exist, the reaper removes it once its reservation is released): it is
// released, and the planner places a new one if the request still needs
// it, through its own intent. One whose registration is still open is
// left: its call's outcome is not recorded (Begin reads it from Nomad at
// the next term). It is not registered here: the placeholder's priority
// is the policy's, which a new leader may not have read yet, and the plan
// may have changed since. Left planned, it was neither registered nor
// released until reserve.ttl, and the request behind it waited,
// reserving, as long. term says whether a term begins (Begin) or a pass
// of the leader runs (RunOnce), for the reason.
func (c *Coordinator) settlePlanned(ctx context.Context, now time.Time, term bool, ds *[]state.Decision) {
	for _, res := range c.cfg.State.Act().Reservations {
		if res.State != state.ReservationPlanned {
			continue
		}
		in, ok := c.latestIntent(intentID(state.IntentRegisterHold, res.Job, res.Request, 0))
		if ok && in.Open() {
			continue
		}
		if ok && in.Outcome == state.OutcomeDone {
			c.markReservation(ctx, res.ID, func(r *state.Reservation) {
				if r.State == state.ReservationPlanned {
					r.State, r.Placed = state.ReservationHeld, in.Opened
				}
			})
			if !term {
				c.log.Info("reservation left planned after its placeholder was registered (marking it held failed): held", logKeyReservation, res.ID,
					logKeyRequest, res.Request, "job", res.Job)
			}
			continue
		}
		var why string
		switch {
		case term:
			why = fmt.Sprintf("release %s in %s: its placeholder was never registered (the leader that planned it stopped before it did); the planner places a new one if %s still needs it", res.ID, res.Locality, res.Request)
		case ok:
			why = fmt.Sprintf("release %s in %s: its placeholder was not registered (%s: %s) and marking it released failed; the planner places a new one if %s still needs it", res.ID, res.Locality, in.Outcome, in.Error, res.Request)
		default:
			why = fmt.Sprintf("release %s in %s: its placeholder was never registered (announcing its registration failed); the planner places a new one if %s still needs it", res.ID, res.Locality, res.Request)
		}
		c.markReservation(ctx, res.ID, func(r *state.Reservation) {
			if r.State == state.ReservationPlanned {
				r.State, r.Reason, r.Until = state.ReservationReleased, why, now
			}
		})
		*ds = append(*ds, state.Decision{Time: now, Kind: "release", Policy: res.Policy, Locality: res.Locality, Request: res.Request, Reservation: res.ID, Reason: why})
	}
}

// reconciledNote closes the intents a new leader reconciled: their
// outcome is read from Nomad, not seen by the leader that made the call.
const reconciledNote = "reconciled by the next leader"

// reconciled reports whether in's outcome was read from Nomad by a later
// leader (Begin) rather than seen by the leader that made the call.
func reconciled(in state.Intent) bool { return in.Error == reconciledNote }

// happened reads Nomad to tell whether an intent's effect took place.
func (c *Coordinator) happened(ctx context.Context, in state.Intent) (bool, error) {
	switch in.Kind {
	case state.IntentStopAlloc:
		a, _, err := c.nomad.Allocations().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return alreadyMoving(a.DesiredStatus, a.ClientStatus, a.NextAllocation, a.DesiredTransition.ShouldMigrate()), nil
	case state.IntentDrainNode:
		n, _, err := c.nomad.Nodes().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			// The node was purged since: nothing of it is left to
			// drain, and the request is followed to its end. Counted
			// not done, its request was queued to drain a node that
			// no longer exists; an error, and no term could begin.
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if in.Detail == completeDrainDetail {
			// An update of a drain for Nomad to complete it
			// (completeDrain): done once the drain is complete; else
			// the next pass updates it again.
			return n.DrainStrategy == nil, nil
		}
		return n.DrainStrategy != nil || (n.LastDrain != nil && n.LastDrain.Meta["foreshape.request"] == in.Request), nil
	case state.IntentNodeEligibility:
		n, _, err := c.nomad.Nodes().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			// The node was purged since: it is out of scheduling for
			// nobody, and nothing is left to give back.
			return false, nil
		}
		if err != nil {
			return false, err
		}
		switch in.Detail {
		case keptCordon:
			return !ownDrain(n, in.Request) && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible, nil
		case keptDrain:
			return true, nil
		}
		want := nomadapi.NodeSchedulingIneligible
		if givesBack(in.Detail) {
			want = nomadapi.NodeSchedulingEligible
		}
		return n.SchedulingEligibility == want, nil
	case state.IntentRegisterHold:
		j, _, err := c.nomad.Jobs().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return !deref(j.Stop), nil
	case state.IntentDeregisterHold:
		q := c.qo(ctx)
		ns, job := holdObject(in.Object)
		if ns != "" {
			q.Namespace = ns
		}
		j, _, err := c.nomad.Jobs().Info(job, q)
		if isNotFound(err) {
			return true, nil
		}
		if ns != "" && isForbidden(err) {
			// A placeholder left in another namespace, which the token
			// may no longer read: not known done, so the reaper tries
			// again (and warns if refused). An error, and no term
			// could begin.
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return deref(j.Stop), nil
	case state.IntentScaleHold:
		group, want, ok := parseScaleDetail(in.Detail)
		if !ok {
			return true, nil
		}
		j, _, err := c.nomad.Jobs().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		for _, tg := range j.TaskGroups {
			if deref(tg.Name) == group {
				return deref(tg.Count) <= want, nil
			}
		}
		return true, nil
	case state.IntentUpdateJob:
		j, _, err := c.nomad.Jobs().Info(in.Object, c.qo(ctx))
		if isNotFound(err) {
			// The job was purged since: no update of it is there, and
			// its request ends as one whose job ended. An error, and
			// no term could begin: the act half never acted again.
			return false, nil
		}
		if err != nil {
			return false, err
		}
		target := strings.TrimPrefix(in.Detail, "affinity to ")
		for _, tg := range j.TaskGroups {
			for _, a := range tg.Affinities {
				if a != nil && strings.HasPrefix(target, a.RTarget) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	// A scale target's effect cannot be read back in general.
	return true, nil
}

// givesBack reports whether an eligibility intent's detail is a give-back
// (the node made eligible): setEligibleFor's, or giveBackAgainAll's after
// a purge undid one; every other detail takes the node out (or keeps it
// out: keptOut).
func givesBack(detail string) bool {
	return detail == "eligible" || strings.HasPrefix(detail, eligibleAgain)
}

// holdObject splits a placeholder intent's object: "NAMESPACE/JOB" for
// a placeholder the reaper deregisters in another namespace than the
// placeholders' (reap), else the job ID alone, in theirs (ns "").
func holdObject(object string) (ns, job string) {
	if ns, job, ok := strings.Cut(object, "/"); ok {
		return ns, job
	}
	return "", object
}

// parseScaleDetail reads "GROUP to N".
func parseScaleDetail(d string) (string, int, bool) {
	group, n, ok := strings.Cut(d, " to ")
	if !ok {
		return "", 0, false
	}
	v, err := strconv.Atoi(n)
	return group, v, err == nil
}

// settle puts the request or reservation of a reconciled intent right.
func (c *Coordinator) settle(ctx context.Context, now time.Time, in state.Intent, happened bool, ds *[]state.Decision) {
	switch in.Kind {
	case state.IntentStopAlloc, state.IntentDrainNode:
		if happened {
			// The move is under way: follow it.
			c.updateRequest(ctx, in.Request, func(r *state.MigrationRequest) bool {
				if r.State.Terminal() {
					return false
				}
				if r.State != state.RequestRunning {
					r.State, r.Started = state.RequestRunning, in.Opened
				}
				for i := range r.Moves {
					if (r.Moves[i].Alloc == in.Object || in.Kind == state.IntentDrainNode) && r.Moves[i].Stopped.IsZero() {
						r.Moves[i].Stopped = in.Opened
					}
				}
				return true
			})
			return
		}
		r, ok := c.cfg.State.Request(in.Request)
		if ok && r.State == state.RequestRunning {
			c.requeue(ctx, now, in.Request, "the previous leader stopped before "+string(in.Kind)+" of "+in.Object+" took effect", ds)
		}
	case state.IntentRegisterHold:
		if happened {
			c.markReservation(ctx, in.Reservation, func(r *state.Reservation) {
				if r.State == state.ReservationPlanned {
					r.State, r.Placed = state.ReservationHeld, in.Opened
				}
			})
		} else {
			c.markReservation(ctx, in.Reservation, func(r *state.Reservation) {
				r.State, r.Reason, r.Until = state.ReservationReleased, "its placeholder was never registered (the previous leader stopped)", now
			})
		}
	case state.IntentNodeEligibility:
		if !happened || givesBack(in.Detail) || keptOut(in.Detail) {
			return
		}
		// Whose the node's ineligibility is cannot be told: this
		// leader's call, or an operator's cordon made after the intent.
		// tookOut counts only cordons seen made, so the node is not given
		// back when the spread or window ends or the request is given up.
		when := "if " + in.Request + " is cancelled or fails"
		switch {
		case strings.HasPrefix(in.Detail, spreadCordon):
			when = "after the spread"
		case strings.HasPrefix(in.Detail, "ineligible for window/"):
			when = "when " + strings.TrimPrefix(in.Detail, "ineligible for ") + " ends"
		}
		*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Request: in.Request,
			Reason: fmt.Sprintf("node %s is out of scheduling, but the leader that was taking it out for %s stopped before it saw its call answered: it may be an operator's cordon, so the node will be left out of scheduling %s (make it eligible in Nomad if it was foreshape's)", in.Object, in.Request, when)})
	case state.IntentScaleHold:
		if !happened {
			return
		}
		c.countHandedOver(ctx, in.Reservation, in.Detail)
	case state.IntentDeregisterHold:
		if happened && strings.HasPrefix(in.Detail, "reap ") {
			// The reaper records its decision after the call: the leader
			// that died in between did not.
			*ds = append(*ds, state.Decision{Time: now, Kind: "reap", Reservation: in.Reservation, Reason: in.Detail + " (found done after a restart)"})
		}
		if happened && in.Reservation != "" {
			c.markReservation(ctx, in.Reservation, func(r *state.Reservation) {
				r.State, r.Until = state.ReservationReleased, now
			})
		}
	}
}

// settleScale records the outcome of a scale action whose call a
// previous leader left open, as settleUnreadScales found it (note says
// how).
func (c *Coordinator) settleScale(ctx context.Context, now time.Time, in state.Intent, happened bool, note string) {
	for _, a := range c.cfg.State.Act().ScaleActions {
		if a.Outcome != "" || !ofAction(in, a) {
			continue
		}
		if happened {
			// When it took effect is unknown too: the cooldown runs
			// from now, the latest it can have.
			a.Outcome, a.Finished, a.TookEffect, a.Error = state.OutcomeDone, now, now, note
		} else {
			a.Outcome, a.Finished, a.Error = state.OutcomeNotDone, now, note
		}
		if _, err := c.apply(ctx, state.RecordScaleAction{Action: a}); err != nil {
			c.log.Warn("could not record a reconciled scale action", logKeyError, err)
		}
	}
}

// requeue puts a running request whose stop (or drain) never took effect,
// because the leader making it stopped, back in the queue under the same
// attempt: nothing of the move was tried, so it uses up none of the
// request's MaxAttempts (leaders killed there three times in a row failed
// moves that Nomad never saw). The next start announces the call again
// under the intent's next redo ID (do), at most maxRedos times.
func (c *Coordinator) requeue(ctx context.Context, now time.Time, id, why string, ds *[]state.Decision) {
	var final state.MigrationRequest
	c.updateRequest(ctx, id, func(r *state.MigrationRequest) bool {
		if r.State.Terminal() {
			return false
		}
		pend(r)
		r.Reason = fmt.Sprintf("queued again, using up no attempt (%d of %d used): %s", r.Attempts, MaxAttempts, why)
		final = *r
		return true
	})
	if final.ID != "" {
		*ds = append(*ds, state.Decision{Time: now, Kind: "retry", Policy: final.Policy, Locality: final.Source, Request: id, Reason: final.Reason})
	}
}
