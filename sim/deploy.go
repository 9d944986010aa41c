package sim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"
)

// latestDeployment returns the job's most recent deployment.
func latestDeployment(j *job) *deployment {
	if len(j.deploys) == 0 {
		return nil
	}
	return j.deploys[len(j.deploys)-1]
}

// startDeployment begins a deployment for the job's current version when
// it is a service job with an update strategy, cancelling an older active
// one, as Nomad does.
func (c *Cluster) startDeployment(j *job) {
	if j.typ != api.JobTypeService || j.stopped {
		return
	}
	var groups map[string]*api.DeploymentState
	for _, g := range j.groups {
		if g.update == nil {
			continue
		}
		if groups == nil {
			groups = map[string]*api.DeploymentState{}
		}
		pd := 10 * time.Minute
		if g.update.ProgressDeadline != nil {
			pd = *g.update.ProgressDeadline
		}
		st := &api.DeploymentState{DesiredTotal: g.count, ProgressDeadline: pd,
			AutoRevert: g.update.AutoRevert != nil && *g.update.AutoRevert}
		if pd > 0 {
			st.RequireProgressBy = c.now.Add(pd)
		}
		groups[g.name] = st
	}
	if groups == nil {
		return
	}
	if d := latestDeployment(j); d != nil && d.active() {
		d.status, d.statusDesc = api.DeploymentStatusCancelled, "Cancelled due to newer version of job"
		d.modifyIdx = c.bump(TableDeployments)
	}
	d := &deployment{
		id: newID(c.rng), job: j, jobVersion: j.version, jobModIdx: j.jobModIdx, jobCreate: j.createIdx,
		status: api.DeploymentStatusRunning, statusDesc: "Deployment is running",
		groups: groups, started: c.now,
	}
	idx := c.bump(TableDeployments)
	d.createIdx, d.modifyIdx = idx, idx
	j.deploys = append(j.deploys, d)
	c.deployByID[d.id] = d
}

// runDeployments marks allocations healthy after min_healthy_time (or
// unhealthy when they finish first or past healthy_deadline; those desired
// to stop before either get no health, as on Nomad's client) and completes
// or fails deployments. As Nomad's deployment watcher, it fails a
// deployment on an unhealthy allocation only when its group has no
// progress deadline or the allocation's reschedule policy allows no more
// attempts; otherwise it lets the allocation be rescheduled
// (DesiredTransition.Reschedule, a second later, as the watcher batches
// its updates) and the deployment fails only past its progress deadline.
// A failed deployment with auto_revert rolls the job back to its latest
// stable version.
func (c *Cluster) runDeployments() {
	for _, j := range c.sortedJobs() {
		d := latestDeployment(j)
		if d == nil || !d.active() {
			continue
		}
		changed := false
		failing, revert := false, false
		for _, a := range j.allocs {
			if a.deployID != d.id {
				continue
			}
			u := a.grp.update
			st := d.groups[a.grp.name]
			if u == nil || st == nil {
				continue
			}
			if a.healthy == nil {
				if manualHealth(u) {
					// Nomad's client watches nothing: an operator sets
					// the health (setAllocHealth), or the deployment
					// runs into its progress deadline.
					continue
				}
				if a.desired != desiredRun {
					// Nomad's client stops watching the health of an
					// allocation desired to stop (stopped, migrated,
					// evicted, lost): it never gets any.
					continue
				}
				switch {
				case a.client == allocRunning && !c.now.Before(a.runningSince.Add(*u.MinHealthyTime)) && !a.grp.checksHold(u.HealthCheck):
					a.healthy, a.healthAt = new(true), c.now
					st.HealthyAllocs++
					if st.ProgressDeadline > 0 {
						st.RequireProgressBy = c.now.Add(st.ProgressDeadline)
					}
				case a.clientTerminal() || (u.HealthyDeadline != nil && !a.startAt.IsZero() && !c.now.Before(a.startAt.Add(*u.HealthyDeadline))):
					a.healthy, a.healthAt = new(false), c.now
					if a.client == allocFailed {
						// Nomad's client says so among the task's events.
						const msg = "Unhealthy because of failed task"
						a.note(&api.TaskEvent{Type: "Alloc Unhealthy", Time: c.now.UnixNano(), DisplayMessage: msg, Message: msg,
							Details: map[string]string{"message": msg}})
					}
					st.UnhealthyAllocs++
				default:
					continue
				}
				c.touchByClient(a)
				changed = true
			}
			if *a.healthy {
				continue
			}
			switch {
			case st.ProgressDeadline == 0 || !rescheduleAllowed(a, c.now):
				failing = true
				revert = revert || st.AutoRevert
			case !a.reschedule && a.desired == desiredRun && !c.now.Before(a.healthAt.Add(watcherBatch)):
				a.reschedule = true
				c.touchByServer(a)
				changed = true
			}
		}
		done := true
		for _, g := range j.groups {
			st := d.groups[g.name]
			if st == nil {
				continue
			}
			if !failing && !st.RequireProgressBy.IsZero() && c.now.After(st.RequireProgressBy) && st.HealthyAllocs < st.DesiredTotal {
				d.status, d.statusDesc = api.DeploymentStatusFailed, "Failed due to progress deadline"
				changed = true
			}

			if st.HealthyAllocs < st.DesiredTotal {
				done = false
			}
		}
		if failing {
			d.status, d.statusDesc = api.DeploymentStatusFailed, "Failed due to unhealthy allocations"
			changed = true
		}
		if !failing && d.status == api.DeploymentStatusFailed {
			// Past the progress deadline: a group short of healthy
			// allocations with auto_revert rolls the job back.
			for _, st := range d.groups {
				revert = revert || (st.AutoRevert && st.HealthyAllocs < st.DesiredTotal)
			}
		}
		var rollback *api.Job
		if d.status == api.DeploymentStatusFailed && revert {
			rollback = c.rollbackTarget(j, d)
		}
		if d.active() && done {
			d.status, d.statusDesc = api.DeploymentStatusSuccessful, "Deployment completed successfully"
			d.succeeded = c.now
			changed = true
			j.spec.Stable = new(true)
			j.stable, j.stableVersion = deepCopyJob(j.spec), j.version
			j.modifyIdx = c.bump(TableJobs)
		}
		if changed {
			d.modifyIdx = c.bump(TableDeployments)
			// A rolling update continues as allocations become healthy.
			c.markDirty(j, triggerDeployment)
		}
		if rollback != nil {
			c.revert(j, rollback)
		}
	}
}

