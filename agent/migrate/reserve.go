package migrate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Placeholder job meta keys.
const (
	MetaOwner       = "foreshape.owner"
	MetaReservation = "foreshape.reservation"
	MetaRequest     = "foreshape.request"
	MetaPolicy      = "foreshape.policy"
	MetaExpires     = "foreshape.expires"
)

// chunkGroup names the placeholder group of a chunk: its index and size.
func chunkGroup(i int, c state.Chunk) string {
	return fmt.Sprintf("hold-%d-%dmhz-%dmib", i, c.Size.CPU, c.Size.MemoryMB)
}

// placeholderJob builds a reservation's placeholder job.
func (c *Coordinator) placeholderJob(res state.Reservation, clusterID string, priority int) (*nomadapi.Job, error) {
	loc, err := policies.ParseLocality(res.Locality)
	if err != nil {
		return nil, fmt.Errorf("migrate: reservation %s: %w", res.ID, err)
	}
	id := res.Job
	typ := nomadapi.JobTypeService
	dc := loc.Datacenter
	if dc == "" {
		dc = "*"
	}
	pool := loc.NodePool
	if pool == "" {
		pool = "all"
	}
	job := &nomadapi.Job{
		ID: &id, Name: &id, Type: &typ, Priority: &priority, Datacenters: []string{dc}, NodePool: &pool,
		Meta: map[string]string{MetaOwner: clusterID, MetaReservation: res.ID, MetaRequest: res.Request, MetaPolicy: res.Policy,
			MetaExpires: res.Expires.UTC().Format(time.RFC3339)},
	}
	if c.cfg.Namespace != "" {
		ns := c.cfg.Namespace
		job.Namespace = &ns
	}
	if loc.NodeClass != "" {
		job.Constraints = append(job.Constraints, &nomadapi.Constraint{LTarget: "${node.class}", RTarget: loc.NodeClass, Operand: "="})
	}
	for _, n := range res.Exclude {
		job.Constraints = append(job.Constraints, &nomadapi.Constraint{LTarget: "${node.unique.id}", RTarget: n, Operand: "!="})
	}
	for i, ch := range res.Chunks {
		name := chunkGroup(i, ch)
		count, cpu, mem := ch.Count, int(ch.Size.CPU), int(ch.Size.MemoryMB)
		zero := 0
		attempts, interval, delay, mode := 3, 10*time.Minute, 15*time.Second, "delay"
		task := &nomadapi.Task{Name: "hold", Driver: c.cfg.Placeholder.Driver, Config: maps.Clone(c.cfg.Placeholder.Config),
			Resources: &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}}
		killTimeout := time.Second
		task.KillTimeout = &killTimeout
		job.TaskGroups = append(job.TaskGroups, &nomadapi.TaskGroup{
			Name: &name, Count: &count, Tasks: []*nomadapi.Task{task},
			// No deployments: a hand-over scales the group while it lives,
			// which Nomad refuses during an active deployment.
			Update:        &nomadapi.UpdateStrategy{MaxParallel: &zero},
			RestartPolicy: &nomadapi.RestartPolicy{Attempts: &attempts, Interval: &interval, Delay: &delay, Mode: &mode},
		})
	}
	return job, nil
}