// manualHealth reports whether u leaves an allocation's health in its
// deployment to an operator (health_check = "manual").
func manualHealth(u *api.UpdateStrategy) bool {
	return u.HealthCheck != nil && *u.HealthCheck == "manual"
}

// runMigrateHealth gives health to allocations outside a deployment, as
// Nomad's client does for service and system jobs (its health hook watches
// every such allocation, with the group's migrate block when it has no
// deployment ID): healthy once running for migrate.min_healthy_time (the
// simulator's checks pass at once, except those of an idle group, whose
// tasks only sleep: group.checks), unhealthy when it fails first. One
// desired to stop, or lost, before either gets none, as in a deployment.
// An allocation carrying the ID of its job's active deployment is left to
// runDeployments; in a group without an update block (or with
// health_check = "manual") one carrying any deployment's ID gets no health
// at all, as on Nomad.
//
// One not healthy by the migrate block's healthy_deadline, counted from
// when the client starts it (its start time less the scenario's startup:
// after a disk migration, before its tasks start), turns unhealthy then,
// though it runs on: min_healthy_time equal to healthy_deadline, a
// startup longer than it.
//
// An allocation of a deployment that is over (failed, cancelled by a newer
// version) before it turned healthy is still watched by Nomad's client,
// with its group's update block: it turns healthy after that block's
// min_healthy_time, though the deployment no longer counts it.
func (c *Cluster) runMigrateHealth() {
	for _, a := range c.live {
		if a.healthy != nil || a.desired != desiredRun || a.client == allocLost {
			continue
		}
		if a.job.typ != api.JobTypeService && a.job.typ != api.JobTypeSystem {
			continue
		}
		mh, hd := 10*time.Second, 5*time.Minute
		if a.grp.migrate.MinHealthyTime != nil {
			mh = *a.grp.migrate.MinHealthyTime
		}
		if a.grp.migrate.HealthyDeadline != nil {
			hd = *a.grp.migrate.HealthyDeadline
		}
		// Nomad's client starts its health watch with the allocation (after
		// a disk migration, before the tasks start), its deadline then.
		var deadline time.Time
		if !a.startAt.IsZero() {
			deadline = a.startAt.Add(-c.sc.Startup).Add(hd)
		}
		checksHold := a.grp.checksHold(a.grp.migrate.HealthCheck)
		if a.deployID != "" {
			deadline = time.Time{}
			if d := latestDeployment(a.job); d != nil && d.active() && d.id == a.deployID {
				continue // runDeployments
			}
			u := a.grp.update
			if u == nil || manualHealth(u) {
				continue
			}
			mh = *u.MinHealthyTime
			checksHold = a.grp.checksHold(u.HealthCheck)
		}
		switch {
		case !deadline.IsZero() && !c.now.Before(deadline) &&
			(a.client != allocRunning || checksHold || !a.runningSince.Add(mh).Before(deadline)):
			// Not healthy by the deadline: unhealthy, though it runs on.
			a.healthy = new(false)
		case a.client == allocRunning && !c.now.Before(a.runningSince.Add(mh)) && !checksHold:
			a.healthy = new(true)
		case a.clientTerminal():
			a.healthy = new(false)
		default:
			continue
		}
		a.healthAt = c.now
		c.touchByClient(a)
	}
}

// revert registers rollback (rollbackTarget's answer) as the job's new
// version, as Nomad's deployment watcher does for auto_revert.
func (c *Cluster) revert(j *job, rollback *api.Job) {
	if _, err := c.register(rollback, nil, triggerDeployment); err != nil {
		c.log.Warn("auto_revert: registering the stable version failed", logKeyJob, j.id, logKeyVersion, j.stableVersion, "error", err)
	}
}

// rollbackTarget is what Nomad's deployment watcher does when d, failed,
// has a group with auto_revert: it rolls back to the job's latest stable
// version, unless there is none or it has the current specification, and
// says so in the deployment's description. It returns the spec to
// register, nil for none.
func (c *Cluster) rollbackTarget(j *job, d *deployment) *api.Job {
	switch {
	case j.stable == nil:
		d.statusDesc += " - no stable job version to auto revert to"
		return nil
	case specSum(j.stable) == j.specSum:
		d.statusDesc += fmt.Sprintf(" - not rolling back to stable job version %d as current job has same specification", j.stableVersion)
		return nil
	}
	d.statusDesc += fmt.Sprintf(" - rolling back to job version %d", j.stableVersion)
	spec := deepCopyJob(j.stable)
	spec.Stable = nil
	return spec
}

// deepCopyJob is a deep copy of a job spec, through its JSON shape.
func deepCopyJob(spec *api.Job) *api.Job {
	b, err := json.Marshal(spec)
	if err != nil {
		panic("sim: encode job: " + err.Error())
	}
	var out api.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic("sim: decode job: " + err.Error())
	}
	return &out
}

// watcherBatch is how long Nomad's deployment watcher batches allocation
// updates before it acts on them (perJobEvalBatchPeriod).
const watcherBatch = time.Second