// place registers a planned reservation's placeholder.
func (c *Coordinator) place(ctx context.Context, now time.Time, rs shape.Reserve, clusterID string) (string, error) {
	var size state.Resources
	for _, ch := range rs.Chunks {
		size = size.Add(state.Resources{CPU: ch.Size.CPU * int64(ch.Count), MemoryMB: ch.Size.MemoryMB * int64(ch.Count), IOPS: ch.Size.IOPS * int64(ch.Count)})
	}
	res := state.Reservation{Request: rs.Request, Policy: rs.Policy, Locality: rs.Locality, Chunks: rs.Chunks, Exclude: rs.Exclude, Size: size,
		From: rs.From.UTC(), Until: rs.Until.UTC(), Expires: rs.Expires.UTC(), State: state.ReservationPlanned, Reason: rs.Reason}
	r, err := c.apply(ctx, state.PutReservation{Reservation: res})
	if err != nil {
		return "", fmt.Errorf("migrate: record reservation for %s: %w", rs.Request, err)
	}
	res.ID = r.ID
	res.Job = state.PlaceholderPrefix + r.ID
	job, err := c.placeholderJob(res, clusterID, rs.Priority)
	if err != nil {
		return res.ID, err
	}
	in := state.Intent{ID: intentID(state.IntentRegisterHold, res.Job, rs.Request, 0), Kind: state.IntentRegisterHold,
		Request: rs.Request, Reservation: res.ID, Object: res.Job, Detail: res.Total().String()}
	if err := c.do(ctx, now, in, func(ctx context.Context) error {
		_, _, err := c.nomad.Jobs().Register(job, c.wq(ctx))
		return err
	}); err != nil {
		// Not registered (Nomad refused it, or this leader could not
		// announce it or was deposed): the reservation is released now,
		// at this time (Until, as every release records it), and the
		// planner places a new one if the request still needs it. Should
		// the registration have been made after all (an answer lost), the
		// reaper deregisters the job of a released reservation. When
		// marking it released fails, it stays planned, and the next pass
		// (or a new leader's reconciliation) releases it: see
		// settlePlanned.
		c.markReservation(ctx, res.ID, func(r *state.Reservation) {
			r.State, r.Reason, r.Until = state.ReservationReleased, "placeholder not registered: "+err.Error(), now.UTC()
		})
		return res.ID, err
	}
	c.markReservation(ctx, res.ID, func(r *state.Reservation) {
		r.State, r.Placed, r.Unplaced = state.ReservationHeld, now.UTC(), placeholderCount(r.Chunks)
	})
	return res.ID, nil
}

// placeholderCount is how many placeholder allocations chunks ask for.
func placeholderCount(chunks []state.Chunk) int {
	n := 0
	for _, ch := range chunks {
		n += ch.Count
	}
	return n
}

// notePlacement records how many of each held reservation's placeholder
// allocations Nomad has not placed on a node (Reservation.Unplaced), as
// the allocation list read this pass shows them: the API answers such a
// reservation placed, not held, until every one is (Nomad places a
// placeholder where room is, and blocks it where none is). Written only
// when it changed.
func (c *Coordinator) notePlacement(ctx context.Context) {
	held := slices.ContainsFunc(c.cfg.State.Act().Reservations, func(r state.Reservation) bool {
		return r.State == state.ReservationHeld && r.Job != ""
	})
	if !held {
		return // nothing to count: no scan of the allocations
	}
	live := map[string]int{}
	for _, a := range c.view.allocs {
		if shape.Placeholder(a.JobID) && placedHold(a) {
			live[a.Namespace+"/"+a.JobID]++
		}
	}
	ns := c.placeholderNamespace()
	for _, r := range c.cfg.State.Act().Reservations {
		if r.State != state.ReservationHeld || r.Job == "" {
			continue
		}
		n := max(0, placeholderCount(r.Chunks)-live[ns+"/"+r.Job])
		if n != r.Unplaced {
			c.markReservation(ctx, r.ID, func(x *state.Reservation) { x.Unplaced = n })
		}
	}
}

// markReservation applies a change to a reservation, compare-and-set.
func (c *Coordinator) markReservation(ctx context.Context, id string, change func(r *state.Reservation)) {
	for range 3 {
		var cur state.Reservation
		found := false
		for _, r := range c.cfg.State.Act().Reservations {
			if r.ID == id {
				cur, found = r, true
			}
		}
		if !found {
			return
		}
		v := cur.Version
		change(&cur)
		_, err := c.apply(ctx, state.PutReservation{Reservation: cur, IfVersion: v})
		if err == nil || !errors.Is(err, state.ErrStaleVersion) {
			if err != nil {
				c.log.Warn("could not update a reservation", logKeyReservation, id, logKeyError, err)
			}
			return
		}
	}
}

// handOver shrinks a reservation's placeholder by one allocation of size,
// right before the moved allocation stops: the replacement finds the room.
func (c *Coordinator) handOver(ctx context.Context, now time.Time, res state.Reservation, size state.Resources, alloc, request string, attempt int) error {
	// What is left comes from the state, where each hand-over is counted:
	// a read of the job may not show the previous shrink yet.
	if cur, ok := c.cfg.State.ReservationFor(request); ok && cur.ID == res.ID {
		res = cur
	}
	// The room is handed to an allocation once: a hand-over an earlier
	// attempt or a previous leader made (its outcome written, or found
	// by reconciliation) is not made again; the state gets the count it
	// set, in case the leader died before recording it.
	for a := 0; a <= attempt; a++ {
		in, ok := c.latestIntent(intentID(state.IntentScaleHold, res.Job+"/"+alloc, request, a))
		if !ok || again(in) {
			continue
		}
		if in.Outcome == state.OutcomeDone {
			c.countHandedOver(ctx, res.ID, in.Detail)
		}
		return nil
	}
	for i, ch := range res.Chunks {
		if ch.Size != size || ch.Count == 0 {
			continue
		}
		group := chunkGroup(i, ch)
		count := ch.Count - 1
		in := state.Intent{ID: intentID(state.IntentScaleHold, res.Job+"/"+alloc, request, attempt), Kind: state.IntentScaleHold,
			Request: request, Reservation: res.ID, Object: res.Job, Detail: fmt.Sprintf("%s to %d", group, count)}
		err := c.do(ctx, now, in, func(ctx context.Context) error {
			msg := fmt.Sprintf("foreshape: hand %s over to allocation %s of %s", size, alloc, request)
			_, _, err := c.nomad.Jobs().Scale(res.Job, group, &count, msg, false, nil, c.wq(ctx))
			if isNotFound(err) {
				// The placeholder is gone (purged by someone else): it
				// holds no room to hand over, and the move goes on as
				// once the reaper marks its reservation released.
				// Counted failed, the move lost an attempt and its
				// running request was queued again.
				return nil
			}
			return err
		})
		if errors.Is(err, errAnnounced) {
			return nil // under way in another term: that term's reconciliation counts it
		}
		if err != nil {
			return err
		}
		c.countHandedOver(ctx, res.ID, in.Detail)
		return nil
	}
	return nil
}

// countHandedOver records in the state the count a hand-over set a
// placeholder group to (detail "GROUP to N"); it never raises a count, so
// recording a hand-over twice changes nothing.
func (c *Coordinator) countHandedOver(ctx context.Context, id, detail string) {
	group, want, ok := parseScaleDetail(detail)
	if !ok {
		return
	}
	c.markReservation(ctx, id, func(r *state.Reservation) {
		for i, ch := range r.Chunks {
			if chunkGroup(i, ch) == group || strings.HasPrefix(group, fmt.Sprintf("hold-%d-", i)) {
				r.Chunks[i].Count = min(r.Chunks[i].Count, want)
			}
		}
	})
}

// release deregisters a reservation's placeholder and marks it released.
func (c *Coordinator) release(ctx context.Context, now time.Time, res state.Reservation, why string) error {
	if res.State != state.ReservationPlanned {
		in := state.Intent{ID: intentID(state.IntentDeregisterHold, res.Job, res.Request, 0), Kind: state.IntentDeregisterHold,
			Request: res.Request, Reservation: res.ID, Object: res.Job, Detail: why}
		err := c.do(ctx, now, in, func(ctx context.Context) error {
			_, _, err := c.nomad.Jobs().Deregister(res.Job, true, c.wq(ctx))
			if isNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil && !errors.Is(err, errAnnounced) {
			return err
		}
	}
	c.markReservation(ctx, res.ID, func(r *state.Reservation) { r.State, r.Reason, r.Until = state.ReservationReleased, why, now.UTC() })
	return nil
}

// isNotFound reports a Nomad 404: an answer, with that status code. An
// error without an answer (a timeout, a dropped connection) is not one,
// whatever its text: it names the URL it went to, whose IDs ("rs-404",
// a UUID) may hold "404", and read as Nomad's 404 it closed a
// placeholder's deregistration done that was never made.
func isNotFound(err error) bool {
	var ue nomadapi.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound
}

// isForbidden reports a Nomad 403: the token lacks a capability.
func isForbidden(err error) bool {
	var ue nomadapi.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == http.StatusForbidden
}

// Released reservations stay visible (in /v1/reservations) for
// KeepReleased of data time, the newest MaxReleased of them.
const (
	KeepReleased = 24 * time.Hour
	MaxReleased  = 200
)

// reap deregisters this cluster's placeholders whose reservation is gone,
// released or expired, or that lie in another namespace than the
// placeholders' (left there before nomad.namespace changed), forgets
// released reservations (see KeepReleased), and marks held reservations
// whose placeholder vanished from the placeholders' namespace as
// released. It lists placeholders in every namespace the token may list
// jobs in (Nomad leaves the others out of a "*" list).
func (c *Coordinator) reap(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	q := c.qo(ctx)
	q.Namespace = "*"
	q.Prefix = state.PlaceholderPrefix
	q.Params = map[string]string{"meta": "true"} // Nomad lists a job's meta only when asked
	stubs, _, err := c.nomad.Jobs().List(q)
	if err != nil {
		c.log.Warn("reaper: cannot list placeholders", logKeyError, err)
		return
	}
	byJob := map[string]state.Reservation{}
	for _, r := range view.Reservations {
		byJob[r.Job] = r
	}
	home := c.placeholderNamespace()
	// exists holds the placeholders in home; elsewhere the namespace of
	// those in another.
	exists, elsewhere := map[string]bool{}, map[string]string{}
	for _, s := range stubs {
		if s.Stop && s.Status == "dead" {
			continue
		}
		ns := s.Namespace
		if ns == "" {
			ns = home
		}
		if ns == home {
			exists[s.ID] = true
		} else {
			elsewhere[s.ID] = ns
		}
		if s.Meta[MetaOwner] != view.ClusterID || view.ClusterID == "" {
			continue // another foreshape cluster's, or unknown: not ours to reap
		}
		res, known := byJob[s.ID]
		var why string
		switch {
		case !known:
			why = fmt.Sprintf("reap %s: its reservation is gone (an agent died before releasing it)", s.ID)
		case res.State == state.ReservationReleased && !s.Stop:
			why = fmt.Sprintf("reap %s: reservation %s was released", s.ID, res.ID)
		case !now.Before(res.Expires):
			why = fmt.Sprintf("reap %s: reservation %s expired at %s", s.ID, res.ID, res.Expires.Format("15:04"))
		case ns != home:
			why = fmt.Sprintf("reap %s: it is in namespace %q, not in %q, where placeholders are registered (nomad.namespace changed)", s.ID, ns, home)
		default:
			continue
		}
		if s.Stop {
			continue
		}
		if ns != home && !strings.Contains(why, "namespace") {
			why += fmt.Sprintf(" (in namespace %q)", ns)
		}
		// A placeholder of another namespace is named with it, so that
		// the reconciliation reads it there (holdObject).
		object := s.ID
		if ns != home {
			object = ns + "/" + s.ID
		}
		in := state.Intent{ID: intentID(state.IntentDeregisterHold, object, "reap", int(s.JobModifyIndex)), Kind: state.IntentDeregisterHold,
			Reservation: res.ID, Object: object, Detail: why}
		err := c.do(ctx, now, in, func(ctx context.Context) error {
			w := c.wq(ctx)
			w.Namespace = ns
			_, _, err := c.nomad.Jobs().Deregister(s.ID, true, w)
			if isNotFound(err) {
				return nil
			}
			return err
		})
		if errors.Is(err, errAnnounced) {
			// Announced before: made (its decision recorded then, or by
			// the reconciliation), under way, or failed maxRedos times.
			// Recorded as a reap at every pass, the last filled the
			// decision log with reaps that never happened.
			if last, ok := c.latestIntent(in.ID); ok && last.Outcome == state.OutcomeFailed {
				c.note(ds, now, "unreaped/"+s.ID, state.Decision{Kind: "reap", Locality: res.Locality, Reservation: res.ID, Request: res.Request, Policy: res.Policy,
					Reason: fmt.Sprintf("cannot reap %s: Nomad refused its deregistration %d times, the last: %s; it holds its room until it is stopped in Nomad (nomad job stop -purge%s %s)",
						s.ID, maxRedos, last.Error, map[bool]string{true: " -namespace " + ns}[ns != home], s.ID)})
			}
			continue
		}
		if err != nil {
			if isForbidden(err) && ns != home {
				c.log.Warn("reaper: the token may not deregister a placeholder left in another namespace: it holds its room until it is stopped (grant submit-job in that namespace, or nomad job stop -purge it)",
					"job", s.ID, "namespace", ns, "acl", "submit-job", logKeyError, err)
				continue
			}
			c.log.Warn("reaper: deregister failed", "job", s.ID, "namespace", ns, logKeyError, err)
			continue
		}
		c.log.Info("reaped a placeholder", "job", s.ID, "namespace", ns, "why", why)
		*ds = append(*ds, state.Decision{Time: now, Kind: "reap", Locality: res.Locality, Reservation: res.ID, Request: res.Request, Policy: res.Policy, Reason: why})
		if known && res.State != state.ReservationReleased && ns == home {
			c.markReservation(ctx, res.ID, func(r *state.Reservation) { r.State, r.Reason, r.Until = state.ReservationReleased, why, now.UTC() })
		}
	}
	released := 0
	for i := len(view.Reservations) - 1; i >= 0; i-- {
		r := view.Reservations[i]
		if r.State == state.ReservationReleased {
			released++
		}
		switch {
		case r.State == state.ReservationReleased && !exists[r.Job] && elsewhere[r.Job] == "" && (now.Sub(r.Until) > KeepReleased || released > MaxReleased):
			if _, err := c.apply(ctx, state.DeleteReservation{ID: r.ID}); err != nil {
				c.log.Warn("could not forget a released reservation", logKeyReservation, r.ID, logKeyError, err)
			}
		case r.State == state.ReservationHeld && !exists[r.Job]:
			why := fmt.Sprintf("placeholder %s is gone from Nomad", r.Job)
			if ns := elsewhere[r.Job]; ns != "" {
				why = fmt.Sprintf("placeholder %s is in namespace %q, not in %q, where placeholders are registered (nomad.namespace changed): the reaper deregisters it there", r.Job, ns, home)
			}
			c.markReservation(ctx, r.ID, func(x *state.Reservation) { x.State, x.Reason, x.Until = state.ReservationReleased, why, now.UTC() })
			*ds = append(*ds, state.Decision{Time: now, Kind: "release", Locality: r.Locality, Reservation: r.ID, Request: r.Request, Policy: r.Policy, Reason: why})
		}
	}
}

// refusal is a request's run of placeholders Nomad refused: how many in a
// row, the last one's time and error.
type refusal struct {
	n   int
	at  time.Time
	err string
}

// next is when the request's next placeholder may be placed: a minute
// after the first refusal, doubling to at most half an hour, so that a
// token without submit-job does not register (and record) a placeholder
// every pass.
func (f refusal) next() time.Time {
	return f.at.Add(min(time.Minute<<min(f.n-1, 5), 30*time.Minute))
}

// note is what the request's reason adds while its placeholders are
// refused.
func (f refusal) note() string {
	times := "once"
	if f.n > 1 {
		times = fmt.Sprintf("%d times in a row", f.n)
	}
	return fmt.Sprintf("placeholder refused %s, last at %s (%s); next try at %s",
		times, f.at.UTC().Format("15:04"), f.err, f.next().UTC().Format("15:04"))
}
